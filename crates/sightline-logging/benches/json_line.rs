//! Cost of one JSON log line: `JsonLayer` against tracing-subscriber's JSON fmt layer.
//!
//! Each iteration emits one INFO event with three fields (u64, f64, Display string) and a
//! message, inside an entered span carrying `trace_id`, `span_id`, `trace_flags` and
//! `request_id` (as the Sightline HTTP middleware records them). Both layers write to
//! `std::io::sink`, so the figure is formatting cost without I/O. A registry with no layer
//! is measured as the baseline of `tracing` itself.
//!
//! A second group measures a request's worth of span work: create the span, record a field
//! later (as the middleware records the status code), emit one event, close the span.
//!
//! Run: `cargo bench -p sightline-logging --bench json_line`
//!
//! Last result (2-core shared VM, 2026-11-25, rustc 1.95, criterion medians of two runs; the
//! machine is noisy, so read these as ranges):
//!
//! | group | sightline_json | fmt_json | registry_only |
//! |---|---|---|---|
//! | event_in_span | 0.46-0.66 µs | 4.8-5.5 µs | 17-18 ns |
//! | span_record_event | 1.1-1.6 µs | 8.3-11.4 µs | 0.12-0.18 µs |
//!
//! Session 4 (2026-12-04, a quieter machine, one run, `--features opentelemetry -- --warm-up-time 1
//! --measurement-time 3`): event_in_span 0.33 µs against fmt_json's 3.02 µs (registry alone
//! 7 ns); span_record_event 0.64 µs against 5.2 µs; event_in_exported_span (a span exported by
//! `tracing-opentelemetry`, ids read from the bridge) 0.67 µs, of which the bridge itself
//! (`otel_only`) is 0.34 µs: the ids cost nothing measurable once read, per span.
//!
//! Issue #9 (2026-12-07, the correlation walk shared with the OTLP bridge), alternating runs
//! against the tree before it (238323c) while other builds ran (load 4-5 on 2 cores;
//! `--features opentelemetry -- --warm-up-time 1 --measurement-time 4`): event_in_span
//! 387-581 ns against 437-718 ns, span_record_event 0.88-1.18 µs against 1.25-1.75 µs,
//! event_in_exported_span 1.04-1.23 µs against 1.40-1.92 µs: no regression the noise shows.
//!
//! `sightline_json_ecs` (keys renamed with `FieldNames::ecs()`) against `sightline_json`,
//! three runs on 2026-11-25 while other builds ran (`-- --warm-up-time 1 --measurement-time 2`):
//! event_in_span 0.50-0.82 µs against 0.65-0.81 µs, span_record_event 1.59-1.67 µs against
//! 1.56-1.92 µs: equal within the noise, since key fragments are rendered when the layer is
//! built.

use std::hint::black_box;
use std::io;

use criterion::{Criterion, criterion_group, criterion_main};
use sightline_logging::{FieldNames, JsonLayer};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";
const REQUEST_ID: &str = "6f1c1c1e-8d3e-4b5e-9a43-51d6f2d3a8f0";

fn request_span() -> tracing::Span {
    tracing::info_span!(
        target: "sightline_http::server",
        "HTTP request",
        trace_id = %TRACE_ID,
        span_id = %SPAN_ID,
        trace_flags = %"01",
        request_id = %REQUEST_ID,
        http.route = "/orders/{id}",
        http.response.status_code = tracing::field::Empty,
    )
}

fn event(i: u64) {
    tracing::info!(order_id = i, total = 99.5, user = %"ann", "order placed");
}

fn dispatches() -> [(&'static str, Dispatch); 4] {
    [
        (
            "sightline_json",
            Dispatch::new(
                tracing_subscriber::registry().with(
                    JsonLayer::builder()
                        .service_name("checkout")
                        .writer(io::sink)
                        .build(),
                ),
            ),
        ),
        (
            // Renamed keys are rendered once at build time: the same cost as the defaults.
            "sightline_json_ecs",
            Dispatch::new(
                tracing_subscriber::registry().with(
                    JsonLayer::builder()
                        .service_name("checkout")
                        .field_names(FieldNames::ecs())
                        .writer(io::sink)
                        .build(),
                ),
            ),
        ),
        (
            "fmt_json",
            Dispatch::new(
                tracing_subscriber::registry().with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(io::sink),
                ),
            ),
        ),
        (
            "registry_only",
            Dispatch::new(tracing_subscriber::registry()),
        ),
    ]
}

/// One group: for each dispatch, events inside one entered span that `make_span` makes.
fn events_in_a_span<const N: usize>(
    c: &mut Criterion,
    group: &str,
    dispatches: [(&'static str, Dispatch); N],
    make_span: fn() -> tracing::Span,
) {
    let mut group = c.benchmark_group(group);
    for (name, dispatch) in dispatches {
        tracing::dispatcher::with_default(&dispatch, || {
            let span = make_span();
            let _entered = span.enter();
            let mut i = 0u64;
            group.bench_function(name, |b| {
                b.iter(|| {
                    i += 1;
                    event(black_box(i));
                })
            });
        });
    }
    group.finish();
}

fn event_in_span(c: &mut Criterion) {
    events_in_a_span(c, "event_in_span", dispatches(), request_span);
}

fn request(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_record_event");
    for (name, dispatch) in dispatches() {
        tracing::dispatcher::with_default(&dispatch, || {
            let mut i = 0u64;
            group.bench_function(name, |b| {
                b.iter(|| {
                    i += 1;
                    let span = request_span();
                    let _entered = span.enter();
                    event(black_box(i));
                    span.record("http.response.status_code", 200);
                })
            });
        });
    }
    group.finish();
}

/// Events inside a span exported by `tracing-opentelemetry` with no id fields (a plain
/// `#[instrument]` span): the ids come from the bridge, read once per span. Every dispatch has
/// the bridge; `otel_only` is the bridge's own cost (it records each event on the span).
#[cfg(feature = "opentelemetry")]
fn event_in_exported_span(c: &mut Criterion) {
    use opentelemetry::trace::TracerProvider as _;

    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    macro_rules! bridge {
        () => {
            tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))
        };
    }
    let dispatches = [
        (
            "sightline_json",
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(
                        JsonLayer::builder()
                            .service_name("checkout")
                            .writer(io::sink)
                            .build(),
                    )
                    .with(bridge!()),
            ),
        ),
        (
            "fmt_json",
            Dispatch::new(
                tracing_subscriber::registry()
                    .with(
                        tracing_subscriber::fmt::layer()
                            .json()
                            .with_writer(io::sink),
                    )
                    .with(bridge!()),
            ),
        ),
        (
            "otel_only",
            Dispatch::new(tracing_subscriber::registry().with(bridge!())),
        ),
    ];
    events_in_a_span(c, "event_in_exported_span", dispatches, || {
        tracing::info_span!("load order", order.id = 7)
    });
}

#[cfg(feature = "opentelemetry")]
criterion_group!(benches, event_in_span, request, event_in_exported_span);
#[cfg(not(feature = "opentelemetry"))]
criterion_group!(benches, event_in_span, request);
criterion_main!(benches);
