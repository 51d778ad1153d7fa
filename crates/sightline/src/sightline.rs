//! The built [`Sightline`]: what `build` made, and the layers it hands out.

use std::sync::Arc;

use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::SightlineBuilder;

/// Sightline for one service: the tracer provider, the metrics recorder, the log writer and
/// the middleware layers. Cheap to clone.
///
/// Call [`Sightline::shutdown`] when the service stops, to export the spans still queued;
/// dropping the last clone does the same as a safety net.
#[derive(Clone)]
pub struct Sightline {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) service_name: String,
    pub(crate) provider: SdkTracerProvider,
    #[cfg(feature = "otlp-logs")]
    pub(crate) logger_provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    pub(crate) layers: crate::layers::Layers,
    /// The `tracing` layers for the application's own subscriber, when Sightline installs none.
    pub(crate) own_layers: Option<crate::parts::OwnLayers>,
    /// The debug routes' state, when they are on.
    #[cfg(feature = "debug")]
    pub(crate) debug: Option<crate::debug::DebugState>,
    #[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
    pub(crate) metrics: crate::recorders::Installed,
    pub(crate) _log_guard: Option<sightline_logging::WorkerGuard>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A safety net: `Sightline::shutdown` is the reliable way, since the last clone may be
        // dropped where blocking is a problem. A second shutdown is a harmless error.
        let _ = self.provider.shutdown();
        #[cfg(feature = "otlp-logs")]
        if let Some(logs) = &self.logger_provider {
            let _ = logs.shutdown();
        }
    }
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or, on Unix, SIGTERM (what
/// Kubernetes, systemd and Docker send). For `with_graceful_shutdown` of axum and tonic.
///
/// ```no_run
/// # async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
/// axum::serve(listener, app)
///     .with_graceful_shutdown(sightline::shutdown_signal())
///     .await
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return ctrl_c.await.unwrap_or_default();
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}

impl std::fmt::Debug for Sightline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sightline")
            .field("service_name", &self.inner.service_name)
            .finish_non_exhaustive()
    }
}

impl Sightline {
    /// A builder with defaults right for production; see the [crate docs](crate).
    pub fn builder() -> SightlineBuilder {
        SightlineBuilder::default()
    }

    /// The resolved service name.
    pub fn service_name(&self) -> &str {
        &self.inner.service_name
    }

    /// The tracer provider, for making spans of your own or adding processors.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.inner.provider
    }

    /// The logger provider of the OTLP log bridge, when OTLP logs are exported (see
    /// [`SightlineBuilder::otlp_logs`]).
    #[cfg(feature = "otlp-logs")]
    pub fn logger_provider(&self) -> Option<&opentelemetry_sdk::logs::SdkLoggerProvider> {
        self.inner.logger_provider.as_ref()
    }

    /// Exports every finished span, every queued OTLP log record and, when metrics are
    /// pushed, the metrics now. Blocks: call it from `spawn_blocking` in async code. All are
    /// flushed even if one fails; the first error is returned.
    pub fn force_flush(&self) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        #[allow(unused_mut)]
        let mut result = self.inner.provider.force_flush();
        #[cfg(feature = "otlp-logs")]
        if let Some(logs) = &self.inner.logger_provider {
            result = result.and(logs.force_flush());
        }
        #[cfg(feature = "otlp-metrics")]
        if let Some(push) = &self.inner.metrics.push {
            result = result.and(push.force_flush());
        }
        result
    }

    /// Sightline's `tracing` layers, for an application that installs its own subscriber
    /// ([`SightlineBuilder::install_subscriber(false)`](SightlineBuilder::install_subscriber)):
    /// the JSON lines (with `trace_id`, `span_id` and `request_id`), the bridge that makes the
    /// application's `tracing` spans children of Sightline's spans, and, with OTLP logs, the
    /// log bridge; each behind Sightline's filter (`RUST_LOG`, else `info`), so the
    /// application's own filter and layers keep deciding what they print.
    ///
    /// The JSON lines go to the first layer asked for; later calls get the bridges only. When
    /// Sightline installed its own subscriber, this is an empty layer.
    ///
    /// ```no_run
    /// use sightline::tracing_subscriber::{self, Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};
    ///
    /// # fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let sightline = sightline::Sightline::builder().install_subscriber(false).build()?;
    /// tracing_subscriber::registry()
    ///     .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
    ///     .with(sightline.tracing_layer())
    ///     .try_init()?;
    /// # Ok(()) }
    /// ```
    pub fn tracing_layer<S>(&self) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        match &self.inner.own_layers {
            Some(layers) => layers.layer(),
            None => Box::new(tracing_subscriber::layer::Identity::new()),
        }
    }

    /// The Prometheus text exposition of every metric, as `/metrics` serves it.
    #[cfg(feature = "prometheus")]
    pub fn render_metrics(&self) -> String {
        self.inner
            .metrics
            .exposition
            .as_ref()
            .map(|p| p.renderer().render())
            .unwrap_or_default()
    }

    /// The OpenMetrics exposition of every metric, as `/metrics` serves it to a scraper that
    /// asks for it: the duration histograms' buckets carry exemplars (see
    /// [`SightlineBuilder::exemplars`](crate::SightlineBuilder::exemplars)), and `target_info`
    /// the service's resource.
    ///
    /// ```
    /// # fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let sightline = sightline::Sightline::builder().install_subscriber(false).build()?;
    /// assert!(sightline.render_openmetrics().ends_with("# EOF\n"));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "prometheus")]
    pub fn render_openmetrics(&self) -> String {
        self.inner
            .metrics
            .exposition
            .as_ref()
            .map(|p| p.renderer().render_openmetrics())
            .unwrap_or_else(|| "# EOF\n".to_owned())
    }

    /// An axum handler serving the metrics: mount it with
    /// `.route("/metrics", sightline.metrics_handler())`. It answers OpenMetrics (with
    /// exemplars) when the scraper's `Accept` prefers `application/openmetrics-text`, as
    /// Prometheus' does, and the Prometheus text format otherwise.
    ///
    /// It holds only the exposition handle, not this `Sightline`, so dropping the router does
    /// not keep the exporters alive.
    #[cfg(all(feature = "prometheus", feature = "axum"))]
    pub fn metrics_handler<S: Clone + Send + Sync + 'static>(
        &self,
    ) -> axum::routing::MethodRouter<S> {
        let exposition = self.inner.metrics.exposition.as_ref().map(|p| p.renderer());
        axum::routing::get(move |headers: http::HeaderMap| {
            let (content_type, body) = match &exposition {
                Some(renderer) => renderer.negotiate(headers.get(http::header::ACCEPT)),
                None => (crate::openmetrics::TEXT_CONTENT_TYPE, String::new()),
            };
            std::future::ready((
                [(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(content_type),
                )],
                body,
            ))
        })
    }

    /// [`Self::shutdown`] from async code: on the runtime's blocking pool, so the exporters'
    /// connections (which live on the runtime) can finish the last export. Await it after the
    /// server has stopped, before `main` returns.
    ///
    /// ```no_run
    /// # async fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
    /// let sightline = sightline::Sightline::builder().build()?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(sightline::shutdown_signal())
    ///     .await?;
    /// sightline.shutdown_async().await?;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown_async(&self) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.shutdown())
            .await
            .unwrap_or_else(|e| {
                Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                    format!("the shutdown task failed: {e}"),
                ))
            })
    }

    /// The internal debug routes, when they are on ([`SightlineBuilder::debug`], or
    /// `SIGHTLINE_DEBUG=1`); otherwise a router with no route, so every path is a 404:
    ///
    /// - `GET /debug/sightline`: one HTML page (no external assets, refreshed every 5 s) with,
    ///   per HTTP route and gRPC method, the requests, errors, error share and p50/p95/p99
    ///   from the same histograms as `/metrics`; the most recent errors and the slowest recent
    ///   requests with their trace ids, status, duration and span tree (kept in fixed memory);
    ///   the sampler, the span export and the drop counts. It shows no attribute value, so
    ///   nothing the redaction rules hide elsewhere appears.
    /// - `GET /debug/pprof/profile?seconds=N`: a CPU profile of N seconds (1 to 60, default
    ///   10) as the gzipped pprof protobuf that `go tool pprof` reads; one at a time (409
    ///   while another runs, 400 for a bad N).
    ///
    /// Merge it into the application's router, or better, serve it on an admin listener.
    ///
    /// ```no_run
    /// # async fn admin() -> Result<(), Box<dyn std::error::Error>> {
    /// let sightline = sightline::Sightline::builder().debug(true).build()?;
    /// let admin = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
    /// tokio::spawn(async move { axum::serve(admin, sightline.debug_router::<()>()).await });
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "debug")]
    pub fn debug_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        match &self.inner.debug {
            Some(state) => crate::debug::router(state.clone()),
            None => axum::Router::new(),
        }
    }

    /// Exports every span and OTLP log record still queued, pushes the metrics one last time
    /// (when they are pushed), and stops export; later spans and records are dropped. All are
    /// shut down even if one fails; the first error is returned.
    ///
    /// Call it once when the service stops. It blocks for at most the export timeout: from
    /// async code, call it in `spawn_blocking` while the runtime is still running (the gRPC
    /// exporter's connection lives on the runtime).
    ///
    /// ```no_run
    /// # async fn stop(sightline: sightline::Sightline) {
    /// tokio::task::spawn_blocking(move || sightline.shutdown()).await.ok();
    /// # }
    /// ```
    pub fn shutdown(&self) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        #[allow(unused_mut)]
        let mut result = self.inner.provider.shutdown();
        #[cfg(feature = "otlp-logs")]
        if let Some(logs) = &self.inner.logger_provider {
            result = result.and(logs.shutdown());
        }
        #[cfg(feature = "otlp-metrics")]
        if let Some(push) = &self.inner.metrics.push {
            result = result.and(push.shutdown());
        }
        result
    }
}
