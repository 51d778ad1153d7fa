//! Sightline added to an application that already has its own `tracing` subscriber and its
//! own `metrics` recorder: nothing of theirs is replaced.
//!
//! - The application's subscriber prints plain text on stderr with its own filter; Sightline
//!   adds its layers to it: JSON lines on stdout with `trace_id`, `span_id` and
//!   `request_id`, and the bridge that makes `tracing` spans children of Sightline's spans.
//! - The application's `metrics-exporter-prometheus` recorder carries a global label
//!   `app="compose"`; Sightline records its RED metrics there (with its buckets, from
//!   `sightline::prometheus_builder`) and installs no recorder of its own.
//! - Spans go over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - A `tower-http` `TraceLayer` the application already had stays: placed *inside*
//!   Sightline's layer, its `request` span is a child of Sightline's server span (one trace,
//!   no duplicate server span, no orphan). Placed outside, its span would start before the
//!   request's context is known and begin a trace of its own.
//!
//! Run it with `cargo run -p example-compose` (listens on 127.0.0.1:3001, or on `ADDR`), then
//! `curl 127.0.0.1:3001/hello` (a plain-text line on stderr, a JSON line on stdout) and
//! `curl 127.0.0.1:3001/metrics` (`http_server_request_duration_seconds{app="compose",...}`).

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use sightline::Sightline;
use sightline::tracing_subscriber::filter::LevelFilter;
use sightline::tracing_subscriber::layer::SubscriberExt as _;
use sightline::tracing_subscriber::util::SubscriberInitExt as _;
use sightline::tracing_subscriber::{self, Layer as _};
use tower_http::trace::{DefaultMakeSpan, TraceLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's own recorder, as it had it before Sightline (plus Sightline's
    // naming and buckets for the histograms it records).
    let prometheus = sightline::prometheus_builder()?
        .add_global_label("app", "compose")
        .install_recorder()?;

    // Sightline without a subscriber or recorder of its own.
    let sightline = Sightline::builder()
        .service_name("compose")
        .install_subscriber(false)
        .prometheus(false)
        .build()?;

    // The application's own subscriber, with Sightline's layers added.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(LevelFilter::INFO),
        )
        .with(sightline.tracing_layer())
        .try_init()?;

    // `Router::layer` wraps what is already there: the last layer is the outermost, so
    // Sightline's layer runs first and the `TraceLayer` inside it.
    let app = Router::new()
        .route("/hello", get(hello))
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(sightline::tracing::Level::INFO)),
        )
        .layer(sightline.http_server_layer());

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    sightline::tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(sightline::shutdown_signal())
    .await?;
    sightline.shutdown_async().await?;
    Ok(())
}

/// Logged through the application's subscriber: plain text on stderr and, through
/// Sightline's layer, a JSON line on stdout carrying the request's ids.
async fn hello() -> &'static str {
    sightline::tracing::info!("saying hello");
    "hello"
}
