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

/// The application's own provider is used as it is: Sightline's server spans and the spans of
/// the application's `tracing` spans (through `tracing_layer` in its own subscriber) reach its
/// exporter, in one trace.
#[test]
fn the_applications_provider_and_subscriber_are_used_as_they_are() {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use sightline::tracing_subscriber::layer::SubscriberExt as _;
    use tower::{Layer as _, Service as _, ServiceExt as _};

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sightline = runtime.block_on(async {
        Sightline::builder()
            .tracer_provider(provider)
            .install_subscriber(false)
            .prometheus(false)
            .log_writer(std::io::sink)
            .build()
            .expect("builds")
    });
    assert!(
        !tracing::dispatcher::has_been_set(),
        "no subscriber installed by Sightline"
    );
    let subscriber = sightline::tracing_subscriber::registry().with(sightline.tracing_layer());
    let _default = tracing::subscriber::set_default(subscriber);

    let mut service = sightline.http_server_layer().layer(tower::service_fn(
        |_req: http::Request<String>| async {
            let _inner = tracing::info_span!("load user").entered();
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
        },
    ));
    runtime.block_on(async {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(
                http::Request::get("http://127.0.0.1/users/1")
                    .body(String::new())
                    .expect("request"),
            )
            .await
            .expect("answers");
        drop(response);
    });
    let spans = exporter.get_finished_spans().expect("spans");
    let server = spans
        .iter()
        .find(|s| s.span_kind == opentelemetry::trace::SpanKind::Server)
        .unwrap_or_else(|| panic!("no server span in the application's exporter: {spans:#?}"));
    let inner = spans
        .iter()
        .find(|s| s.name == "load user")
        .unwrap_or_else(|| panic!("no bridged span: {spans:#?}"));
    assert_eq!(inner.parent_span_id, server.span_context.span_id());
    assert_eq!(
        inner.span_context.trace_id(),
        server.span_context.trace_id()
    );
    sightline.shutdown().ok();
}

/// Bucket boundaries from the builder: by prefix for the application's own histograms; a bad
/// list is refused before anything is installed.
#[test]
fn histogram_buckets_from_the_builder_shape_the_applications_histograms() {
    use sightline::HistogramMatch;

    let err = Sightline::builder()
        .log_writer(std::io::sink)
        .histogram_buckets(HistogramMatch::Name("app.job".into()), &[1.0, 0.5])
        .build()
        .expect_err("decreasing bounds are refused");
    assert!(
        matches!(err, Error::Config(ConfigError::HistogramBuckets)),
        "{err:?}"
    );
    assert!(!tracing::dispatcher::has_been_set(), "nothing installed");

    let sightline = Sightline::builder()
        .log_writer(std::io::sink)
        .histogram_buckets(HistogramMatch::Prefix("app.".into()), &[0.5, 1.0])
        .build()
        .expect("builds");
    metrics::histogram!("app.job").record(0.7);
    let text = sightline.render_metrics();
    assert!(
        text.lines().any(|l| l == "app_job_bucket{le=\"0.5\"} 0"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "app_job_bucket{le=\"1\"} 1"),
        "{text}"
    );
    sightline.shutdown().ok();
}
