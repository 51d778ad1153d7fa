//! grpcio (Python) as a foreign gRPC peer on both sides of Sightline, run by
//! `tests/python/grpc_peer.py` with grpcio's generic API (no generated code):
//!
//! ```text
//! grpcio client (OTel SDK span, W3C traceparent) --> example-grpc (Sightline server layer)
//! tonic client (Sightline client layer)           --> grpcio server (reports what it got)
//! ```
//!
//! The server side is checked in the spans example-grpc exports to the test's collector: the
//! trace id and parent come from grpcio's metadata, and an unknown method is `_OTHER` with its
//! original name. The client side is checked in what grpcio received: the `traceparent` of
//! the client span.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpSpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::Value;
use sightline_http::grpc::GrpcClientLayer;
use sightline_tests::collector::OtlpCollector;
use sightline_tests::grpc::connect;
use sightline_tests::grpc::greeter::HelloRequest;
use sightline_tests::grpc::greeter::greeter_client::GreeterClient;
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::poll_until_blocking;

/// How long a whole peer run may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long exported spans may take to reach the collector after the example stopped.
const SPAN_TIMEOUT: Duration = Duration::from_secs(15);
const EXAMPLE_GRPC: &str = "example-grpc";
const SAY_HELLO: &str = "sightline.example.v1.Greeter/SayHello";
const NOPE: &str = "sightline.example.v1.Greeter/Nope";

const NO_PROXY: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// `.venv/bin/python`, after checking it can import grpcio and the OTel SDK; panics with how
/// to set it up.
fn venv_python() -> PathBuf {
    let python = workspace_root().join(".venv/bin/python");
    let setup = "run ./scripts/test, or: python3 -m venv .venv && \
                 .venv/bin/pip install -r tests/python/requirements.txt";
    assert!(
        python.is_file(),
        "the gRPC interop suite needs a Python venv at {}; {setup}",
        python.display()
    );
    let check = Command::new(&python)
        .args(["-c", "import grpc, opentelemetry.sdk.trace"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        check.status.success(),
        "{} cannot import grpcio and the OpenTelemetry SDK; {setup}\n{}",
        python.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

/// `grpc_peer.py` started with `args`, its stdout read line by line into a shared list.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Peer {
    fn start(args: &[&str]) -> Self {
        let python = venv_python();
        let script = workspace_root().join("tests/python/grpc_peer.py");
        let mut cmd = Command::new(&python);
        for key in NO_PROXY {
            cmd.env_remove(key);
        }
        let mut child = cmd
            .arg(&script)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let sink = Arc::clone(&lines);
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let mut err = child.stderr.take().expect("stderr is piped");
        let err_sink = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            *err_sink.lock().unwrap_or_else(|p| p.into_inner()) = text;
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    fn events(&self) -> Vec<Value> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone();
        lines
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("peer line {l:?}: {e}\n{}", self.report()))
            })
            .collect()
    }

    /// Waits (up to [`PEER_TIMEOUT`]) for an event named `name`.
    fn wait_event(&self, name: &str) -> Value {
        poll_until_blocking(PEER_TIMEOUT, Duration::from_millis(20), || {
            self.events().into_iter().find(|e| e["event"] == name)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {name:?} event within {PEER_TIMEOUT:?}\n{}",
                self.report()
            )
        })
    }

    /// Closes stdin and waits (up to [`PEER_TIMEOUT`]) for the process to end successfully.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + PEER_TIMEOUT;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("grpc_peer.py exited with {s}\n{}", self.report()),
            None => panic!(
                "grpc_peer.py did not finish within {PEER_TIMEOUT:?}\n{}",
                self.report()
            ),
        }
        // The readers see the pipes close once the process is gone; bounded in case a
        // grandchild still holds them.
        let _ = poll_until_blocking(Duration::from_secs(5), Duration::from_millis(10), || {
            self.readers
                .iter()
                .all(JoinHandle::is_finished)
                .then_some(())
        });
    }

    fn report(&self) -> String {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n");
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        format!("--- peer stdout ---\n{lines}\n--- peer stderr ---\n{stderr}")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_client_context_reaches_the_server_span_and_unknown_methods_are_other() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app =
        ExampleProcess::start(EXAMPLE_GRPC, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let target = app.addr().to_string();
    let request_id = "grpcio-peer-request-7";

    let (events, report) = tokio::task::spawn_blocking(move || {
        let mut peer = Peer::start(&["client", "--target", &target, "--request-id", request_id]);
        peer.wait_event("done");
        peer.finish();
        (peer.events(), peer.report())
    })
    .await
    .expect("the peer thread does not panic");
    let report = format!("{report}\n{}", app.output_report());
    let find = |name: &str, path: &str| -> Value {
        events
            .iter()
            .find(|e| e["event"] == name && (path.is_empty() || e["path"] == path))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} {path} event: {events:#?}\n{report}"))
    };
    let sent = find("sent", "");
    let trace_id = str_of(&sent, "trace_id").to_owned();
    let peer_span = str_of(&sent, "span_id").to_owned();

    let hello = find("call", &format!("/{SAY_HELLO}"));
    assert_eq!(hello["code"], "OK", "{hello}\n{report}");
    assert_eq!(
        hello["initial_metadata"]["x-request-id"],
        serde_json::json!([request_id]),
        "the request ID comes back to grpcio: {hello}"
    );
    let nope = find("call", &format!("/{NOPE}"));
    assert_eq!(nope["code"], "UNIMPLEMENTED", "{nope}\n{report}");

    let (_, by_itself) = app.terminate().await;
    assert!(by_itself, "example-grpc did not stop on SIGTERM\n{report}");
    let spans = collector
        .wait_for_span_count(|s| s.trace_id() == trace_id, 2, SPAN_TIMEOUT)
        .await;
    let summary = || format!("spans: {spans:#?}\n{}\n{report}", collector.summary());
    assert_eq!(spans.len(), 2, "{}", summary());
    for span in &spans {
        assert_eq!(span.span.kind, OtlpSpanKind::Server as i32, "{}", summary());
        assert_eq!(span.parent_span_id(), peer_span, "{}", summary());
        assert_eq!(span.attr_str("rpc.system.name"), Some("grpc"));
    }
    let hello_span = spans
        .iter()
        .find(|s| s.span.name == SAY_HELLO)
        .unwrap_or_else(|| panic!("no {SAY_HELLO} span\n{}", summary()));
    assert_eq!(hello_span.attr_str("rpc.method"), Some(SAY_HELLO));
    assert_eq!(hello_span.attr_str("rpc.status_code"), Some("OK"));

    let other = spans
        .iter()
        .find(|s| s.attr_str("rpc.method") == Some("_OTHER"))
        .unwrap_or_else(|| panic!("no _OTHER span\n{}", summary()));
    assert_eq!(other.span.name, "grpc", "{}", summary());
    assert_eq!(other.attr_str("rpc.method_original"), Some(NOPE));
    assert_eq!(other.attr_str("rpc.status_code"), Some("UNIMPLEMENTED"));
    assert_eq!(other.attr_str("error.type"), Some("UNIMPLEMENTED"));
    assert_eq!(
        other.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32),
        "{}",
        summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_client_layer_context_reaches_a_grpcio_server() {
    let mut peer = tokio::task::spawn_blocking(|| {
        let peer = Peer::start(&["server", "--max-seconds", "60"]);
        peer.wait_event("listening");
        peer
    })
    .await
    .expect("the peer starts");
    let port = peer.wait_event("listening")["port"]
        .as_u64()
        .unwrap_or_else(|| panic!("no port\n{}", peer.report()));
    let uri = format!("http://127.0.0.1:{port}");

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = GrpcClientLayer::builder()
        .tracer(provider.tracer("grpc-interop"))
        .target(&uri)
        .build();
    let channel = connect(&uri).await;
    let mut client = GreeterClient::new(tower::ServiceBuilder::new().layer(layer).service(channel));
    let reply = client
        .say_hello(HelloRequest::default())
        .await
        .unwrap_or_else(|s| panic!("grpcio answers: {s:?}\n{}", peer.report()));
    // grpcio answers an empty message: every field at its default.
    assert_eq!(reply.get_ref().message, "");

    let received = tokio::task::spawn_blocking(move || {
        let received = peer.wait_event("received");
        peer.finish();
        (received, peer.report())
    })
    .await
    .expect("the peer finishes");
    let (received, report) = received;

    let spans = exporter.get_finished_spans().expect("in-memory exporter");
    assert_eq!(spans.len(), 1, "one client span: {spans:#?}");
    let span = &spans[0];
    assert_eq!(span.span_kind, SpanKind::Client);
    assert_eq!(span.name, SAY_HELLO);
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    };
    assert_eq!(attr("rpc.method").as_deref(), Some(SAY_HELLO), "{span:#?}");
    assert_eq!(attr("rpc.status_code").as_deref(), Some("OK"));
    assert_eq!(attr("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attr("server.port"), Some(port.to_string()));

    assert_eq!(received["method"], format!("/{SAY_HELLO}"), "{report}");
    assert_eq!(
        received["valid"], true,
        "grpcio extracted a context\n{report}"
    );
    assert_eq!(
        str_of(&received, "trace_id"),
        span.span_context.trace_id().to_string(),
        "{report}"
    );
    assert_eq!(
        str_of(&received, "parent_span_id"),
        span.span_context.span_id().to_string(),
        "grpcio's parent is the client span\n{report}"
    );
    assert_eq!(received["sampled"], true, "{report}");
    assert_eq!(
        received["metadata"]["traceparent"].as_array().map(Vec::len),
        Some(1),
        "one traceparent\n{report}"
    );
}
