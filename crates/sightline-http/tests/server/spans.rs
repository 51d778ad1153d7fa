use axum::Router;
use axum::body::Body;
use axum::routing::{any, get};
use http::StatusCode;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};

use crate::support::{Spans, attr, attr_str, get as req, send};

#[tokio::test]
async fn server_span_follows_semantic_conventions() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "{}" }))
        .layer(spans.layer());

    let req = req("/users/7?token=secret-value&q=1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
        )
        .header("tracestate", "vendor=x,t@sys=y")
        .header("user-agent", "tests/1.0")
        .body(Body::empty())
        .unwrap();
    let (parts, _) = send(&app, req).await;
    assert_eq!(parts.status, StatusCode::OK);

    let span = spans.only();
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(span.parent_span_is_remote);
    assert_eq!(
        span.span_context.trace_flags().to_u8() & 0x02,
        0x02,
        "random flag kept"
    );
    assert_eq!(span.span_context.trace_state().header(), "vendor=x,t@sys=y");
    assert_eq!(span.status, Status::Unset);
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/users/7"),
        ("url.scheme", "http"),
        ("url.query", "token=REDACTED&q=1"),
        ("http.route", "/users/{id}"),
        ("network.protocol.version", "1.1"),
        ("server.address", "api.example.com"),
        ("user_agent.original", "tests/1.0"),
    ] {
        assert_eq!(attr_str(&span, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(attr(&span, "server.port"), Some(8443_i64.into()));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(200_i64.into())
    );
    assert_eq!(attr(&span, "error.type"), None);
    assert!(
        !format!("{span:?}").contains("secret-value"),
        "a sensitive query value leaked into the span"
    );
}

#[tokio::test]
async fn server_errors_set_status_error_and_client_errors_do_not() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/boom", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(spans.layer());

    send(&app, req("/boom").body(Body::empty()).unwrap()).await;
    send(&app, req("/missing").body(Body::empty()).unwrap()).await;
    let finished = spans.finished();
    assert_eq!(finished.len(), 2);
    let boom = &finished[0];
    assert!(matches!(boom.status, Status::Error { .. }));
    assert_eq!(attr_str(boom, "error.type").as_deref(), Some("503"));
    let missing = &finished[1];
    assert_eq!(missing.status, Status::Unset);
    assert_eq!(attr(missing, "error.type"), None);
    assert_eq!(
        attr(missing, "http.response.status_code"),
        Some(404_i64.into())
    );
}

#[tokio::test]
async fn unmatched_requests_and_unknown_methods() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/anything", any(|| async { "ok" }))
        .layer(spans.layer());

    send(&app, req("/no/such/path/123").body(Body::empty()).unwrap()).await;
    let req = req("/anything")
        .method(http::Method::from_bytes(b"PURGE").unwrap())
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;

    let finished = spans.finished();
    assert_eq!(finished.len(), 2);
    assert_eq!(
        finished[0].name, "GET",
        "unmatched: the method alone, never the path"
    );
    assert_eq!(attr(&finished[0], "http.route"), None);
    assert_eq!(finished[1].name, "_OTHER /anything");
    assert_eq!(
        attr_str(&finished[1], "http.request.method").as_deref(),
        Some("_OTHER")
    );
    assert_eq!(
        attr_str(&finished[1], "http.request.method_original").as_deref(),
        Some("PURGE")
    );
}

#[tokio::test]
async fn malformed_context_starts_a_new_trace() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(spans.layer());
    let bad = [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "garbage",
    ];
    for value in bad {
        let req = req("/x")
            .header("traceparent", value)
            .header("tracestate", "k=v")
            .body(Body::empty())
            .unwrap();
        let (parts, _) = send(&app, req).await;
        assert_eq!(parts.status, StatusCode::OK, "{value}");
    }
    // Two header lines, each valid alone, are malformed together.
    let req = req("/x")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;

    for span in spans.finished() {
        assert_ne!(
            span.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(!span.parent_span_is_remote);
        assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert!(
            span.span_context.trace_state().header().is_empty(),
            "tracestate dropped"
        );
    }
}

#[tokio::test]
async fn b3_is_a_fallback_when_w3c_is_absent() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/x", get(|| async { "ok" }))
        .layer(spans.layer());
    let req = req("/x")
        .header("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;
    let span = spans.only();
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "80f198ee56343ba864fe8b2a57d3eff7"
    );
    assert_eq!(span.parent_span_id.to_string(), "e457b5a2e4d86bd1");
    assert_ne!(span.span_context.span_id().to_string(), "e457b5a2e4d86bd1");
}

#[tokio::test]
async fn handler_spans_are_children_of_the_server_span() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let spans = Spans::new();
    let bridge = tracing_opentelemetry::layer()
        .with_tracer(spans.provider.tracer("bridge"))
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            !meta.target().starts_with("sightline_http")
        }));
    let subscriber = tracing_subscriber::registry().with(bridge);
    let _default = tracing::subscriber::set_default(subscriber);

    async fn handler() -> &'static str {
        let span = tracing::info_span!("load_user");
        let _entered = span.enter();
        let current = opentelemetry::Context::current();
        assert!(current.span().span_context().is_valid());
        "ok"
    }
    let app = Router::new()
        .route("/child", get(handler))
        .layer(spans.layer());
    send(&app, req("/child").body(Body::empty()).unwrap()).await;

    let finished = spans.finished();
    let server = finished
        .iter()
        .find(|s| s.name == "GET /child")
        .expect("server span");
    let child = finished
        .iter()
        .find(|s| s.name == "load_user")
        .expect("handler span bridged by tracing-opentelemetry");
    assert_eq!(
        child.span_context.trace_id(),
        server.span_context.trace_id()
    );
    assert_eq!(child.parent_span_id, server.span_context.span_id());
    assert_eq!(finished.len(), 2, "no duplicate span for the request");
}

#[tokio::test]
async fn traceresponse_names_the_server_span_when_switched_on() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/tr", get(|| async { "ok" }))
        .layer(spans.builder().traceresponse(true).build());
    let request = req("/tr")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    let (parts, _) = send(&app, request).await;
    let span = spans.only();
    let expected = format!(
        "00-{}-{}-01",
        span.span_context.trace_id(),
        span.span_context.span_id()
    );
    assert_eq!(parts.headers["traceresponse"], expected.as_str());
    assert_ne!(span.span_context.span_id().to_string(), "00f067aa0ba902b7");

    // Off by default.
    let plain = Router::new()
        .route("/tr", get(|| async { "ok" }))
        .layer(spans.layer());
    let (parts, _) = send(&plain, req("/tr").body(Body::empty()).unwrap()).await;
    assert!(parts.headers.get("traceresponse").is_none());
}

#[tokio::test]
async fn new_traces_carry_the_random_flag_continued_ones_keep_theirs() {
    let spans = Spans::new();
    async fn flags_seen_by_handler() -> String {
        let cx = opentelemetry::Context::current();
        format!("{:02x}", cx.span().span_context().trace_flags().to_u8())
    }
    let app = Router::new()
        .route("/flags", get(flags_seen_by_handler))
        .layer(spans.builder().traceresponse(true).build());

    let (parts, body) = send(&app, req("/flags").body(Body::empty()).unwrap()).await;
    assert_eq!(body, "03", "a new random trace is sampled and random");
    let traceresponse = parts.headers["traceresponse"].to_str().unwrap().to_owned();
    assert!(traceresponse.ends_with("-03"), "{traceresponse}");

    let continued = req("/flags")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    let (_, body) = send(&app, continued).await;
    assert_eq!(body, "01", "a continued trace keeps the caller's flags");

    let not_random = Router::new()
        .route("/flags", get(flags_seen_by_handler))
        .layer(spans.builder().random_trace_ids(false).build());
    let (_, body) = send(&not_random, req("/flags").body(Body::empty()).unwrap()).await;
    assert_eq!(body, "01");
}

#[tokio::test]
async fn public_endpoints_link_the_callers_context_instead_of_continuing_it() {
    let spans = Spans::new();
    let propagator = sightline_propagation::Propagator::builder()
        .public_endpoint(true)
        .build();
    let app = Router::new()
        .route("/public", get(|| async { "ok" }))
        .layer(spans.builder().propagator(propagator).build());
    let request = req("/public")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(Body::empty())
        .unwrap();
    send(&app, request).await;

    let span = spans.only();
    assert_ne!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "a new root trace"
    );
    assert_eq!(span.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    let links: Vec<_> = span.links.iter().collect();
    assert_eq!(links.len(), 1, "the caller's context becomes a link");
    assert_eq!(
        links[0].span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        links[0].span_context.span_id().to_string(),
        "00f067aa0ba902b7"
    );
}
