//! `sightline slo`: SLOs as code for the metrics Sightline records. From one YAML spec, the
//! Prometheus recording rules and multi-window burn-rate alerts, a Grafana dashboard, and
//! `promtool` tests for the rules. See `docs/slo.md`.

pub mod dashboard;
pub mod promtool;
pub mod rules;
pub mod spec;
pub mod yaml;
