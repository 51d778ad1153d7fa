//! Traces, RED metrics, request IDs and correlated JSON logs for axum and tonic services,
//! server side and client side, in one builder.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sightline::Sightline;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sightline = Sightline::builder().service_name("checkout").build()?;
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .route("/metrics", sightline.metrics_handler())
//!     .layer(sightline.http_server_layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`SightlineBuilder::build`] sets up, with defaults right for a service behind Prometheus
//! and an OpenTelemetry Collector:
//!
//! - **traces**: an OpenTelemetry tracer provider; OTLP export with a batch processor when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
//!   [`SightlineBuilder::otlp_endpoint`]) is set, over gRPC or, with
//!   `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, HTTP. Without an endpoint spans still get
//!   IDs, so log lines still correlate. `OTEL_EXPORTER_OTLP_HEADERS` adds metadata (an API
//!   key, say); `https://` endpoints need the `otlp-tls` feature (the system's roots, plus
//!   `OTEL_EXPORTER_OTLP_CERTIFICATE`); compression is not offered (ADR 0007). Export runs on
//!   its own thread with a bounded queue:
//!   a slow or dead collector loses spans, never blocks a request, and every span (or log
//!   record) lost is counted in `sightline_telemetry_dropped_total`;
//! - **metrics**: a Prometheus recorder for the `metrics` facade (semantic-convention
//!   duration buckets, an upkeep thread so histogram memory stays bounded without scrapes);
//! - **logs**: a global `tracing` subscriber writing JSON lines ([`sightline_logging`]) to
//!   stdout through a non-blocking writer, filtered by `RUST_LOG` (default `info`), with
//!   `tracing` spans bridged to OpenTelemetry so that handlers' spans join the trace; with an
//!   OTLP endpoint, the same events exported as OTLP log records carrying the trace and span
//!   ids their JSON lines print ([`SightlineBuilder::otlp_logs`]);
//! - **the server layer** ([`Sightline::http_server_layer`]): trace context, server span,
//!   request ID, RED metrics and access log for every request;
//! - **the gRPC layers** ([`Sightline::grpc_server_layer`] for a tonic server,
//!   [`Sightline::grpc_client_layer`] for a channel): the same, per the RPC semantic
//!   conventions, with the status read from the trailers at the end of the stream;
//! - **the HTTP client layer** ([`Sightline::http_client_layer`]): a client span per call and
//!   the context injected into the outgoing headers.
//!
//! # Features
//!
//! | feature | default? | what it does |
//! |---|---|---|
//! | `prometheus` | yes | Prometheus exposition of the RED metrics |
//! | `otlp` | yes | OTLP trace export over gRPC |
//! | `otlp-logs` | yes | OTLP log export of the `tracing` events ([`SightlineBuilder::otlp_logs`]) |
//! | `otlp-tls` | no | OTLP/gRPC export to `https://` endpoints (rustls; system roots and `OTEL_EXPORTER_OTLP_CERTIFICATE`) |
//! | `otlp-http` | yes | OTLP trace export over HTTP/protobuf (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`) |
//! | `jaeger` | no | Jaeger's `uber-trace-id` as a propagation format |
//! | `axum` | yes | [`Sightline::metrics_handler`]; route templates from axum's `MatchedPath` |
//! | `grpc` | yes | [`Sightline::grpc_server_layer`] and [`Sightline::grpc_client_layer`] for tonic |

#[cfg(feature = "otlp")]
mod drops;
mod error;
#[cfg(feature = "otlp")]
mod otlp_grpc;
#[cfg(feature = "otlp-logs")]
mod otlp_logs;

/// The export queue's size (spans, and log records): the SDK's default.
const DEFAULT_EXPORT_QUEUE_SIZE: usize = 2048;

use std::sync::Arc;
#[cfg(feature = "prometheus")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

pub use error::Error;
pub use sightline_http as http;
pub use sightline_http::client::{ClientLayer, ClientLayerBuilder};
/// The gRPC middlewares ([`Sightline::grpc_server_layer`], [`Sightline::grpc_client_layer`]).
#[cfg(feature = "grpc")]
pub use sightline_http::grpc;
pub use sightline_http::request_id::RequestId;
pub use sightline_http::server::{ServerLayer, ServerLayerBuilder};
pub use sightline_logging as logging;
pub use sightline_propagation as propagation;

#[cfg(feature = "grpc")]
mod grpc_layers;

/// The name of the instrumentation scope of Sightline's spans.
pub const INSTRUMENTATION_SCOPE: &str = "sightline";

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
    service_name: Option<String>,
    service_version: Option<String>,
    otlp_endpoint: Option<String>,
    otlp_protocol: Option<OtlpProtocol>,
    otlp_timeout: Duration,
    export_interval: Duration,
    export_queue_size: usize,
    log_writer: Option<BoxMakeWriter>,
    log_buffer_bytes: usize,
    log_filter: Option<String>,
    log_field_names: Option<sightline_logging::FieldNames>,
    json_logs: bool,
    otlp_logs: Option<bool>,
    prometheus: bool,
    propagator: Option<sightline_propagation::Propagator>,
    server: Option<Box<dyn FnOnce(ServerLayerBuilder) -> ServerLayerBuilder>>,
    client: Option<Box<dyn FnOnce(ClientLayerBuilder) -> ClientLayerBuilder>>,
    #[cfg(feature = "grpc")]
    grpc: grpc_layers::GrpcConfig,
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
            otlp_timeout: Duration::from_secs(10),
            export_interval: Duration::from_secs(5),
            export_queue_size: DEFAULT_EXPORT_QUEUE_SIZE,
            log_writer: None,
            log_buffer_bytes: 8 * 1024 * 1024,
            log_filter: None,
            log_field_names: None,
            json_logs: true,
            otlp_logs: None,
            prometheus: cfg!(feature = "prometheus"),
            propagator: None,
            server: None,
            client: None,
            #[cfg(feature = "grpc")]
            grpc: Default::default(),
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

    /// How long one export may take. Defaults to 10 seconds.
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp_timeout = timeout;
        self
    }

    /// How often the batch processor exports. Defaults to 5 seconds.
    pub fn export_interval(mut self, interval: Duration) -> Self {
        self.export_interval = interval;
        self
    }

    /// How many spans (and, separately, log records) may wait for export; past it, new ones
    /// are dropped and counted in `sightline.telemetry.dropped{signal, reason="queue_full"}`,
    /// as are those whose export fails (`reason="export_failed"`), so a dead collector never
    /// blocks a request and never loses telemetry silently.
    ///
    /// Defaults to 2048, the SDK's default.
    pub fn export_queue_size(mut self, size: usize) -> Self {
        self.export_queue_size = size.max(1);
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

    /// Whether to install the Prometheus recorder as the global `metrics` recorder.
    ///
    /// Defaults to `true` with the `prometheus` feature.
    pub fn prometheus(mut self, enabled: bool) -> Self {
        self.prometheus = enabled && cfg!(feature = "prometheus");
        self
    }

    /// The trace context formats of every layer this builder makes: what the HTTP and gRPC
    /// servers read from incoming requests (in order) and what the HTTP and gRPC clients write
    /// into outgoing ones. A layer's own closure ([`server`](Self::server),
    /// [`client`](Self::client), `grpc_server`, `grpc_client`) may still set its own.
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

    /// Adjusts the server layer (request ID header, access log and its levels, captured
    /// headers, redaction, ...); see [`ServerLayerBuilder`].
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// use http::header::{AUTHORIZATION, USER_AGENT};
    /// use sightline::http::access::AccessLogLevels;
    ///
    /// let sightline = sightline::Sightline::builder()
    ///     .server(|layer| {
    ///         layer
    ///             // `http.request.header.authorization` is recorded as ["REDACTED"].
    ///             .capture_request_headers([AUTHORIZATION, USER_AGENT])
    ///             .access_log_levels(AccessLogLevels {
    ///                 success: Some(tracing::Level::DEBUG),
    ///                 ..AccessLogLevels::default()
    ///             })
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn server(
        mut self,
        configure: impl FnOnce(ServerLayerBuilder) -> ServerLayerBuilder + 'static,
    ) -> Self {
        self.server = Some(Box::new(configure));
        self
    }

    /// Adjusts the client layer of [`Sightline::http_client_layer`] (request ID header,
    /// propagation formats, captured headers, redaction, ...); see [`ClientLayerBuilder`].
    ///
    /// ```
    /// # fn f() -> Result<(), sightline::Error> {
    /// let sightline = sightline::Sightline::builder()
    ///     .client(|layer| layer.capture_response_headers([http::header::CONTENT_TYPE]))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn client(
        mut self,
        configure: impl FnOnce(ClientLayerBuilder) -> ClientLayerBuilder + 'static,
    ) -> Self {
        self.client = Some(Box::new(configure));
        self
    }

    /// Builds the tracer provider, installs the global `tracing` subscriber and `metrics`
    /// recorder (errs if one exists), and makes the server layer.
    ///
    /// With OTLP over gRPC this must run inside a Tokio runtime.
    pub fn build(self) -> Result<Sightline, Error> {
        let service_name = resolve_service_name(self.service_name);
        let mut resource = Resource::builder().with_service_name(service_name.clone());
        if let Some(version) = &self.service_version {
            resource = resource.with_attribute(KeyValue::new(
                opentelemetry_semantic_conventions::attribute::SERVICE_VERSION,
                version.clone(),
            ));
        }
        let resource = resource.build();
        #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
        let mut provider = SdkTracerProvider::builder().with_resource(resource.clone());
        #[cfg(feature = "otlp")]
        if let Some(exporter) = otlp::span_exporter(
            self.otlp_endpoint.as_deref(),
            self.otlp_protocol,
            self.otlp_timeout,
        )? {
            // Every span the queue cannot take, or the collector does not accept, is counted
            // in `sightline.telemetry.dropped` (see `drops`).
            let budget = drops::Budget::new("spans", self.export_queue_size);
            let exporter = drops::CountingSpanExporter {
                inner: exporter,
                budget: Arc::clone(&budget),
            };
            let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    opentelemetry_sdk::trace::BatchConfigBuilder::default()
                        .with_scheduled_delay(self.export_interval)
                        .with_max_queue_size(self.export_queue_size)
                        .build(),
                )
                .build();
            provider = provider.with_span_processor(drops::CountingSpanProcessor {
                inner: processor,
                budget,
            });
        }
        #[cfg(not(feature = "otlp"))]
        if self.otlp_endpoint.is_some() {
            return Err(Error::InvalidConfig(
                "an OTLP endpoint is set but the `otlp` feature is off".into(),
            ));
        }
        let provider = provider.build();
        let tracer = provider.tracer(INSTRUMENTATION_SCOPE);
        opentelemetry::global::set_tracer_provider(provider.clone());

        #[cfg(feature = "otlp-logs")]
        let logger_provider = {
            let on = otlp_logs::enabled(self.otlp_logs, self.otlp_endpoint.as_deref())?;
            if on && !self.json_logs && self.otlp_logs == Some(true) {
                return Err(Error::InvalidConfig(
                    "OTLP logs need the subscriber that `json_logs` installs".into(),
                ));
            }
            if on && self.json_logs {
                Some(otlp_logs::logger_provider(
                    resource,
                    self.otlp_endpoint.as_deref(),
                    self.otlp_protocol,
                    self.otlp_timeout,
                    self.export_interval,
                    self.export_queue_size,
                )?)
            } else {
                None
            }
        };
        #[cfg(not(feature = "otlp-logs"))]
        if self.otlp_logs == Some(true) {
            return Err(Error::InvalidConfig(
                "OTLP logs are switched on but the `otlp-logs` feature is off".into(),
            ));
        }

        let mut log_guard = None;
        // Read by the Prometheus exposition, which reports the writer's dropped lines.
        #[cfg_attr(not(feature = "prometheus"), allow(unused_mut, unused_variables))]
        let mut log_writer: Option<sightline_logging::NonBlocking> = None;
        if self.json_logs {
            let mut json = sightline_logging::JsonLayer::builder().service_name(&service_name);
            if let Some(names) = self.log_field_names {
                json = json.field_names(names);
            }
            match self.log_writer {
                Some(writer) => json = json.writer(writer),
                None => {
                    let (writer, guard) = sightline_logging::NonBlocking::builder()
                        .capacity_bytes(self.log_buffer_bytes)
                        .build(std::io::stdout());
                    log_guard = Some(guard);
                    #[cfg(feature = "prometheus")]
                    {
                        log_writer = Some(writer.clone());
                    }
                    json = json.writer(writer);
                }
            }
            let filter = match &self.log_filter {
                Some(directives) => tracing_subscriber::EnvFilter::try_new(directives)
                    .map_err(|e| Error::InvalidConfig(format!("log filter: {e}")))?,
                None => tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            };
            // Sightline's own spans are made with the OpenTelemetry SDK directly; the bridge
            // must not turn them into second, duplicate spans. The filter states the global
            // filter's level as its hint: a per-layer filter without one makes the whole
            // subscriber's maximum level TRACE, and then every `trace!` in hyper, h2 and tokio
            // is checked at run time on every request (measured: about half the throughput).
            let hint =
                tracing_subscriber::Layer::<tracing_subscriber::Registry>::max_level_hint(&filter)
                    .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
            let bridge = tracing_opentelemetry::layer()
                .with_tracer(tracer.clone())
                .with_filter(
                    tracing_subscriber::filter::filter_fn(|meta| {
                        !meta.target().starts_with("sightline_http")
                    })
                    .with_max_level_hint(hint),
                );
            // The log bridge sees what passes the same global filter as the JSON lines. It is
            // added directly, not as an `Option`, so that it is told its dispatcher.
            #[cfg(feature = "otlp-logs")]
            let otlp_bridge = logger_provider.as_ref().map(|logs| {
                sightline_logging::otlp::OtlpLogLayer::new(logs).with_filter(
                    tracing_subscriber::filter::filter_fn(|meta| {
                        !sightline_logging::otlp::excluded(meta.target())
                    })
                    .with_max_level_hint(hint),
                )
            });
            #[cfg(not(feature = "otlp-logs"))]
            let otlp_bridge: Option<tracing_subscriber::layer::Identity> = None;
            let subscriber = tracing_subscriber::registry()
                .with(filter)
                .with(json.build())
                .with(bridge);
            match otlp_bridge {
                Some(logs) => tracing::subscriber::set_global_default(subscriber.with(logs)),
                None => tracing::subscriber::set_global_default(subscriber),
            }
            .map_err(Error::Subscriber)?;
        }

        #[cfg(feature = "prometheus")]
        let prometheus = if self.prometheus {
            Some(prometheus::install(log_writer)?)
        } else {
            None
        };

        let tracer_for_client = tracer.clone();
        #[cfg(feature = "grpc")]
        let grpc = self.grpc.build(tracer.clone(), self.propagator.clone());
        let mut server = ServerLayer::builder().tracer(tracer);
        let mut client = ClientLayerBuilder::default().tracer(tracer_for_client);
        if let Some(propagator) = self.propagator {
            server = server.propagator(propagator.clone());
            client = client.propagator(propagator);
        }
        if let Some(configure) = self.server {
            server = configure(server);
        }
        if let Some(configure) = self.client {
            client = configure(client);
        }
        Ok(Sightline {
            inner: Arc::new(Inner {
                service_name,
                provider,
                #[cfg(feature = "otlp-logs")]
                logger_provider,
                server_layer: server.build(),
                #[cfg(feature = "grpc")]
                grpc,
                client_layer: client.build(),
                #[cfg(feature = "prometheus")]
                prometheus,
                _log_guard: log_guard,
            }),
        })
    }
}

fn resolve_service_name(configured: Option<String>) -> String {
    if let Some(name) = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        return name;
    }
    configured.unwrap_or_else(|| {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        format!("unknown_service:{exe}")
    })
}

/// Sightline for one service: the tracer provider, the metrics recorder, the log writer and
/// the middleware layers. Cheap to clone.
///
/// Call [`Sightline::shutdown`] when the service stops, to export the spans still queued;
/// dropping the last clone does the same as a safety net.
#[derive(Clone)]
pub struct Sightline {
    inner: Arc<Inner>,
}

struct Inner {
    service_name: String,
    provider: SdkTracerProvider,
    #[cfg(feature = "otlp-logs")]
    logger_provider: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    server_layer: ServerLayer,
    #[cfg(feature = "grpc")]
    grpc: grpc_layers::GrpcLayers,
    client_layer: sightline_http::ClientLayer,
    #[cfg(feature = "prometheus")]
    prometheus: Option<prometheus::Exposition>,
    _log_guard: Option<sightline_logging::WorkerGuard>,
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

    /// The server middleware for an axum `Router` (apply it with `Router::layer`).
    pub fn http_server_layer(&self) -> ServerLayer {
        self.inner.server_layer.clone()
    }

    /// The client middleware for outgoing HTTP calls: a CLIENT span per call, the trace
    /// context and request ID injected, `http.client.request.duration` recorded. See
    /// [`sightline_http::client`].
    pub fn http_client_layer(&self) -> sightline_http::ClientLayer {
        self.inner.client_layer.clone()
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

    /// Exports every finished span and every queued OTLP log record now. Blocks: call it from
    /// `spawn_blocking` in async code. Both are flushed even if one fails; the first error is
    /// returned.
    pub fn force_flush(&self) -> Result<(), opentelemetry_sdk::error::OTelSdkError> {
        let spans = self.inner.provider.force_flush();
        #[cfg(feature = "otlp-logs")]
        if let Some(logs) = &self.inner.logger_provider {
            let logs = logs.force_flush();
            return spans.and(logs);
        }
        spans
    }

    /// The Prometheus text exposition of every metric, as `/metrics` serves it.
    #[cfg(feature = "prometheus")]
    pub fn render_metrics(&self) -> String {
        self.inner
            .prometheus
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
        let exposition = self.inner.prometheus.as_ref().map(|p| p.renderer());
        axum::routing::get(move || {
            let body = exposition.as_ref().map(|r| r.render()).unwrap_or_default();
            std::future::ready((
                [(
                    ::http::header::CONTENT_TYPE,
                    ::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                )],
                body,
            ))
        })
    }

    /// Exports every span and OTLP log record still queued and stops export; later spans and
    /// records are dropped. Both are shut down even if one fails; the first error is returned.
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
        let spans = self.inner.provider.shutdown();
        #[cfg(feature = "otlp-logs")]
        if let Some(logs) = &self.inner.logger_provider {
            let logs = logs.shutdown();
            return spans.and(logs);
        }
        spans
    }
}

#[cfg(feature = "prometheus")]
mod prometheus {
    use super::*;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
    use sightline_http::server::{DURATION_BUCKETS, HTTP_SERVER_REQUEST_DURATION};

    /// How often histogram samples are folded into buckets when nobody scrapes.
    const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

    /// The name of the counter of log lines the non-blocking writer dropped.
    const DROPPED_LINES: &str = "sightline.logging.dropped_lines";

    pub(crate) struct Exposition {
        renderer: Renderer,
        stop: Arc<AtomicBool>,
        upkeep: Option<std::thread::JoinHandle<()>>,
    }

    impl Exposition {
        pub(crate) fn renderer(&self) -> Renderer {
            self.renderer.clone()
        }
    }

    /// What `/metrics` needs: the exposition handle and the log writer whose drops it reports.
    #[derive(Clone)]
    pub(crate) struct Renderer {
        handle: PrometheusHandle,
        log_writer: Option<sightline_logging::NonBlocking>,
    }

    impl Renderer {
        /// Copies the writer's drop count into its counter (the writer counts with an atomic;
        /// the count is published here rather than on the logging hot path).
        fn publish_dropped_lines(&self) {
            if let Some(writer) = &self.log_writer {
                metrics::counter!(DROPPED_LINES).absolute(writer.dropped_lines());
            }
        }

        pub(crate) fn render(&self) -> String {
            self.publish_dropped_lines();
            self.handle.render()
        }
    }

    impl Drop for Exposition {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(thread) = self.upkeep.take() {
                thread.thread().unpark();
                let _ = thread.join();
            }
        }
    }

    /// The RPC histograms' buckets: durations as for HTTP, message counts in powers of two.
    #[cfg(feature = "grpc")]
    fn grpc_buckets(builder: PrometheusBuilder) -> Result<PrometheusBuilder, Error> {
        use sightline_http::grpc::{
            RPC_CLIENT_CALL_DURATION, RPC_CLIENT_RESPONSES_PER_RPC, RPC_SERVER_CALL_DURATION,
            RPC_SERVER_REQUESTS_PER_RPC, RPC_SERVER_RESPONSES_PER_RPC,
        };
        const MESSAGE_BUCKETS: [f64; 11] = [
            0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0,
        ];
        let mut builder = builder;
        for name in [RPC_SERVER_CALL_DURATION, RPC_CLIENT_CALL_DURATION] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), &DURATION_BUCKETS)
                .map_err(Error::MetricsRecorder)?;
        }
        for name in [
            RPC_SERVER_REQUESTS_PER_RPC,
            RPC_SERVER_RESPONSES_PER_RPC,
            RPC_CLIENT_RESPONSES_PER_RPC,
        ] {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), &MESSAGE_BUCKETS)
                .map_err(Error::MetricsRecorder)?;
        }
        Ok(builder)
    }

    pub(crate) fn install(
        log_writer: Option<sightline_logging::NonBlocking>,
    ) -> Result<Exposition, Error> {
        let builder = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(
                Matcher::Full(HTTP_SERVER_REQUEST_DURATION.to_owned()),
                &DURATION_BUCKETS,
            )
            .map_err(Error::MetricsRecorder)?
            .set_buckets_for_metric(
                Matcher::Full(sightline_http::client::HTTP_CLIENT_REQUEST_DURATION.to_owned()),
                &DURATION_BUCKETS,
            )
            .map_err(Error::MetricsRecorder)?;
        #[cfg(feature = "grpc")]
        let builder = grpc_buckets(builder)?;
        let handle = builder.install_recorder().map_err(Error::MetricsRecorder)?;
        sightline_http::server::describe_server_metrics();
        sightline_http::client::describe_client_metrics();
        #[cfg(feature = "grpc")]
        sightline_http::grpc::describe_grpc_metrics();
        metrics::describe_counter!(
            "sightline.propagation.rejected",
            metrics::Unit::Count,
            "Trace context headers that were present but malformed, by header."
        );
        metrics::describe_counter!(
            DROPPED_LINES,
            metrics::Unit::Count,
            "JSON log lines dropped because the writer's buffer was full."
        );
        #[cfg(feature = "otlp")]
        metrics::describe_counter!(
            crate::drops::DROPPED,
            metrics::Unit::Count,
            "Spans and log records lost before reaching the collector, by signal and reason \
             (queue_full: the export queue was full; export_failed: the collector did not accept them)."
        );
        let renderer = Renderer { handle, log_writer };

        // metrics-exporter-prometheus keeps histogram samples until upkeep folds them into
        // buckets; without scrapes and without this thread their memory would grow forever.
        let stop = Arc::new(AtomicBool::new(false));
        let upkeep = {
            let renderer = renderer.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("sightline-metrics-upkeep".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::park_timeout(UPKEEP_INTERVAL);
                        renderer.publish_dropped_lines();
                        renderer.handle.run_upkeep();
                    }
                })
                .map_err(|e| Error::InvalidConfig(format!("cannot start the upkeep thread: {e}")))?
        };
        Ok(Exposition {
            renderer,
            stop,
            upkeep: Some(upkeep),
        })
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use super::*;
    use opentelemetry_otlp::SpanExporter;
    #[cfg(feature = "otlp-http")]
    use opentelemetry_otlp::WithExportConfig as _;

    pub(crate) fn env(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    /// The configured protocol, else the signal's variable (`signal_var`), else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC.
    pub(crate) fn protocol(
        configured: Option<OtlpProtocol>,
        signal_var: &str,
    ) -> Result<OtlpProtocol, Error> {
        if let Some(protocol) = configured {
            return Ok(protocol);
        }
        let var = env(signal_var).or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
        match var.as_deref() {
            None | Some("grpc") => Ok(OtlpProtocol::Grpc),
            Some("http/protobuf") => Ok(OtlpProtocol::HttpProtobuf),
            Some(other) => Err(Error::InvalidConfig(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?}: expected \"grpc\" or \"http/protobuf\""
            ))),
        }
    }

    /// The span exporter, or `None` when no endpoint is configured anywhere.
    pub(crate) fn span_exporter(
        endpoint: Option<&str>,
        protocol_config: Option<OtlpProtocol>,
        timeout: Duration,
    ) -> Result<Option<TraceExporter>, Error> {
        let from_env = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
        if endpoint.is_none() && !from_env {
            return Ok(None);
        }
        match protocol(protocol_config, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")? {
            OtlpProtocol::Grpc => {
                // Our own encoder and tonic channel (see `otlp_grpc`), configured as the
                // SDK's would be.
                let transport = crate::otlp_grpc::Transport::from_config(
                    crate::otlp_grpc::Signal::Traces,
                    endpoint,
                    timeout,
                )?;
                Ok(Some(TraceExporter::Grpc(
                    crate::otlp_grpc::GrpcSpanExporter::new(transport),
                )))
            }
            #[cfg(feature = "otlp-http")]
            OtlpProtocol::HttpProtobuf => {
                let mut builder = SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_timeout(timeout);
                if let Some(endpoint) = endpoint {
                    // A programmatic endpoint is used as given by the exporter; make it the
                    // traces URL as the environment variable would be.
                    let base = endpoint.trim_end_matches('/');
                    builder = builder.with_endpoint(format!("{base}/v1/traces"));
                }
                builder
                    .build()
                    .map(|e| Some(TraceExporter::Sdk(e)))
                    .map_err(Error::Exporter)
            }
            #[cfg(not(feature = "otlp-http"))]
            OtlpProtocol::HttpProtobuf => Err(Error::InvalidConfig(
                "OTLP over HTTP needs the `otlp-http` feature".into(),
            )),
        }
    }

    /// The span exporter the facade built: ours for OTLP/gRPC, the SDK's for HTTP.
    #[derive(Debug)]
    pub(crate) enum TraceExporter {
        Grpc(crate::otlp_grpc::GrpcSpanExporter),
        #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
        Sdk(SpanExporter),
    }

    impl opentelemetry_sdk::trace::SpanExporter for TraceExporter {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            match self {
                Self::Grpc(e) => e.export(batch).await,
                Self::Sdk(e) => e.export(batch).await,
            }
        }

        fn shutdown_with_timeout(
            &self,
            timeout: Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            match self {
                Self::Grpc(e) => e.shutdown_with_timeout(timeout),
                Self::Sdk(e) => e.shutdown_with_timeout(timeout),
            }
        }

        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            match self {
                Self::Grpc(e) => e.force_flush(),
                Self::Sdk(e) => e.force_flush(),
            }
        }

        fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
            match self {
                Self::Grpc(e) => e.set_resource(resource),
                Self::Sdk(e) => e.set_resource(resource),
            }
        }
    }
}
