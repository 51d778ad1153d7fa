//! The server middleware on a real axum router, driven in-process: spans exported through
//! the SDK's in-memory exporter, metrics through a real Prometheus recorder.

mod capture;
mod handlers;
mod lifecycle;
mod metrics;
mod spans;
mod support;
