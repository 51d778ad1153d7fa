//! Test harness for Sightline's end-to-end suites.
//!
//! Everything here treats the product as a black box and uses no sightline crate, so any
//! crate may dev-depend on it:
//!
//! - [`collector::OtlpCollector`]: in-process OTLP/gRPC and OTLP/HTTP receivers (traces, logs);
//! - [`prometheus::Prometheus`]: a real Prometheus scraping a target, and
//!   [`prometheus::promtool_check_metrics`];
//! - [`grpc`]: the `Echo` test service and example-grpc's `Greeter` (generated code), a
//!   tonic server on `127.0.0.1:0` with any layers;
//! - [`process::ExampleProcess`]: an example binary on a free port with its stdout captured;
//! - [`http`]: a keep-alive client and a raw-socket one for malformed requests;
//! - [`logs`]: reading the JSON log lines;
//! - [`libtest`]: a libtest-compatible runner for `harness = false` test binaries;
//! - [`util`]: free ports, temporary directories, W3C ids, bounded polling.
//!
//! Every listener binds 127.0.0.1, every wait polls with a deadline, every loop is bounded.

pub mod collector;
pub mod grpc;
pub mod http;
pub mod libtest;
pub mod logs;
pub mod process;
pub mod prometheus;
pub mod util;
