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

    /// An axum handler serving the Prometheus exposition: mount it with
    /// `.route("/metrics", sightline.metrics_handler())`.
    ///
    /// It holds only the exposition handle, not this `Sightline`, so dropping the router does
    /// not keep the exporters alive.
    #[cfg(all(feature = "prometheus", feature = "axum"))]
    pub fn metrics_handler<S: Clone + Send + Sync + 'static>(
        &self,
    ) -> axum::routing::MethodRouter<S> {
        let exposition = self.inner.metrics.exposition.as_ref().map(|p| p.renderer());
        axum::routing::get(move || {
            let body = exposition.as_ref().map(|r| r.render()).unwrap_or_default();
            std::future::ready((
                [(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                )],
                body,
            ))
        })
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
