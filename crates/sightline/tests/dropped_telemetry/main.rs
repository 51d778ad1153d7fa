//! Spans and log records that never reach the collector are counted, never lost silently:
//! against a dead collector with a small export queue, every span and record ends up in
//! `sightline_telemetry_dropped_total`, as `queue_full` (refused at once: the request never
//! waits) or `export_failed` (queued, then refused by the network).

use std::time::{Duration, Instant};

use opentelemetry::trace::{Tracer as _, TracerProvider as _};

const SPANS: u64 = 200;

fn dropped(text: &str, signal: &str, reason: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("sightline_telemetry_dropped_total{"))
        .find(|l| {
            l.contains(&format!("signal=\"{signal}\""))
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn telemetry_lost_to_a_dead_collector_is_counted() {
    // A port nothing listens on: every export is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The gRPC exporter is built inside a runtime.
    let _entered = runtime.enter();
    let sightline = sightline::Sightline::builder()
        .service_name("dropped-telemetry")
        .otlp_endpoint(format!("http://127.0.0.1:{port}"))
        .otlp_timeout(Duration::from_millis(200))
        .export_interval(Duration::from_millis(20))
        .export_queue_size(16)
        .otlp_logs(true)
        .log_filter("info")
        .log_writer(std::io::sink)
        .build()
        .expect("builds");

    let tracer = sightline.tracer_provider().tracer("dropped");
    let started = Instant::now();
    for i in 0..SPANS {
        tracer.in_span("lost", |_| {
            tracing::info!(i, "a record for a dead collector")
        });
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a dead collector never blocks the caller: {:?}",
        started.elapsed()
    );
    let _ = sightline.force_flush();

    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut spans, mut logs) = ((0, 0), (0, 0));
    while Instant::now() < deadline {
        let text = sightline.render_metrics();
        spans = (
            dropped(&text, "spans", "queue_full"),
            dropped(&text, "spans", "export_failed"),
        );
        logs = (
            dropped(&text, "logs", "queue_full"),
            dropped(&text, "logs", "export_failed"),
        );
        if spans.0 + spans.1 == SPANS && logs.0 + logs.1 >= SPANS {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        spans.0 + spans.1,
        SPANS,
        "every span is counted once: {spans:?}"
    );
    assert!(spans.0 > 0 && spans.1 > 0, "both reasons seen: {spans:?}");
    assert!(
        logs.0 + logs.1 >= SPANS,
        "every record is counted: {logs:?}"
    );
    assert!(logs.0 > 0, "{logs:?}");
    let _ = sightline.shutdown();
}
