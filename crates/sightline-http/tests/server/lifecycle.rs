//! When a request ends: at the end of the body, when the client goes away, exactly once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::{delete, get, put};
use bytes::Bytes;
use http::StatusCode;
use http_body::Frame;
use http_body_util::BodyExt as _;
use opentelemetry::trace::Status;
use sightline_http::RequestId;
use tower::ServiceExt as _;

use crate::support::{Spans, attr, attr_str, get as get_req, prometheus, sample, send};

/// A body that sends `left` chunks, one every `delay`.
struct SlowBody {
    left: usize,
    delay: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl SlowBody {
    fn new(chunks: usize, delay: Duration) -> Self {
        Self {
            left: chunks,
            delay,
            sleep: None,
        }
    }
}

impl http_body::Body for SlowBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let delay = self.delay;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        std::task::ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"chunk\n")))))
    }
}

use std::future::Future as _;

fn active(method: &str) -> f64 {
    let text = prometheus().render();
    sample(
        &text,
        "http_server_active_requests",
        &[("http_request_method", method), ("url_scheme", "http")],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn streaming_response_ends_with_its_body() {
    let spans = Spans::new();
    let app = Router::new()
        .route(
            "/stream",
            get(|| async { Response::new(Body::new(SlowBody::new(3, Duration::from_millis(60)))) }),
        )
        .layer(spans.layer());

    let response = app
        .clone()
        .oneshot(get_req("/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(
        spans.finished().is_empty(),
        "span ended with the response head"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 18);

    let span = spans.only();
    let took = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        took >= Duration::from_millis(180),
        "span covers the body: {took:?}"
    );
    assert!(took < Duration::from_secs(5));

    let text = prometheus().render();
    let sum = sample(
        &text,
        "http_server_request_duration_seconds_sum",
        &[("http_route", "/stream")],
    )
    .expect("duration recorded");
    assert!(sum >= 0.18, "duration covers the body: {sum}");
    let count = sample(
        &text,
        "http_server_request_duration_seconds_count",
        &[("http_route", "/stream")],
    );
    assert_eq!(count, Some(1.0), "recorded exactly once");
}

#[tokio::test]
async fn client_going_away_mid_body_ends_the_request_once() {
    let spans = Spans::new();
    let app = Router::new()
        .route(
            "/cut",
            delete(|| async {
                Response::new(Body::new(SlowBody::new(10, Duration::from_millis(20))))
            }),
        )
        .layer(spans.layer());

    let response = app
        .clone()
        .oneshot(
            get_req("/cut")
                .method("DELETE")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(active("DELETE"), 1.0);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);

    let span = spans.only();
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("cancelled"));
    assert_eq!(
        span.status,
        Status::Unset,
        "the client left; the server did not fail"
    );
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(200_i64.into())
    );
    assert_eq!(active("DELETE"), 0.0);
    let text = prometheus().render();
    assert_eq!(
        sample(
            &text,
            "http_server_request_duration_seconds_count",
            &[("http_route", "/cut"), ("error_type", "cancelled")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn dropped_future_before_the_response_is_cancelled() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/hang", put(std::future::pending::<&'static str>))
        .layer(spans.layer());

    let call = app
        .clone()
        .oneshot(get_req("/hang").method("PUT").body(Body::empty()).unwrap());
    let timed_out = tokio::time::timeout(Duration::from_millis(50), call).await;
    assert!(timed_out.is_err());

    let span = spans.only();
    assert_eq!(attr_str(&span, "error.type").as_deref(), Some("cancelled"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert_eq!(active("PUT"), 0.0, "gauge back to zero after cancellation");
}

#[tokio::test]
async fn empty_bodies_end_at_the_head() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
        .layer(spans.layer());
    let response = app
        .clone()
        .oneshot(get_req("/empty").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Ended without polling the body: hyper may never poll an empty one.
    let span = spans.only();
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(204_i64.into())
    );
    drop(response);
    assert_eq!(spans.finished().len(), 1, "ended exactly once");
}

#[tokio::test]
async fn request_ids_are_kept_replaced_and_returned() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/id", get(|id: RequestId| async move { id.to_string() }))
        .layer(spans.layer());

    let cases: [(Option<&[u8]>, bool); 6] = [
        (Some(b"abc-123"), true),
        (None, false),
        (Some(b""), false),
        (Some(b"has space"), false),
        (Some(&[b'a'; 129]), false),
        (Some(b"caf\xc3\xa9"), false),
    ];
    for (incoming, kept) in cases {
        let mut req = get_req("/id");
        if let Some(value) = incoming {
            req = req.header(
                "x-request-id",
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let (parts, body) = send(&app, req.body(Body::empty()).unwrap()).await;
        let answered = parts.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(body, answered.as_bytes(), "the handler saw the answered ID");
        assert!(sightline_http::request_id::is_valid(answered.as_bytes()));
        if kept {
            assert_eq!(Some(answered.as_bytes()), incoming);
        } else {
            assert_eq!(answered.len(), 36, "a generated UUID for {incoming:?}");
        }
    }
}
