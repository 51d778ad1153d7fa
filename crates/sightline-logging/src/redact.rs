//! Logging structs that hold secrets: per-field redaction rules.
//!
//! `#[derive(Redact)]` makes a struct print itself like `#[derive(Debug)]` would, except for
//! the fields that carry a rule; [`Redact::redacted`] is what you log:
//!
//! | field attribute | printed as |
//! |---|---|
//! | (none) | its `Debug` |
//! | `#[redact(omit)]` | nothing; the struct ends in `..` |
//! | `#[redact(mask = "N-M")]` | [`mask`]: its `Display`, keeping the first `N` and last `M` characters, the rest `*`; all `*` when it has no more than `N + M` characters |
//! | `#[redact(hash)]` | [`hash_display`]: `hmac:` and 16 hex digits of a keyed hash of its `Display` |
//!
//! Masked and hashed fields are formatted through their `Display`, so their type must
//! implement it; one that does not is a compile error at that field. A field takes at most one
//! rule, and a malformed or unknown rule is a compile error at the attribute.
//!
//! ```
//! use sightline_logging::redact::{self, Redact};
//!
//! #[derive(Redact)]
//! struct Payment {
//!     customer: String,
//!     #[redact(mask = "0-4")]
//!     card: String,
//!     #[redact(mask = "3-4")]
//!     phone: String,
//!     #[redact(hash)]
//!     email: String,
//!     #[redact(omit)]
//!     cvc: String,
//! }
//!
//! redact::set_hash_key(b"0123456789abcdef0123456789abcdef").expect("no key was set yet");
//! let payment = Payment {
//!     customer: "alice".into(),
//!     card: "4111111111111111".into(),
//!     phone: "+447700900123".into(),
//!     email: "alice@example.com".into(),
//!     cvc: "737".into(),
//! };
//! assert_eq!(
//!     payment.redacted().to_string(),
//!     r#"Payment { customer: "alice", card: "************1111", phone: "+44******0123", email: hmac:841240d2a5b6654b, .. }"#,
//! );
//!
//! // `%`, `?` and a bare value all record the redacted form.
//! tracing::info!(payment = payment.redacted(), "charged");
//! tracing::info!(payment = %payment.redacted(), "charged");
//! ```
//!
//! # The hash key
//!
//! `#[redact(hash)]` prints an HMAC-SHA256, not a plain hash: a phone number or an email
//! address has so few possible values that anyone could hash them all and look the result up.
//! Equal values still print equal hashes under one key, so log lines can be joined on them.
//! The key is process-wide and chosen once, at the first of:
//!
//! 1. [`set_hash_key`], called before anything is hashed (the first key set wins);
//! 2. the environment variable `SIGHTLINE_REDACT_KEY` (its bytes, as given), read when the
//!    first value is hashed; one shorter than 16 bytes is ignored, with a line on stderr;
//! 3. 32 random bytes from the operating system. Hashes then correlate within one process
//!    only: the same email prints differently after a restart and in another replica.
//!
//! Give every replica of a service the same secret key (e.g. 32 random bytes) to join its log
//! lines across processes; anyone with the key can test guesses against the hashes.
//!
//! # Using it through the `sightline` facade
//!
//! The generated code names this module as `::sightline_logging::redact`. A crate that depends
//! only on `sightline` tells the derive where it is:
//!
//! ```
//! # mod sightline { pub use sightline_logging as logging; }
//! use sightline::logging::redact::Redact;
//!
//! #[derive(Redact)]
//! #[redact(crate = "sightline::logging")]
//! struct Login {
//!     #[redact(omit)]
//!     password: String,
//! }
//! # assert_eq!(Login { password: "hunter2".into() }.redacted().to_string(), "Login { .. }");
//! ```

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;
use tracing_core::field::DisplayValue;

/// Derives [`Redact`](trait@Redact) from per-field `#[redact(..)]` attributes; see the
/// [module docs](self).
#[cfg(feature = "derive")]
pub use sightline_macros::Redact;

/// A value that can print itself with its secrets left out, masked or hashed.
///
/// Usually derived (`#[derive(Redact)]`, see the [module docs](self)); implement it by hand
/// for enums or custom output, using [`mask`] and [`hash_display`] for the secret parts.
///
/// ```
/// use std::fmt;
/// use sightline_logging::redact::{Redact, mask};
///
/// enum Credential {
///     Password(String),
///     ApiKey(String),
/// }
///
/// impl Redact for Credential {
///     fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         match self {
///             Credential::Password(_) => f.write_str("Password(..)"),
///             Credential::ApiKey(key) => write!(f, "ApiKey({:?})", mask(key, 4, 0)),
///         }
///     }
/// }
///
/// let key = Credential::ApiKey("sk_live_51H8abc".into());
/// assert_eq!(key.redacted().to_string(), r#"ApiKey("sk_l***********")"#);
/// ```
pub trait Redact {
    /// Writes the redacted form of `self`.
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// The redacted form, to log: it implements `Display` and `Debug`, and is a
    /// [`tracing::Value`](tracing_core::field::Value), so `info!(user = %u.redacted())`,
    /// `info!(user = ?u.redacted())` and `info!(user = u.redacted())` all record it.
    ///
    /// `tracing`'s `Value` trait is sealed, so the value is wrapped in `tracing`'s own
    /// [`DisplayValue`] (what `%` makes); it formats nothing until a subscriber records it.
    /// (`Self: Sized` keeps the trait usable as `dyn Redact`; wrap one with
    /// [`Redacted::new`].)
    fn redacted(&self) -> DisplayValue<Redacted<'_, Self>>
    where
        Self: Sized,
    {
        tracing_core::field::display(Redacted::new(self))
    }
}

impl<T: Redact + ?Sized> Redact for &T {
    fn fmt_redacted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt_redacted(f)
    }
}

/// A borrowed [`Redact`] value whose `Display` and `Debug` print its redacted form.
///
/// [`Redact::redacted`] returns one, wrapped so that it is also a `tracing` value.
pub struct Redacted<'a, T: ?Sized>(&'a T);

impl<'a, T: Redact + ?Sized> Redacted<'a, T> {
    /// Wraps `value`.
    pub fn new(value: &'a T) -> Self {
        Self(value)
    }
}

impl<T: ?Sized> Clone for Redacted<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Redacted<'_, T> {}

impl<T: Redact + ?Sized> fmt::Display for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_redacted(f)
    }
}

impl<T: Redact + ?Sized> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_redacted(f)
    }
}

/// Masks all but the first `keep_start` and the last `keep_end` characters of `value`'s
/// `Display` with `*`.
///
/// Characters are Unicode scalar values, not bytes, so multi-byte text is never split. When
/// the value has no more than `keep_start + keep_end` characters, every character is masked:
/// a value is never shown whole. The length of the value is not hidden.
///
/// `Display` writes the masked text; `Debug` writes it quoted and escaped like a string, which
/// is how `#[derive(Redact)]` prints it. Characters go straight to the formatter, with no
/// intermediate `String`; `value` is formatted twice, first to count its characters.
///
/// ```
/// use sightline_logging::redact::mask;
///
/// assert_eq!(mask("+447700900123", 3, 4).to_string(), "+44******0123");
/// assert_eq!(mask("Zoë Ångström", 2, 2).to_string(), "Zo********öm");
/// assert_eq!(format!("{:?}", mask(&4111111111111111u64, 0, 4)), r#""************1111""#);
/// assert_eq!(mask("1234", 3, 4).to_string(), "****");
/// ```
pub fn mask<T: fmt::Display + ?Sized>(
    value: &T,
    keep_start: usize,
    keep_end: usize,
) -> Masked<'_, T> {
    Masked {
        value,
        keep_start,
        keep_end,
    }
}

/// A masked value; see [`mask`].
pub struct Masked<'a, T: ?Sized> {
    value: &'a T,
    keep_start: usize,
    keep_end: usize,
}

impl<T: fmt::Display + ?Sized> Masked<'_, T> {
    fn write(&self, f: &mut fmt::Formatter<'_>, quoted: bool) -> fmt::Result {
        let mut counter = CharCount(0);
        write!(counter, "{}", self.value)?;
        let len = counter.0;
        let (shown_before, shown_from) = if len <= self.keep_start.saturating_add(self.keep_end) {
            (0, len)
        } else {
            (self.keep_start, len - self.keep_end)
        };
        let mut out = MaskWriter {
            f,
            index: 0,
            shown_before,
            shown_from,
            len,
            quoted,
        };
        write!(out, "{}", self.value)
    }
}

impl<T: fmt::Display + ?Sized> fmt::Display for Masked<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl<T: fmt::Display + ?Sized> fmt::Debug for Masked<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        self.write(f, true)?;
        f.write_char('"')
    }
}

/// Counts the characters written to it.
struct CharCount(usize);

impl fmt::Write for CharCount {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.chars().count();
        Ok(())
    }
}

/// Passes characters `..shown_before` and `shown_from..len` through and writes `*` for the
/// others.
struct MaskWriter<'a, 'f> {
    f: &'a mut fmt::Formatter<'f>,
    index: usize,
    shown_before: usize,
    shown_from: usize,
    len: usize,
    quoted: bool,
}

impl fmt::Write for MaskWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            // `index < len` too: a `Display` that writes more the second time than the first
            // must not reveal its tail.
            let shown = self.index < self.shown_before
                || (self.index >= self.shown_from && self.index < self.len);
            self.index += 1;
            if !shown {
                self.f.write_char('*')?;
            } else if self.quoted {
                for e in c.escape_debug() {
                    self.f.write_char(e)?;
                }
            } else {
                self.f.write_char(c)?;
            }
        }
        Ok(())
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The keyed MAC, with the key already absorbed: each hash copies it instead of re-keying
/// (two SHA-256 blocks saved), and reads it without a lock once it is set.
static KEY: OnceLock<HmacSha256> = OnceLock::new();

/// The environment variable read for the hash key when [`set_hash_key`] was not called.
pub const HASH_KEY_ENV: &str = "SIGHTLINE_REDACT_KEY";

fn keyed(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    if getrandom::fill(&mut key).is_err() {
        // The OS generator failed; std's hasher keys are random per process as well, and the
        // key need only be unguessable from outside the process.
        use std::hash::{BuildHasher as _, Hasher as _};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(i);
            hasher.write_u128(nanos);
            hasher.write_u32(std::process::id());
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    key
}

/// The shortest key accepted: a short key can be guessed, and then every hash with it.
pub const MIN_HASH_KEY_LEN: usize = 16;

fn key() -> &'static HmacSha256 {
    KEY.get_or_init(|| match std::env::var_os(HASH_KEY_ENV) {
        Some(key) if key.len() >= MIN_HASH_KEY_LEN => keyed(key.as_encoded_bytes()),
        Some(key) if !key.is_empty() => {
            // Refusing to start would take logging down with it; a random key keeps the
            // values hidden, and this line says why hashes will not join across processes.
            #[allow(clippy::print_stderr, reason = "the logger is what is being set up")]
            {
                eprintln!(
                    "sightline: {HASH_KEY_ENV} is {} bytes, shorter than {MIN_HASH_KEY_LEN}: \
                     ignored, hashing under a random key",
                    key.len()
                );
            }
            keyed(&random_key())
        }
        _ => keyed(&random_key()),
    })
}

/// Sets the process-wide key of [`hash`] and `#[redact(hash)]`.
///
/// Call it once at start-up, before anything is hashed. The first key wins: it fails when a
/// key was already set, or was chosen (from `SIGHTLINE_REDACT_KEY` or at random) because a
/// value was hashed before. It fails too for a key shorter than [`MIN_HASH_KEY_LEN`] (16)
/// bytes; use 32 random bytes, kept secret and shared by the replicas whose log lines should
/// correlate. See the [module docs](self).
///
/// ```
/// # fn key_from_your_secret_store() -> Vec<u8> { vec![0x5a; 32] }
/// use sightline_logging::redact::set_hash_key;
///
/// let key: Vec<u8> = key_from_your_secret_store(); // 32 random bytes
/// set_hash_key(&key).expect("set once, at start-up");
/// assert!(set_hash_key(&key).is_err(), "the first key wins");
/// assert!(set_hash_key(b"short").is_err(), "too short to be secret");
/// ```
pub fn set_hash_key(key: &[u8]) -> Result<(), SetHashKeyError> {
    if key.len() < MIN_HASH_KEY_LEN {
        return Err(SetHashKeyError {
            too_short: Some(key.len()),
        });
    }
    KEY.set(keyed(key))
        .map_err(|_| SetHashKeyError { too_short: None })
}

/// [`set_hash_key`] was called after the key was set or chosen, or with a key shorter than
/// [`MIN_HASH_KEY_LEN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetHashKeyError {
    /// The length of a key refused as too short; `None`: the key was already set.
    too_short: Option<usize>,
}

impl fmt::Display for SetHashKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.too_short {
            Some(len) => write!(
                f,
                "a redaction hash key of {len} bytes is too short (at least {MIN_HASH_KEY_LEN})"
            ),
            None => f.write_str("the redaction hash key is already set"),
        }
    }
}

impl std::error::Error for SetHashKeyError {}

/// A keyed hash of `value`: HMAC-SHA256 under the process's key (see the
/// [module docs](self#the-hash-key)), printed as `hmac:` and its first 16 hex digits.
///
/// ```
/// use sightline_logging::redact::{hash, hash_display};
///
/// let shown = hash(b"+447700900123").to_string();
/// assert!(shown.starts_with("hmac:") && shown.len() == 21);
/// assert_eq!(hash(b"+447700900123"), hash_display("+447700900123"));
/// ```
pub fn hash(value: &[u8]) -> Hashed {
    hash_with(key().clone(), |mac| {
        mac.update(value);
        Ok(())
    })
}

/// [`hash`] of `value`'s `Display`, fed to the hash as it is formatted (no intermediate
/// `String`).
///
/// A string hashes as its UTF-8 bytes, so `hash_display("x") == hash(b"x")`.
pub fn hash_display<T: fmt::Display + ?Sized>(value: &T) -> Hashed {
    hash_with(key().clone(), |mac| write!(MacWriter(mac), "{value}"))
}

fn hash_with(mut mac: HmacSha256, feed: impl FnOnce(&mut HmacSha256) -> fmt::Result) -> Hashed {
    // A `Display` that fails is a bug in it (only the formatter may fail); what it wrote so
    // far is hashed, which still reveals nothing.
    let _ = feed(&mut mac);
    let digest = mac.finalize().into_bytes();
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    Hashed { prefix }
}

struct MacWriter<'a>(&'a mut HmacSha256);

impl fmt::Write for MacWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// A keyed hash; see [`hash`]. `Display` and `Debug` both print `hmac:` and 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hashed {
    prefix: [u8; 8],
}

impl fmt::Display for Hashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        f.write_str("hmac:")?;
        for byte in self.prefix {
            f.write_char(char::from(HEX[usize::from(byte >> 4)]))?;
            f.write_char(char::from(HEX[usize::from(byte & 0x0f)]))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_under(key: &[u8], value: &[u8]) -> String {
        hash_with(keyed(key), |mac| {
            mac.update(value);
            Ok(())
        })
        .to_string()
    }

    #[test]
    fn hash_matches_the_rfc_4231_style_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") =
        // f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8
        assert_eq!(
            hash_under(b"key", b"The quick brown fox jumps over the lazy dog"),
            "hmac:f7bc83f430538424"
        );
    }

    #[test]
    fn different_keys_give_different_hashes() {
        let phone = b"+447700900123";
        assert_eq!(hash_under(b"key one", phone), hash_under(b"key one", phone));
        assert_ne!(hash_under(b"key one", phone), hash_under(b"key two", phone));
        assert_ne!(hash_under(b"", phone), hash_under(b"key one", phone));
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key(), random_key());
    }

    #[test]
    fn mask_writer_hides_a_tail_that_grows_between_passes() {
        struct Growing(std::cell::Cell<usize>);
        impl fmt::Display for Growing {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let n = self.0.get();
                self.0.set(n + 4);
                f.write_str(&"abcdefghijkl"[..n])
            }
        }
        // Counted as "abcd", then written as "abcdefgh": what follows the counted end is masked.
        let value = Growing(std::cell::Cell::new(4));
        assert_eq!(mask(&value, 1, 1).to_string(), "a**d****");
    }

    #[cfg(feature = "derive")]
    #[derive(sightline_macros::Redact)]
    #[redact(crate = "crate")]
    struct Local {
        shown: u32,
        #[redact(mask = "1-1")]
        masked: &'static str,
    }

    #[cfg(feature = "derive")]
    #[test]
    fn crate_attribute_sets_the_runtime_path() {
        let local = Local {
            shown: 7,
            masked: "secret",
        };
        assert_eq!(
            local.redacted().to_string(),
            r#"Local { shown: 7, masked: "s****t" }"#
        );
    }
}
