//! Counts heap allocations on the hot paths.
//!
//! Claims checked: `Traceparent::parse` and `encode`, `b3::parse_single`/`encode_single`, and
//! `Propagator::extract`/`inject` with only `traceparent` (or B3) allocate nothing; `extract`
//! allocates once `tracestate` or `baggage` are present.
//!
//! The counting allocator comes from `stats_alloc` because a `GlobalAlloc` impl needs
//! `unsafe impl`, which the workspace lints forbid. Its counters are process-wide, so this
//! binary has no test harness: `main` runs on the only thread.

use std::alloc::System;
use std::hint::black_box;

use sightline_propagation::{
    HeaderSink, InjectContext, Propagator, SpanId, TraceFlags, TraceId, Traceparent, b3,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const B3: &str = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";

/// Allocations (including reallocations) made while `f` runs.
fn count_allocs(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

/// A sink that only measures: it never allocates.
struct LenSink(usize);

impl HeaderSink for LenSink {
    fn set(&mut self, _name: &'static str, value: &str) {
        self.0 += value.len();
    }
}

fn main() {
    sightline_tests::libtest::run(&[("hot_paths_allocate_nothing", hot_paths_allocate_nothing)]);
}

fn hot_paths_allocate_nothing() {
    let n = count_allocs(|| {
        let tp = Traceparent::parse(black_box(TP.as_bytes())).expect("valid");
        black_box(tp.encode());
    });
    assert_eq!(n, 0, "Traceparent::parse + encode");

    let n = count_allocs(|| {
        let parsed = b3::parse_single(black_box(B3.as_bytes())).expect("valid");
        if let b3::B3Single::Context(ctx) = parsed {
            black_box(b3::encode_single(&ctx));
        }
    });
    assert_eq!(n, 0, "b3::parse_single + encode_single");

    let propagator = Propagator::new();
    let w3c_only = [("traceparent", TP)];
    let b3_only = [("b3", B3)];
    let n = count_allocs(|| {
        black_box(propagator.extract(black_box(&w3c_only)));
        black_box(propagator.extract(black_box(&b3_only)));
    });
    assert_eq!(n, 0, "Propagator::extract without tracestate or baggage");

    let with_state = [
        ("traceparent", TP),
        ("tracestate", "a=1"),
        ("baggage", "k=v"),
    ];
    let n = count_allocs(|| {
        black_box(propagator.extract(black_box(&with_state)));
    });
    assert!(n > 0, "tracestate and baggage are owned");

    let ctx = InjectContext {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([2; 8]),
        flags: TraceFlags::SAMPLED,
        tracestate: None,
        baggage: None,
        b3_debug: false,
    };
    let b3_too = Propagator::builder()
        .inject_formats(&[
            sightline_propagation::Format::TraceContext,
            sightline_propagation::Format::B3Single,
            sightline_propagation::Format::B3Multi,
        ])
        .build();
    let mut sink = LenSink(0);
    let n = count_allocs(|| {
        b3_too.inject(black_box(&ctx), &mut sink);
    });
    assert_eq!(n, 0, "Propagator::inject without tracestate or baggage");
    assert!(sink.0 > 55);
}
