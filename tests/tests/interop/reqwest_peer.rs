//! `reqwest` through Sightline's middleware, seen by a foreign peer: the quick start's
//! `GET /proxy/users/{id}` calls the Python OpenTelemetry SDK's server (`peer.py --serve`),
//! which reports the context it extracted with the SDK's own propagators.
//!
//! ```text
//! test client --(traceparent, baggage)--> quick start SERVER span
//!     --> reqwest CLIENT span --(W3C + baggage)--> Python server (reports what it extracted)
//! ```

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;
use sightline_tests::collector::{OtlpCollector, Transport};
use sightline_tests::http::HttpClient;
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::python_peer::{venv_python, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_extracts_the_reqwest_client_span_and_baggage() {
    let python = venv_python();
    let script = workspace_root().join("tests/python/peer.py");
    let mut peer = Command::new(&python)
        .arg(&script)
        .args(["--serve", "1"])
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let mut stdout = BufReader::new(peer.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the peer's first line");
    let listening: Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("peer line {first:?}: {e}"));
    let port = listening["port"].as_u64().expect("a port");

    let collector = OtlpCollector::start().await;
    let endpoint = collector.endpoint(Transport::Grpc);
    let upstream = format!("http://127.0.0.1:{port}");
    let mut app = ExampleProcess::start(
        "example-quickstart",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("UPSTREAM", upstream.as_str()),
        ],
    )
    .await;
    let (trace_id, parent) = (random_trace_id(), random_span_id());
    let response = HttpClient::new()
        .get_with(
            &app.url("/proxy/users/5"),
            &[
                ("traceparent", &format!("00-{trace_id}-{parent}-01")),
                ("baggage", "tenant=acme-42"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", app.output_report());
    assert_eq!(response.text(), "python-upstream");

    // The peer exits after its one request; everything it printed, bounded in time.
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        let _ = peer.wait();
        let mut err = String::new();
        if let Some(mut stderr) = peer.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        (rest, err)
    });
    let (rest, err) = tokio::time::timeout(Duration::from_secs(20), rest)
        .await
        .expect("the peer finishes")
        .expect("joined");
    let events: Vec<Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("peer line {l:?}: {e}\n{err}")))
        .collect();
    let received = events
        .iter()
        .find(|e| e["event"] == "received")
        .unwrap_or_else(|| panic!("the peer saw no request: {events:#?}\n{err}"));
    assert_eq!(received["path"], "/users/5");
    assert_eq!(received["valid"], true);
    assert_eq!(received["trace_id"], trace_id.as_str());
    assert_eq!(received["sampled"], true);
    assert_eq!(received["baggage"]["tenant"], "acme-42");

    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "{status}\n{}",
        app.output_report()
    );
    let spans = collector
        .wait_for_span_count(|s| s.trace_id() == trace_id, 2, Duration::from_secs(15))
        .await;
    let server = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span: {}", collector.summary()));
    let client = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Client as i32)
        .unwrap_or_else(|| panic!("no client span: {spans:#?}"));
    assert_eq!(server.parent_span_id(), parent);
    assert_eq!(client.parent_span_id(), server.span_id());
    assert_eq!(
        received["parent_span_id"],
        client.span_id().as_str(),
        "the Python SDK extracts the CLIENT span as its parent"
    );
    assert_eq!(client.attr_str("server.address"), Some("127.0.0.1"));
}
