//! The trace pipeline's decisions, on the quick start as an operator sets them through the
//! environment: head sampling by ratio keeps about its share, and every error and every slow
//! request besides, each with its child spans; adaptive sampling sends about its target per
//! route; every log line keeps its trace id; `/metrics` shows the decisions and the ratios.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use sightline_tests::collector::{OtlpCollector, SpanRecord};
use sightline_tests::http::HttpClient;
use sightline_tests::logs::LogLine;
use sightline_tests::prometheus::parse_exposition;

use crate::support::{ACCESS_TARGET, USERS_ROUTE, quickstart};

const SPAN_TIMEOUT: Duration = Duration::from_secs(20);

fn server_spans_of(spans: &[SpanRecord], route: &str) -> Vec<SpanRecord> {
    spans
        .iter()
        .filter(|s| {
            s.span.kind == SpanKind::Server as i32 && s.attr_str("http.route") == Some(route)
        })
        .cloned()
        .collect()
}

/// `name{labels}` → value, from the quick start's `/metrics`, for series of `metric`.
async fn series(client: &HttpClient, url: &str, metric: &str) -> BTreeMap<String, f64> {
    let text = client.get_text(url).await;
    parse_exposition(&text)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|s| s.name == metric)
        .map(|s| (s.series_key(), s.value))
        .collect()
}

async fn get_status(client: &HttpClient, url: &str) -> u16 {
    client
        .get(url, &[])
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_is_sampled_and_every_error_and_slow_request_is_kept_with_its_children() {
    const USERS: usize = 1000;
    const ORDERS: usize = 30;
    const SLOW: usize = 10;
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ("SIGHTLINE_KEEP_SLOWER_THAN_MS", "1000"),
    ])
    .await;
    let client = HttpClient::new();
    for i in 0..USERS {
        assert_eq!(
            get_status(&client, &app.url(&format!("/users/{i}"))).await,
            200
        );
    }
    for _ in 0..ORDERS {
        assert_eq!(get_status(&client, &app.url("/orders/0")).await, 500);
    }
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            let client = client.clone();
            let url = app.url("/slow?ms=1200");
            tokio::spawn(async move { get_status(&client, &url).await })
        })
        .collect();
    for call in slow {
        assert_eq!(call.await.expect("slow call"), 200);
    }

    // Every error and every slow request, with the order's child span.
    let spans = collector
        .wait_for_span_count(
            |s| {
                s.span.kind == SpanKind::Server as i32
                    && matches!(s.attr_str("http.route"), Some("/orders/{id}" | "/slow"))
            },
            ORDERS + SLOW,
            SPAN_TIMEOUT,
        )
        .await;
    let orders = server_spans_of(&spans, "/orders/{id}");
    let slow = server_spans_of(&spans, "/slow");
    assert_eq!(orders.len(), ORDERS, "{}", collector.summary());
    assert_eq!(slow.len(), SLOW, "{}", collector.summary());
    // A second's margin for the batch holding the last ordinary spans.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = collector.spans();
    for order in &orders {
        let children: Vec<_> = all
            .iter()
            .filter(|s| s.trace_id() == order.trace_id() && s.parent_span_id() == order.span_id())
            .collect();
        assert!(
            children.iter().any(|c| c.span.name == "load order"),
            "order trace {} exported without its `load order` child: {:?}",
            order.trace_id(),
            children.iter().map(|c| &c.span.name).collect::<Vec<_>>()
        );
    }

    // About a tenth of the ordinary requests: a binomial of 1000 draws at 0.1 is within 4
    // standard deviations (±38) of 100 all but once in 15,000 runs.
    let users = server_spans_of(&all, USERS_ROUTE);
    assert!(
        (62..=138).contains(&users.len()),
        "{} of {USERS} GET /users/{{id}} exported",
        users.len()
    );

    // Every log line of every request carries a trace id, sampled or not.
    let lines: Vec<LogLine> = app
        .stdout_lines()
        .iter()
        .filter_map(|l| LogLine::parse(l.as_bytes()).ok())
        .filter(|l| l.request_id().is_some())
        .collect();
    let access = lines
        .iter()
        .filter(|l| l.target() == Some(ACCESS_TARGET))
        .count();
    assert_eq!(access, USERS + ORDERS + SLOW, "{}", app.output_report());
    let without: Vec<_> = lines
        .iter()
        .filter(|l| l.trace_id().is_none_or(|t| t.len() != 32))
        .collect();
    assert!(without.is_empty(), "lines without a trace id: {without:?}");
    let traces: HashSet<&str> = lines.iter().filter_map(LogLine::trace_id).collect();
    assert!(
        traces.len() >= USERS + ORDERS + SLOW,
        "one trace per request"
    );

    // The decisions, counted; the ratio, shown.
    let decisions = series(&client, &app.url("/metrics"), "sightline_traces_total").await;
    let decided = |d: &str| {
        decisions
            .iter()
            .find(|(k, _)| k.contains(&format!("decision=\"{d}\"")))
            .map_or(0.0, |(_, v)| *v)
    };
    #[allow(clippy::cast_precision_loss)]
    let total = (USERS + ORDERS + SLOW) as f64; // `/metrics` is a probe: no span, no decision
    assert_eq!(
        decided("sampled") + decided("kept_error") + decided("kept_slow") + decided("dropped"),
        total,
        "{decisions:?}"
    );
    #[allow(clippy::cast_precision_loss)]
    let exported_orders_and_slow = (ORDERS + SLOW) as f64;
    assert!(decided("kept_error") + decided("kept_slow") <= exported_orders_and_slow);
    assert!(decided("kept_error") >= 20.0, "{decisions:?}");
    assert!(decided("kept_slow") >= 5.0, "{decisions:?}");
    let ratio = series(
        &client,
        &app.url("/metrics"),
        "sightline_traces_sampling_ratio",
    )
    .await;
    assert_eq!(
        ratio.values().copied().collect::<Vec<_>>(),
        vec![0.1],
        "{ratio:?}"
    );
    app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_sampling_sends_about_its_target_per_route() {
    const LOAD: Duration = Duration::from_secs(6);
    const TARGET: f64 = 5.0;
    let collector = OtlpCollector::start().await;
    let endpoint = collector.grpc_endpoint();
    let mut app = quickstart(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_TRACES_SAMPLER", "parentbased_sightline_adaptive"),
        ("OTEL_TRACES_SAMPLER_ARG", "5"),
    ])
    .await;
    let client = HttpClient::new();
    let started = Instant::now();
    // The hot route: four clients back to back, bounded in time and count.
    let hot: Vec<_> = (0..4)
        .map(|worker| {
            let client = client.clone();
            let base = app.url("/users/");
            tokio::spawn(async move {
                let mut sent = 0usize;
                while started.elapsed() < LOAD && sent < 20_000 {
                    let status = get_status(&client, &format!("{base}{worker}-{sent}")).await;
                    assert_eq!(status, 200);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    // The quiet route: once a second.
    let mut quiet = 0;
    while started.elapsed() < LOAD {
        assert_eq!(
            get_status(&client, &app.url(&format!("/orders/{}", quiet + 1))).await,
            200
        );
        quiet += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut hot_sent = 0;
    for worker in hot {
        hot_sent += worker.await.expect("load worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let hot_rate = hot_sent as f64 / elapsed;
    assert!(
        hot_rate > 100.0,
        "the hot route saw only {hot_rate:.0} requests per second"
    );

    let quiet_spans = collector
        .wait_for_span_count(
            |s| {
                s.span.kind == SpanKind::Server as i32
                    && s.attr_str("http.route") == Some("/orders/{id}")
            },
            quiet,
            SPAN_TIMEOUT,
        )
        .await;
    assert_eq!(quiet_spans.len(), quiet, "the quiet route keeps everything");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hot_exported = server_spans_of(&collector.spans(), USERS_ROUTE).len();
    #[allow(clippy::cast_precision_loss)]
    let per_second = hot_exported as f64 / elapsed;
    // Close to the target: the first window's guard lets twice the target through, then the
    // probability follows the traffic.
    assert!(
        (TARGET * 0.4..=TARGET * 2.5).contains(&per_second),
        "{hot_exported} of {hot_sent} hot requests exported in {elapsed:.1} s: {per_second:.1}/s"
    );

    let ratios = series(
        &client,
        &app.url("/metrics"),
        "sightline_traces_sampling_ratio",
    )
    .await;
    let ratio = |route: &str| {
        ratios
            .iter()
            .find(|(k, _)| k.contains(&format!("route=\"{route}\"")))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no ratio for {route}: {ratios:?}"))
    };
    assert!(
        ratio(USERS_ROUTE) < 0.2 && ratio("/orders/{id}") == 1.0,
        "{ratios:?}"
    );
    app.terminate().await;
}
