//! Bounded smoke run of every fuzz target: its seeds, then 20,000 mutations or 10 seconds,
//! whichever comes first, with a fixed RNG seed (see `sightline_fuzz::driver` for the
//! `FUZZ_ITERATIONS`, `FUZZ_SECONDS` and `FUZZ_SEED` overrides).

use sightline_fuzz::driver::{self, Config};

fn smoke(name: &str, target: fn(&[u8])) {
    let config = Config::from_env();
    let stats = driver::run(name, target, config);
    eprintln!(
        "{name}: {} seeds + {} mutations in {:.2?} (FUZZ_SEED={:#x})",
        stats.seeds, stats.mutations, stats.elapsed, config.seed
    );
    assert!(stats.seeds > 0);
    assert!(stats.mutations > 0 || config.iterations == 0);
}

#[test]
fn traceparent() {
    smoke("traceparent", sightline_fuzz::traceparent);
}

#[test]
fn tracestate() {
    smoke("tracestate", sightline_fuzz::tracestate);
}

#[test]
fn baggage() {
    smoke("baggage", sightline_fuzz::baggage);
}

#[test]
fn b3_single() {
    smoke("b3_single", sightline_fuzz::b3_single);
}

#[test]
fn b3_multi() {
    smoke("b3_multi", sightline_fuzz::b3_multi);
}

#[test]
fn propagator_extract() {
    smoke("propagator_extract", sightline_fuzz::propagator_extract);
}

#[test]
fn roundtrip() {
    smoke("roundtrip", sightline_fuzz::roundtrip);
}
