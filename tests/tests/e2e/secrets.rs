//! Real-looking secrets sent through every way a request carries them (credential headers,
//! cookies, the query, the error path of a failing route, raw bytes that are not UTF-8) never
//! appear in any emitted byte: not in a stdout or stderr line, not in an exported span, not in
//! an exported log record. Where a sensitive header was captured, `REDACTED` stands in its
//! place. The quick start runs with `RUST_LOG=trace`, so every library's events are written
//! too, and with every header above captured (`SIGHTLINE_CAPTURE_HEADERS`).
//!
//! Hostile captured values (quotes and JSON, bytes that are not UTF-8, control characters that
//! the HTTP parser refuses) cannot forge a log field either.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use sightline_tests::collector::{OtlpCollector, SpanRecord, attr};
use sightline_tests::http::{HttpClient, raw_get, raw_request};
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::support::{json_lines, quickstart, traceparent};

const EXPORT_TIMEOUT: Duration = Duration::from_secs(15);
const CAPTURED: &str =
    "authorization,cookie,proxy-authorization,x-api-key,set-cookie,accept,x-note";

/// The secrets of one run: realistic shapes, with a random part so that nothing else in the
/// output can contain them by chance.
struct Secrets {
    bearer: String,
    cookie: String,
    proxy: String,
    api_key: String,
    password: String,
    token: String,
    query_api_key: String,
    raw_bearer: String,
    /// Struct fields logged through `#[derive(Redact)]` (the quick start's `/signup`).
    email: String,
    phone: String,
    signup_password: String,
    /// In headers a parser rejects (their error path): a malformed baggage and traceparent.
    bad_baggage: String,
    bad_traceparent: String,
    /// A sensitive query parameter whose name is percent-encoded (`pass%77ord`).
    encoded_query: String,
}

impl Secrets {
    fn new() -> Self {
        let r = || random_trace_id();
        Self {
            bearer: format!(
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{}.SflKxwRJSMeKKF2QT4fw",
                r()
            ),
            cookie: format!("s%3A{}.Yw9vZ2xl", r()),
            proxy: format!("cHJveHk6{}", r()),
            api_key: format!("sk_live_{}", r()),
            password: format!("hunter2{}", &r()[..12]),
            token: format!("ghp_{}", r()),
            query_api_key: format!("AKIA{}", &r()[..16].to_uppercase()),
            raw_bearer: format!("rawbearer{}", r()),
            email: format!("ada.{}@example.com", &r()[..10]),
            phone: format!(
                "+4477{}",
                &r().chars()
                    .filter(char::is_ascii_digit)
                    .chain("0123456789".chars())
                    .take(8)
                    .collect::<String>()
            ),
            signup_password: format!("correct-horse-{}", &r()[..10]),
            bad_baggage: format!("sessiontoken{}", r()),
            bad_traceparent: format!("00-sk{}-bad", &r()[..20]),
            encoded_query: format!("pwenc{}", &r()[..16]),
        }
    }

    fn all(&self) -> Vec<&str> {
        vec![
            &self.bearer,
            &self.cookie,
            &self.proxy,
            &self.api_key,
            &self.password,
            &self.token,
            &self.query_api_key,
            &self.raw_bearer,
            &self.email,
            // The phone's hidden middle: the mask keeps its first 3 and last 2 characters.
            &self.phone[3..self.phone.len() - 2],
            &self.signup_password,
            &self.bad_baggage,
            &self.bad_traceparent,
            &self.encoded_query,
        ]
    }

    /// The query carrying three of them, with one harmless parameter.
    fn query(&self) -> String {
        format!(
            "password={}&token={}&api_key={}&q=1",
            self.password, self.token, self.query_api_key
        )
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("authorization", format!("Bearer {}", self.bearer)),
            ("cookie", format!("theme=dark; connect.sid={}", self.cookie)),
            ("proxy-authorization", format!("Basic {}", self.proxy)),
            ("x-api-key", self.api_key.clone()),
            ("accept", "application/json".to_owned()),
        ]
    }
}

/// The string values of an array attribute (`http.request.header.*`).
fn string_array(span: &SpanRecord, key: &str) -> Option<Vec<String>> {
    match attr(&span.span.attributes, key)?.value.as_ref()? {
        Value::ArrayValue(array) => Some(
            array
                .values
                .iter()
                .map(|v| match &v.value {
                    Some(Value::StringValue(s)) => s.clone(),
                    other => format!("{other:?}"),
                })
                .collect(),
        ),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_spans_or_log_records() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("SIGHTLINE_CAPTURE_HEADERS", CAPTURED),
        ("RUST_LOG", "trace"),
    ])
    .await;
    let secrets = Secrets::new();
    let client = HttpClient::new();
    let headers = secrets.headers();

    // A success, a server error (the failing route's error path) and an unmatched route.
    let mut traces = Vec::new();
    for (path, expected) in [("/users/7", 200), ("/fail", 500), ("/no/such/route", 404)] {
        let trace_id = random_trace_id();
        let tp = traceparent(&trace_id, &random_span_id());
        let mut sent: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        sent.push(("traceparent", &tp));
        let url = app.url(&format!("{path}?{}", secrets.query()));
        let response = client
            .get_with(&url, &sent)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status, expected, "{path}: {}", response.text());
        traces.push((path, trace_id));
    }

    // Error paths: trace context headers the parsers reject (logged at DEBUG, counted), and a
    // sensitive query parameter with a percent-encoded name.
    let response = client
        .get_with(
            &app.url(&format!(
                "/users/10?pass%77ord={}&q=2",
                secrets.encoded_query
            )),
            &[
                ("baggage", secrets.bad_baggage.as_str()),
                ("traceparent", secrets.bad_traceparent.as_str()),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", response.text());

    // Struct fields: the quick start logs a sign-up through `#[derive(Redact)]`.
    let body = serde_json::json!({
        "name": "Ada",
        "email": secrets.email,
        "phone": secrets.phone,
        "password": secrets.signup_password,
    })
    .to_string();
    let response = client
        .post(
            &app.url("/signup"),
            &[("content-type", b"application/json".as_slice())],
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 201, "{}", response.text());

    // Raw bytes: a sensitive header and a captured one that are not UTF-8, the second also
    // trying to close the JSON object and forge fields.
    let raw_trace = random_trace_id();
    let forged = br#"x"}{"level":"ERROR","forged":true,"trace_id":"forged"#;
    let raw_lines: Vec<Vec<u8>> = vec![
        format!(
            "traceparent: {}",
            traceparent(&raw_trace, &random_span_id())
        )
        .into_bytes(),
        [
            b"authorization: Bearer ".as_slice(),
            secrets.raw_bearer.as_bytes(),
            b"\xff\xfe",
        ]
        .concat(),
        [b"x-note: ".as_slice(), forged, b"\xc3\x28\xff"].concat(),
    ];
    let raw: Vec<&[u8]> = raw_lines.iter().map(Vec::as_slice).collect();
    let response = raw_request(app.addr(), &raw_get(app.addr(), "/users/8", &raw))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", response.text());
    traces.push(("/users/8 (raw)", raw_trace.clone()));

    // Control characters in a captured header are refused by the HTTP parser (400) before
    // any middleware runs, or, if they were let through, must not break a line.
    for (name, bad) in [
        ("cr-lf", b"x-note: a\r\n{\"forged\":true}".as_slice()),
        ("escape", b"x-note: \x1b[31mred\x1b[0m".as_slice()),
        ("bare-cr", b"x-note: a\rFORGED".as_slice()),
    ] {
        let response = raw_request(app.addr(), &raw_get(app.addr(), "/users/9", &[bad])).await;
        assert!(
            response
                .as_ref()
                .is_ok_and(|r| r.status == 400 || r.status == 200),
            "{name}: {response:?}"
        );
    }

    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "SIGTERM exit: {status}\n{}",
        app.output_report()
    );
    for (path, trace_id) in &traces {
        let spans = collector
            .wait_for_spans(
                |s| s.trace_id() == *trace_id && s.span.kind == SpanKind::Server as i32,
                EXPORT_TIMEOUT,
            )
            .await;
        assert_eq!(spans.len(), 1, "{path}: {}", collector.summary());
    }
    collector
        .wait_for_log_records(|r| r.trace_id() == raw_trace, EXPORT_TIMEOUT)
        .await;

    // Every emitted byte: stdout, stderr, and each export request as it went over the wire.
    let mut emitted: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, line) in app.stdout_raw().into_iter().enumerate() {
        emitted.push((format!("stdout line {}", i + 1), line));
    }
    for (i, line) in app.stderr_lines().into_iter().enumerate() {
        emitted.push((format!("stderr line {}", i + 1), line.into_bytes()));
    }
    for (i, r) in collector.trace_requests().iter().enumerate() {
        emitted.push((format!("trace export {i}"), r.request.encode_to_vec()));
    }
    for (i, r) in collector.log_requests().iter().enumerate() {
        emitted.push((format!("log export {i}"), r.request.encode_to_vec()));
    }
    assert!(
        !collector.log_requests().is_empty() && !collector.trace_requests().is_empty(),
        "{}",
        collector.summary()
    );
    let mut leaks = Vec::new();
    for secret in secrets.all() {
        for (place, bytes) in &emitted {
            if find(bytes, secret.as_bytes()) {
                leaks.push(format!(
                    "{secret} in {place}: {}",
                    String::from_utf8_lossy(bytes)
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));

    // The headers were captured, so the absence above is redaction, not silence.
    let redacted = vec!["REDACTED".to_owned()];
    for (path, trace_id) in &traces {
        let span = collector
            .spans()
            .into_iter()
            .find(|s| s.trace_id() == *trace_id && s.span.kind == SpanKind::Server as i32)
            .expect("waited for above");
        let header = |name: &str| string_array(&span, &format!("http.request.header.{name}"));
        assert_eq!(header("authorization"), Some(redacted.clone()), "{path}");
        if *trace_id == raw_trace {
            let note = header("x-note").expect("x-note captured");
            assert_eq!(note.len(), 1);
            assert!(
                note[0].starts_with(std::str::from_utf8(forged).expect("ASCII"))
                    && note[0].contains('\u{fffd}'),
                "bytes that are not UTF-8 are replaced: {note:?}"
            );
            continue;
        }
        for name in ["cookie", "proxy-authorization", "x-api-key"] {
            assert_eq!(header(name), Some(redacted.clone()), "{path}: {name}");
        }
        assert_eq!(
            header("accept"),
            Some(vec!["application/json".to_owned()]),
            "{path}: a harmless header keeps its value"
        );
        assert_eq!(
            span.attr_str("url.query"),
            Some("password=REDACTED&token=REDACTED&api_key=REDACTED&q=1"),
            "{path}"
        );
    }

    // Whatever the values, stdout is one JSON object per line, with no forged key.
    let lines = json_lines(&app);
    assert!(
        lines.len() > 10,
        "RUST_LOG=trace wrote little: {}",
        lines.len()
    );
    for (i, raw) in app.stdout_raw().iter().enumerate() {
        assert!(
            !raw.iter().any(|b| *b < 0x20 || *b == 0x7f),
            "stdout line {} holds a raw control byte: {}",
            i + 1,
            String::from_utf8_lossy(raw)
        );
    }
    for line in &lines {
        assert!(line.json.get("forged").is_none(), "{}", line.raw);
        assert_ne!(line.trace_id(), Some("forged"), "{}", line.raw);
    }
    // The sign-up line is there, with the redacted forms instead of the values.
    let signup = lines
        .iter()
        .find(|l| l.message() == Some("signed up"))
        .expect("the sign-up was logged");
    let logged = signup.json["fields"]["signup"].as_str().unwrap_or_default();
    let masked = format!(
        "{}{}{}",
        &secrets.phone[..3],
        "*".repeat(secrets.phone.len() - 5),
        &secrets.phone[secrets.phone.len() - 2..]
    );
    assert!(
        logged.contains("name: \"Ada\"")
            && logged.contains(&masked)
            && logged.contains("email: hmac:")
            && !logged.contains("password"),
        "{}",
        signup.raw
    );

    let raw_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.trace_id() == Some(raw_trace.as_str()))
        .collect();
    assert!(
        raw_lines
            .iter()
            .any(|l| l.message() == Some("request completed")),
        "the raw request was logged with its own trace id"
    );
}
