//! The global subscriber that `Sightline::build` installs:
//!
//! - keeps `tracing`'s static level filter at the configured level, so disabled
//!   `trace!`/`debug!` calls in hyper, h2 and tokio cost one comparison on the hot path instead
//!   of a run-time filter check;
//! - writes its lines with the key names given to `log_field_names` (here the Elastic Common
//!   Schema's), ids included, for spans the application makes itself.
//!
//! One test: the subscriber is global, and a process gets one.

use sightline_tests::logs::Captured;
use tracing::level_filters::LevelFilter;

#[test]
fn the_global_subscriber_follows_the_builder() {
    let out = Captured::default();
    let sightline = sightline::Sightline::builder()
        .service_name("level-test")
        .log_filter("info")
        .prometheus(false)
        .log_field_names(sightline::logging::FieldNames::ecs())
        .log_writer(out.clone())
        .build()
        .expect("builds");
    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    assert!(!tracing::enabled!(target: "hyper::proto::h1", tracing::Level::TRACE));
    assert!(tracing::enabled!(target: "checkout", tracing::Level::INFO));

    // An application span of its own (no middleware): exported by the bridge, so its line
    // carries its ids, under the ECS names.
    tracing::info_span!("nightly job").in_scope(|| tracing::info!(rows = 3, "job done"));
    sightline.force_flush().expect("flushes");
    sightline.shutdown().expect("shuts down");

    let lines = out.lines();
    let line = lines
        .iter()
        .map(|l| &l.json)
        .find(|l| l["message"] == "job done")
        .unwrap_or_else(|| panic!("no line: {lines:?}"));
    for key in [
        "@timestamp",
        "log.level",
        "log.logger",
        "trace.id",
        "span.id",
    ] {
        assert!(line.get(key).is_some(), "{key} in {line}");
    }
    for key in ["timestamp", "level", "trace_id", "span_id"] {
        assert!(line.get(key).is_none(), "{key} renamed: {line}");
    }
    let is_hex = |v: &serde_json::Value, len: usize| {
        v.as_str()
            .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(is_hex(&line["trace.id"], 32), "{line}");
    assert!(is_hex(&line["span.id"], 16), "{line}");
    assert_eq!(line["log.level"], "INFO");
}
