//! Each signal's part, built from resolved [`Settings`] without touching a global, then
//! installed in one documented order.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::error::{Error, Global};
use crate::resolve::{JsonLogs, Settings};
use crate::sightline::{Inner, Sightline};

/// What `build` makes before it installs anything.
pub(crate) struct Parts {
    service_name: String,
    /// The fixed head sampler's rate, for `sightline.traces.sampling_ratio`.
    sampling_ratio: Option<f64>,
    provider: SdkTracerProvider,
    #[cfg(feature = "otlp-logs")]
    logger_provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    /// The subscriber, not yet installed.
    dispatch: Option<tracing::Dispatch>,
    /// Or the layers for the application's own subscriber.
    own_layers: Option<OwnLayers>,
    /// The debug page's recent spans, sampler and exporter descriptions.
    #[cfg(feature = "debug")]
    debug: Option<(crate::debug::recent::RecentSpans, String, String)>,
    log_guard: Option<sightline_logging::WorkerGuard>,
    #[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
    recorders: crate::recorders::Recorders,
    /// The log writer, whose dropped lines the metrics report.
    log_writer: Option<sightline_logging::NonBlocking>,
    propagator: Option<sightline_propagation::Propagator>,
    trusted_proxies: Vec<ipnet::IpNet>,
    server_metrics: crate::layers::ServerMetrics,
}

impl Parts {
    /// Builds every part. The exporters are made first: they are what can still fail.
    pub(crate) fn build(settings: Settings) -> Result<Self, Error> {
        #[cfg(feature = "otlp")]
        let span_exporter = settings
            .traces
            .as_ref()
            .map(sightline_otlp::SpanExporter::new)
            .transpose()?;
        #[cfg(feature = "otlp-logs")]
        let log_exporter = settings
            .logs
            .as_ref()
            .map(|config| {
                sightline_otlp::LogExporter::new(config)
                    .map(|exporter| exporter.with_limits(settings.log_limits))
            })
            .transpose()?;
        #[cfg(feature = "otlp-metrics")]
        let metric_exporter = settings
            .metrics_push
            .as_ref()
            .map(|push| sightline_otlp::MetricExporter::new(&push.config))
            .transpose()?;

        // Not `Resource::builder()`: its detector would read `OTEL_RESOURCE_ATTRIBUTES` again,
        // without percent-decoding, and `OTEL_SERVICE_NAME` outside the resolved precedence.
        let mut resource = Resource::builder_empty()
            .with_detector(Box::new(
                opentelemetry_sdk::resource::TelemetryResourceDetector,
            ))
            .with_attributes(settings.resource_attributes.iter().cloned())
            .with_service_name(settings.service_name.clone());
        if let Some(version) = &settings.service_version {
            resource = resource.with_attribute(KeyValue::new(
                opentelemetry_semantic_conventions::attribute::SERVICE_VERSION,
                version.clone(),
            ));
        }
        let resource = resource.build();

        #[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
        let recorders = crate::recorders::Recorders::new(
            settings.prometheus,
            #[cfg(feature = "otlp-metrics")]
            metric_exporter
                .zip(settings.metrics_push)
                .map(|(exporter, push)| crate::recorders::OtlpPush {
                    exporter: exporter
                        .with_resource(&resource)
                        .with_scope(crate::recorders::scope())
                        .with_temporality(push.temporality),
                    interval: push.interval,
                    timeout: push.timeout,
                }),
            &settings.histogram_buckets,
            settings.exemplars,
            &resource,
        )?;

        // What the debug page says of the pipeline, and the spans it shows.
        #[cfg(feature = "debug")]
        let debug = settings.debug.then(|| {
            #[cfg(feature = "otlp")]
            let exporter = settings.traces.as_ref().map_or_else(
                || "none (no endpoint)".to_owned(),
                |config| format!("OTLP to {}", config.url()),
            );
            #[cfg(not(feature = "otlp"))]
            let exporter = "none (the otlp feature is off)".to_owned();
            let exporter = if settings.tracer_provider.is_some() {
                "the application's own tracer provider".to_owned()
            } else {
                exporter
            };
            (
                crate::debug::recent::RecentSpans::default(),
                format!("{:?} (keep: {:?})", settings.head, settings.keep),
                exporter,
            )
        });
        // Published once the recorder is installed; the adaptive sampler publishes per route.
        let sampling_ratio = settings
            .tracer_provider
            .is_none()
            .then(|| settings.head.fixed_ratio())
            .flatten();
        let provider = match settings.tracer_provider {
            // The application's own provider, with its processors, exporters and sampler.
            Some(provider) => provider,
            None => {
                let provider = SdkTracerProvider::builder()
                    .with_resource(resource.clone())
                    .with_sampler(crate::sampling::HeadSampler::new(
                        settings.head.clone(),
                        settings.keep,
                    ))
                    .with_span_limits(settings.span_limits);
                // Whole traces are admitted to the export queue, and every span the queue
                // cannot take, or the collector does not accept, is counted in
                // `sightline.telemetry.dropped`.
                #[allow(unused_mut)]
                let mut export: Option<crate::sampling::Export> = None;
                #[cfg(feature = "otlp")]
                if let Some(exporter) = span_exporter {
                    let processor = sightline_otlp::counting_batch_span_processor(
                        exporter,
                        settings.span_batch,
                    )
                    .admitted_in_front();
                    let budget = std::sync::Arc::clone(processor.budget());
                    let processor: Box<dyn opentelemetry_sdk::trace::SpanProcessor> =
                        match settings.value_length_limit {
                            Some((limit, marked)) => {
                                let truncating =
                                    sightline_otlp::TruncatingSpanProcessor::new(processor, limit);
                                Box::new(if marked {
                                    truncating.marked(crate::TRUNCATED)
                                } else {
                                    truncating
                                })
                            }
                            None => Box::new(processor),
                        };
                    export = Some(crate::sampling::Export { processor, budget });
                }
                let mut others: Vec<Box<dyn opentelemetry_sdk::trace::SpanProcessor>> = Vec::new();
                if settings.console_traces {
                    #[cfg(feature = "otlp")]
                    let batch = settings.span_batch;
                    #[cfg(not(feature = "otlp"))]
                    let batch = ();
                    others.push(Box::new(console_processor(batch)));
                }
                #[cfg(feature = "debug")]
                if let Some((recent, _, _)) = &debug {
                    others.push(Box::new(recent.clone()));
                }
                let adaptive = match &settings.head {
                    crate::sampling::Head::Adaptive { adaptive, .. } => {
                        if let Some(export) = &export {
                            adaptive.watch_queue(export.fill());
                        }
                        Some(std::sync::Arc::clone(adaptive))
                    }
                    crate::sampling::Head::Spec(_) => None,
                };
                provider
                    .with_span_processor(crate::sampling::TraceSelector::new(
                        settings.keep,
                        adaptive,
                        export,
                        others,
                    ))
                    .build()
            }
        };

        #[cfg(feature = "otlp-logs")]
        let logger_provider = log_exporter
            .map(|exporter| crate::logs::logger_provider(exporter, resource, settings.log_batch));

        let mut log_guard = None;
        // Read by the metrics, which report the writer's dropped lines.
        let mut log_writer = None;
        let mut dispatch = None;
        let mut own_layers = None;
        let json = settings.json.map(|json| {
            let (layer, filter, guard, writer) = json_layer(json, &settings.service_name);
            log_guard = guard;
            log_writer = writer;
            (layer, filter)
        });
        if settings.install_subscriber {
            dispatch = json.map(|(layer, filter)| {
                subscriber(
                    layer,
                    filter,
                    &provider,
                    #[cfg(feature = "otlp-logs")]
                    logger_provider.as_ref(),
                )
            });
        } else {
            let (json, directives) = match json {
                Some((layer, filter)) => (Some(layer), filter.to_string()),
                None => (None, "info".to_owned()),
            };
            own_layers = Some(OwnLayers {
                json: std::sync::Mutex::new(json),
                directives,
                tracer: provider.tracer(crate::INSTRUMENTATION_SCOPE),
                #[cfg(feature = "otlp-logs")]
                logger_provider: logger_provider.clone(),
            });
        }

        Ok(Self {
            service_name: settings.service_name,
            sampling_ratio,
            provider,
            #[cfg(feature = "otlp-logs")]
            logger_provider,
            dispatch,
            own_layers,
            #[cfg(feature = "debug")]
            debug,
            log_guard,
            #[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
            recorders,
            log_writer,
            propagator: settings.propagator,
            trusted_proxies: settings.trusted_proxies,
            server_metrics: crate::layers::ServerMetrics {
                tenant: settings.tenant_label,
                series_limit: settings.series_limit,
            },
        })
    }

    /// Installs the globals in this order: the `metrics` recorder, the `tracing` subscriber,
    /// the OpenTelemetry tracer provider (which cannot fail). A subscriber installed by
    /// someone else is found before anything is installed.
    pub(crate) fn install(self) -> Result<Sightline, Error> {
        if self.dispatch.is_some() && tracing::dispatcher::has_been_set() {
            return Err(Error::AlreadyInstalled(Global::TracingSubscriber));
        }
        #[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
        let metrics = self.recorders.install(self.log_writer)?;
        #[cfg(not(any(feature = "prometheus", feature = "otlp-metrics")))]
        let _ = self.log_writer;
        if let Some(ratio) = self.sampling_ratio {
            metrics::gauge!(crate::sampling::SAMPLING_RATIO).set(ratio);
        }
        if let Some(dispatch) = self.dispatch {
            tracing::dispatcher::set_global_default(dispatch)
                .map_err(|_| Error::AlreadyInstalled(Global::TracingSubscriber))?;
        }
        opentelemetry::global::set_tracer_provider(self.provider.clone());

        let tracer = self.provider.tracer(crate::INSTRUMENTATION_SCOPE);
        let layers = crate::layers::Layers::new(
            tracer,
            self.propagator,
            self.trusted_proxies,
            self.server_metrics,
        );
        #[cfg(feature = "debug")]
        let debug = self.debug.map(|(recent, sampler, exporter)| {
            crate::debug::DebugState::new(
                recent,
                metrics
                    .exposition
                    .as_ref()
                    .map(crate::recorders::Exposition::renderer),
                sampler,
                exporter,
                self.service_name.clone(),
            )
        });
        Ok(Sightline {
            inner: Arc::new(Inner {
                service_name: self.service_name,
                provider: self.provider,
                #[cfg(feature = "otlp-logs")]
                logger_provider: self.logger_provider,
                layers,
                own_layers: self.own_layers,
                #[cfg(feature = "debug")]
                debug,
                #[cfg(any(feature = "prometheus", feature = "otlp-metrics"))]
                metrics,
                _log_guard: self.log_guard,
            }),
        })
    }
}

/// The console exporter behind a batch processor: printing stays off the request path.
#[cfg(feature = "otlp")]
fn console_processor(
    batch: sightline_otlp::BatchSettings,
) -> impl opentelemetry_sdk::trace::SpanProcessor {
    sightline_otlp::counting_batch_span_processor(
        crate::console::ConsoleSpanExporter::default(),
        batch,
    )
}

/// The console exporter: without the `otlp` feature, the SDK's batch processor.
#[cfg(not(feature = "otlp"))]
fn console_processor(_: ()) -> impl opentelemetry_sdk::trace::SpanProcessor {
    opentelemetry_sdk::trace::BatchSpanProcessor::builder(
        crate::console::ConsoleSpanExporter::default(),
    )
    .build()
}

/// The JSON lines layer with its filter, the writer's guard, and the stdout writer (whose
/// dropped lines the metrics report).
fn json_layer(
    json: JsonLogs,
    service_name: &str,
) -> (
    sightline_logging::JsonLayer,
    tracing_subscriber::EnvFilter,
    Option<sightline_logging::WorkerGuard>,
    Option<sightline_logging::NonBlocking>,
) {
    let mut layer = sightline_logging::JsonLayer::builder().service_name(service_name);
    if let Some(names) = json.field_names {
        layer = layer.field_names(names);
    }
    let mut guard = None;
    let mut stdout = None;
    match json.writer {
        Some(writer) => layer = layer.writer(writer),
        None => {
            let (writer, writer_guard) = sightline_logging::NonBlocking::builder()
                .capacity_bytes(json.buffer_bytes)
                .build(std::io::stdout());
            guard = Some(writer_guard);
            stdout = Some(writer.clone());
            layer = layer.writer(writer);
        }
    }
    (layer.build(), json.filter, guard, stdout)
}

/// Sightline's spans are made with the OpenTelemetry SDK directly; the bridge must not turn
/// them into second, duplicate spans.
fn not_sightline_http(meta: &tracing::Metadata<'_>) -> bool {
    !meta.target().starts_with("sightline_http")
}

/// The subscriber Sightline installs: the filter, the JSON lines, the bridge of `tracing`
/// spans to OpenTelemetry and, with OTLP logs, the log bridge.
fn subscriber(
    layer: sightline_logging::JsonLayer,
    filter: tracing_subscriber::EnvFilter,
    provider: &SdkTracerProvider,
    #[cfg(feature = "otlp-logs")] logger_provider: Option<
        &opentelemetry_sdk::logs::SdkLoggerProvider,
    >,
) -> tracing::Dispatch {
    // The filter states the global filter's level as its hint: a per-layer filter without
    // one makes the whole subscriber's maximum level TRACE, and then every `trace!` in hyper,
    // h2 and tokio is checked at run time on every request (measured: about half the
    // throughput).
    let hint = tracing_subscriber::Layer::<tracing_subscriber::Registry>::max_level_hint(&filter)
        .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
    let bridge = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(crate::INSTRUMENTATION_SCOPE))
        .with_filter(
            tracing_subscriber::filter::filter_fn(not_sightline_http).with_max_level_hint(hint),
        );
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .with(bridge);
    // The log bridge sees what passes the same global filter as the JSON lines. It is added
    // directly, not as an `Option`, so that it is told its dispatcher.
    #[cfg(feature = "otlp-logs")]
    if let Some(logs) = logger_provider {
        let logs = sightline_logging::otlp::OtlpLogLayer::new(logs).with_filter(
            tracing_subscriber::filter::filter_fn(|meta| {
                !sightline_logging::otlp::excluded(meta.target())
            })
            .with_max_level_hint(hint),
        );
        return tracing::Dispatch::new(subscriber.with(logs));
    }
    tracing::Dispatch::new(subscriber)
}

/// Sightline's `tracing` layers for an application's own subscriber
/// ([`SightlineBuilder::install_subscriber`](crate::SightlineBuilder::install_subscriber)):
/// built once, handed out by [`Sightline::tracing_layer`].
pub(crate) struct OwnLayers {
    json: std::sync::Mutex<Option<sightline_logging::JsonLayer>>,
    directives: String,
    tracer: opentelemetry_sdk::trace::Tracer,
    #[cfg(feature = "otlp-logs")]
    logger_provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
}

impl OwnLayers {
    /// The JSON lines (the first time), the span bridge and the log bridge, each behind
    /// Sightline's filter, for a subscriber `S`.
    pub(crate) fn layer<S>(&self) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        use tracing_subscriber::filter::{EnvFilter, FilterExt as _, filter_fn};

        let filter = || EnvFilter::new(&self.directives);
        let json = self
            .json
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .map(|layer| layer.with_filter(filter()));
        let bridge = tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_filter(filter_fn(not_sightline_http).and(filter()));
        let layer = tracing_subscriber::Layer::and_then(json, bridge);
        #[cfg(feature = "otlp-logs")]
        if let Some(logs) = &self.logger_provider {
            let logs = sightline_logging::otlp::OtlpLogLayer::new(logs).with_filter(
                filter_fn(|meta| !sightline_logging::otlp::excluded(meta.target())).and(filter()),
            );
            return Box::new(tracing_subscriber::Layer::and_then(layer, logs));
        }
        Box::new(layer)
    }
}
