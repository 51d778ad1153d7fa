//! What every interop suite needs: the test service, an echo server that records what the
//! service sends, and W3C header parsing for the assertions.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use sightline_tests::http::{HttpClient, HttpResponse};
use sightline_tests::logs::LogLine;
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::poll_until;
use tokio::task::JoinHandle;

/// The package of the example under test.
pub(crate) const W3C_TEST_SERVICE: &str = "example-w3c-test-service";
/// How long a recorded request may take to show up after `POST /test` answered.
pub(crate) const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times [`test_service`] tries a new port.
const START_ATTEMPTS: usize = 3;
/// How long the "listening" line may take to appear once the port accepts connections.
const LISTENING_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the W3C test service with `env`, and makes sure the port is its own.
///
/// [`ExampleProcess`] picks a free port by binding and closing it, so another test's listener
/// (a collector, an echo server) can take it in between; then the service fails to bind and
/// exits, while the port still accepts connections. The service's "listening" line with its
/// address proves it bound the port; without it, a new port is tried.
pub(crate) async fn test_service(env: &[(&str, &str)]) -> ExampleProcess {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let env = env.clone();
        // `start` panics when the process exits before the port accepts connections (a bind
        // failure too); a task turns that panic into a value to retry on.
        let started = tokio::spawn(async move {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            ExampleProcess::start(W3C_TEST_SERVICE, &env).await
        })
        .await;
        let mut service = match started {
            Ok(service) => service,
            Err(e) => {
                failures.push(format!("start failed: {e}"));
                continue;
            }
        };
        let addr = service.addr().to_string();
        let listening = service
            .wait_for_stdout(
                |l| {
                    LogLine::parse(l.as_bytes()).is_ok_and(|l| {
                        l.message() == Some("listening")
                            && l.field_text("addr").as_deref() == Some(addr.as_str())
                    })
                },
                LISTENING_LINE_TIMEOUT,
            )
            .await;
        if listening.is_some() && service.is_running() {
            return service;
        }
        failures.push(format!(
            "no \"listening\" line for {addr}, or the process exited\n{}",
            service.output_report()
        ));
    }
    panic!(
        "{W3C_TEST_SERVICE} did not start in {START_ATTEMPTS} attempts:\n{}",
        failures.join("\n")
    );
}

/// One request the echo server received.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    /// The request path.
    pub(crate) path: String,
    /// Header names (lowercase) and values, in arrival order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text.
    pub(crate) body: String,
}

impl Recorded {
    /// Every value of `name`.
    pub(crate) fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of `name`; panics if it appears more than once.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(all.len() <= 1, "{name} sent {} times: {all:?}", all.len());
        all.first().copied()
    }
}

type Store = Arc<Mutex<Vec<Recorded>>>;

fn lock(store: &Store) -> MutexGuard<'_, Vec<Recorded>> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// An HTTP server on 127.0.0.1:0 that answers 200 to everything and records each request.
pub(crate) struct EchoServer {
    addr: SocketAddr,
    store: Store,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Starts it in the current runtime.
    pub(crate) async fn start() -> Self {
        let store = Store::default();
        let recorder = store.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let recorder = recorder.clone();
            async move {
                let headers = headers
                    .iter()
                    .map(|(n, v)| {
                        let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                        (n.as_str().to_owned(), value)
                    })
                    .collect();
                lock(&recorder).push(Recorded {
                    path: uri.path().to_owned(),
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the echo server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("echo server stopped: {e}");
            }
        });
        Self { addr, store, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub(crate) fn received(&self) -> Vec<Recorded> {
        lock(&self.store).clone()
    }

    /// Waits up to [`RECORD_TIMEOUT`] for `n` requests to `path`, and returns those received.
    pub(crate) async fn wait_for(&self, path: &str, n: usize) -> Vec<Recorded> {
        let matching = || -> Vec<Recorded> {
            self.received()
                .into_iter()
                .filter(|r| r.path == path)
                .collect()
        };
        poll_until(RECORD_TIMEOUT, Duration::from_millis(20), || {
            let found = matching();
            std::future::ready((found.len() >= n).then_some(found))
        })
        .await
        .unwrap_or_else(matching)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body of `POST /test`: one call per url, each with `arguments`.
pub(crate) fn calls_body(urls: &[String], arguments: &serde_json::Value) -> String {
    let calls: Vec<_> = urls
        .iter()
        .map(|url| serde_json::json!({ "url": url, "arguments": arguments }))
        .collect();
    serde_json::Value::Array(calls).to_string()
}

/// `POST /test` with `headers` and `body` (as JSON); panics if the request fails.
pub(crate) async fn post_test(
    service: &ExampleProcess,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut raw: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
    raw.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
    HttpClient::new()
        .post(&service.url("/test"), &raw, body.as_bytes().to_vec())
        .await
        .unwrap_or_else(|e| panic!("POST /test: {e}\n{}", service.output_report()))
}

/// A `traceparent` value split into its parts; `None` unless it is a valid version-00 value
/// as a sender must write it (lowercase hex, non-zero ids, exactly 55 characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Traceparent {
    pub(crate) trace_id: String,
    pub(crate) parent_id: String,
    pub(crate) flags: u8,
}

impl Traceparent {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return None;
        };
        let lower_hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let non_zero = |s: &str| s.bytes().any(|b| b != b'0');
        (*version == "00"
            && lower_hex(trace_id, 32)
            && non_zero(trace_id)
            && lower_hex(parent_id, 16)
            && non_zero(parent_id)
            && lower_hex(flags, 2))
        .then(|| Self {
            trace_id: (*trace_id).to_owned(),
            parent_id: (*parent_id).to_owned(),
            flags: u8::from_str_radix(flags, 16).expect("two hex digits"),
        })
    }
}

/// The members of a `tracestate` value, whitespace around them removed, empty ones skipped.
pub(crate) fn tracestate_members(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}
