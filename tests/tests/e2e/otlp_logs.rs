//! The OTLP log bridge: the quick start's `tracing` events reach an OTLP collector as log
//! records, over gRPC and over HTTP/protobuf, and each record of a request carries the trace
//! id, span id and flags of the JSON line printed for the same event on stdout.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use sightline_tests::collector::{
    LogRecordEntry, OtlpCollector, Transport, attr, attr_i64, attr_str,
};
use sightline_tests::logs::LogLine;
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::support::{ACCESS_TARGET, USERS_ROUTE, get_traced, json_lines, quickstart, traceparent};

const RECORD_TIMEOUT: Duration = Duration::from_secs(15);
/// The quick start's own target (its crate name).
const APP_TARGET: &str = "example_quickstart";

/// OpenTelemetry severity numbers of the `tracing` levels (logs data model).
fn severity_number(level: &str) -> i32 {
    match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" => 13,
        "ERROR" => 17,
        other => panic!("unknown level {other}"),
    }
}

/// A record attribute as text, whatever its type.
fn attr_text(record: &LogRecordEntry, key: &str) -> Option<String> {
    match attr(&record.record.attributes, key)?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn describe(records: &[LogRecordEntry]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {:?} trace={} span={} flags={} scope={:?}",
                r.record.severity_text,
                r.body_str(),
                r.trace_id(),
                r.span_id(),
                r.record.flags,
                r.scope.as_ref().map(|s| &s.name)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks that `record` is the OTLP form of the JSON line `line`.
fn assert_same_event(line: &LogLine, record: &LogRecordEntry) {
    let ctx = || format!("JSON line: {}\nrecord: {:#?}", line.raw, record.record);
    assert_eq!(
        record.trace_id(),
        line.trace_id().unwrap_or(""),
        "{}",
        ctx()
    );
    assert_eq!(record.span_id(), line.span_id().unwrap_or(""), "{}", ctx());
    let flags = line
        .top_str("trace_flags")
        .and_then(|f| u32::from_str_radix(f, 16).ok())
        .unwrap_or(0);
    assert_eq!(record.record.flags & 0xff, flags, "{}", ctx());
    assert_eq!(
        attr_text(record, "request_id").as_deref(),
        line.top_str("request_id"),
        "the request ID of the line is an attribute of the record: {}",
        ctx()
    );
    let level = line.top_str("level").expect("a level");
    assert_eq!(record.record.severity_text, level, "{}", ctx());
    assert_eq!(
        record.record.severity_number,
        severity_number(level),
        "{}",
        ctx()
    );
    assert_eq!(
        record.scope.as_ref().map(|s| s.name.as_str()),
        line.target(),
        "the target is the instrumentation scope: {}",
        ctx()
    );
    // The appender sets the observed time only (the event has no timestamp of its own).
    assert!(record.record.observed_time_unix_nano > 0, "{}", ctx());
}

async fn logs_roundtrip(transport: Transport) {
    let collector = OtlpCollector::start().await;
    let service = format!("e2e-otlp-logs-{}", &random_span_id()[..8]);
    let endpoint = collector.endpoint(transport);
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_SERVICE_NAME", service.as_str()),
        // The logs' own variable wins over the general one, as for the SDK's exporter.
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=general"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-tenant=logs%2Dteam"),
    ];
    if transport == Transport::HttpProtobuf {
        env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"));
    }
    let mut app = quickstart(&env).await;

    let (ok, trace_id, parent_id) = get_traced(&app, "/users/7").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // A handler's own span: its line and record name that child span.
    let (order, order_trace, _) = get_traced(&app, "/orders/5").await;
    assert_eq!(order.status, 200, "{}", order.text());
    let (failed, fail_trace, _) = get_traced(&app, "/fail").await;
    assert_eq!(failed.status, 500);

    // SIGTERM flushes the log batch processor as well as the span one.
    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "SIGTERM exit: {status}\n{}",
        app.output_report()
    );
    let ours = |r: &LogRecordEntry| {
        r.trace_id() == trace_id || r.trace_id() == fail_trace || r.trace_id() == order_trace
    };
    collector.wait_for_log_records(ours, RECORD_TIMEOUT).await;
    // Every record of the three requests (2 + 3 + 2).
    let _ = sightline_tests::util::poll_until(RECORD_TIMEOUT, Duration::from_millis(50), || {
        let n = collector.log_records().iter().filter(|r| ours(r)).count();
        std::future::ready((n >= 7).then_some(()))
    })
    .await;
    let records = collector.log_records();
    assert!(
        collector.rejected().is_empty(),
        "collector refused exports: {:?}",
        collector.rejected()
    );
    assert!(
        records.iter().all(|r| r.transport == transport),
        "records over {transport:?} only"
    );
    let lines = json_lines(&app);
    let report = || {
        format!(
            "records:\n{}\n{}\n{}",
            describe(&records),
            collector.summary(),
            app.output_report()
        )
    };

    for (trace, expected) in [
        (
            &trace_id,
            vec![("looking up user", "INFO"), ("request completed", "INFO")],
        ),
        (
            &order_trace,
            vec![
                ("looking up order", "INFO"),
                ("order loaded", "INFO"),
                ("request completed", "INFO"),
            ],
        ),
        (
            &fail_trace,
            vec![
                ("about to fail on purpose", "WARN"),
                ("request completed", "ERROR"),
            ],
        ),
    ] {
        let json: Vec<&LogLine> = lines
            .iter()
            .filter(|l| l.trace_id() == Some(trace.as_str()))
            .collect();
        let otlp: Vec<&LogRecordEntry> =
            records.iter().filter(|r| r.trace_id() == *trace).collect();
        assert_eq!(
            json.len(),
            expected.len(),
            "JSON lines of trace {trace}\n{}",
            report()
        );
        assert_eq!(
            otlp.len(),
            json.len(),
            "one record per JSON line of trace {trace}\n{}",
            report()
        );
        for (message, level) in expected {
            let line = json
                .iter()
                .find(|l| l.message() == Some(message))
                .unwrap_or_else(|| panic!("no JSON line {message:?}\n{}", report()));
            assert_eq!(line.top_str("level"), Some(level), "{}", line.raw);
            let record = otlp
                .iter()
                .find(|r| r.body_str() == Some(message))
                .unwrap_or_else(|| panic!("no record with body {message:?}\n{}", report()));
            assert_same_event(line, record);
            assert_eq!(
                attr_str(&record.resource, "service.name"),
                Some(service.as_str()),
                "{:?}",
                record.resource
            );
        }
    }

    // The event fields are attributes, typed as recorded.
    let handler = records
        .iter()
        .find(|r| r.trace_id() == trace_id && r.body_str() == Some("looking up user"))
        .expect("checked above");
    assert_eq!(
        handler.attr_str("user.id"),
        Some("7"),
        "{:?}",
        handler.record
    );
    let access = records
        .iter()
        .find(|r| r.trace_id() == trace_id && r.body_str() == Some("request completed"))
        .expect("checked above");
    assert_eq!(
        access.scope.as_ref().map(|s| s.name.as_str()),
        Some(ACCESS_TARGET)
    );
    assert_eq!(access.attr_str("http.route"), Some(USERS_ROUTE));
    assert_eq!(access.attr_str("http.request.method"), Some("GET"));
    assert_eq!(
        attr_i64(&access.record.attributes, "http.response.status_code"),
        Some(200),
        "{:?}",
        access.record.attributes
    );
    assert!(
        attr_text(access, "duration_ms").is_some(),
        "{:?}",
        access.record.attributes
    );
    let failed_access = records
        .iter()
        .find(|r| r.trace_id() == fail_trace && r.body_str() == Some("request completed"))
        .expect("checked above");
    assert_eq!(
        attr_i64(
            &failed_access.record.attributes,
            "http.response.status_code"
        ),
        Some(500)
    );
    let handler_line = lines
        .iter()
        .find(|l| l.message() == Some("looking up user"))
        .expect("checked above");
    assert_eq!(handler_line.span_id(), Some(handler.span_id().as_str()));
    assert_ne!(
        handler.span_id(),
        parent_id,
        "the server span's id, not the caller's"
    );

    // An event outside any request has no trace context, in either form.
    let listening = records
        .iter()
        .find(|r| r.body_str() == Some("listening"))
        .unwrap_or_else(|| panic!("no `listening` record\n{}", report()));
    assert!(listening.trace_id().is_empty() && listening.span_id().is_empty());
    assert_eq!(
        listening.scope.as_ref().map(|s| s.name.as_str()),
        Some(APP_TARGET)
    );
    assert!(attr_text(listening, "addr").is_some());

    for received in collector.log_requests() {
        assert_eq!(
            received
                .headers
                .get("x-tenant")
                .and_then(|v| v.to_str().ok()),
            Some("logs-team"),
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS, percent-decoded: {:?}",
            received.headers
        );
    }
    for received in collector.trace_requests() {
        assert_eq!(
            received
                .headers
                .get("x-tenant")
                .and_then(|v| v.to_str().ok()),
            Some("general"),
            "spans take OTEL_EXPORTER_OTLP_HEADERS: {:?}",
            received.headers
        );
    }

    // The exporter's own libraries never log into the export.
    let scopes: Vec<&str> = records
        .iter()
        .filter_map(|r| r.scope.as_ref().map(|s| s.name.as_str()))
        .collect();
    assert!(
        scopes.iter().all(
            |s| !["hyper", "h2", "tonic", "tower", "reqwest", "opentelemetry"]
                .iter()
                .any(|t| s.starts_with(t))
        ),
        "scopes: {scopes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_carry_the_json_lines_ids_over_grpc() {
    logs_roundtrip(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_carry_the_json_lines_ids_over_http_protobuf() {
    logs_roundtrip(Transport::HttpProtobuf).await;
}

/// `OTEL_LOGS_EXPORTER=none` turns the log bridge off; spans are still exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_logs_exporter_none_exports_no_logs() {
    spans_without_logs(Some("none")).await;
}

/// OTLP logs are opt-in: with an endpoint alone, spans are exported and log lines stay on
/// stdout (exporting every line again costs about 12 µs per request under load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_not_exported_by_default() {
    spans_without_logs(None).await;
}

async fn spans_without_logs(logs_exporter: Option<&str>) {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    if let Some(exporter) = logs_exporter {
        env.push(("OTEL_LOGS_EXPORTER", exporter));
    }
    let mut app = quickstart(&env).await;
    let trace_id = random_trace_id();
    let r = sightline_tests::http::HttpClient::new()
        .get_with(
            &app.url("/users/1"),
            &[("traceparent", &traceparent(&trace_id, &random_span_id()))],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200);
    let (status, by_itself) = app.terminate().await;
    assert!(by_itself && status.success(), "{}", app.output_report());
    let spans = collector
        .wait_for_spans(|s| s.trace_id() == trace_id, RECORD_TIMEOUT)
        .await;
    assert!(!spans.is_empty(), "spans still exported");
    assert!(
        collector.log_requests().is_empty(),
        "no log export: {}",
        collector.summary()
    );
}

/// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT` cuts a record's long values (the access
/// record's user agent) to that many characters, as `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` does
/// for spans; the span's own limit stays Sightline's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_record_values_are_cut_to_their_limit() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_LOGS_EXPORTER", "otlp"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
    ])
    .await;
    let agent = format!("limits-e2e/{}", "x".repeat(200));
    let (trace_id, parent_id) = (random_trace_id(), random_span_id());
    let response = sightline_tests::http::HttpClient::new()
        .get_with(
            &app.url("/users/7"),
            &[
                ("user-agent", &agent),
                ("traceparent", &traceparent(&trace_id, &parent_id)),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200);
    let records = collector
        .wait_for_log_records(
            |r| r.trace_id() == trace_id && r.attr_str("user_agent.original").is_some(),
            RECORD_TIMEOUT,
        )
        .await;
    assert_eq!(records.len(), 1, "{}", collector.summary());
    assert_eq!(
        records[0].attr_str("user_agent.original"),
        Some(&agent[..16]),
        "cut to 16 characters, unmarked"
    );
    let (status, by_itself) = app.terminate().await;
    assert!(by_itself && status.success(), "{}", app.output_report());
}
