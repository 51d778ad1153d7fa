//! The global subscriber that `Sightline::build` installs keeps `tracing`'s static level
//! filter at the configured level, so disabled `trace!`/`debug!` calls in hyper, h2 and tokio
//! cost one comparison on the hot path instead of a run-time filter check.

use tracing::level_filters::LevelFilter;

#[test]
fn the_maximum_level_follows_the_log_filter() {
    let sightline = sightline::Sightline::builder()
        .service_name("level-test")
        .log_filter("info")
        .prometheus(false)
        .log_writer(std::io::sink)
        .build()
        .expect("builds");
    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    assert!(!tracing::enabled!(target: "hyper::proto::h1", tracing::Level::TRACE));
    assert!(tracing::enabled!(target: "checkout", tracing::Level::INFO));
    sightline.shutdown().expect("shuts down");
}
