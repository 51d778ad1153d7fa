//! Counts heap allocations made while `JsonLayer` formats and writes events.
//!
//! Claim checked: in steady state (span already created, per-thread buffers warmed up), an
//! event inside a span costs zero heap allocations in the layer when the writer itself does
//! not allocate.
//!
//! The counting allocator comes from `stats_alloc` because a `GlobalAlloc` impl needs
//! `unsafe impl`, which the workspace lints forbid (`forbid` cannot be lifted per file). Its
//! counters are process-wide, so this binary has no test harness: `main` runs on the only
//! thread.

use std::alloc::System;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use sightline_logging::JsonLayer;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tracing_subscriber::prelude::*;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (including reallocations) made while `f` runs.
fn count_allocs(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

static BYTES: AtomicUsize = AtomicUsize::new(0);
static LINES: AtomicUsize = AtomicUsize::new(0);

/// A writer that only counts: it never allocates.
struct CountingSink;

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        BYTES.fetch_add(buf.len(), Ordering::Relaxed);
        LINES.fetch_add(
            buf.iter().filter(|&&b| b == b'\n').count(),
            Ordering::Relaxed,
        );
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn the_counter_counts() {
    let n = count_allocs(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert_eq!(n, 1);
}

fn steady_state_event_in_a_span_allocates_nothing() {
    let layer = JsonLayer::builder()
        .service_name("checkout")
        .writer(|| CountingSink)
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            target: "sightline_http::server",
            "HTTP request",
            trace_id = %"4bf92f3577b34da6a3ce929d0e0e4736",
            span_id = %"00f067aa0ba902b7",
            trace_flags = %"01",
            request_id = %"6f1c1c1e-8d3e-4b5e-9a43-51d6f2d3a8f0",
            http.route = "/orders/{id}",
        );
        let _request = span.enter();
        let inner = tracing::debug_span!("db query", table = "orders");
        let user = String::from("ann");
        let event = |i: u64| {
            tracing::info!(order_id = i, total = 99.5, user = %user, "order placed");
            inner.in_scope(|| tracing::warn!(rows = i, "slow query {}", i));
        };
        // Warm-up: per-thread buffers and the timestamp cache reach their steady size.
        for i in 0..16 {
            event(i);
        }
        let lines_before = LINES.load(Ordering::Relaxed);
        let allocs = count_allocs(|| {
            for i in 0..1000 {
                event(i);
            }
        });
        assert_eq!(
            LINES.load(Ordering::Relaxed) - lines_before,
            2000,
            "every event written"
        );
        assert_eq!(allocs, 0, "heap allocations in 2000 steady-state events");
    });
    assert!(BYTES.load(Ordering::Relaxed) > 0);
}

fn main() {
    let tests: [(&str, fn()); 2] = [
        ("the_counter_counts", the_counter_counts),
        (
            "steady_state_event_in_a_span_allocates_nothing",
            steady_state_event_in_a_span_allocates_nothing,
        ),
    ];
    sightline_tests::libtest::run(&tests);
}
