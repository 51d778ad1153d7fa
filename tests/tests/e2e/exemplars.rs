//! Exemplars, end to end: the quick start's `/metrics` answers OpenMetrics when asked, its
//! duration buckets carry the trace of a sampled request, a real Prometheus (with
//! `--enable-feature=exemplar-storage`) stores them, and every trace id it returns is one the
//! OTLP collector received, on the span of that request. The text format stays what promtool
//! accepts, and unsampled requests never become exemplars.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::Value;
use sightline_tests::collector::OtlpCollector;
use sightline_tests::http::HttpClient;
use sightline_tests::prometheus::{Prometheus, openmetrics_check, promtool_check_metrics};

use crate::support::quickstart;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";
const SPAN_TIMEOUT: Duration = Duration::from_secs(20);

async fn get(client: &HttpClient, url: &str) {
    let response = client.get(url, &[]).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        [200, 500].contains(&response.status),
        "GET {url}: {}",
        response.status
    );
}

/// `/metrics` as Prometheus asks for it: (content type, body).
async fn scrape_openmetrics(client: &HttpClient, url: &str) -> (String, String) {
    let response = client
        .get_with(url, &[("accept", OPENMETRICS)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200);
    let content_type = response.header("content-type").unwrap_or_default();
    (content_type, response.text())
}

/// The exemplars of the report of [`openmetrics_check`] on `sample`: (trace id, span id).
fn exemplar_ids(report: &Value, sample: &str) -> Vec<(String, String)> {
    report["exemplars"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["sample"] == sample)
        .map(|e| {
            (
                e["exemplar_labels"]["trace_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["exemplar_labels"]["span_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_exemplars_whose_traces_the_collector_received() {
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ])
    .await;
    let prometheus = Prometheus::start(app.addr(), "/metrics").await;
    let client = HttpClient::new();
    for i in 0..20 {
        get(&client, &app.url(&format!("/users/{i}"))).await;
    }
    for _ in 0..3 {
        get(&client, &app.url("/fail")).await;
    }
    // The outgoing reqwest call of /proxy: the client histogram's exemplar.
    get(&client, &app.url("/proxy/users/5")).await;

    // What Prometheus is served: OpenMetrics, valid for the reference parser, with exemplars
    // on the server and client duration buckets; the text format passes promtool.
    let (content_type, body) = scrape_openmetrics(&client, &app.url("/metrics")).await;
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let report = openmetrics_check(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert_eq!(report["families"]["target"], "info", "{body}");
    assert!(
        body.contains("target_info{") && body.contains("service_name=\"quickstart\""),
        "{body}"
    );
    let server = exemplar_ids(&report, "http_server_request_duration_seconds_bucket");
    let client_side = exemplar_ids(&report, "http_client_request_duration_seconds_bucket");
    assert!(!server.is_empty(), "no server exemplar:\n{body}");
    assert!(!client_side.is_empty(), "no client exemplar:\n{body}");
    for line in body.lines().filter(|l| l.contains(" # {")) {
        let labels = &line[line.find(" # {").expect("exemplar") + 3..];
        let labels = &labels[..=labels.find('}').expect("closed")];
        assert!(labels.len() <= 128, "exemplar labels over budget: {line}");
        assert!(line.contains("_bucket{"), "exemplar off a bucket: {line}");
    }
    let text = client
        .get(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        text.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        text.header("content-type")
    );
    assert!(
        !text.text().contains(" # {"),
        "exemplars in the text format"
    );
    promtool_check_metrics(&text.text()).unwrap_or_else(|e| panic!("{e}"));

    // Prometheus stores them, and each is the trace and span of a request it exported.
    let done = SystemTime::now() + Duration::from_millis(200);
    prometheus
        .wait_for_scrape_after(done, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prometheus.log()));
    let stored = prometheus
        .query_exemplars("http_server_request_duration_seconds_bucket")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stored: Vec<(String, String, String)> = stored
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| {
            let route = series["seriesLabels"]["http_route"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            series["exemplars"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |e| {
                    (
                        route.clone(),
                        e["labels"]["trace_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        e["labels"]["span_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
        })
        .collect();
    let routes: BTreeSet<&str> = stored.iter().map(|(r, _, _)| r.as_str()).collect();
    assert!(
        routes.contains("/users/{id}") && routes.contains("/fail"),
        "stored exemplars by route: {stored:?}\nprometheus log:\n{}",
        prometheus.log()
    );
    let wanted: BTreeSet<String> = stored.iter().map(|(_, t, _)| t.clone()).collect();
    let spans = collector
        .wait_for_spans(|s| wanted.contains(&s.trace_id()), SPAN_TIMEOUT)
        .await;
    let received: HashMap<String, (String, String)> = spans
        .iter()
        .filter(|s| s.span.kind == SpanKind::Server as i32 && wanted.contains(&s.trace_id()))
        .map(|s| {
            (
                s.span_id(),
                (
                    s.trace_id(),
                    s.attr_str("http.route").unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect();
    for (route, trace_id, span_id) in &stored {
        assert_eq!(
            received.get(span_id),
            Some(&(trace_id.clone(), route.clone())),
            "exemplar {trace_id}/{span_id} on {route} is not a server span the collector \
             received: {}",
            collector.summary()
        );
    }
    app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsampled_requests_never_become_exemplars() {
    let mut app = quickstart(&[("OTEL_TRACES_SAMPLER", "always_off")]).await;
    let client = HttpClient::new();
    for i in 0..10 {
        get(&client, &app.url(&format!("/users/{i}"))).await;
    }
    let (_, body) = scrape_openmetrics(&client, &app.url("/metrics")).await;
    let report = openmetrics_check(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(
        body.contains("http_server_request_duration_seconds_count{"),
        "the requests are counted:\n{body}"
    );
    assert_eq!(
        report["exemplars"].as_array().map(Vec::len),
        Some(0),
        "{body}"
    );
    app.terminate().await;
}
