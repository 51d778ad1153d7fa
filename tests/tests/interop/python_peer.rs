//! The Python OpenTelemetry SDK (with `opentelemetry-propagator-b3`) as a foreign peer on
//! both sides of the test service, run by `tests/python/peer.py`:
//!
//! ```text
//! Python client span --(W3C | B3 single | B3 multi, + baggage)--> Sightline SERVER span
//!     --> Sightline CLIENT span --(W3C + baggage)--> Python server (reports what it extracted)
//! ```
//!
//! The trace id survives every hop, each hop's parent is the previous hop's span, the
//! sampled (and, from W3C, random) flags and the baggage arrive intact, and the spans
//! Sightline exports form one tree under the Python client's span.
//!
//! Baggage values here have no spaces on purpose: the Python SDK encodes a space as `+`
//! (`urllib.parse.quote_plus`), while the W3C Baggage spec percent-encodes (`%20`), so a
//! spec-following decoder such as Sightline's reads the SDK's `+` as a literal plus. That is
//! the SDK's quirk, not something to copy; equality is checked on values where both agree.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;
use sightline_tests::collector::{OtlpCollector, SpanRecord};
use sightline_tests::util::random_span_id;

use crate::support::test_service;

/// How long the whole peer run may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long exported spans may take to reach the collector after the service stopped.
const SPAN_TIMEOUT: Duration = Duration::from_secs(15);

/// The baggage `peer.py` sends (its `BAGGAGE`).
const BAGGAGE: [(&str, &str); 2] = [("tenant", "acme-42"), ("region", "eu-west-1")];

pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// `.venv/bin/python`, after checking it can import the SDK; panics with how to set it up.
pub(crate) fn venv_python() -> PathBuf {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let setup = "run ./scripts/test, or: python3 -m venv .venv && \
                 .venv/bin/pip install -r tests/python/requirements.txt";
    assert!(
        python.is_file(),
        "the interop suite needs a Python venv at {}; {setup}",
        python.display()
    );
    let check = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.sdk.trace, opentelemetry.propagators.b3",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        check.status.success(),
        "{} cannot import the OpenTelemetry SDK and B3 propagator; {setup}\n{}",
        python.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

/// Runs `peer.py` against `service_url` (blocking, bounded by [`PEER_TIMEOUT`]) and returns
/// its JSON lines; panics with its output if it fails.
fn run_peer(service_url: &str, format: &str) -> Vec<Value> {
    let python = venv_python();
    let script = workspace_root().join("tests/python/peer.py");
    let mut cmd = Command::new(&python);
    for key in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(key);
    }
    let mut child = cmd
        .arg(&script)
        .args(["--service", service_url, "--format", format])
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} {}: {e}",
                python.display(),
                script.display()
            )
        });
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = Instant::now() + PEER_TIMEOUT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let report = format!("--- peer stdout ---\n{stdout}\n--- peer stderr ---\n{stderr}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("peer.py --format {format} exited with {s}\n{report}"),
        None => {
            panic!("peer.py --format {format} did not finish within {PEER_TIMEOUT:?}\n{report}")
        }
    }
    stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("peer line {l:?}: {e}\n{report}"))
        })
        .collect()
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["event"] == name).collect();
    assert_eq!(found.len(), 1, "want one {name:?} event: {events:#?}");
    found[0]
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn kind_of(span: &SpanRecord) -> i32 {
    span.span.kind
}

async fn interop(format: &str) {
    let collector = OtlpCollector::start().await;
    let service_name = format!("interop-{}", &random_span_id()[..8]);
    let endpoint = collector.grpc_endpoint();
    let mut service = test_service(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", service_name.as_str()),
    ])
    .await;

    let url = service.url("/test");
    let fmt = format.to_owned();
    let events = tokio::task::spawn_blocking(move || run_peer(&url, &fmt))
        .await
        .expect("the peer thread does not panic");
    let report = format!("peer events: {events:#?}\n{}", service.output_report());

    let sent = event(&events, "sent");
    let received = event(&events, "received");
    assert_eq!(event(&events, "done")["status"], 200, "{report}");
    assert_eq!(received["path"], format!("/{format}"), "{report}");
    assert_eq!(
        received["body"]
            .as_str()
            .map(serde_json::from_str::<Value>)
            .and_then(Result::ok),
        Some(serde_json::json!([1, "two"])),
        "{report}"
    );

    // Hop 1 -> hop 3: the trace id survives, the flags arrive.
    let trace_id = str_of(sent, "trace_id");
    let client_span_python = str_of(sent, "span_id");
    assert_eq!(received["valid"], true, "{report}");
    assert_eq!(str_of(received, "trace_id"), trace_id, "{report}");
    assert_eq!(sent["sampled"], true, "{report}");
    assert_eq!(received["sampled"], true, "{report}");
    if format == "w3c" {
        // The SDK marks its random trace ids (Level 2 flag 0x02); B3 has no such flag.
        assert_eq!(sent["random"], true, "{report}");
        assert_eq!(received["random"], true, "{report}");
    }
    let parent_seen_by_python = str_of(received, "parent_span_id");
    assert_ne!(parent_seen_by_python, client_span_python, "{report}");

    // Baggage: sent in W3C form beside every format, read back by the SDK unchanged.
    let expected_baggage: serde_json::Map<String, Value> = BAGGAGE
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    assert_eq!(
        received["baggage"],
        Value::Object(expected_baggage),
        "{report}"
    );

    // The exported spans: SERVER under the Python client span, CLIENT under SERVER, and the
    // CLIENT span is what the Python server saw as its parent.
    let (_, by_itself) = service.terminate().await;
    assert!(by_itself, "the service did not stop on SIGTERM\n{report}");
    let spans = collector
        .wait_for_span_count(|s| s.trace_id() == trace_id, 2, SPAN_TIMEOUT)
        .await;
    let of_kind = |kind: SpanKind| -> Vec<&SpanRecord> {
        spans.iter().filter(|s| kind_of(s) == kind as i32).collect()
    };
    let (servers, clients) = (of_kind(SpanKind::Server), of_kind(SpanKind::Client));
    let summary = || format!("spans: {spans:#?}\n{}\n{report}", collector.summary());
    assert_eq!(servers.len(), 1, "{}", summary());
    assert_eq!(clients.len(), 1, "{}", summary());
    let (server, client) = (servers[0], clients[0]);
    assert_eq!(
        server.resource_str("service.name"),
        Some(service_name.as_str())
    );
    assert_eq!(server.parent_span_id(), client_span_python, "{}", summary());
    assert_eq!(client.parent_span_id(), server.span_id(), "{}", summary());
    assert_eq!(client.span_id(), parent_seen_by_python, "{}", summary());
    assert_ne!(parent_seen_by_python, server.span_id(), "{}", summary());
    // One tree: every exported span hangs under the Python client's span or another of them.
    let ids: Vec<String> = spans.iter().map(SpanRecord::span_id).collect();
    for span in &spans {
        let parent = span.parent_span_id();
        assert!(
            parent == client_span_python || ids.contains(&parent),
            "span {} has parent {parent} outside the tree\n{}",
            span.span.name,
            summary()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_w3c_context_and_baggage_cross_sightline() {
    interop("w3c").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_b3_single_context_and_baggage_cross_sightline() {
    interop("b3-single").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_b3_multi_context_and_baggage_cross_sightline() {
    interop("b3-multi").await;
}
