//! `#[derive(Redact)]` and the `redact` runtime: what each rule prints, the keyed hash, and
//! JSON lines from `JsonLayer` that must not contain the secrets they were given.
//!
//! Every test sets the same hash key first (`KEY`): the key is process-wide and the first one
//! set wins. How the key is chosen without `set_hash_key` is checked in child processes.
#![cfg(feature = "derive")]

use std::fmt;
use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex};

use sightline_logging::JsonLayer;
use sightline_logging::redact::{self, Redact, hash, hash_display, mask};
use tracing_subscriber::prelude::*;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

/// HMAC-SHA256(`KEY`, `FOX`) starts with these 8 bytes (the well-known test vector
/// f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8).
const FOX: &str = "The quick brown fox jumps over the lazy dog";
const FOX_HASH: &str = "hmac:854e55263cca493b";

fn init() {
    // All tests set the same key; whichever runs first sets it.
    let _ = redact::set_hash_key(KEY);
}

// The omitted fields are never read: that is what the tests check.
#[allow(dead_code)]
#[derive(Redact)]
struct User {
    name: String,
    #[redact(mask = "3-4")]
    phone: String,
    #[redact(hash)]
    email: String,
    #[redact(omit)]
    password: String,
    age: u8,
}

fn alice() -> User {
    User {
        name: "alice".into(),
        phone: "+447700900123".into(),
        email: "alice@example.com".into(),
        password: "hunter2".into(),
        age: 42,
    }
}

#[test]
fn every_rule_prints_as_documented() {
    init();
    let user = alice();
    let email = hash(b"alice@example.com");
    assert_eq!(
        user.redacted().to_string(),
        format!(r#"User {{ name: "alice", phone: "+44******0123", email: {email}, age: 42, .. }}"#)
    );
    assert_eq!(
        format!("{:?}", user.redacted()),
        user.redacted().to_string()
    );
    assert_eq!(
        format!("{:#?}", user.redacted()),
        format!(
            "User {{\n    name: \"alice\",\n    phone: \"+44******0123\",\n    email: {email},\n    age: 42,\n    ..\n}}"
        )
    );
    assert!(!user.redacted().to_string().contains("hunter2"));
}

#[derive(Redact)]
struct NoRules {
    id: u64,
    tags: Vec<&'static str>,
}

#[test]
fn fields_without_a_rule_print_their_debug() {
    let value = NoRules {
        id: 7,
        tags: vec!["a\"b"],
    };
    let expected = format!("NoRules {{ id: 7, tags: {:?} }}", vec!["a\"b"]);
    assert_eq!(value.redacted().to_string(), expected);
}

#[test]
fn mask_keeps_the_first_and_last_characters() {
    assert_eq!(mask("+447700900123", 3, 4).to_string(), "+44******0123");
    assert_eq!(
        mask("4111111111111111", 0, 4).to_string(),
        "************1111"
    );
    assert_eq!(mask("sk_live_abc", 3, 0).to_string(), "sk_********");
    assert_eq!(mask("secret", 0, 0).to_string(), "******");
}

#[test]
fn mask_counts_characters_not_bytes() {
    assert_eq!(mask("Zoë Ångström", 2, 2).to_string(), "Zo********öm");
    assert_eq!(mask("ééééé", 1, 1).to_string(), "é***é");
    assert_eq!(mask("日本語のテキスト", 1, 2).to_string(), "日*****スト");
    assert_eq!(mask("🦀🦀🦀🦀", 1, 1).to_string(), "🦀**🦀");
}

#[test]
fn mask_never_shows_a_short_value_whole() {
    assert_eq!(mask("1234567", 3, 4).to_string(), "*******");
    assert_eq!(mask("123", 3, 4).to_string(), "***");
    assert_eq!(mask("é", 1, 0).to_string(), "*");
    assert_eq!(mask("", 3, 4).to_string(), "");
    assert_eq!(mask("12345678", 3, 4).to_string(), "123*5678");
    assert_eq!(mask("ab", usize::MAX, usize::MAX).to_string(), "**");
}

#[test]
fn mask_debug_quotes_and_escapes_the_kept_characters() {
    assert_eq!(format!("{:?}", mask("\"ab\ncd\"", 2, 2)), r#""\"a***d\"""#);
    assert_eq!(
        format!("{:?}", mask(&1234567890u64, 0, 2)),
        r#""********90""#
    );
}

#[derive(Redact)]
struct Card {
    #[redact(mask = "0-4")]
    number: CardNumber,
    #[redact(hash)]
    holder_id: u64,
}

/// A type whose `Display` is the secret, to check that rules go through `Display`.
struct CardNumber([u16; 4]);

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:04} {b:04} {c:04} {d:04}")
    }
}

#[test]
fn rules_format_any_display_type() {
    init();
    let card = Card {
        number: CardNumber([4111, 1111, 1111, 1234]),
        holder_id: 90210,
    };
    assert_eq!(
        card.redacted().to_string(),
        format!(
            r#"Card {{ number: "***************1234", holder_id: {} }}"#,
            hash(b"90210")
        )
    );
}

#[test]
fn hash_is_an_hmac_under_the_key_that_was_set() {
    init();
    assert_eq!(hash(FOX.as_bytes()).to_string(), FOX_HASH);
    assert_eq!(format!("{:?}", hash(FOX.as_bytes())), FOX_HASH);
    assert_eq!(hash_display(FOX), hash(FOX.as_bytes()));
    assert_eq!(hash_display(&String::from(FOX)).to_string(), FOX_HASH);
    assert_ne!(hash(b"+447700900123"), hash(b"+447700900124"));
    assert!(redact::set_hash_key(b"another key of 32 bytes, too....").is_err());
    assert_eq!(hash(FOX.as_bytes()).to_string(), FOX_HASH);
}

#[allow(dead_code)]
#[derive(Redact)]
struct Pair(#[redact(mask = "1-1")] String, u8, #[redact(omit)] String);

#[derive(Redact)]
struct Marker;

#[derive(Redact)]
struct Keywords {
    r#type: &'static str,
}

#[test]
fn tuple_unit_and_raw_identifier_structs() {
    let pair = Pair("secret".into(), 3, "hidden".into());
    assert_eq!(pair.redacted().to_string(), r#"Pair("s****t", 3, ..)"#);
    assert_eq!(Marker.redacted().to_string(), "Marker");
    assert_eq!(
        Keywords { r#type: "admin" }.redacted().to_string(),
        r#"Keywords { type: "admin" }"#
    );
}

#[derive(Redact)]
struct Tagged<'a, T, S: Clone>
where
    T: Copy,
{
    tag: T,
    #[redact(hash)]
    secret: S,
    #[redact(mask = "2-0")]
    note: &'a str,
}

#[test]
fn generic_fields_get_the_bound_their_rule_needs() {
    init();
    let value = Tagged {
        tag: 1u8,
        secret: "s3cr3t".to_owned(),
        note: "hello",
    };
    assert_eq!(
        value.redacted().to_string(),
        format!(
            r#"Tagged {{ tag: 1, secret: {}, note: "he***" }}"#,
            hash(b"s3cr3t")
        )
    );
}

mod facade {
    pub(crate) use sightline_logging as logging;
}

#[derive(Redact)]
#[redact(crate = "facade::logging")]
struct ThroughFacade {
    #[redact(mask = "1-0")]
    token: &'static str,
}

#[test]
fn crate_attribute_names_the_runtime_path() {
    let value = ThroughFacade { token: "abc" };
    assert_eq!(
        value.redacted().to_string(),
        r#"ThroughFacade { token: "a**" }"#
    );
    // References and trait objects redact too.
    let by_ref: &dyn Redact = &value;
    assert_eq!(
        redact::Redacted::new(by_ref).to_string(),
        value.redacted().to_string()
    );
    let reference = &value;
    assert_eq!(
        reference.redacted().to_string(),
        value.redacted().to_string()
    );
}

/// A `MakeWriter` that appends every line to one buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("no test panics holding the lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[allow(dead_code)]
#[derive(Redact)]
struct Signup {
    user: String,
    #[redact(omit)]
    password: String,
    #[redact(mask = "3-4")]
    phone: String,
    #[redact(hash)]
    email: String,
    #[redact(mask = "0-4")]
    card: String,
}

#[test]
fn json_lines_hold_the_redacted_forms_and_no_secret() {
    init();
    let signup = Signup {
        user: "alice".into(),
        password: "correct horse battery staple".into(),
        phone: "+447700900123".into(),
        email: "alice.smith@example.com".into(),
        card: "4111111111111111".into(),
    };
    let capture = Capture::default();
    let writer = capture.clone();
    let layer = JsonLayer::builder()
        .service_name("shop")
        .writer(move || writer.clone())
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(signup = signup.redacted(), "bare value");
        tracing::info!(signup = %signup.redacted(), "display");
        tracing::info!(signup = ?signup.redacted(), "debug");
        tracing::warn!("in the message: {}", signup.redacted());
        let span = tracing::info_span!("checkout", signup = %signup.redacted());
        span.in_scope(|| tracing::info!("inside a span"));
    });
    let bytes = capture
        .0
        .lock()
        .expect("no test panics holding the lock")
        .clone();
    let text = String::from_utf8(bytes).expect("JSON lines are UTF-8");

    for secret in [
        "correct horse",
        "battery staple",
        "+447700900123",
        "7700900",
        "alice.smith",
        "example.com",
        "4111111111111111",
        "41111111",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked into:\n{text}");
    }
    let expected = format!(
        r#"Signup {{ user: "alice", phone: "+44******0123", email: {}, card: "************1111", .. }}"#,
        hash(b"alice.smith@example.com")
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    for line in &lines[..3] {
        assert_eq!(line["fields"]["signup"], expected.as_str(), "{line}");
    }
    assert_eq!(
        lines[3]["message"],
        format!("in the message: {expected}").as_str()
    );
    assert_eq!(
        lines[4]["span"]["signup"],
        expected.as_str(),
        "{}",
        lines[4]
    );
    assert!(text.contains("+44******0123") && text.contains("************1111"));
    assert!(text.contains(&hash(b"alice.smith@example.com").to_string()));
    // The line shown in docs/logging.md ("Redacting struct fields").
    assert!(text.contains(r#""fields":{"signup":"Signup { user: \"alice\", phone: \"+44******0123\", email: hmac:c54e020edd1560d1, card: \"************1111\", .. }"}"#));
}

/// Not a check by itself: when run as a child of `hash_key_comes_from_the_environment_or_at_random`
/// it prints, without setting a key, the hash of `FOX`.
#[test]
fn child_prints_its_hash() {
    if std::env::var_os("SIGHTLINE_TEST_CHILD").is_some() {
        eprintln!("CHILD-HASH={}", hash(FOX.as_bytes()));
    }
}

fn child_hash(key: Option<&str>) -> String {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            "child_prints_its_hash",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SIGHTLINE_TEST_CHILD", "1");
    match key {
        Some(key) => command.env(redact::HASH_KEY_ENV, key),
        None => command.env_remove(redact::HASH_KEY_ENV),
    };
    let output = command.output().expect("the test binary runs");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("CHILD-HASH="))
        .unwrap_or_else(|| panic!("no hash printed: {stderr}"))
        .to_owned()
}

#[test]
fn hash_key_comes_from_the_environment_or_at_random() {
    let key = std::str::from_utf8(KEY).expect("ASCII");
    assert_eq!(child_hash(Some(key)), FOX_HASH);
    assert_eq!(child_hash(Some(key)), child_hash(Some(key)));
    // A key short enough to guess is not used: random, so two processes differ.
    let short = child_hash(Some("key"));
    assert!(short.starts_with("hmac:") && short.len() == FOX_HASH.len());
    assert_ne!(
        short,
        child_hash(Some("key")),
        "a random key, not the short one"
    );
    let random = child_hash(None);
    assert!(random.starts_with("hmac:") && random.len() == FOX_HASH.len());
    assert_ne!(random, FOX_HASH);
    assert_ne!(random, child_hash(None), "a random key per process");
}

#[derive(Redact)]
struct Payment {
    #[redact(mask = "0-4")]
    number: String,
    brand: &'static str,
}

// The omitted field is never read.
#[allow(dead_code)]
#[derive(Redact)]
struct Order {
    #[redact(mask = "3-4")]
    phone: Option<String>,
    #[redact(hash)]
    coupon: Option<String>,
    #[redact(nested)]
    card: Payment,
    #[redact(nested)]
    backup_card: Option<Payment>,
    #[redact(omit)]
    cvv: Option<String>,
    note: Option<&'static str>,
}

#[test]
fn option_fields_and_nested_structs_are_redacted_inside() {
    init();
    let order = Order {
        phone: Some("+447700900123".into()),
        coupon: Some("SPRING-SECRET".into()),
        card: Payment {
            number: "4111111111111111".into(),
            brand: "visa",
        },
        backup_card: Some(Payment {
            number: "5500005555555559".into(),
            brand: "mc",
        }),
        cvv: Some("987".into()),
        note: Some("leave at door"),
    };
    let coupon = hash(b"SPRING-SECRET");
    let shown = order.redacted().to_string();
    assert_eq!(
        shown,
        format!(
            r#"Order {{ phone: Some("+44******0123"), coupon: Some({coupon}), card: Payment {{ number: "************1111", brand: "visa" }}, backup_card: Some(Payment {{ number: "************5559", brand: "mc" }}), note: Some("leave at door"), .. }}"#
        )
    );
    for secret in [
        "7700900",
        "SPRING-SECRET",
        "411111111111",
        "550000555555",
        "987",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }

    let empty = Order {
        phone: None,
        coupon: None,
        card: Payment {
            number: "1".into(),
            brand: "x",
        },
        backup_card: None,
        cvv: None,
        note: None,
    };
    assert_eq!(
        empty.redacted().to_string(),
        r#"Order { phone: None, coupon: None, card: Payment { number: "*", brand: "x" }, backup_card: None, note: None, .. }"#
    );
}
