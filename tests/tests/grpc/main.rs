//! gRPC suites: tonic client to tonic server over 127.0.0.1 with the Sightline layers on
//! both, for every kind of call, OK, failing and cancelled; and example-grpc run as a black
//! box against a real Prometheus and the test's OTLP collector.
//!
//! - [`calls`]: unary, server-streaming, client-streaming and bidi calls; the status from
//!   trailers or from a trailers-only answer; durations against known delays; parent/child;
//!   request IDs; the active-calls gauge; message counts;
//! - [`cancel`]: streams and calls the client drops, and tonic's deadline: recorded once, as
//!   CANCELLED, the gauge back to 0;
//! - [`methods`]: unknown methods as `_OTHER`, no series per scanned name, health checks;
//! - [`bad_metadata`]: malformed context, `-bin` values, 16 KiB values never fail a call;
//! - [`example`]: example-grpc with Prometheus, OTLP and its JSON logs.
//!
//! The in-process suites keep each test's telemetry to itself (see [`support::Telemetry`]).
//! Build the example first for [`example`]: `cargo build -p example-grpc`.

mod bad_metadata;
mod calls;
mod cancel;
mod example;
mod methods;
mod support;
