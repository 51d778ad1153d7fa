//! Calls that never reach their end: the client drops a stream or a call mid-way, or tonic's
//! deadline drops the handler. Each is recorded exactly once, as CANCELLED (or DEADLINE_EXCEEDED
//! when the drop comes at the caller's deadline), and the
//! active-calls gauge returns to 0.

use std::time::Duration;

use opentelemetry::trace::SpanKind;
use sightline_tests::grpc::echo::EchoRequest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request};

use crate::support::{
    Telemetry, assert_call_span, call_labels, duration, echo_method, wrapped_pair_listed,
};

/// How long after the first record a second one would have shown up, if there were one.
const QUIET: Duration = Duration::from_millis(500);

const SERVER_DURATION: &str = "rpc_server_call_duration_seconds_count";
const CLIENT_DURATION: &str = "rpc_client_call_duration_seconds_count";

/// Waits for the one server and one client span of a cancelled call, waits [`QUIET`] more,
/// and checks nothing else was recorded: one span each, one CANCELLED count each, no other
/// series for the method, every active-calls gauge back to 0.
async fn assert_cancelled_once(t: &Telemetry, method: &str) {
    let server_span = t.one_span(SpanKind::Server).await;
    let client_span = t.one_span(SpanKind::Client).await;
    assert_call_span(&server_span, method, "CANCELLED", false);
    assert_call_span(&client_span, method, "CANCELLED", true);
    t.wait_no_active_calls().await;

    tokio::time::sleep(QUIET).await;
    let (servers, clients) = (t.spans_of(&SpanKind::Server), t.spans_of(&SpanKind::Client));
    assert_eq!(servers.len(), 1, "ended once: {servers:#?}");
    assert_eq!(clients.len(), 1, "ended once: {clients:#?}");
    let text = t.metrics_text();
    let cancelled = call_labels(method, "CANCELLED");
    assert_eq!(t.sample(SERVER_DURATION, &cancelled), Some(1.0), "{text}");
    let mut client_cancelled = cancelled.clone();
    client_cancelled.push(("error_type", "CANCELLED"));
    assert_eq!(
        t.sample(CLIENT_DURATION, &client_cancelled),
        Some(1.0),
        "{text}"
    );
    for sample in t.samples() {
        if sample.name == SERVER_DURATION || sample.name == CLIENT_DURATION {
            assert_eq!(
                sample.label("rpc_status_code"),
                Some("CANCELLED"),
                "only the cancellation is counted: {}\n{text}",
                sample.series_key()
            );
        }
    }
    t.wait_no_active_calls().await;
}

#[tokio::test]
async fn server_stream_dropped_by_the_client_is_cancelled_once() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair_listed(&t).await;
    let method = echo_method("ServerStream");

    let mut stream = client
        .server_stream(Request::new(EchoRequest {
            message: "endless".into(),
            count: 100,
            delay_ms: 50,
            ..EchoRequest::default()
        }))
        .await
        .expect("the call starts")
        .into_inner();
    for _ in 0..2 {
        let reply = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a message within 5 s")
            .expect("no error");
        assert!(reply.is_some());
    }
    drop(stream);

    assert_cancelled_once(&t, &method).await;
    let server_span = t.one_span(SpanKind::Server).await;
    // Two messages 50 ms apart came before the drop; the drop is seen at once, not after the
    // 100 messages the server would have sent.
    let lasted = duration(&server_span);
    assert!(
        lasted >= Duration::from_millis(100) && lasted < Duration::from_millis(1500),
        "server span lasted {lasted:?}"
    );
}

#[tokio::test]
async fn bidi_dropped_mid_stream_is_cancelled_once() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair_listed(&t).await;
    let method = echo_method("Bidi");

    let (tx, rx) = mpsc::channel(4);
    tx.send(EchoRequest {
        message: "many".into(),
        count: 100,
        delay_ms: 50,
        ..EchoRequest::default()
    })
    .await
    .expect("the channel is open");
    let mut stream = client
        .bidi(ReceiverStream::new(rx))
        .await
        .expect("the call starts")
        .into_inner();
    for _ in 0..2 {
        let reply = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a message within 5 s")
            .expect("no error");
        assert!(reply.is_some());
    }
    // The client goes away with its request stream still open.
    drop(stream);
    drop(tx);

    assert_cancelled_once(&t, &method).await;
}

#[tokio::test]
async fn unary_call_abandoned_by_the_client_is_cancelled_once() {
    let t = Telemetry::new();
    let (_server, echo, mut client) = wrapped_pair_listed(&t).await;
    let method = echo_method("Unary");

    let call = client.unary(Request::new(EchoRequest {
        message: "slow".into(),
        delay_ms: 3_000,
        ..EchoRequest::default()
    }));
    let abandoned = tokio::time::timeout(Duration::from_millis(300), call).await;
    assert!(abandoned.is_err(), "the call was still running");
    assert_eq!(echo.calls().len(), 1, "the handler had started");

    assert_cancelled_once(&t, &method).await;
}

#[tokio::test]
async fn client_stream_abandoned_with_its_request_stream_open_is_cancelled_once() {
    let t = Telemetry::new();
    let (_server, echo, mut client) = wrapped_pair_listed(&t).await;
    let method = echo_method("ClientStream");

    let (tx, rx) = mpsc::channel(4);
    tx.send(EchoRequest {
        message: "first".into(),
        ..EchoRequest::default()
    })
    .await
    .expect("the channel is open");
    let call = client.client_stream(ReceiverStream::new(rx));
    let abandoned = tokio::time::timeout(Duration::from_millis(300), call).await;
    assert!(
        abandoned.is_err(),
        "the server waits for the end of the requests"
    );
    assert_eq!(echo.calls().len(), 1, "the handler had started");
    drop(tx);

    assert_cancelled_once(&t, &method).await;
}

/// tonic enforces the caller's `grpc-timeout` outside the Sightline layer by dropping the
/// handler: the server records that once, as DEADLINE_EXCEEDED (the drop came at the
/// caller's deadline), although tonic itself answers CANCELLED.
#[tokio::test]
async fn deadline_enforced_by_tonic_ends_the_server_call_once() {
    let t = Telemetry::new();
    let (_server, _echo, mut client) = wrapped_pair_listed(&t).await;
    let method = echo_method("Unary");

    let mut call = Request::new(EchoRequest {
        message: "too slow".into(),
        delay_ms: 3_000,
        ..EchoRequest::default()
    });
    call.set_timeout(Duration::from_millis(200));
    let status = tokio::time::timeout(Duration::from_secs(5), client.unary(call))
        .await
        .expect("tonic answers when the deadline passes")
        .expect_err("the deadline passes first");
    // tonic's own answer to an expired `grpc-timeout`.
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");

    let server_span = t.one_span(SpanKind::Server).await;
    assert_call_span(&server_span, &method, "DEADLINE_EXCEEDED", true);
    let lasted = duration(&server_span);
    // tonic starts its deadline timer a little before the layer's clock starts.
    assert!(
        lasted >= Duration::from_millis(195) && lasted < Duration::from_millis(1500),
        "server span lasted {lasted:?}"
    );
    t.wait_no_active_calls().await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(t.spans_of(&SpanKind::Server).len(), 1);
    assert_eq!(
        t.sample(SERVER_DURATION, &call_labels(&method, "DEADLINE_EXCEEDED")),
        Some(1.0),
        "{}",
        t.metrics_text()
    );
}
