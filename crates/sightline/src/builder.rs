//! The builder: plain settings, read by [`crate::resolve`] and turned into parts at `build`.

use std::time::Duration;

use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::{Error, Sightline};

/// Wire protocol of the OTLP exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

/// Builder of [`Sightline`]; see [`Sightline::builder`].
pub struct SightlineBuilder {
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) otlp_endpoint: Option<String>,
    pub(crate) otlp_protocol: Option<OtlpProtocol>,
    pub(crate) otlp_timeout: Option<Duration>,
    pub(crate) otlp_max_request_bytes: Option<usize>,
    pub(crate) attribute_value_length_limit: Option<Option<usize>>,
    pub(crate) export_interval: Option<Duration>,
    pub(crate) export_queue_size: Option<usize>,
    pub(crate) sampler: Option<opentelemetry_sdk::trace::Sampler>,
    pub(crate) adaptive_sampling: Option<crate::AdaptiveSampling>,
    pub(crate) keep: Option<crate::KeepPolicy>,
    pub(crate) log_writer: Option<BoxMakeWriter>,
    pub(crate) log_buffer_bytes: usize,
    pub(crate) log_filter: Option<String>,
    pub(crate) log_field_names: Option<sightline_logging::FieldNames>,
    pub(crate) json_logs: bool,
    pub(crate) install_subscriber: bool,
    pub(crate) otlp_logs: Option<bool>,
    #[cfg_attr(not(feature = "otlp-metrics"), allow(dead_code))]
    pub(crate) otlp_metrics: Option<bool>,
    #[cfg_attr(not(feature = "otlp-metrics"), allow(dead_code))]
    pub(crate) metric_export_interval: Option<Duration>,
    pub(crate) prometheus: bool,
    pub(crate) propagator: Option<sightline_propagation::Propagator>,
    pub(crate) trusted_proxies: Option<Vec<ipnet::IpNet>>,
    pub(crate) tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    #[cfg_attr(not(feature = "debug"), allow(dead_code))]
    pub(crate) debug: Option<bool>,
    #[cfg_attr(
        not(any(feature = "prometheus", feature = "otlp-metrics")),
        allow(dead_code)
    )]
    pub(crate) histogram_buckets: Vec<(HistogramMatch, Vec<f64>)>,
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) exemplars: bool,
}

/// Which histograms a bucket list of [`SightlineBuilder::histogram_buckets`] is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistogramMatch {
    /// The histogram of this name (`http.server.request.duration`, or one of your own).
    Name(String),
    /// Every histogram whose name starts with this (a name match wins over it).
    Prefix(String),
}

impl std::fmt::Debug for SightlineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SightlineBuilder")
            .field("service_name", &self.service_name)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("otlp_protocol", &self.otlp_protocol)
            .finish_non_exhaustive()
    }
}

impl Default for SightlineBuilder {
    fn default() -> Self {
        Self {
            service_name: None,
            service_version: None,
            otlp_endpoint: None,
            otlp_protocol: None,
            otlp_timeout: None,
            otlp_max_request_bytes: None,
            attribute_value_length_limit: None,
            export_interval: None,
            export_queue_size: None,
            sampler: None,
            adaptive_sampling: None,
            keep: None,
            log_writer: None,
            log_buffer_bytes: 8 * 1024 * 1024,
            log_filter: None,
            log_field_names: None,
            json_logs: true,
            install_subscriber: true,
            otlp_logs: None,
            otlp_metrics: None,
            metric_export_interval: None,
            prometheus: cfg!(feature = "prometheus"),
            propagator: None,
            trusted_proxies: None,
            tracer_provider: None,
            debug: None,
            histogram_buckets: Vec::new(),
            exemplars: true,
        }
    }
}

impl SightlineBuilder {
    /// The service's name: `service.name` on spans and on every log line.
    ///
    /// `OTEL_SERVICE_NAME`, when set, overrides it: it is how operators rename a deployment
    /// (see `docs/adr/0002-service-name-from-environment.md`). Defaults to
    /// `unknown_service:<executable>` as the OpenTelemetry resource specification says.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The service's version (`service.version`). Defaults to none.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// Where to export spans: the collector's base URL (`http://127.0.0.1:4317` for gRPC,
    /// `http://127.0.0.1:4318` for HTTP, to which `/v1/traces` is appended).
    ///
    /// Defaults to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`;
    /// with neither, spans are not exported (they still get IDs for log correlation).
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(endpoint.into());
        self
    }

    /// The OTLP protocol. Defaults to `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` or
    /// `http/protobuf`), else gRPC.
    pub fn otlp_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.otlp_protocol = Some(protocol);
        self
    }

    /// How long one export may take, retries included. Defaults to
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` (`..._LOGS_TIMEOUT` for log records) or
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds, else 10 seconds.
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp_timeout = Some(timeout);
        self
    }

    /// The largest OTLP export request, before compression: a batch that would encode larger
    /// goes as several requests, so one huge span or record (a 390 KB user agent, say) cannot
    /// take its batch-mates down when the collector refuses oversized messages. Defaults to
    /// 4 MiB, the gRPC and OpenTelemetry Collector default limit.
    pub fn otlp_max_request_bytes(mut self, bytes: usize) -> Self {
        self.otlp_max_request_bytes = Some(bytes);
        self
    }

    /// The longest string attribute value of an exported span, in characters (`None`: no
    /// limit). Values are cut as the specification's limit cuts them, without a mark.
    ///
    /// Defaults to `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` or
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
    /// [`DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT`](crate::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT)
    /// (8192), whose cuts end with `…[truncated]`.
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder()
    ///     .attribute_value_length_limit(Some(1024))
    ///     .build()?;
    /// # drop(sightline);
    /// # Ok(()) }
    /// ```
    pub fn attribute_value_length_limit(mut self, limit: Option<usize>) -> Self {
        self.attribute_value_length_limit = Some(limit);
        self
    }

    /// How often the batch processors export, spans and log records alike. Defaults to
    /// `OTEL_BSP_SCHEDULE_DELAY` for spans (else 5 seconds) and `OTEL_BLRP_SCHEDULE_DELAY` for
    /// log records (else 1 second), in milliseconds.
    pub fn export_interval(mut self, interval: Duration) -> Self {
        self.export_interval = Some(interval);
        self
    }

    /// How many spans (and, separately, log records) may wait for export; past it, new ones
    /// are dropped and counted in `sightline.telemetry.dropped{signal, reason="queue_full"}`,
    /// as are those whose export fails (`reason="export_failed"`), so a dead collector never
    /// blocks a request and never loses telemetry silently.
    ///
    /// Defaults to `OTEL_BSP_MAX_QUEUE_SIZE` for spans and `OTEL_BLRP_MAX_QUEUE_SIZE` for log
    /// records, else 2048. (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and
    /// `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` set the batch, else 512.)
    pub fn export_queue_size(mut self, size: usize) -> Self {
        self.export_queue_size = Some(size.max(1));
        self
    }

    /// Which traces are recorded and exported. Defaults to `OTEL_TRACES_SAMPLER` (and
    /// `OTEL_TRACES_SAMPLER_ARG`), else `parentbased_always_on`: every trace the caller
    /// sampled, and every new one. A request that is not sampled still gets ids, so its log
    /// lines still correlate.
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// use opentelemetry_sdk::trace::Sampler;
    ///
    /// // One new trace in ten; the caller's decision otherwise.
    /// let sightline = sightline::Sightline::builder()
    ///     .sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.1))))
    ///     .build()?;
    /// # drop(sightline);
    /// # Ok(()) }
    /// ```
    pub fn sampler(mut self, sampler: opentelemetry_sdk::trace::Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Adaptive head sampling instead of a fixed sampler: each route's probability follows
    /// its traffic so that it sends about `target` traces per second, rising with its errors
    /// and its latency, and at the minimum for OK requests while the process is overloaded
    /// (`OTEL_TRACES_SAMPLER=parentbased_sightline_adaptive`, `OTEL_TRACES_SAMPLER_ARG=target`).
    /// [`sampler`](Self::sampler) wins over it. Errors and slow requests are kept
    /// ([`keep`](Self::keep)).
    ///
    /// ```
    /// let builder = sightline::Sightline::builder()
    ///     .adaptive_sampling(sightline::AdaptiveSampling::new(5.0).min_ratio(0.01));
    /// # drop(builder);
    /// ```
    pub fn adaptive_sampling(mut self, settings: crate::AdaptiveSampling) -> Self {
        self.adaptive_sampling = Some(settings);
        self
    }

    /// What is exported of the requests head sampling did not pick: those that end with a
    /// server error, and those slower than a threshold, each with its whole local subtree.
    /// Defaults to [`KeepPolicy::default`](crate::KeepPolicy::default) (errors, and slower
    /// than 1 s) when the sampler can drop (a ratio below 1, the adaptive sampler), to
    /// [`KeepPolicy::none`](crate::KeepPolicy::none) otherwise; `SIGHTLINE_KEEP_ERRORS` and
    /// `SIGHTLINE_KEEP_SLOWER_THAN_MS` override either.
    ///
    /// ```
    /// use std::time::Duration;
    /// use opentelemetry_sdk::trace::Sampler;
    ///
    /// let builder = sightline::Sightline::builder()
    ///     .sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.1))))
    ///     .keep(sightline::KeepPolicy::default().slower_than(Some(Duration::from_millis(500))));
    /// # drop(builder);
    /// ```
    pub fn keep(mut self, policy: crate::KeepPolicy) -> Self {
        self.keep = Some(policy);
        self
    }

    /// Where JSON log lines go. Defaults to stdout through a non-blocking writer.
    pub fn log_writer<W>(mut self, writer: W) -> Self
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        self.log_writer = Some(BoxMakeWriter::new(writer));
        self
    }

    /// How many bytes of log lines the default stdout writer may hold while its thread writes
    /// them out; past it, lines are dropped whole and counted in
    /// `sightline_logging_dropped_lines_total`, never blocking a request.
    ///
    /// Defaults to 8 MiB. Has no effect with [`log_writer`](Self::log_writer).
    pub fn log_buffer_bytes(mut self, bytes: usize) -> Self {
        self.log_buffer_bytes = bytes;
        self
    }

    /// The log filter, in `RUST_LOG` syntax. Defaults to `RUST_LOG`, else `info`.
    pub fn log_filter(mut self, directives: impl Into<String>) -> Self {
        self.log_filter = Some(directives.into());
        self
    }

    /// The keys of the JSON lines, for Loki, Elastic Common Schema or an existing pipeline;
    /// only the names change, not the order or the values (docs/logging.md).
    ///
    /// Defaults to [`FieldNames::default`](sightline_logging::FieldNames::default), the
    /// documented schema (`timestamp`, `level`, `trace_id`, ...).
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// use sightline::logging::FieldNames;
    ///
    /// let sightline = sightline::Sightline::builder()
    ///     .log_field_names(FieldNames::ecs()) // `@timestamp`, `log.level`, `trace.id`, ...
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn log_field_names(mut self, names: sightline_logging::FieldNames) -> Self {
        self.log_field_names = Some(names);
        self
    }

    /// Whether to install the global `tracing` subscriber (JSON lines, OpenTelemetry bridge).
    ///
    /// Defaults to `true`; turn it off to compose your own subscriber with
    /// [`sightline_logging::JsonLayer`].
    pub fn json_logs(mut self, enabled: bool) -> Self {
        self.json_logs = enabled;
        self
    }

    /// Whether the `tracing` events that become JSON lines are also exported as OTLP log
    /// records, with the trace and span ids their JSON lines print (the same filter applies,
    /// except that events of the exporter's own libraries, `tonic`, `hyper`, `h2`, `tower`,
    /// `reqwest` and `opentelemetry*`, are never exported, so export cannot feed itself).
    ///
    /// Records go to the same endpoint, over the same protocol and with the same timeout and
    /// export interval as spans (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` and
    /// `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL` are read too), through a batch processor on its own
    /// thread with a bounded queue: a slow or dead collector loses records, never blocks.
    ///
    /// Defaults to off: the JSON lines on stdout are the log pipeline, and exporting each line
    /// again costs about as much CPU as everything else the full stack does per request.
    /// `OTEL_LOGS_EXPORTER=otlp` (with an OTLP endpoint configured here or in the environment)
    /// or `true` turns it on; `true` overrides `OTEL_LOGS_EXPORTER=none`, and
    /// makes [`build`](Self::build) fail when no endpoint is configured, when
    /// [`json_logs`](Self::json_logs) is off (the bridge is part of the subscriber it
    /// installs) or when the `otlp-logs` feature is off.
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// // Spans to the collector, logs only to stdout.
    /// let sightline = sightline::Sightline::builder()
    ///     .otlp_logs(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn otlp_logs(mut self, enabled: bool) -> Self {
        self.otlp_logs = Some(enabled);
        self
    }

    /// Whether to push the metrics over OTLP (the RED metrics and every `metrics` call of the
    /// application) to the collector the spans go to, every
    /// [`metric_export_interval`](Self::metric_export_interval). Beside the Prometheus
    /// exposition unless [`prometheus(false)`](Self::prometheus).
    ///
    /// Defaults to `OTEL_METRICS_EXPORTER`: `otlp` pushes (and, without `prometheus` in the
    /// list, turns the exposition off); unset, metrics are only scraped.
    /// `OTEL_EXPORTER_OTLP_METRICS_*` configure the connection, and
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` picks cumulative (the default) or
    /// delta counters and histograms.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder()
    ///     .otlp_endpoint("http://127.0.0.1:4317")
    ///     .otlp_metrics(true)
    ///     .prometheus(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "otlp-metrics")]
    pub fn otlp_metrics(mut self, enabled: bool) -> Self {
        self.otlp_metrics = Some(enabled);
        self
    }

    /// How often metrics are pushed over OTLP. Defaults to `OTEL_METRIC_EXPORT_INTERVAL`
    /// (milliseconds), else 60 seconds.
    #[cfg(feature = "otlp-metrics")]
    pub fn metric_export_interval(mut self, interval: Duration) -> Self {
        self.metric_export_interval = Some(interval);
        self
    }

    /// The reverse proxies and load balancers whose `Forwarded` / `X-Forwarded-For` headers
    /// the HTTP server layers believe for `client.address` (see
    /// [`ServerLayerBuilder::trusted_proxies`](crate::ServerLayerBuilder::trusted_proxies));
    /// from anyone else those headers are ignored.
    ///
    /// Defaults to `SIGHTLINE_TRUSTED_PROXIES` (comma-separated addresses or networks, as
    /// `10.0.0.0/8,192.168.1.10`), else none.
    ///
    /// ```
    /// let builder = sightline::Sightline::builder()
    ///     .trusted_proxies(["10.0.0.0/8".parse().unwrap()]);
    /// # drop(builder);
    /// ```
    pub fn trusted_proxies(mut self, networks: impl IntoIterator<Item = ipnet::IpNet>) -> Self {
        self.trusted_proxies = Some(networks.into_iter().collect());
        self
    }

    /// A tracer provider the application built (its own processors, exporters, sampler and
    /// resource), used as it is: Sightline's layers, the span bridge and the JSON lines take
    /// their tracer from it, and Sightline builds no span exporter of its own (the
    /// `OTEL_TRACES_*` and `OTEL_BSP_*` choices are then the provider's).
    /// [`Sightline::shutdown`](crate::Sightline::shutdown) shuts it down too.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), sightline::Error> {
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(InMemorySpanExporter::default())
    ///     .build();
    /// let sightline = sightline::Sightline::builder()
    ///     .tracer_provider(provider)
    ///     .install_subscriber(false)
    ///     .prometheus(false)
    ///     .build()?;
    /// # drop(sightline);
    /// # Ok(()) }
    /// ```
    pub fn tracer_provider(
        mut self,
        provider: opentelemetry_sdk::trace::SdkTracerProvider,
    ) -> Self {
        self.tracer_provider = Some(provider);
        self
    }

    /// Whether [`Sightline::debug_router`](crate::Sightline::debug_router) serves its
    /// internal pages: `/debug/sightline` (recent calls, errors and latencies, recorded in
    /// fixed memory) and `/debug/pprof/profile` (CPU profiles). Mount the router on an admin
    /// listener or behind a trusted network: these routes are for operators.
    ///
    /// Defaults to `SIGHTLINE_DEBUG` (`1` or `true`), else off: every debug route is a 404.
    #[cfg(feature = "debug")]
    pub fn debug(mut self, enabled: bool) -> Self {
        self.debug = Some(enabled);
        self
    }

    /// The bucket boundaries of histograms: the application's own (`metrics::histogram!`
    /// calls), by name or name prefix, or Sightline's, by name (overriding the semantic
    /// conventions' boundaries). Applies to `/metrics` and to the OTLP push alike. Call it
    /// once per histogram or prefix; the boundaries must be finite and increasing, else
    /// `build` returns [`ConfigError::HistogramBuckets`](crate::ConfigError::HistogramBuckets).
    ///
    /// Without it, the application's histograms are summaries on `/metrics` (the Prometheus
    /// exporter's default) and have the SDK's default boundaries over OTLP.
    ///
    /// ```
    /// use sightline::HistogramMatch;
    ///
    /// let builder = sightline::Sightline::builder()
    ///     .histogram_buckets(HistogramMatch::Prefix("db.".into()), &[0.001, 0.01, 0.1, 1.0])
    ///     .histogram_buckets(
    ///         HistogramMatch::Name("http.server.request.duration".into()),
    ///         &[0.01, 0.05, 0.2, 1.0],
    ///     );
    /// # drop(builder);
    /// ```
    pub fn histogram_buckets(mut self, histograms: HistogramMatch, bounds: &[f64]) -> Self {
        self.histogram_buckets.push((histograms, bounds.to_vec()));
        self
    }

    /// Whether the duration histograms (HTTP and gRPC, server and client) keep exemplars: per
    /// bucket, the trace and span of the latest sampled request that fell into it, written on
    /// the buckets of `/metrics` when the scraper asks for OpenMetrics (Prometheus does; its
    /// `--enable-feature=exemplar-storage` stores them). Unsampled requests never become
    /// exemplars.
    ///
    /// Defaults to `true`: a sampled request pays a few atomic stores, an unsampled one
    /// nothing.
    ///
    /// ```
    /// let builder = sightline::Sightline::builder().exemplars(false);
    /// # drop(builder);
    /// ```
    pub fn exemplars(mut self, enabled: bool) -> Self {
        self.exemplars = enabled;
        self
    }

    /// Whether `build` installs Sightline's `tracing` subscriber as the global default.
    ///
    /// Defaults to `true`. Turn it off in an application that installs its own subscriber
    /// (its own fmt layer, its own filter): it then adds
    /// [`Sightline::tracing_layer`](crate::Sightline::tracing_layer) to its registry, and
    /// gets the JSON lines and the span bridge there. With `true`, a subscriber installed
    /// before `build` is an [`Error::AlreadyInstalled`](crate::Error::AlreadyInstalled).
    pub fn install_subscriber(mut self, install: bool) -> Self {
        self.install_subscriber = install;
        self
    }

    /// Whether to install the Prometheus recorder as the global `metrics` recorder.
    ///
    /// Defaults to `true` with the `prometheus` feature, unless `OTEL_METRICS_EXPORTER`
    /// leaves `prometheus` out of its list.
    pub fn prometheus(mut self, enabled: bool) -> Self {
        self.prometheus = enabled && cfg!(feature = "prometheus");
        self
    }

    /// The trace context formats of every layer the built [`Sightline`] makes: what the HTTP
    /// and gRPC servers read from incoming requests (in order) and what the HTTP and gRPC
    /// clients write into outgoing ones. A layer made from one of the pre-configured builders
    /// ([`Sightline::http_server_layer_builder`], ...) may still set its own.
    ///
    /// Defaults to each layer's default, [`Propagator::new`](sightline_propagation::Propagator::new):
    /// W3C `traceparent`/`tracestate` and baggage read and written, B3 read as a fallback.
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// use sightline::propagation::{Format, Propagator};
    ///
    /// // A mesh that speaks B3: read W3C or B3, write both.
    /// let propagator = Propagator::builder()
    ///     .extract_formats(&[Format::TraceContext, Format::B3Single, Format::B3Multi])
    ///     .inject_formats(&[Format::TraceContext, Format::B3Multi])
    ///     .build();
    /// let sightline = sightline::Sightline::builder().propagator(propagator).build()?;
    /// # drop(sightline);
    /// # Ok(()) }
    /// ```
    pub fn propagator(mut self, propagator: sightline_propagation::Propagator) -> Self {
        self.propagator = Some(propagator);
        self
    }
}

impl SightlineBuilder {
    /// Builds everything and installs the globals: reads the environment and checks every
    /// setting first, then builds the exporters, the tracer and logger providers, the log
    /// writer and the Prometheus recorder, and only when all of that has succeeded installs,
    /// in this order, the global `metrics` recorder, the global `tracing` subscriber and the
    /// OpenTelemetry global tracer provider. When it fails, no global has been changed.
    ///
    /// Fails when a setting is wrong ([`Error::Config`], [`Error::Exporter`]) or when a
    /// `tracing` subscriber or `metrics` recorder is installed already
    /// ([`Error::AlreadyInstalled`]). With OTLP export it must run inside a Tokio runtime.
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder().service_name("checkout").build()?;
    /// # drop(sightline);
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<Sightline, Error> {
        let settings = crate::resolve::Settings::resolve(self, &|name| std::env::var(name).ok())?;
        for warning in &settings.warnings {
            // Before any subscriber exists; stderr is where operators look at start-up.
            eprintln!("sightline: {warning}");
        }
        let parts = crate::parts::Parts::build(settings)?;
        parts.install()
    }
}
