//! What every suite needs to run and read the quick-start example.

use std::time::Duration;

use sightline_tests::http::{HttpClient, HttpResponse};
use sightline_tests::logs::{LogLine, parse_lines};
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::{random_span_id, random_trace_id};

/// The package of the example under test.
pub(crate) const QUICKSTART: &str = "example-quickstart";
/// The route template of `GET /users/{id}`.
pub(crate) const USERS_ROUTE: &str = "/users/{id}";
/// The target of access-log lines.
pub(crate) const ACCESS_TARGET: &str = "sightline_http::access";
/// How long a log line may take to appear after its response.
pub(crate) const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the quick-start example with `env`.
pub(crate) async fn quickstart(env: &[(&str, &str)]) -> ExampleProcess {
    ExampleProcess::start(QUICKSTART, env).await
}

/// `00-<trace>-<parent>-01`.
pub(crate) fn traceparent(trace_id: &str, parent_id: &str) -> String {
    format!("00-{trace_id}-{parent_id}-01")
}

/// A GET of `path` that continues a new random trace: the answer, the trace id and the parent
/// span id sent in its `traceparent`.
pub(crate) async fn get_traced(app: &ExampleProcess, path: &str) -> (HttpResponse, String, String) {
    let (trace_id, parent_id) = (random_trace_id(), random_span_id());
    let response = HttpClient::new()
        .get_with(
            &app.url(path),
            &[("traceparent", &traceparent(&trace_id, &parent_id))],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (response, trace_id, parent_id)
}

/// Every stdout line parsed; panics with the offending lines if any is not one JSON object.
pub(crate) fn json_lines(app: &ExampleProcess) -> Vec<LogLine> {
    let (good, bad) = parse_lines(&app.stdout_raw());
    assert!(
        bad.is_empty(),
        "stdout lines that are not one JSON object each:\n{}",
        bad.join("\n")
    );
    good
}

/// Whether `id` is a valid request id as the contract says: 1 to 128 visible ASCII characters.
pub(crate) fn is_valid_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Whether `id` is a UUID in its hyphenated form.
pub(crate) fn is_uuid(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::parse_str(id).is_ok()
}

/// Waits for the access-log line of the request whose `request_id` is `request_id`.
pub(crate) async fn access_line(app: &ExampleProcess, request_id: &str) -> Option<LogLine> {
    app.wait_for_stdout(
        |l| {
            LogLine::parse(l.as_bytes()).is_ok_and(|l| {
                l.target() == Some(ACCESS_TARGET) && l.request_id() == Some(request_id)
            })
        },
        LOG_TIMEOUT,
    )
    .await
    .and_then(|l| LogLine::parse(l.as_bytes()).ok())
}
