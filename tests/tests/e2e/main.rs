//! End-to-end suites: the quick-start example run as a user runs it, observed only from the
//! outside (HTTP answers, stdout, a real Prometheus, an OTLP collector).
//!
//! Build the example first: `cargo build -p example-quickstart` (scripts/test does it).

mod bad_input;
mod cardinality;
mod compose;
mod debug;
mod exemplars;
mod handlers;
mod log_correlation;
mod logql;
mod otel_env;
mod otlp_export;
mod otlp_logs;
mod prometheus_scrape;
mod sampling;
mod secrets;
mod support;
