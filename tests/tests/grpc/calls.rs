//! Every kind of call, tonic client (behind the client layer) to tonic server (behind the
//! server layer) over 127.0.0.1: one server span under one client span, the status read
//! where gRPC puts it (trailers after messages, or the head of a trailers-only answer), the
//! duration measured to the end of the stream, and the metrics counted once.

use std::time::Duration;

use opentelemetry::trace::SpanKind;
use sightline_tests::grpc::echo::echo_client::EchoClient;
use sightline_tests::grpc::echo::{EchoReply, EchoRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Status, Streaming};

use sightline_http::grpc::GrpcClient;
use tonic::transport::Channel;

use crate::support::{
    ECHO, Telemetry, assert_call_span, assert_parent_child, attr, attr_i64, call_labels, duration,
    echo_client, echo_method, echo_server, trace_id, wrapped_pair,
};

/// How long any one call of these tests may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack allowed on top of a call's known delays before its duration counts as absurd.
const SLACK: Duration = Duration::from_millis(1500);

const SERVER_DURATION: &str = "rpc_server_call_duration_seconds_count";
const CLIENT_DURATION: &str = "rpc_client_call_duration_seconds_count";
const SERVER_DURATION_SUM: &str = "rpc_server_call_duration_seconds_sum";
const ACTIVE_CALLS: &str = "rpc_server_active_calls";

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
        ..EchoRequest::default()
    }
}

/// Reads `stream` to its end (bounded by [`CALL_TIMEOUT`]): the replies, and the status it
/// ended with (`None` for OK).
async fn drain(mut stream: Streaming<EchoReply>) -> (Vec<EchoReply>, Option<Status>) {
    let mut replies = Vec::new();
    let read = async {
        loop {
            match stream.message().await {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    };
    let status = tokio::time::timeout(CALL_TIMEOUT, read)
        .await
        .expect("the stream ends within the call timeout");
    (replies, status)
}

fn assert_within(span_duration: Duration, at_least: Duration, what: &str) {
    assert!(
        span_duration >= at_least && span_duration <= at_least + SLACK,
        "{what}: duration {span_duration:?}, want between {at_least:?} and {:?}",
        at_least + SLACK
    );
}

#[tokio::test]
async fn unary_ok_is_a_server_span_under_the_client_span_and_counted_once() {
    let t = Telemetry::new();
    let (server, echo, mut client) = wrapped_pair(&t).await;
    let method = echo_method("Unary");

    let mut call = Request::new(request("hello"));
    call.metadata_mut()
        .insert("x-request-id", "req-unary-1".parse().expect("ascii"));
    let response = client.unary(call).await.expect("the call succeeds");
    assert_eq!(response.get_ref().message, "hello");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-unary-1"),
        "the request ID comes back in the response metadata"
    );

    let server_span = t.one_span(SpanKind::Server).await;
    let client_span = t.one_span(SpanKind::Client).await;
    assert_call_span(&server_span, &method, "OK", false);
    assert_call_span(&client_span, &method, "OK", false);
    assert_parent_child(&client_span, &server_span);

    let port = i64::from(server.addr().port());
    for span in [&server_span, &client_span] {
        assert_eq!(
            attr(span, "server.address").as_deref(),
            Some("127.0.0.1"),
            "{span:#?}"
        );
        assert_eq!(attr_i64(span, "server.port"), Some(port), "{span:#?}");
    }
    assert_eq!(
        attr(&server_span, "client.address").as_deref(),
        Some("127.0.0.1"),
        "{server_span:#?}"
    );
    assert!(
        attr_i64(&server_span, "client.port").is_some_and(|p| p > 0 && p != port),
        "{server_span:#?}"
    );

    // What the handler saw: the caller's request ID, and the client span's context.
    let calls = echo.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let seen = &calls[0].metadata;
    assert_eq!(
        seen.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("req-unary-1")
    );
    let traceparent = seen
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("the client layer injects traceparent");
    assert!(
        traceparent.contains(&trace_id(&client_span)),
        "{traceparent} vs {client_span:#?}"
    );

    let ok = call_labels(&method, "OK");
    assert_eq!(
        t.sample(SERVER_DURATION, &ok),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
    assert_eq!(
        t.sample(CLIENT_DURATION, &ok),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
    t.wait_no_active_calls().await;
    // An OK call has no `error_type` label.
    for sample in t.samples() {
        assert_eq!(sample.label("error_type"), None, "{}", sample.series_key());
    }
}

#[tokio::test]
async fn a_request_without_an_id_gets_one_generated_and_returned() {
    let t = Telemetry::new();
    let (_server, echo, mut client) = wrapped_pair(&t).await;
    let response = client
        .unary(Request::new(request("no id")))
        .await
        .expect("the call succeeds");
    let returned = response
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a generated x-request-id in the response")
        .to_owned();
    assert!(
        (1..=128).contains(&returned.len()),
        "request id {returned:?}"
    );
    let seen = echo.calls()[0]
        .metadata
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        seen.as_deref(),
        Some(returned.as_str()),
        "the handler sees the same id"
    );
}

/// Every code a handler can answer, as a trailers-only response (a unary error): the name,
/// `error.type` and span status follow the server's and the client's rules.
#[tokio::test]
async fn unary_errors_follow_the_server_and_client_error_rules() {
    const SERVER_ERRORS: [Code; 6] = [
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
    ];
    let t = Telemetry::new();
    // The service is declared, so an UNIMPLEMENTED from its own handler is still a known method.
    let (server, _echo) = echo_server(t.server_builder().known_services([ECHO]).build()).await;
    let mut client = echo_client(&server, t.client_builder().target(&server.uri()).build()).await;
    let method = echo_method("Unary");

    for number in 1..=16 {
        let code = Code::from_i32(number);
        let name = code_name(code);
        let status = client
            .unary(Request::new(EchoRequest {
                fail_code: number,
                ..request(name)
            }))
            .await
            .expect_err("the call fails as asked");
        assert_eq!(status.code(), code, "{status:?}");

        let n = usize::try_from(number).expect("small");
        let servers = t.wait_spans(SpanKind::Server, n).await;
        let clients = t.wait_spans(SpanKind::Client, n).await;
        assert_eq!(servers.len(), n, "one server span per call: {servers:#?}");
        assert_eq!(clients.len(), n, "one client span per call: {clients:#?}");
        let (server_span, client_span) = (&servers[n - 1], &clients[n - 1]);
        assert_call_span(server_span, &method, name, SERVER_ERRORS.contains(&code));
        assert_call_span(client_span, &method, name, true);
        assert_parent_child(client_span, server_span);

        let mut labels = call_labels(&method, name);
        if SERVER_ERRORS.contains(&code) {
            labels.push(("error_type", name));
        }
        assert_eq!(
            t.sample(SERVER_DURATION, &labels),
            Some(1.0),
            "{name}\n{}",
            t.metrics_text()
        );
        let mut labels = call_labels(&method, name);
        labels.push(("error_type", name));
        assert_eq!(
            t.sample(CLIENT_DURATION, &labels),
            Some(1.0),
            "{name}\n{}",
            t.metrics_text()
        );
    }
    // Non-error codes on the server carry no error_type label at all.
    for sample in t.samples() {
        if sample.name == SERVER_DURATION
            && let Some(code) = sample.label("rpc_status_code")
        {
            let is_error = SERVER_ERRORS.iter().any(|c| code_name(*c) == code);
            assert_eq!(
                sample.label("error_type").is_some(),
                is_error,
                "{}",
                sample.series_key()
            );
        }
    }
}

/// The status name the semantic conventions use for `code`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[tokio::test]
async fn server_stream_lasts_until_its_last_message() {
    const COUNT: u32 = 5;
    const DELAY_MS: u32 = 100;
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair(&t).await;
    let method = echo_method("ServerStream");

    let stream = client
        .server_stream(Request::new(EchoRequest {
            count: COUNT,
            delay_ms: DELAY_MS,
            ..request("tick")
        }))
        .await
        .expect("the call starts")
        .into_inner();
    let (replies, status) = drain(stream).await;
    assert_eq!(status.map(|s| s.code()), None);
    let indexes: Vec<u32> = replies.iter().map(|r| r.index).collect();
    assert_eq!(indexes, (0..COUNT).collect::<Vec<_>>());

    let server_span = t.one_span(SpanKind::Server).await;
    let client_span = t.one_span(SpanKind::Client).await;
    assert_call_span(&server_span, &method, "OK", false);
    assert_call_span(&client_span, &method, "OK", false);
    assert_parent_child(&client_span, &server_span);
    let known = Duration::from_millis(u64::from(COUNT * DELAY_MS));
    assert_within(duration(&server_span), known, "server span");
    assert_within(duration(&client_span), known, "client span");

    let ok = call_labels(&method, "OK");
    assert_eq!(
        t.sample(SERVER_DURATION, &ok),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
    let sum = t.sample(SERVER_DURATION_SUM, &ok).expect("a duration sum");
    assert!(
        sum >= known.as_secs_f64() && sum <= (known + SLACK).as_secs_f64(),
        "histogram sum {sum} s for {known:?} of delays\n{}",
        t.metrics_text()
    );
}

#[tokio::test]
async fn server_stream_status_in_trailers_after_messages() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair(&t).await;
    let method = echo_method("ServerStream");

    let stream = client
        .server_stream(Request::new(EchoRequest {
            count: 5,
            delay_ms: 100,
            fail_code: Code::Unavailable as i32,
            fail_after: 2,
            ..request("then fail")
        }))
        .await
        .expect("the call starts: the failure comes after two messages")
        .into_inner();
    let (replies, status) = drain(stream).await;
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(status.map(|s| s.code()), Some(Code::Unavailable));

    let server_span = t.one_span(SpanKind::Server).await;
    let client_span = t.one_span(SpanKind::Client).await;
    assert_call_span(&server_span, &method, "UNAVAILABLE", true);
    assert_call_span(&client_span, &method, "UNAVAILABLE", true);
    assert_within(
        duration(&server_span),
        Duration::from_millis(200),
        "server span",
    );
    let mut labels = call_labels(&method, "UNAVAILABLE");
    labels.push(("error_type", "UNAVAILABLE"));
    assert_eq!(
        t.sample(SERVER_DURATION, &labels),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
    assert_eq!(
        t.sample(SERVER_DURATION, &call_labels(&method, "OK")),
        None,
        "a stream that began well and failed is not OK\n{}",
        t.metrics_text()
    );
}

#[tokio::test]
async fn server_stream_trailers_only_error() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair(&t).await;
    let method = echo_method("ServerStream");

    for (code, server_error) in [(Code::PermissionDenied, false), (Code::DataLoss, true)] {
        let status = client
            .server_stream(Request::new(EchoRequest {
                count: 3,
                fail_code: code as i32,
                fail_after: 0,
                ..request("refused")
            }))
            .await
            .expect_err("a trailers-only answer fails the call at once");
        assert_eq!(status.code(), code);
        let name = code_name(code);
        let server_span = t
            .wait_span_where(SpanKind::Server, |s| {
                attr(s, "rpc.status_code").as_deref() == Some(name)
            })
            .await;
        assert_call_span(&server_span, &method, name, server_error);
        let mut labels = call_labels(&method, name);
        if server_error {
            labels.push(("error_type", name));
        }
        t.wait_sample(SERVER_DURATION, &labels, 1.0).await;
    }
    let clients = t.wait_spans(SpanKind::Client, 2).await;
    assert_eq!(clients.len(), 2, "{clients:#?}");
    for span in &clients {
        assert!(crate::support::is_error(span), "{span:#?}");
    }
}

#[tokio::test]
async fn client_stream_ok_and_failing() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair(&t).await;
    let method = echo_method("ClientStream");

    // Four messages, each after 50 ms: the last is sent 200 ms after the sender starts. The
    // call (started beside the sender, so up to a few ms later, more on a loaded machine)
    // lasts at least the 150 ms between the first and the last.
    let (tx, rx) = mpsc::channel(4);
    let sender = tokio::spawn(async move {
        for i in 0..4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if tx.send(request(&format!("m{i}"))).await.is_err() {
                return;
            }
        }
    });
    let reply = tokio::time::timeout(CALL_TIMEOUT, client.client_stream(ReceiverStream::new(rx)))
        .await
        .expect("within the timeout")
        .expect("the call succeeds")
        .into_inner();
    sender.await.expect("the sender finishes");
    assert_eq!((reply.message.as_str(), reply.index), ("m0,m1,m2,m3", 4));

    let server_span = t.one_span(SpanKind::Server).await;
    let client_span = t.one_span(SpanKind::Client).await;
    assert_call_span(&server_span, &method, "OK", false);
    assert_call_span(&client_span, &method, "OK", false);
    assert_parent_child(&client_span, &server_span);
    assert_within(
        duration(&server_span),
        Duration::from_millis(150),
        "server span",
    );

    // The first message asks for ABORTED: not a server error, a client one.
    let requests = vec![
        EchoRequest {
            fail_code: Code::Aborted as i32,
            ..request("a")
        },
        request("b"),
    ];
    let status = client
        .client_stream(tokio_stream::iter(requests))
        .await
        .expect_err("the call fails as asked");
    assert_eq!(status.code(), Code::Aborted);
    let servers = t.wait_spans(SpanKind::Server, 2).await;
    let clients = t.wait_spans(SpanKind::Client, 2).await;
    assert_call_span(&servers[1], &method, "ABORTED", false);
    assert_call_span(&clients[1], &method, "ABORTED", true);
    assert_parent_child(&clients[1], &servers[1]);
    assert_eq!(
        t.sample(SERVER_DURATION, &call_labels(&method, "OK")),
        Some(1.0)
    );
    assert_eq!(
        t.sample(SERVER_DURATION, &call_labels(&method, "ABORTED")),
        Some(1.0)
    );
}

#[tokio::test]
async fn bidi_ok_and_status_in_trailers() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair(&t).await;
    let method = echo_method("Bidi");

    let requests = vec![
        EchoRequest {
            count: 2,
            delay_ms: 50,
            ..request("a")
        },
        EchoRequest {
            count: 2,
            delay_ms: 50,
            ..request("b")
        },
        EchoRequest {
            count: 2,
            delay_ms: 50,
            ..request("c")
        },
    ];
    let stream = client
        .bidi(tokio_stream::iter(requests))
        .await
        .expect("the call starts")
        .into_inner();
    let (replies, status) = drain(stream).await;
    assert_eq!(status.map(|s| s.code()), None);
    let got: Vec<&str> = replies.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, ["a", "a", "b", "b", "c", "c"]);
    let server_span = t.one_span(SpanKind::Server).await;
    let client_span = t.one_span(SpanKind::Client).await;
    assert_call_span(&server_span, &method, "OK", false);
    assert_call_span(&client_span, &method, "OK", false);
    assert_parent_child(&client_span, &server_span);
    assert_within(
        duration(&server_span),
        Duration::from_millis(300),
        "server span",
    );

    // The second request ends the call with DATA_LOSS after one reply to it.
    let requests = vec![
        EchoRequest {
            count: 2,
            ..request("x")
        },
        EchoRequest {
            count: 2,
            fail_code: Code::DataLoss as i32,
            fail_after: 1,
            ..request("y")
        },
        request("never answered"),
    ];
    let stream = client
        .bidi(tokio_stream::iter(requests))
        .await
        .expect("the call starts")
        .into_inner();
    let (replies, status) = drain(stream).await;
    let got: Vec<&str> = replies.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, ["x", "x", "y"]);
    assert_eq!(status.map(|s| s.code()), Some(Code::DataLoss));
    let servers = t.wait_spans(SpanKind::Server, 2).await;
    let clients = t.wait_spans(SpanKind::Client, 2).await;
    assert_eq!(servers.len(), 2, "{servers:#?}");
    assert_call_span(&servers[1], &method, "DATA_LOSS", true);
    assert_call_span(&clients[1], &method, "DATA_LOSS", true);
    let mut labels = call_labels(&method, "DATA_LOSS");
    labels.push(("error_type", "DATA_LOSS"));
    assert_eq!(
        t.sample(SERVER_DURATION, &labels),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
}

/// Starts a 3 × 200 ms stream, checks the method's gauge is 1 once the first message is in,
/// and 0 after the end; the span ends with the stream, not at the response head.
async fn one_call_in_flight(
    t: &Telemetry,
    client: &mut EchoClient<GrpcClient<Channel>>,
    spans_before: usize,
) {
    let method = echo_method("ServerStream");
    let active = [("rpc_system_name", "grpc"), ("rpc_method", method.as_str())];
    let mut stream = client
        .server_stream(Request::new(EchoRequest {
            count: 3,
            delay_ms: 200,
            ..request("slow")
        }))
        .await
        .expect("the call starts")
        .into_inner();
    let first = stream.message().await.expect("a message");
    assert!(first.is_some());
    assert_eq!(
        t.sample(ACTIVE_CALLS, &active),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
    assert_eq!(
        t.spans_of(&SpanKind::Server).len(),
        spans_before,
        "the span ends with the stream, not at the response head"
    );
    let (rest, status) = drain(stream).await;
    assert_eq!((rest.len(), status.map(|s| s.code())), (2, None));
    t.wait_sample(ACTIVE_CALLS, &active, 0.0).await;
    t.wait_no_active_calls().await;
}

#[tokio::test]
async fn active_calls_gauge_counts_a_call_in_flight() {
    let t = Telemetry::new();
    // A method listed by name is recognised from its first call, gauge included.
    let layer = t
        .server_builder()
        .known_services([echo_method("ServerStream")])
        .build();
    let (server, _echo) = echo_server(layer).await;
    let mut client = echo_client(&server, t.client_builder().target(&server.uri()).build()).await;
    one_call_in_flight(&t, &mut client, 0).await;
}

/// Without a list of known services, a method's gauge is its own from its second call on
/// (the first is in flight as `_OTHER` until its status shows the method is served).
#[tokio::test]
async fn active_calls_gauge_of_a_learned_method() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair(&t).await;
    let (replies, status) = drain(
        client
            .server_stream(Request::new(request("learn")))
            .await
            .expect("the call starts")
            .into_inner(),
    )
    .await;
    assert_eq!((replies.len(), status.map(|s| s.code())), (1, None));
    t.wait_spans(SpanKind::Server, 1).await;
    one_call_in_flight(&t, &mut client, 1).await;
}

#[tokio::test]
async fn message_counts_per_call_when_enabled() {
    let t = Telemetry::new();
    let (server, _echo) = echo_server(t.server_builder().message_counts(true).build()).await;
    let mut client = echo_client(
        &server,
        t.client_builder()
            .target(&server.uri())
            .message_counts(true)
            .build(),
    )
    .await;

    let stream = client
        .server_stream(Request::new(EchoRequest {
            count: 5,
            ..request("count me")
        }))
        .await
        .expect("the call starts")
        .into_inner();
    let (replies, _) = drain(stream).await;
    assert_eq!(replies.len(), 5);
    let requests = (0..3)
        .map(|i| request(&format!("r{i}")))
        .collect::<Vec<_>>();
    client
        .client_stream(tokio_stream::iter(requests))
        .await
        .expect("the call succeeds");

    let stream_method = echo_method("ServerStream");
    let upload_method = echo_method("ClientStream");
    let per_call = |metric: &str, method: &str| {
        let labels = [("rpc_method", method)];
        (
            t.sample(&format!("{metric}_count"), &labels),
            t.sample(&format!("{metric}_sum"), &labels),
        )
    };
    t.wait_sample(SERVER_DURATION, &call_labels(&upload_method, "OK"), 1.0)
        .await;
    let text = t.metrics_text();
    assert_eq!(
        per_call("rpc_server_responses_per_rpc", &stream_method),
        (Some(1.0), Some(5.0)),
        "{text}"
    );
    assert_eq!(
        per_call("rpc_server_requests_per_rpc", &stream_method),
        (Some(1.0), Some(1.0)),
        "{text}"
    );
    assert_eq!(
        per_call("rpc_server_requests_per_rpc", &upload_method),
        (Some(1.0), Some(3.0)),
        "{text}"
    );
    assert_eq!(
        per_call("rpc_client_responses_per_rpc", &stream_method),
        (Some(1.0), Some(5.0)),
        "{text}"
    );
}

#[tokio::test]
async fn a_panicking_handler_is_an_internal_answer_recorded_on_the_span() {
    let t = Telemetry::new();
    let (server, _echo, mut client) = wrapped_pair(&t).await;
    let status = client
        .unary(Request::new(request(sightline_tests::grpc::PANIC_MESSAGE)))
        .await
        .expect_err("the handler panicked");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    // The server keeps serving.
    let ok = client
        .unary(Request::new(request("after")))
        .await
        .expect("served");
    assert_eq!(ok.get_ref().message, "after");

    let spans = t.wait_spans(SpanKind::Server, 2).await;
    let panicked = spans
        .iter()
        .find(|s| s.events.iter().any(|e| e.name == "exception"))
        .unwrap_or_else(|| panic!("no exception event: {spans:#?}"));
    assert!(matches!(
        panicked.status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(
        attr(panicked, "rpc.status_code").as_deref(),
        Some("INTERNAL")
    );
    let message = panicked.events[0]
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "exception.message")
        .map(|kv| kv.value.to_string());
    assert_eq!(
        message.as_deref(),
        Some("the echo service panics on request")
    );
    t.wait_sample(
        SERVER_DURATION,
        &[
            ("rpc_method", &echo_method("Unary")),
            ("rpc_status_code", "INTERNAL"),
        ],
        1.0,
    )
    .await;
    server.stop().await;
}
