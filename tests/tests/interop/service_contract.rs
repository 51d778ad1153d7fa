//! The W3C test-harness contract of the test service: calls made in order with `arguments` as
//! a JSON body, one trace for all of them, 400 for a body that is not such an array, and 200
//! (with a WARN line) when a call fails.

use std::time::Duration;

use sightline_tests::logs::LogLine;
use sightline_tests::util::{free_addr, random_span_id, random_trace_id};

use crate::support::{EchoServer, Traceparent, calls_body, post_test, test_service};

#[tokio::test]
async fn calls_are_made_in_order_with_their_arguments_in_one_trace() {
    let echo = EchoServer::start().await;
    let service = test_service(&[]).await;
    let (trace_id, parent_id) = (random_trace_id(), random_span_id());
    let urls: Vec<String> = (0..3).map(|i| echo.url(&format!("/call-{i}"))).collect();
    let arguments = serde_json::json!([1, "two", {"three": [3]}]);
    let response = post_test(
        &service,
        &[("traceparent", &format!("00-{trace_id}-{parent_id}-01"))],
        &calls_body(&urls, &arguments),
    )
    .await;
    assert_eq!(response.status, 200, "{}", service.output_report());

    // The answer comes once every call is done, so all three are recorded already.
    let received = echo.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/call-0", "/call-1", "/call-2"]);
    let mut parents = Vec::new();
    for call in &received {
        assert_eq!(call.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&call.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", call.body));
        assert_eq!(body, arguments);
        let sent = call
            .header("traceparent")
            .and_then(Traceparent::parse)
            .unwrap_or_else(|| panic!("no valid traceparent in {:?}", call.headers));
        assert_eq!(sent.trace_id, trace_id);
        parents.push(sent.parent_id);
    }
    // Each call is its own CLIENT span: three different parents, none of them the caller's.
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 3, "{parents:?}");
    assert!(!parents.contains(&parent_id));
}

#[tokio::test]
async fn a_body_that_is_not_an_array_of_calls_is_a_400() {
    let echo = EchoServer::start().await;
    let service = test_service(&[]).await;
    let url = echo.url("/never");
    let bad = [
        "not json".to_owned(),
        r#"{"url": "x", "arguments": []}"#.to_owned(),
        serde_json::json!([{ "url": url }]).to_string(),
        serde_json::json!([{ "url": url, "arguments": {} }]).to_string(),
        serde_json::json!([{ "url": 7, "arguments": [] }]).to_string(),
        serde_json::json!([{ "url": url, "arguments": [] }, 3]).to_string(),
    ];
    for body in &bad {
        let response = post_test(&service, &[], body).await;
        assert_eq!(response.status, 400, "body {body}");
    }
    assert!(echo.received().is_empty(), "{:?}", echo.received());

    let response = post_test(&service, &[], "[]").await;
    assert_eq!(
        response.status, 200,
        "an empty array is a valid, empty list of calls"
    );
}

#[tokio::test]
async fn a_failed_call_is_logged_at_warn_and_the_answer_is_still_200() {
    let echo = EchoServer::start().await;
    let service = test_service(&[]).await;
    // Nothing listens there: the connection is refused.
    let dead = format!("http://{}/dead", free_addr());
    let urls = [dead.clone(), echo.url("/alive")];
    let response = post_test(&service, &[], &calls_body(&urls, &serde_json::json!([]))).await;
    assert_eq!(response.status, 200, "{}", service.output_report());
    assert_eq!(
        echo.received().len(),
        1,
        "the call after the failed one is still made"
    );

    let warn = service
        .wait_for_stdout(
            |l| {
                LogLine::parse(l.as_bytes()).is_ok_and(|l| {
                    l.top_str("level") == Some("WARN")
                        && l.field_text("url").as_deref() == Some(dead.as_str())
                })
            },
            Duration::from_secs(5),
        )
        .await;
    assert!(
        warn.is_some(),
        "no WARN line for {dead}\n{}",
        service.output_report()
    );
}
