//! The OpenTelemetry SDK environment variables, as an operator sets them on the quick start:
//! samplers, propagators, resource attributes, limits, exporter selection, the SDK switch, and
//! wrong values, which leave a line on stderr naming the variable while every request answers.

use std::time::Duration;

use sightline_tests::collector::{OtlpCollector, SpanRecord, Transport};
use sightline_tests::http::HttpClient;
use sightline_tests::process::ExampleProcess;
use sightline_tests::util::{random_span_id, random_trace_id};

use crate::support::{ACCESS_TARGET, json_lines, quickstart, traceparent};

const SPAN_TIMEOUT: Duration = Duration::from_secs(15);
/// Long enough for a batch scheduled every 100 ms to have gone out, had there been one.
const QUIET: Duration = Duration::from_millis(1500);

/// The quick start exporting to `collector` over gRPC every 100 ms, with `extra` variables.
async fn app_with(collector: &OtlpCollector, extra: &[(&str, &str)]) -> ExampleProcess {
    let endpoint = collector.endpoint(Transport::Grpc);
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    env.extend_from_slice(extra);
    quickstart(&env).await
}

async fn get(app: &ExampleProcess, path: &str, headers: &[(&str, &str)]) -> u16 {
    HttpClient::new()
        .get_with(&app.url(path), headers)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .status
}

/// Stops the app (SIGTERM flushes what is queued) and checks it exited by itself.
async fn stop(app: &mut ExampleProcess) {
    let (status, by_itself) = app.terminate().await;
    assert!(
        by_itself && status.success(),
        "{status}\n{}",
        app.output_report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_ratio_sampler_exports_nothing_and_lines_still_carry_trace_ids() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(
        &collector,
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    )
    .await;
    for _ in 0..5 {
        assert_eq!(get(&app, "/users/7", &[]).await, 200);
    }
    tokio::time::sleep(QUIET).await;
    stop(&mut app).await;
    assert!(
        collector.spans().is_empty(),
        "ratio 0 samples nothing: {}",
        collector.summary()
    );
    let access: Vec<_> = json_lines(&app)
        .into_iter()
        .filter(|l| l.target() == Some(ACCESS_TARGET))
        .collect();
    assert_eq!(access.len(), 5, "{}", app.output_report());
    for line in access {
        let trace_id = line.trace_id().expect("a trace id on every line");
        assert!(
            trace_id.len() == 32 && trace_id != "0".repeat(32),
            "{trace_id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b3multi_alone_ignores_traceparent_and_continues_b3() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(&collector, &[("OTEL_PROPAGATORS", "b3multi")]).await;
    let (w3c_trace, w3c_parent) = (random_trace_id(), random_span_id());
    let w3c = traceparent(&w3c_trace, &w3c_parent);
    assert_eq!(get(&app, "/users/1", &[("traceparent", &w3c)]).await, 200);
    let (b3_trace, b3_parent) = (random_trace_id(), random_span_id());
    assert_eq!(
        get(
            &app,
            "/users/2",
            &[
                ("x-b3-traceid", &b3_trace),
                ("x-b3-spanid", &b3_parent),
                ("x-b3-sampled", "1"),
            ],
        )
        .await,
        200
    );
    stop(&mut app).await;
    let server = |path: &'static str| move |s: &SpanRecord| s.attr_str("url.path") == Some(path);
    let b3 = collector
        .wait_for_spans(server("/users/2"), SPAN_TIMEOUT)
        .await;
    assert_eq!(b3.len(), 1, "{}", collector.summary());
    assert_eq!(b3[0].trace_id(), b3_trace, "X-B3-* honoured");
    assert_eq!(b3[0].parent_span_id(), b3_parent);
    let w3c = collector
        .wait_for_spans(server("/users/1"), SPAN_TIMEOUT)
        .await;
    assert_eq!(w3c.len(), 1, "{}", collector.summary());
    assert_ne!(w3c[0].trace_id(), w3c_trace, "traceparent ignored");
    assert!(w3c[0].parent_span_id().is_empty(), "a new root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_attributes_are_decoded_and_long_values_cut_to_the_limit() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(
        &collector,
        &[
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,team=a%2Cb%20c",
            ),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
        ],
    )
    .await;
    let user_agent = "a-rather-long-user-agent/1.0 (e2e; otel_env)";
    assert_eq!(
        get(&app, "/users/3", &[("user-agent", user_agent)]).await,
        200
    );
    stop(&mut app).await;
    let spans = collector
        .wait_for_spans(|s| s.attr_str("url.path") == Some("/users/3"), SPAN_TIMEOUT)
        .await;
    assert_eq!(spans.len(), 1, "{}", collector.summary());
    let span = &spans[0];
    assert_eq!(
        span.attr_str("user_agent.original"),
        Some(&user_agent[..16]),
        "cut to 16 characters"
    );
    assert_eq!(span.resource_str("deployment.environment"), Some("prod"));
    assert_eq!(span.resource_str("team"), Some("a,b c"), "percent-decoded");
    assert_eq!(span.resource_str("service.name"), Some("quickstart"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_long_values_are_cut_at_8192_characters_and_marked() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(&collector, &[]).await;
    let user_agent = format!("ua/{}", "é".repeat(10_000));
    assert_eq!(
        get(&app, "/users/12", &[("user-agent", &user_agent)]).await,
        200
    );
    stop(&mut app).await;
    let spans = collector
        .wait_for_spans(
            |s| s.attr_str("url.path") == Some("/users/12"),
            SPAN_TIMEOUT,
        )
        .await;
    assert_eq!(spans.len(), 1, "{}", collector.summary());
    let exported = spans[0]
        .attr_str("user_agent.original")
        .expect("a user agent");
    assert_eq!(exported.chars().count(), 8192);
    assert!(exported.ends_with("…[truncated]"), "marked");
    assert!(user_agent.starts_with(exported.trim_end_matches("…[truncated]")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_disabled_exports_nothing_while_ids_metrics_and_lines_work() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(&collector, &[("OTEL_SDK_DISABLED", "true")]).await;
    let response = HttpClient::new()
        .get_with(&app.url("/users/4"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200);
    assert_eq!(response.header_all("x-request-id").len(), 1);
    let metrics = HttpClient::new()
        .get_with(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let exposition = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        exposition.contains("http_server_request_duration_seconds_count"),
        "{exposition}"
    );
    tokio::time::sleep(QUIET).await;
    stop(&mut app).await;
    assert!(collector.spans().is_empty(), "{}", collector.summary());
    assert_eq!(
        collector.connections(Transport::Grpc),
        0,
        "no exporter, not even a connection"
    );
    assert!(
        json_lines(&app)
            .iter()
            .any(|l| l.target() == Some(ACCESS_TARGET)),
        "{}",
        app.output_report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traces_exporter_none_exports_nothing() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(&collector, &[("OTEL_TRACES_EXPORTER", "none")]).await;
    assert_eq!(get(&app, "/users/5", &[]).await, 200);
    tokio::time::sleep(QUIET).await;
    stop(&mut app).await;
    assert!(collector.spans().is_empty(), "{}", collector.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_values_leave_a_line_naming_them_and_the_defaults_apply() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(
        &collector,
        &[
            ("OTEL_TRACES_SAMPLER", "bogus"),
            ("OTEL_PROPAGATORS", "tracecontext,xray"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=a,broken"),
            ("OTEL_SDK_DISABLED", "perhaps"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "yes"),
        ],
    )
    .await;
    let (trace, parent) = (random_trace_id(), random_span_id());
    assert_eq!(
        get(
            &app,
            "/users/6",
            &[("traceparent", &traceparent(&trace, &parent))]
        )
        .await,
        200
    );
    stop(&mut app).await;
    let stderr = app.stderr_lines().join("\n");
    for named in [
        "OTEL_TRACES_SAMPLER=\"bogus\"",
        "OTEL_PROPAGATORS=\"xray\"",
        "OTEL_BSP_MAX_QUEUE_SIZE=\"lots\"",
        "OTEL_RESOURCE_ATTRIBUTES=\"team=a,broken\"",
        "OTEL_SDK_DISABLED=\"perhaps\"",
        "OTEL_EXPORTER_OTLP_INSECURE=\"yes\"",
    ] {
        assert!(stderr.contains(named), "no line names {named}:\n{stderr}");
    }
    let spans = collector
        .wait_for_spans(|s| s.trace_id() == trace, SPAN_TIMEOUT)
        .await;
    assert_eq!(
        spans.len(),
        1,
        "the default sampler: {}",
        collector.summary()
    );
    assert_eq!(spans[0].resource_str("team"), None, "discarded whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_compression_over_both_protocols() {
    for (transport, protocol, header) in [
        (Transport::Grpc, "grpc", "grpc-encoding"),
        (Transport::HttpProtobuf, "http/protobuf", "content-encoding"),
    ] {
        let collector = OtlpCollector::start().await;
        let endpoint = collector.endpoint(transport);
        let mut app = quickstart(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ])
        .await;
        let (trace, parent) = (random_trace_id(), random_span_id());
        assert_eq!(
            get(
                &app,
                "/users/8",
                &[("traceparent", &traceparent(&trace, &parent))]
            )
            .await,
            200
        );
        stop(&mut app).await;
        let spans = collector
            .wait_for_spans(|s| s.trace_id() == trace, SPAN_TIMEOUT)
            .await;
        assert_eq!(spans.len(), 1, "{protocol}: {}", collector.summary());
        assert!(
            collector.rejected().is_empty(),
            "{:?}",
            collector.rejected()
        );
        let encodings: Vec<String> = collector
            .trace_requests()
            .iter()
            .map(|r| {
                r.headers
                    .get(header)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned()
            })
            .collect();
        assert!(
            !encodings.is_empty() && encodings.iter().all(|e| e == "gzip"),
            "{protocol}: {header} of each export: {encodings:?}"
        );
    }
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("TLS fixture")
}

/// One traced request to an app exporting with `env`; whether its span reached `collector`.
async fn exported(collector: &OtlpCollector, env: &[(&str, &str)], quiet: bool) -> bool {
    let mut env = env.to_vec();
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100"));
    let mut app = quickstart(&env).await;
    let (trace, parent) = (random_trace_id(), random_span_id());
    assert_eq!(
        get(
            &app,
            "/users/9",
            &[("traceparent", &traceparent(&trace, &parent))]
        )
        .await,
        200,
        "the service answers whatever the collector does"
    );
    if quiet {
        tokio::time::sleep(QUIET).await;
    }
    stop(&mut app).await;
    let wait = if quiet { Duration::ZERO } else { SPAN_TIMEOUT };
    !collector
        .wait_for_spans(|s| s.trace_id() == trace, wait)
        .await
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_to_an_https_collector_with_a_private_ca() {
    let collector =
        OtlpCollector::start_tls(&read_fixture("server.pem"), &read_fixture("server.key")).await;
    let endpoint = collector.http_tls_endpoint();
    let ca = fixture("ca.pem");
    let base = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ];
    assert!(
        !exported(&collector, &base, true).await,
        "the system roots do not vouch for the test CA: {}",
        collector.summary()
    );
    let mut trusted = base.to_vec();
    trusted.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()));
    assert!(
        exported(&collector, &trusted, false).await,
        "{}",
        collector.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_over_both_protocols() {
    let collector = OtlpCollector::start_mtls(
        &read_fixture("server.pem"),
        &read_fixture("server.key"),
        &read_fixture("client-ca.pem"),
    )
    .await;
    let (ca, cert, key) = (
        fixture("ca.pem"),
        fixture("client.pem"),
        fixture("client.key"),
    );
    for (protocol, endpoint) in [
        ("grpc", collector.grpc_tls_endpoint()),
        ("http/protobuf", collector.http_tls_endpoint()),
    ] {
        let base = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()),
        ];
        assert!(
            !exported(&collector, &base, true).await,
            "{protocol}: no client certificate, no export: {}",
            collector.summary()
        );
        let mut identified = base.to_vec();
        identified.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert.as_str()));
        identified.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", key.as_str()));
        assert!(
            exported(&collector, &identified, false).await,
            "{protocol}: {}",
            collector.summary()
        );
    }
}

/// A hostile client sends 390 KB user agents: the batch holding their spans would encode to
/// far more than the receiver's 4 MiB message limit (tonic's default, the Collector's too),
/// so the exporter sends it as several requests under the limit, and the ordinary requests'
/// spans arrive with the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_spans_do_not_take_their_batch_mates_down() {
    let collector = OtlpCollector::start().await;
    // Above the user agents' length: the default limit would cut them to 8192 characters.
    let mut app = app_with(
        &collector,
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1048576"),
        ],
    )
    .await;
    let huge = "h".repeat(390 * 1024);
    let client = HttpClient::new();
    let mut ordinary = Vec::new();
    for i in 0..52 {
        if i % 4 == 0 && ordinary.len() < 12 {
            let (trace, parent) = (random_trace_id(), random_span_id());
            assert_eq!(
                get(
                    &app,
                    "/users/10",
                    &[("traceparent", &traceparent(&trace, &parent))]
                )
                .await,
                200
            );
            ordinary.push(trace);
        } else {
            let response = client
                .get_with(&app.url("/users/11"), &[("user-agent", &huge)])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status, 200);
        }
    }
    // One batch, exported at shutdown.
    stop(&mut app).await;
    let spans = collector
        .wait_for_span_count(|s| ordinary.contains(&s.trace_id()), 12, SPAN_TIMEOUT)
        .await;
    assert_eq!(
        spans.len(),
        12,
        "every ordinary span arrives: {}",
        collector.summary()
    );
    assert!(
        collector.rejected().is_empty(),
        "no request over the limit: {:?}",
        collector.rejected()
    );
    assert!(
        collector.trace_requests().len() > 1,
        "split into several requests"
    );
    // The access lines stay within what log pipelines take (Loki: 256 KB a line).
    let longest = app.stdout_raw().iter().map(Vec::len).max().unwrap_or(0);
    assert!(longest < 64 * 1024, "a {longest}-byte line");
    let cut: Vec<_> = json_lines(&app)
        .into_iter()
        .filter(|l| l.target() == Some(ACCESS_TARGET))
        .filter_map(|l| l.field_text("user_agent.original"))
        .filter(|ua| ua.ends_with("…[truncated]"))
        .collect();
    assert_eq!(cut.len(), 40, "every huge user agent cut and marked");
}

/// The semantic conventions' duration buckets, as the OTLP histograms must carry them.
const DURATION_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// `OTEL_METRICS_EXPORTER=otlp` pushes the RED metrics every `OTEL_METRIC_EXPORT_INTERVAL`
/// with the OpenTelemetry names, units and bucket boundaries, over either protocol, and
/// `/metrics` no longer lists them (the list leaves `prometheus` out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_carry_the_opentelemetry_names_units_and_buckets() {
    use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    for transport in [Transport::Grpc, Transport::HttpProtobuf] {
        let collector = OtlpCollector::start().await;
        let endpoint = collector.endpoint(transport);
        let protocol = match transport {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
        };
        let mut app = quickstart(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ])
        .await;
        for _ in 0..3 {
            assert_eq!(get(&app, "/users/7", &[]).await, 200);
        }
        assert_eq!(get(&app, "/fail", &[]).await, 500);

        let duration = collector
            .wait_for_metric(
                |m| {
                    m.metric.name == "http.server.request.duration"
                        && m.histogram_points(&[("http.route", "/fail")]).len() == 1
                },
                SPAN_TIMEOUT,
            )
            .await
            .unwrap_or_else(|| panic!("{protocol}: no duration: {}", collector.summary()));
        assert_eq!(duration.transport, transport);
        assert_eq!(duration.metric.unit, "s");
        assert_eq!(duration.resource_str("service.name"), Some("quickstart"));
        assert_eq!(
            duration.scope.as_ref().map(|s| s.name.as_str()),
            Some("sightline")
        );
        let Some(Data::Histogram(histogram)) = &duration.metric.data else {
            panic!("not a histogram: {:?}", duration.metric);
        };
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let users = duration.histogram_points(&[
            ("http.route", "/users/{id}"),
            ("http.request.method", "GET"),
        ]);
        assert_eq!(users.len(), 1, "{:?}", duration.metric);
        assert_eq!(users[0].count, 3);
        assert_eq!(users[0].explicit_bounds, DURATION_BOUNDS);
        assert_eq!(users[0].bucket_counts.len(), DURATION_BOUNDS.len() + 1);
        let failed = duration.histogram_points(&[("http.route", "/fail"), ("error.type", "500")]);
        assert_eq!(failed.len(), 1, "{:?}", duration.metric);

        let active = collector
            .wait_for_metric(
                |m| m.metric.name == "http.server.active_requests",
                SPAN_TIMEOUT,
            )
            .await
            .expect("active requests");
        assert_eq!(active.metric.unit, "{request}");
        assert!(
            matches!(&active.metric.data, Some(Data::Sum(sum)) if !sum.is_monotonic),
            "an up-down counter: {:?}",
            active.metric
        );

        let exposition = HttpClient::new()
            .get(&app.url("/metrics"), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exposition.status, 200);
        assert!(
            !exposition.text().contains("http_server_request_duration"),
            "`otlp` alone leaves Prometheus out: {}",
            exposition.text()
        );
        stop(&mut app).await;
    }
}

/// `otlp,prometheus`: the same requests are pushed and scraped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_and_prometheus_metrics_side_by_side() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(
        &collector,
        &[
            ("OTEL_METRICS_EXPORTER", "otlp,prometheus"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    )
    .await;
    for _ in 0..2 {
        assert_eq!(get(&app, "/users/7", &[]).await, 200);
    }
    let pushed = collector
        .wait_for_metric(
            |m| {
                m.histogram_points(&[("http.route", "/users/{id}")])
                    .first()
                    .is_some_and(|p| p.count == 2)
            },
            SPAN_TIMEOUT,
        )
        .await;
    assert!(pushed.is_some(), "{}", collector.summary());
    let exposition = HttpClient::new()
        .get(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let scraped = exposition.text().lines().any(|l| {
        l.starts_with("http_server_request_duration_seconds_count{")
            && l.contains("http_route=\"/users/{id}\"")
            && l.ends_with(" 2")
    });
    assert!(scraped, "{}", exposition.text());
    stop(&mut app).await;
}

/// `OTEL_TRACES_EXPORTER=console`: each span as a JSON line on stderr, and only there (the
/// list names every exporter, so the endpoint set gets nothing); stdout stays JSON log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_traces_exporter_prints_spans_on_stderr() {
    let collector = OtlpCollector::start().await;
    let mut app = app_with(&collector, &[("OTEL_TRACES_EXPORTER", "console")]).await;
    let (trace_id, parent_id) = (random_trace_id(), random_span_id());
    let tp = traceparent(&trace_id, &parent_id);
    assert_eq!(get(&app, "/users/7", &[("traceparent", &tp)]).await, 200);
    stop(&mut app).await;
    let spans: Vec<serde_json::Value> = app
        .stderr_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|span| span["trace_id"] == trace_id.as_str())
        .collect();
    let server = spans
        .iter()
        .find(|s| s["kind"] == "server")
        .unwrap_or_else(|| panic!("no server span on stderr\n{}", app.output_report()));
    assert_eq!(server["name"], "GET /users/{id}");
    assert_eq!(server["parent_span_id"], parent_id.as_str());
    assert_eq!(server["service.name"], "quickstart");
    assert_eq!(server["attributes"]["http.route"], "/users/{id}");
    let _ = json_lines(&app); // every stdout line is still one JSON object
    assert!(collector.spans().is_empty(), "{}", collector.summary());
}
