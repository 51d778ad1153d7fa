//! Opt-in header capture (sensitive values redacted) and configurable access-log levels.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderName, HeaderValue, StatusCode};
use opentelemetry::{Array, Value};
use sightline_http::access::AccessLogLevels;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::{Spans, attr, get as req, send};

const SECRETS: &[&str] = &["s3cr3t-bearer", "s3cr3t-cookie", "s3cr3t-key", "s3cr3t-set"];

fn strings(value: Option<Value>) -> Vec<String> {
    match value {
        Some(Value::Array(Array::String(values))) => {
            values.iter().map(|v| v.as_str().to_owned()).collect()
        }
        other => panic!("not a string array: {other:?}"),
    }
}

#[tokio::test]
async fn captured_headers_are_string_arrays_with_sensitive_values_redacted() {
    let spans = Spans::new();
    let session = HeaderName::from_static("x-session");
    let note = HeaderName::from_static("x-note");
    let layer = spans
        .builder()
        .capture_request_headers([
            AUTHORIZATION,
            COOKIE,
            HeaderName::from_static("x-api-key"),
            ACCEPT,
            session.clone(),
            note.clone(),
            HeaderName::from_static("x-absent"),
        ])
        .capture_response_headers([SET_COOKIE, CONTENT_TYPE])
        .sensitive_headers([session])
        .build();
    let app = Router::new()
        .route(
            "/login",
            get(|| async {
                (
                    [
                        (SET_COOKIE, "sid=s3cr3t-set; HttpOnly"),
                        (CONTENT_TYPE, "text/plain"),
                    ],
                    "ok",
                )
            }),
        )
        .layer(layer);
    let request = req("/login")
        .header(AUTHORIZATION, "Bearer s3cr3t-bearer")
        .header(COOKIE, "a=1")
        .header(COOKIE, "sid=s3cr3t-cookie")
        .header("x-api-key", "s3cr3t-key")
        .header(ACCEPT, "text/plain")
        .header("x-session", "s3cr3t-key")
        .header(note, HeaderValue::from_bytes(b"caf\xe9").expect("obs-text"))
        .body(Body::empty())
        .expect("request");
    let (parts, _) = send(&app, request).await;
    assert_eq!(parts.status, StatusCode::OK);

    let span = spans.only();
    let redacted = vec!["REDACTED".to_owned()];
    for (key, expected) in [
        ("http.request.header.authorization", redacted.clone()),
        ("http.request.header.cookie", vec!["REDACTED".into(); 2]),
        ("http.request.header.x-api-key", redacted.clone()),
        ("http.request.header.x-session", redacted.clone()),
        ("http.request.header.accept", vec!["text/plain".into()]),
        ("http.request.header.x-note", vec!["caf\u{fffd}".into()]),
        ("http.response.header.set-cookie", redacted.clone()),
        (
            "http.response.header.content-type",
            vec!["text/plain".into()],
        ),
    ] {
        assert_eq!(strings(attr(&span, key)), expected, "{key}");
    }
    assert_eq!(attr(&span, "http.request.header.x-absent"), None);
    let everything = format!("{span:?}");
    for secret in SECRETS {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
}

#[tokio::test]
async fn no_header_is_captured_by_default() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/plain", get(|| async { "ok" }))
        .layer(spans.layer());
    let request = req("/plain")
        .header(AUTHORIZATION, "Bearer s3cr3t-bearer")
        .body(Body::empty())
        .expect("request");
    send(&app, request).await;
    let span = spans.only();
    assert!(
        span.attributes
            .iter()
            .all(|kv| !kv.key.as_str().starts_with("http.request.header.")),
        "{:?}",
        span.attributes
    );
}

/// Collects `(level, status)` of every access-log event.
#[derive(Clone, Default)]
struct AccessEvents(Arc<Mutex<Vec<(Level, u64)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AccessEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Status(u64);
        impl tracing::field::Visit for Status {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "http.response.status_code" {
                    self.0 = value;
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if event.metadata().target() != "sightline_http::access" {
            return;
        }
        let mut status = Status(0);
        event.record(&mut status);
        self.0
            .lock()
            .expect("lock")
            .push((*event.metadata().level(), status.0));
    }
}

async fn access_levels(levels: Option<AccessLogLevels>) -> Vec<(Level, u64)> {
    let events = AccessEvents::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let spans = Spans::new();
    let mut builder = spans.builder();
    if let Some(levels) = levels {
        builder = builder.access_log_levels(levels);
    }
    let app = Router::new()
        .route("/levels/ok", get(|| async { "ok" }))
        .route("/levels/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/levels/boom", get(|| async { StatusCode::BAD_GATEWAY }))
        .layer(builder.build());
    for path in ["/levels/ok", "/levels/missing", "/levels/boom"] {
        send(&app, req(path).body(Body::empty()).expect("request")).await;
    }
    events.0.lock().expect("lock").clone()
}

#[tokio::test]
async fn access_log_levels_default_to_info_warn_error() {
    assert_eq!(
        access_levels(None).await,
        vec![(Level::INFO, 200), (Level::WARN, 404), (Level::ERROR, 502)]
    );
}

#[tokio::test]
async fn access_log_levels_are_configurable_per_outcome() {
    let quiet = AccessLogLevels {
        success: Some(Level::DEBUG),
        client_error: None,
        server_error: Some(Level::WARN),
    };
    assert_eq!(
        access_levels(Some(quiet)).await,
        vec![(Level::DEBUG, 200), (Level::WARN, 502)]
    );
    assert_eq!(access_levels(Some(AccessLogLevels::OFF)).await, vec![]);
    let trace = AccessLogLevels {
        success: Some(Level::TRACE),
        ..AccessLogLevels::default()
    };
    assert_eq!(access_levels(Some(trace)).await[0], (Level::TRACE, 200));
}
