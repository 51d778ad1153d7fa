//! The JSON lines on stdout name the span a trace viewer shows: every line of a request has
//! the exported span's `trace_id` and `span_id` and the answered `x-request-id`.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use sightline_tests::collector::OtlpCollector;
use sightline_tests::http::HttpClient;
use sightline_tests::util::{is_valid_hex_id, random_span_id};

use crate::support::{ACCESS_TARGET, USERS_ROUTE, access_line, get_traced, json_lines, quickstart};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_exported_span_and_request_ids() {
    let collector = OtlpCollector::start().await;
    let service = format!("e2e-logs-{}", &random_span_id()[..8]);
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_SERVICE_NAME", &service),
    ])
    .await;

    let (response, trace_id, _) = get_traced(&app, "/users/7").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let request_id = response
        .header("x-request-id")
        .expect("the response carries x-request-id");
    let body = response.json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body["id"], "7");
    assert_eq!(
        body["request_id"],
        request_id.as_str(),
        "the handler sees the answered request id"
    );
    assert!(
        access_line(&app, &request_id).await.is_some(),
        "no access-log line for request {request_id}\n{}",
        app.output_report()
    );

    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "SIGTERM exit: {status}\n{}",
        app.output_report()
    );
    let spans = collector
        .wait_for_spans(
            |s| s.trace_id() == trace_id && s.span.kind == SpanKind::Server as i32,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        spans.len(),
        1,
        "one exported server span: {spans:#?}\n{}\n{}",
        collector.summary(),
        app.output_report()
    );
    let span_id = spans[0].span_id();

    let lines = json_lines(&app);
    let in_request: Vec<_> = lines.iter().filter(|l| l.trace_id().is_some()).collect();
    let handler = in_request
        .iter()
        .find(|l| l.message() == Some("looking up user"))
        .unwrap_or_else(|| panic!("no handler line with a trace_id\n{}", app.output_report()));
    assert_eq!(
        handler.field_text("user.id").as_deref(),
        Some("7"),
        "{}",
        handler.raw
    );
    let access = in_request
        .iter()
        .find(|l| l.target() == Some(ACCESS_TARGET))
        .unwrap_or_else(|| {
            panic!(
                "no access-log line with a trace_id\n{}",
                app.output_report()
            )
        });
    assert_eq!(
        access.message(),
        Some("request completed"),
        "{}",
        access.raw
    );
    assert_eq!(
        access.field_text("http.response.status_code").as_deref(),
        Some("200"),
        "{}",
        access.raw
    );
    assert_eq!(
        access.field_text("http.route").as_deref(),
        Some(USERS_ROUTE),
        "{}",
        access.raw
    );
    let duration = access
        .field("duration_ms")
        .and_then(serde_json::Value::as_f64);
    assert!(
        duration.is_some_and(|d| (0.0..10_000.0).contains(&d)),
        "duration_ms is a number of milliseconds: {}",
        access.raw
    );

    // Only our one request happened, so these are exactly its lines.
    assert_eq!(
        in_request.len(),
        2,
        "lines with a trace_id: {:#?}",
        in_request.iter().map(|l| &l.raw).collect::<Vec<_>>()
    );
    for line in &in_request {
        assert_eq!(
            line.trace_id(),
            Some(trace_id.as_str()),
            "trace_id: {}",
            line.raw
        );
        assert_eq!(
            line.span_id(),
            Some(span_id.as_str()),
            "span_id is the exported span's: {}",
            line.raw
        );
        assert_eq!(
            line.request_id(),
            Some(request_id.as_str()),
            "request_id: {}",
            line.raw
        );
        assert_eq!(
            line.top_str("trace_flags"),
            Some("01"),
            "trace_flags: {}",
            line.raw
        );
        assert_eq!(
            line.top_str("service.name"),
            Some(service.as_str()),
            "service.name follows OTEL_SERVICE_NAME like the span's resource: {}",
            line.raw
        );
        assert!(
            line.top_str("timestamp").is_some(),
            "timestamp: {}",
            line.raw
        );
        assert!(line.top_str("level").is_some(), "level: {}", line.raw);
    }

    let outside: Vec<_> = lines.iter().filter(|l| l.trace_id().is_none()).collect();
    assert!(
        outside.iter().any(|l| l.message() == Some("listening")),
        "the start-up line is JSON too\n{}",
        app.output_report()
    );
    for line in outside {
        for key in ["trace_id", "span_id", "request_id"] {
            assert!(
                line.json.get(key).is_none(),
                "{key} outside a request: {}",
                line.raw
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_exporter_lines_still_carry_ids() {
    let app = quickstart(&[]).await;
    let client = HttpClient::new();

    let response = client
        .get(&app.url("/users/9"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200);
    let request_id = response.header("x-request-id").expect("x-request-id");
    let access = access_line(&app, &request_id)
        .await
        .unwrap_or_else(|| panic!("no access line for {request_id}\n{}", app.output_report()));
    let trace_id = access.trace_id().unwrap_or_default().to_owned();
    let span_id = access.span_id().unwrap_or_default().to_owned();
    assert!(
        is_valid_hex_id(&trace_id, 32),
        "a new trace: {}",
        access.raw
    );
    assert!(is_valid_hex_id(&span_id, 16), "a span id: {}", access.raw);
    let handler: Vec<_> = json_lines(&app)
        .into_iter()
        .filter(|l| l.message() == Some("looking up user"))
        .collect();
    assert_eq!(handler.len(), 1, "one handler line");
    assert_eq!(
        handler[0].trace_id(),
        Some(trace_id.as_str()),
        "{}",
        handler[0].raw
    );
    assert_eq!(
        handler[0].span_id(),
        Some(span_id.as_str()),
        "{}",
        handler[0].raw
    );
    assert_eq!(
        handler[0].request_id(),
        Some(request_id.as_str()),
        "{}",
        handler[0].raw
    );
}

/// One access line per request with every field the schema lists (docs/logging.md), and none
/// for the health probe and the Prometheus scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_carry_every_field_and_skip_probes_and_scrapes() {
    let app = quickstart(&[]).await;
    let client = HttpClient::new();

    for (path, id) in [("/healthz", "probe-1"), ("/metrics", "scrape-1")] {
        let r = client
            .get_with(&app.url(path), &[("x-request-id", id)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{path}");
    }
    let r = client
        .get_with(
            &app.url("/users/3"),
            &[
                ("x-request-id", "fields-1"),
                ("user-agent", "e2e-agent/1.0"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200);
    let body = serde_json::json!({
        "name": "Ada", "email": "a@example.com", "phone": "+15550100", "password": "pw",
    })
    .to_string();
    let posted = client
        .post(
            &app.url("/signup"),
            &[
                ("content-type", b"application/json".as_slice()),
                ("x-request-id", b"fields-2".as_slice()),
            ],
            body.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(posted.status, 201, "{}", posted.text());

    let line = access_line(&app, "fields-1")
        .await
        .unwrap_or_else(|| panic!("no access line\n{}", app.output_report()));
    let text = |key: &str| line.field_text(key);
    assert_eq!(line.message(), Some("request completed"), "{}", line.raw);
    assert_eq!(line.top_str("level"), Some("INFO"), "{}", line.raw);
    assert_eq!(text("http.request.method").as_deref(), Some("GET"));
    assert_eq!(text("http.route").as_deref(), Some(USERS_ROUTE));
    assert_eq!(text("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(
        line.field("http.response.body.size")
            .and_then(serde_json::Value::as_u64),
        Some(r.body.len() as u64),
        "the bytes the client received: {}",
        line.raw
    );
    assert_eq!(text("client.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        text("user_agent.original").as_deref(),
        Some("e2e-agent/1.0")
    );
    assert!(
        line.field("duration_ms")
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|ms| ms > 0.0 && ms < 10_000.0),
        "{}",
        line.raw
    );
    assert_eq!(line.field("error.type"), None, "{}", line.raw);

    let post = access_line(&app, "fields-2")
        .await
        .unwrap_or_else(|| panic!("no access line\n{}", app.output_report()));
    assert_eq!(
        post.field("http.request.body.size")
            .and_then(serde_json::Value::as_u64),
        Some(body.len() as u64),
        "{}",
        post.raw
    );
    assert_eq!(
        post.field("http.response.body.size")
            .and_then(serde_json::Value::as_u64),
        Some(posted.body.len() as u64),
        "{}",
        post.raw
    );

    // The probe and the scrape were answered (with their request IDs) but not logged.
    let lines = json_lines(&app);
    for id in ["probe-1", "scrape-1"] {
        assert!(
            !lines.iter().any(|l| l.request_id() == Some(id)),
            "{id} was logged:\n{}",
            app.output_report()
        );
    }
}

/// A handler's own `#[instrument]` span (the quick start's `GET /orders/{id}`) is exported as a
/// child of the server span, and the line logged inside it carries that child's `span_id`: the
/// current span, as the OpenTelemetry spec for trace context in non-OTLP logs asks. The
/// handler's other line and the access line keep the server span's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_inside_a_handlers_own_span_carries_that_spans_id() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let (response, trace_id, _) = get_traced(&app, "/orders/7").await;
    assert_eq!(response.status, 200, "{}", response.text());
    let request_id = response.header("x-request-id").expect("x-request-id");
    assert!(access_line(&app, &request_id).await.is_some());
    let (status, by_itself) = app.terminate().await;
    assert!(by_itself && status.success(), "{}", app.output_report());

    let server = collector
        .wait_for_spans(
            |s| s.trace_id() == trace_id && s.span.kind == SpanKind::Server as i32,
            Duration::from_secs(15),
        )
        .await;
    let child = collector
        .wait_for_spans(
            |s| s.trace_id() == trace_id && s.span.name == "load order",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        (server.len(), child.len()),
        (1, 1),
        "{}",
        collector.summary()
    );
    let (server_id, child_id) = (server[0].span_id(), child[0].span_id());
    assert_eq!(server[0].span.name, "GET /orders/{id}");
    assert_eq!(
        child[0].parent_span_id(),
        server_id,
        "the handler's span is a child of the server span"
    );

    let lines = json_lines(&app);
    let of_request: Vec<_> = lines
        .iter()
        .filter(|l| l.trace_id() == Some(trace_id.as_str()))
        .collect();
    assert_eq!(of_request.len(), 3, "{}", app.output_report());
    for line in of_request {
        let expected = if line.message() == Some("order loaded") {
            &child_id
        } else {
            &server_id
        };
        assert_eq!(line.span_id(), Some(expected.as_str()), "{}", line.raw);
        assert_eq!(line.request_id(), Some(request_id.as_str()), "{}", line.raw);
        assert_eq!(line.top_str("trace_flags"), Some("01"), "{}", line.raw);
    }
}
