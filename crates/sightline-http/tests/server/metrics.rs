use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::StatusCode;
use tower::{Service as _, ServiceExt as _};

use crate::support::{Spans, get as get_req, prometheus, sample, send};

#[tokio::test]
async fn red_metrics_carry_the_semantic_convention_labels() {
    let spans = Spans::new();
    let app = Router::new()
        .route("/red/{id}", get(|| async { "ok" }))
        .route(
            "/red-fail",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(spans.layer());
    for i in 0..5 {
        send(
            &app,
            get_req(&format!("/red/{i}")).body(Body::empty()).unwrap(),
        )
        .await;
    }
    send(&app, get_req("/red-fail").body(Body::empty()).unwrap()).await;

    let text = prometheus().render();
    let ok = [
        ("http_request_method", "GET"),
        ("http_route", "/red/{id}"),
        ("http_response_status_code", "200"),
        ("url_scheme", "http"),
    ];
    assert_eq!(
        sample(&text, "http_server_request_duration_seconds_count", &ok),
        Some(5.0)
    );
    let le: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("http_server_request_duration_seconds_bucket{")
                && l.contains("http_route=\"/red/{id}\"")
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        le,
        [
            "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5",
            "5", "7.5", "10", "+Inf"
        ]
    );
    assert!(
        !text.contains("error_type=\"500\"")
            || sample(
                &text,
                "http_server_request_duration_seconds_count",
                &[
                    ("http_route", "/red-fail"),
                    ("http_response_status_code", "500"),
                    ("error_type", "500")
                ]
            ) == Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "http_server_request_duration_seconds_count",
            &[("http_route", "/red-fail"), ("error_type", "500")]
        ),
        Some(1.0)
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("/red/{id}") && l.contains("error_type")),
        "no error_type on successes"
    );
}

/// A scan of a million random paths must not add a series: every unmatched request is
/// labelled with the one fixed route value.
#[tokio::test]
async fn a_million_random_paths_add_no_series() {
    let layer = sightline_http::ServerLayer::builder()
        .access_log(false)
        .build();
    prometheus();
    let app = Router::new()
        .route("/scan-known", get(|| async { "ok" }))
        .layer(layer);
    let series = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains("http_route=\"unmatched\""))
            .count()
    };

    let mut svc = app.into_service::<Body>();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut baseline = None;
    for i in 0..1_000_000u32 {
        // xorshift: a different random path each time, no allocation beyond the URI.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let uri = format!("/scan/{state:x}/{i}");
        let response = svc
            .ready()
            .await
            .unwrap()
            .call(http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        if i == 0 {
            baseline = Some(series(&prometheus().render()));
        }
    }
    let after = series(&prometheus().render());
    assert_eq!(Some(after), baseline, "random paths added series");
    assert!(after > 0);
}
