//! What handlers and applications reach: the server span from inside a handler (across
//! `.await` and in spawned tasks), attribute hooks, a route extractor for other routers, and
//! a panicking handler.

use std::borrow::Cow;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::StatusCode;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::Status;
use sightline_http::server_span;
use tower::ServiceExt as _;

use crate::support::{Spans, attr_str, get as req, send};

#[tokio::test]
async fn a_handler_edits_its_server_span_across_await_and_in_spawned_tasks() {
    let spans = Spans::new();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async {
                server_span().set_attribute(KeyValue::new("enduser.id", "42"));
                tokio::task::yield_now().await;
                server_span().set_attribute(KeyValue::new("after.await", true));
                {
                    // Inside a child span that is now the current one: still the server span.
                    use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
                    let child = opentelemetry::global::tracer("handler").start("child");
                    let _attached = opentelemetry::Context::current_with_span(child).attach();
                    server_span().set_attribute(KeyValue::new("in.child", true));
                }
                let task = tokio::spawn(
                    async {
                        server_span().set_attribute(KeyValue::new("in.task", true));
                    }
                    .with_current_context(),
                );
                task.await.expect("the task ran");
                server_span().update_name("GET /users/{id} (renamed)");
                let error = std::io::Error::other("cache miss");
                server_span().record_error(&error);
                "ok"
            }),
        )
        .layer(spans.layer());
    let response = send(&app, req("/users/42").body(Body::empty()).unwrap()).await;
    assert_eq!(response.0.status, StatusCode::OK);
    let span = spans.only();
    assert_eq!(attr_str(&span, "enduser.id").as_deref(), Some("42"));
    assert_eq!(attr_str(&span, "after.await").as_deref(), Some("true"));
    assert_eq!(attr_str(&span, "in.task").as_deref(), Some("true"));
    assert_eq!(attr_str(&span, "in.child").as_deref(), Some("true"));
    assert_eq!(span.name, "GET /users/{id} (renamed)");
    assert!(
        span.events.iter().any(|e| e.name == "exception"),
        "{:?}",
        span.events
    );
    assert_eq!(span.status, Status::error("cache miss"));
}

#[test]
fn outside_a_request_the_server_span_is_a_harmless_no_op() {
    let span = server_span();
    span.set_attribute(KeyValue::new("enduser.id", "1"));
    span.record_error(&std::io::Error::other("nothing to record on"));
    assert!(!span.is_recording());
    assert!(!span.span_context().is_valid());
}

#[tokio::test]
async fn hooks_add_attributes_from_the_request_and_response_heads() {
    let spans = Spans::new();
    let layer = spans
        .builder()
        .request_attributes(|head, attrs| {
            if let Some(tenant) = head.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
                attrs.push(KeyValue::new("tenant.id", tenant.to_owned()));
            }
            attrs.push(KeyValue::new(
                "request.method.seen",
                head.method().to_string(),
            ));
        })
        .response_attributes(|head, attrs| {
            attrs.push(KeyValue::new(
                "response.status.seen",
                i64::from(head.status().as_u16()),
            ));
        })
        .build();
    let app = Router::new()
        .route("/", get(|| async { (StatusCode::ACCEPTED, "ok") }))
        .layer(layer);
    let request = req("/")
        .header("x-tenant", "acme")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.0.status, StatusCode::ACCEPTED);
    let span = spans.only();
    assert_eq!(attr_str(&span, "tenant.id").as_deref(), Some("acme"));
    assert_eq!(
        attr_str(&span, "request.method.seen").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr_str(&span, "response.status.seen").as_deref(),
        Some("202")
    );
}

#[tokio::test]
async fn a_route_extractor_names_the_route_of_another_router() {
    let spans = Spans::new();
    let layer = spans
        .builder()
        .route_extractor(|head| {
            head.uri()
                .path()
                .starts_with("/items/")
                .then_some(Cow::Borrowed("/items/{id}"))
        })
        .build();
    // A plain tower service, no axum routing: without the extractor it is unmatched.
    let service =
        tower::ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_req: http::Request<Body>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("item")))
            });
    let response = service
        .oneshot(req("/items/7").body(Body::empty()).unwrap())
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let span = spans.only();
    assert_eq!(span.name, "GET /items/{id}");
    assert_eq!(
        attr_str(&span, "http.route").as_deref(),
        Some("/items/{id}")
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_span_records_it() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/panic", get(boom))
        .route("/ok", get(|| async { "ok" }))
        .layer(spans.layer());
    let response = send(&app, req("/panic").body(Body::empty()).unwrap()).await;
    assert_eq!(response.0.status, StatusCode::INTERNAL_SERVER_ERROR);
    let span = spans.only();
    assert_eq!(
        attr_str(&span, "http.response.status_code").as_deref(),
        Some("500")
    );
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    let message = exception
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "exception.message")
        .map(|kv| kv.value.to_string());
    assert_eq!(message.as_deref(), Some("boom at 42"));
    // The router keeps serving.
    let response = send(&app, req("/ok").body(Body::empty()).unwrap()).await;
    assert_eq!(response.0.status, StatusCode::OK);

    // With the message withheld, the event says only that it was a panic.
    let spans = Spans::new();
    let app = Router::new()
        .route("/panic", get(secret))
        .layer(spans.builder().record_panic_message(false).build());
    let response = send(&app, req("/panic").body(Body::empty()).unwrap()).await;
    assert_eq!(response.0.status, StatusCode::INTERNAL_SERVER_ERROR);
    let span = spans.only();
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("event");
    assert!(
        exception
            .attributes
            .iter()
            .all(|kv| !kv.value.to_string().contains("s3cr3t")),
        "{exception:?}"
    );
}

async fn boom() -> &'static str {
    panic!("boom at {}", 42)
}

async fn secret() -> &'static str {
    panic!("secret {}", "s3cr3t")
}
