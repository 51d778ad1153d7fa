//! A real Prometheus scrapes the quick-start example: every request is counted once, under
//! its route template, with the documented buckets and labels, and the exposition passes
//! `promtool check metrics`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use sightline_tests::http::HttpClient;
use sightline_tests::prometheus::{
    Prometheus, label_values, parse_exposition, parse_prometheus_float, promtool_check_metrics,
    sample_value, scalar,
};

use crate::support::{USERS_ROUTE, quickstart};

const USERS: usize = 37;
const FAILS: usize = 3;
const UNMATCHED: usize = 5;
/// The semantic conventions' advice for `http.server.request.duration`, plus `+Inf`.
const BUCKETS: [f64; 15] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    f64::INFINITY,
];

async fn scalar_of(prometheus: &Prometheus, promql: &str) -> Option<f64> {
    let result = prometheus
        .query(promql)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    scalar(&result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_every_request_under_its_route() {
    let app = quickstart(&[]).await;
    let prometheus = Prometheus::start(app.addr(), "/metrics").await;
    let client = HttpClient::new();

    for i in 0..USERS {
        let r = client
            .get(&app.url(&format!("/users/{i}")), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "GET /users/{i}: {}", r.text());
    }
    for _ in 0..FAILS {
        let r = client
            .get(&app.url("/fail"), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 500, "GET /fail: {}", r.text());
    }
    for i in 0..UNMATCHED {
        let r = client
            .get(&app.url(&format!("/no/such/page-{i}")), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 404, "GET /no/such/page-{i}");
    }
    // A scrape that starts after the last response sees every request; the margin covers the
    // end-of-body bookkeeping that may follow the last byte on the wire.
    let done = SystemTime::now() + Duration::from_millis(200);
    prometheus
        .wait_for_scrape_after(done, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prometheus.log()));

    let users = scalar_of(
        &prometheus,
        r#"sum(http_server_request_duration_seconds_count{http_route="/users/{id}"})"#,
    )
    .await;
    assert_eq!(
        users,
        Some(USERS as f64),
        "requests counted under /users/{{id}}"
    );

    let users_ok = scalar_of(
        &prometheus,
        r#"sum(http_server_request_duration_seconds_count{http_route="/users/{id}",http_request_method="GET",http_response_status_code="200",url_scheme="http"})"#,
    )
    .await;
    assert_eq!(
        users_ok,
        Some(USERS as f64),
        "GET /users/{{id}} counted with method GET, status 200, scheme http"
    );

    let users_errors = prometheus
        .query(r#"http_server_request_duration_seconds_count{http_route="/users/{id}",error_type!=""}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        users_errors,
        serde_json::json!([]),
        "successful requests carry no error_type"
    );

    let buckets = prometheus
        .query(r#"http_server_request_duration_seconds_bucket{http_route="/users/{id}"}"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let les: Vec<String> = label_values(&buckets, "le");
    let mut parsed: Vec<f64> = les
        .iter()
        .map(|le| parse_prometheus_float(le).unwrap_or_else(|| panic!("le={le:?} is no number")))
        .collect();
    parsed.sort_by(f64::total_cmp);
    parsed.dedup();
    assert_eq!(
        parsed, BUCKETS,
        "le labels of /users/{{id}} (as scraped: {les:?})"
    );
    let inf_bucket = buckets
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["metric"]["le"] == "+Inf")
        .and_then(sample_value);
    assert_eq!(
        inf_bucket,
        Some(USERS as f64),
        "+Inf bucket equals the count"
    );

    let fails = scalar_of(
        &prometheus,
        r#"sum(http_server_request_duration_seconds_count{http_route="/fail",http_response_status_code="500",error_type="500"})"#,
    )
    .await;
    assert_eq!(
        fails,
        Some(FAILS as f64),
        "/fail counted with status 500 and error_type 500"
    );
    let fails_any = scalar_of(
        &prometheus,
        r#"sum(http_server_request_duration_seconds_count{http_route="/fail"})"#,
    )
    .await;
    assert_eq!(
        fails_any,
        Some(FAILS as f64),
        "every /fail request is counted once"
    );

    let unmatched = scalar_of(
        &prometheus,
        r#"sum(http_server_request_duration_seconds_count{http_route="unmatched",http_response_status_code="404"})"#,
    )
    .await;
    assert_eq!(
        unmatched,
        Some(UNMATCHED as f64),
        "unmatched paths counted as http_route=\"unmatched\""
    );

    let routes: BTreeSet<String> = label_values(
        &prometheus
            .query("http_server_request_duration_seconds_count")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "http_route",
    )
    .into_iter()
    .collect();
    let allowed: BTreeSet<String> = [USERS_ROUTE, "/fail", "/metrics", "/healthz", "unmatched"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(
        routes.is_subset(&allowed),
        "route labels are templates only, got {routes:?}"
    );

    // Exposed while the scrape itself is in flight: that one request, and no leaked ones.
    let active = scalar_of(
        &prometheus,
        r#"sum(http_server_active_requests{http_request_method="GET",url_scheme="http"})"#,
    )
    .await;
    assert_eq!(
        active,
        Some(1.0),
        "http_server_active_requests while only the scrape is in flight"
    );

    let text = client.get_text(&app.url("/metrics")).await;
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let active_now: f64 = samples
        .iter()
        .filter(|s| s.name == "http_server_active_requests")
        .map(|s| s.value)
        .sum();
    assert_eq!(
        active_now, 1.0,
        "active requests in our own /metrics fetch (only itself)"
    );
    let durations: f64 = samples
        .iter()
        .filter(|s| {
            s.name == "http_server_request_duration_seconds_sum"
                && s.label("http_route") == Some(USERS_ROUTE)
        })
        .map(|s| s.value)
        .sum();
    assert!(
        durations > 0.0 && durations < USERS as f64,
        "sum of durations for {USERS} fast requests: {durations} s"
    );

    if let Err(problems) = promtool_check_metrics(&text) {
        panic!("{problems}\n--- exposition ---\n{text}");
    }
}

/// Runtime and process metrics sit beside the RED metrics, and the exposition stays valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_and_process_metrics_are_exposed_beside_the_red_metrics() {
    let mut app = crate::support::quickstart(&[]).await;
    let text = sightline_tests::http::HttpClient::new()
        .get(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
        "process_start_time_seconds",
        "tokio_workers",
        "tokio_alive_tasks",
        "tokio_global_queue_depth",
        "tokio_worker_busy_time_seconds",
        "tokio_worker_parks_total",
    ] {
        let value = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        assert!(value >= 0.0, "{name} = {value}");
    }
    sightline_tests::prometheus::promtool_check_metrics(&text)
        .unwrap_or_else(|e| panic!("promtool: {e}"));
    app.terminate().await;
}
