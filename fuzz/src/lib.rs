//! Fuzz targets for `sightline-propagation`, and a small mutation driver that runs them on
//! stable Rust.
//!
//! Each target in [`targets`] is a plain `fn(&[u8])` that feeds the bytes to a codec and
//! asserts its invariants: it never panics, whatever parses re-encodes and re-parses to the same
//! value, and every encoded output follows the specification's grammar (checked here by an
//! independent implementation, not by the codec under test). A failed invariant panics.
//!
//! [`driver::run`] runs a target on its checked-in seeds (`fuzz/seeds/<target>/`) and then on
//! random mutations of them, bounded in count and time; `tests/smoke.rs` does a short run of
//! every target under `cargo nextest run --workspace`. The same functions plug into
//! `cargo-fuzz` (libFuzzer) on nightly; see `fuzz/README.md`.

pub mod driver;
mod grammar;
pub mod targets;

pub use targets::{
    b3_multi, b3_single, baggage, propagator_extract, roundtrip, traceparent, tracestate,
};
