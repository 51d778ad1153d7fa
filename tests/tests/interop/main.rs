//! Interop and conformance suites: the W3C test service (`example-w3c-test-service`) run as a
//! black box, called with trace context in many shapes, and observed from the calls it makes.
//!
//! - [`w3c_trace_context`]: cases written from the W3C Trace Context spec, checked on the
//!   headers the service propagates to an echo server of this test;
//! - [`service_contract`]: the test-harness contract itself (order, bodies, 400, failures);
//! - [`grpc_peer`]: grpcio (Python) as a foreign gRPC client of example-grpc and as a
//!   foreign server behind the Sightline client layer;
//! - [`python_peer`]: the Python OpenTelemetry SDK as a foreign peer on both sides of the
//!   service (W3C, B3 single, B3 multi, baggage), and the exported span tree.
//!
//! Build the examples first: `cargo build -p example-w3c-test-service -p example-grpc`; the
//! Python suites need `.venv` with `tests/python/requirements.txt` installed (scripts/test
//! does both).

mod grpc_peer;
mod python_peer;
mod reqwest_peer;
mod service_contract;
mod support;
mod w3c_trace_context;
