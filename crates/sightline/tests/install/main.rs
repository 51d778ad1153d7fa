//! `build()` installs its globals last: when it fails, nothing global has changed. Each test
//! installs globals, so each needs a process of its own: nextest (the test command) runs
//! every test so.

use opentelemetry::trace::{Span as _, Tracer as _};
use sightline::{ConfigError, Error, Global, Sightline};

/// A span from the global tracer provider is recording only once Sightline's is installed.
fn global_tracer_is_sightlines() -> bool {
    let mut span = opentelemetry::global::tracer("probe").start("probe");
    let valid = span.span_context().is_valid();
    span.end();
    valid
}

#[test]
fn a_bad_log_filter_changes_no_global_state() {
    let err = Sightline::builder()
        .log_filter("bad[=")
        .log_writer(std::io::sink)
        .build()
        .expect_err("a bad filter is refused");
    assert!(
        matches!(err, Error::Config(ConfigError::LogFilter { .. })),
        "{err:?}"
    );
    assert!(!tracing::dispatcher::has_been_set(), "no subscriber");
    assert!(!global_tracer_is_sightlines(), "no tracer provider");
    // No recorder either: a good build can still install all three.
    let sightline = Sightline::builder()
        .log_writer(std::io::sink)
        .build()
        .expect("builds");
    assert!(tracing::dispatcher::has_been_set());
    assert!(global_tracer_is_sightlines());
    sightline.shutdown().ok();
}

#[test]
fn an_existing_subscriber_is_found_before_anything_is_installed() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("the first subscriber");
    let err = Sightline::builder()
        .log_writer(std::io::sink)
        .build()
        .expect_err("a subscriber exists");
    assert!(
        matches!(err, Error::AlreadyInstalled(Global::TracingSubscriber)),
        "{err:?}"
    );
    assert!(!global_tracer_is_sightlines(), "no tracer provider");
    metrics::set_global_recorder(metrics::NoopRecorder)
        .expect("Sightline installed no metrics recorder");
}

#[test]
fn an_existing_recorder_is_an_error_by_variant_and_leaves_the_subscriber_free() {
    metrics::set_global_recorder(metrics::NoopRecorder).expect("the first recorder");
    let err = Sightline::builder()
        .log_writer(std::io::sink)
        .build()
        .expect_err("a recorder exists");
    assert!(
        matches!(err, Error::AlreadyInstalled(Global::MetricsRecorder)),
        "{err:?}"
    );
    assert!(!tracing::dispatcher::has_been_set(), "no subscriber");
    assert!(!global_tracer_is_sightlines(), "no tracer provider");
    // Without Prometheus the rest installs.
    let sightline = Sightline::builder()
        .prometheus(false)
        .log_writer(std::io::sink)
        .build()
        .expect("builds without a recorder");
    sightline.shutdown().ok();
}
