//! An in-process OpenTelemetry collector: OTLP/gRPC and OTLP/HTTP (protobuf) receivers that
//! store every export request, decoded with the `opentelemetry-proto` types.
//!
//! Both receivers accept traces, logs and metrics; [`OtlpCollector::spans`],
//! [`OtlpCollector::log_records`] and [`OtlpCollector::metrics`] flatten what arrived into
//! records that keep their resource, so a test can assert on `service.name` next to the span
//! it found.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::util::{hex, poll_until};

/// How an export request reached the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC (`TraceService/Export`, `LogsService/Export`).
    Grpc,
    /// OTLP/HTTP with a protobuf body (`POST /v1/traces`, `POST /v1/logs`).
    HttpProtobuf,
}

/// One export request as received.
#[derive(Clone, Debug)]
pub struct Received<T> {
    /// Which receiver got it.
    pub transport: Transport,
    /// The decoded request.
    pub request: T,
    /// The request's HTTP headers (gRPC metadata on the gRPC receiver).
    pub headers: HeaderMap,
}

#[derive(Debug, Default)]
struct Store {
    traces: Mutex<Vec<Received<ExportTraceServiceRequest>>>,
    logs: Mutex<Vec<Received<ExportLogsServiceRequest>>>,
    metrics: Mutex<Vec<Received<ExportMetricsServiceRequest>>>,
    /// Requests the HTTP receiver refused, with the reason (wrong content type, bad body).
    rejected: Mutex<Vec<String>>,
    /// TCP connections accepted by each receiver, to tell "never connected" from "sent
    /// nothing" when a test finds no data.
    grpc_connections: AtomicUsize,
    http_connections: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide what the collector received.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An OTLP receiver on two ports of 127.0.0.1: gRPC and HTTP/protobuf.
///
/// ```no_run
/// # async fn demo() {
/// use std::time::Duration;
/// use sightline_tests::collector::OtlpCollector;
///
/// let collector = OtlpCollector::start().await;
/// // give `collector.grpc_endpoint()` to the process under test as OTEL_EXPORTER_OTLP_ENDPOINT
/// let spans = collector
///     .wait_for_spans(|s| s.span.name == "GET /users/{id}", Duration::from_secs(10))
///     .await;
/// # }
/// ```
#[derive(Debug)]
pub struct OtlpCollector {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    store: Arc<Store>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone, Debug)]
struct GrpcReceiver(Arc<Store>);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        lock(&self.0.traces).push(Received {
            transport: Transport::Grpc,
            request: request.into_inner(),
            headers,
        });
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        lock(&self.0.logs).push(Received {
            transport: Transport::Grpc,
            request: request.into_inner(),
            headers,
        });
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        lock(&self.0.metrics).push(Received {
            transport: Transport::Grpc,
            request: request.into_inner(),
            headers,
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn protobuf_response(msg: &impl prost::Message) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        msg.encode_to_vec(),
    )
        .into_response()
}

/// `Some(rejection)` unless the body is declared as protobuf.
fn reject_non_protobuf(store: &Store, headers: &HeaderMap) -> Option<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().map(str::trim) == Some("application/x-protobuf") {
        None
    } else {
        lock(&store.rejected).push(format!("unsupported content-type {ct:?}"));
        Some(
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/x-protobuf",
            )
                .into_response(),
        )
    }
}

/// The receivers' TLS: a server identity, and a client CA when clients must present one.
struct ReceiverTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl ReceiverTls {
    fn tonic(&self) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem);
        let config = tonic::transport::ServerTlsConfig::new().identity(identity);
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(tonic::transport::Certificate::from_pem(ca)),
            None => config,
        }
    }

    fn rustls(&self) -> Arc<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<_, _>>()
            .expect("a PEM certificate");
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).expect("a PEM key");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    roots
                        .add(cert.expect("a PEM CA"))
                        .expect("a CA certificate");
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("a client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .expect("a server identity");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Serves `app` over TLS on `listener` until the task is aborted; a failed handshake (an
/// exporter that does not trust us, or has no client certificate) is recorded, not fatal.
async fn serve_tls(listener: TcpListener, config: Arc<rustls::ServerConfig>, app: axum::Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(socket).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

/// The body as sent, gunzipped when `Content-Encoding: gzip` says so; `Err` with the answer
/// when it cannot be.
fn decoded_body(store: &Store, headers: &HeaderMap, body: Bytes) -> Result<Bytes, Box<Response>> {
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    match encoding.as_deref() {
        None | Some("identity") => Ok(body),
        Some("gzip") => {
            use std::io::Read as _;
            let mut out = Vec::new();
            match flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => {
                    lock(&store.rejected).push(format!("undecodable gzip body: {e}"));
                    Err(Box::new(
                        (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
                    ))
                }
            }
        }
        Some(other) => {
            lock(&store.rejected).push(format!("unsupported content-encoding {other:?}"));
            Err(Box::new(
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported encoding").into_response(),
            ))
        }
    }
}

/// One OTLP/HTTP export: the body checked, decoded into `R` and stored in `list`.
fn http_export<R: prost::Message + Default>(
    store: &Store,
    list: &Mutex<Vec<Received<R>>>,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
    response: &impl prost::Message,
) -> Response {
    if let Some(r) = reject_non_protobuf(store, &headers) {
        return r;
    }
    let body = match decoded_body(store, &headers, body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    match R::decode(body) {
        Ok(request) => {
            lock(list).push(Received {
                transport: Transport::HttpProtobuf,
                request,
                headers,
            });
            protobuf_response(response)
        }
        Err(e) => {
            lock(&store.rejected).push(format!("undecodable {path} body: {e}"));
            (StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
    }
}

async fn http_traces(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let response = ExportTraceServiceResponse::default();
    http_export(
        &store,
        &store.traces,
        "/v1/traces",
        headers,
        body,
        &response,
    )
}

async fn http_logs(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let response = ExportLogsServiceResponse::default();
    http_export(&store, &store.logs, "/v1/logs", headers, body, &response)
}

async fn http_metrics(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = ExportMetricsServiceResponse::default();
    http_export(
        &store,
        &store.metrics,
        "/v1/metrics",
        headers,
        body,
        &response,
    )
}

/// Accepts on `front` and relays each connection to `back`, counting connections; the
/// receivers themselves listen on `back`.
fn counting_relay(
    front: TcpListener,
    back: SocketAddr,
    store: Arc<Store>,
    transport: Transport,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Ends when the task is aborted (the collector is dropped) or accept fails.
        while let Ok((mut inbound, _)) = front.accept().await {
            let counter = match transport {
                Transport::Grpc => &store.grpc_connections,
                Transport::HttpProtobuf => &store.http_connections,
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(back).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

impl OtlpCollector {
    /// Starts both receivers on `127.0.0.1:0` in the current Tokio runtime.
    ///
    /// Use a multi-threaded runtime (`#[tokio::test(flavor = "multi_thread")]`) if the test
    /// also blocks.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Like [`start`](Self::start), with both receivers behind TLS under the given PEM
    /// certificate and key (`tests/fixtures/tls`); see
    /// [`grpc_tls_endpoint`](Self::grpc_tls_endpoint) and
    /// [`http_tls_endpoint`](Self::http_tls_endpoint).
    pub async fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        Self::start_with(Some(ReceiverTls {
            cert_pem: cert_pem.to_vec(),
            key_pem: key_pem.to_vec(),
            client_ca_pem: None,
        }))
        .await
    }

    /// Like [`start_tls`](Self::start_tls), and both receivers require a client certificate
    /// signed by `client_ca_pem` (mutual TLS).
    pub async fn start_mtls(cert_pem: &[u8], key_pem: &[u8], client_ca_pem: &[u8]) -> Self {
        Self::start_with(Some(ReceiverTls {
            cert_pem: cert_pem.to_vec(),
            key_pem: key_pem.to_vec(),
            client_ca_pem: Some(client_ca_pem.to_vec()),
        }))
        .await
    }

    async fn start_with(receiver_tls: Option<ReceiverTls>) -> Self {
        let tls = receiver_tls.as_ref().map(ReceiverTls::tonic);
        let http_tls = receiver_tls.as_ref().map(ReceiverTls::rustls);
        let store = Arc::new(Store::default());

        let bind = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0));
        let grpc_front = bind()
            .await
            .expect("bind the OTLP/gRPC port on 127.0.0.1:0");
        let grpc_addr = grpc_front.local_addr().expect("bound address");
        let grpc_listener = bind()
            .await
            .expect("bind the OTLP/gRPC receiver on 127.0.0.1:0");
        let grpc_back = grpc_listener.local_addr().expect("bound address");
        let receiver = GrpcReceiver(store.clone());
        let grpc = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
            let mut server = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                server = server.tls_config(tls).expect("a valid TLS identity");
            }
            let result = server
                .add_service(
                    TraceServiceServer::new(receiver.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    LogsServiceServer::new(receiver.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(
                    MetricsServiceServer::new(receiver)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = result {
                eprintln!("OTLP/gRPC receiver stopped: {e}");
            }
        });

        let http_front = bind()
            .await
            .expect("bind the OTLP/HTTP port on 127.0.0.1:0");
        let http_addr = http_front.local_addr().expect("bound address");
        let http_listener = bind()
            .await
            .expect("bind the OTLP/HTTP receiver on 127.0.0.1:0");
        let http_back = http_listener.local_addr().expect("bound address");
        let app = axum::Router::new()
            .route("/v1/traces", post(http_traces))
            .route("/v1/logs", post(http_logs))
            .route("/v1/metrics", post(http_metrics))
            .with_state(store.clone());
        let http = match http_tls {
            None => tokio::spawn(async move {
                if let Err(e) = axum::serve(http_listener, app).await {
                    eprintln!("OTLP/HTTP receiver stopped: {e}");
                }
            }),
            Some(config) => tokio::spawn(serve_tls(http_listener, config, app)),
        };

        Self {
            grpc_addr,
            http_addr,
            store: store.clone(),
            tasks: vec![
                grpc,
                http,
                counting_relay(grpc_front, grpc_back, store.clone(), Transport::Grpc),
                counting_relay(
                    http_front,
                    http_back,
                    store.clone(),
                    Transport::HttpProtobuf,
                ),
            ],
        }
    }

    /// `http://127.0.0.1:<port>` of the gRPC receiver (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `https://127.0.0.1:<port>` of the gRPC receiver started by
    /// [`start_tls`](Self::start_tls).
    pub fn grpc_tls_endpoint(&self) -> String {
        format!("https://{}", self.grpc_addr)
    }

    /// `https://127.0.0.1:<port>` of the HTTP receiver started by
    /// [`start_tls`](Self::start_tls); exporters append `/v1/traces`.
    pub fn http_tls_endpoint(&self) -> String {
        format!("https://{}", self.http_addr)
    }

    /// `http://127.0.0.1:<port>` of the HTTP receiver; exporters append `/v1/traces`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The endpoint for `transport`.
    pub fn endpoint(&self, transport: Transport) -> String {
        match transport {
            Transport::Grpc => self.grpc_endpoint(),
            Transport::HttpProtobuf => self.http_endpoint(),
        }
    }

    /// Every trace export request received so far.
    pub fn trace_requests(&self) -> Vec<Received<ExportTraceServiceRequest>> {
        lock(&self.store.traces).clone()
    }

    /// Every log export request received so far.
    pub fn log_requests(&self) -> Vec<Received<ExportLogsServiceRequest>> {
        lock(&self.store.logs).clone()
    }

    /// Every metrics export request received so far.
    pub fn metric_requests(&self) -> Vec<Received<ExportMetricsServiceRequest>> {
        lock(&self.store.metrics).clone()
    }

    /// Every metric received so far (one entry per metric per export request), with its
    /// resource and scope, in the order they arrived.
    pub fn metrics(&self) -> Vec<MetricRecord> {
        let mut out = Vec::new();
        for received in lock(&self.store.metrics).iter() {
            for rm in &received.request.resource_metrics {
                let resource = rm
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for sm in &rm.scope_metrics {
                    for metric in &sm.metrics {
                        out.push(MetricRecord {
                            transport: received.transport,
                            resource: resource.clone(),
                            scope: sm.scope.clone(),
                            metric: metric.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Polls until a received metric matches `pred` or `timeout` passes, then returns the
    /// last one that matched (the newest export of it), or `None`.
    pub async fn wait_for_metric(
        &self,
        pred: impl Fn(&MetricRecord) -> bool,
        timeout: Duration,
    ) -> Option<MetricRecord> {
        poll_until(timeout, Duration::from_millis(50), || {
            std::future::ready(self.metrics().into_iter().rfind(|m| pred(m)))
        })
        .await
    }

    /// Requests the HTTP receiver refused, with the reason.
    pub fn rejected(&self) -> Vec<String> {
        lock(&self.store.rejected).clone()
    }

    /// TCP connections the receiver for `transport` has accepted so far.
    pub fn connections(&self, transport: Transport) -> usize {
        match transport {
            Transport::Grpc => self.store.grpc_connections.load(Ordering::SeqCst),
            Transport::HttpProtobuf => self.store.http_connections.load(Ordering::SeqCst),
        }
    }

    /// One line on what arrived, for failure messages.
    pub fn summary(&self) -> String {
        // Each lock is taken and released on its own (a guard held across the `format!`
        // would deadlock with the lock inside `spans`).
        let traces = lock(&self.store.traces).len();
        let logs = lock(&self.store.logs).len();
        let metrics = lock(&self.store.metrics).len();
        let spans = self.spans().len();
        format!(
            "collector: {} gRPC / {} HTTP connections, {traces} trace, {logs} log and \
             {metrics} metric export requests, {spans} spans, rejected: {:?}",
            self.connections(Transport::Grpc),
            self.connections(Transport::HttpProtobuf),
            self.rejected()
        )
    }

    /// Every span received so far, with its resource and scope.
    pub fn spans(&self) -> Vec<SpanRecord> {
        let mut out = Vec::new();
        for received in lock(&self.store.traces).iter() {
            for rs in &received.request.resource_spans {
                let resource = rs
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        out.push(SpanRecord {
                            transport: received.transport,
                            resource: resource.clone(),
                            scope: ss.scope.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Every log record received so far, with its resource and scope.
    pub fn log_records(&self) -> Vec<LogRecordEntry> {
        let mut out = Vec::new();
        for received in lock(&self.store.logs).iter() {
            for rl in &received.request.resource_logs {
                let resource = rl
                    .resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default();
                for sl in &rl.scope_logs {
                    for record in &sl.log_records {
                        out.push(LogRecordEntry {
                            transport: received.transport,
                            resource: resource.clone(),
                            scope: sl.scope.clone(),
                            record: record.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Polls until at least one received span matches `pred` or `timeout` passes, then returns
    /// every matching span (empty on time-out).
    pub async fn wait_for_spans(
        &self,
        pred: impl Fn(&SpanRecord) -> bool,
        timeout: Duration,
    ) -> Vec<SpanRecord> {
        self.wait_for_span_count(pred, 1, timeout).await
    }

    /// Polls until at least `n` received spans match `pred` or `timeout` passes, then returns
    /// every matching span (possibly fewer than `n` on time-out).
    pub async fn wait_for_span_count(
        &self,
        pred: impl Fn(&SpanRecord) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<SpanRecord> {
        let found = poll_until(timeout, Duration::from_millis(50), || {
            let matching: Vec<_> = self.spans().into_iter().filter(|s| pred(s)).collect();
            std::future::ready((matching.len() >= n).then_some(matching))
        })
        .await;
        found.unwrap_or_else(|| self.spans().into_iter().filter(|s| pred(s)).collect())
    }

    /// Polls until at least one received log record matches `pred` or `timeout` passes, then
    /// returns every matching record (empty on time-out).
    pub async fn wait_for_log_records(
        &self,
        pred: impl Fn(&LogRecordEntry) -> bool,
        timeout: Duration,
    ) -> Vec<LogRecordEntry> {
        let found = poll_until(timeout, Duration::from_millis(50), || {
            let matching: Vec<_> = self.log_records().into_iter().filter(|r| pred(r)).collect();
            std::future::ready((!matching.is_empty()).then_some(matching))
        })
        .await;
        found.unwrap_or_default()
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A received span with the resource and scope it was exported under.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    /// Which receiver got it.
    pub transport: Transport,
    /// The resource attributes (`service.name`, ...).
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope.
    pub scope: Option<InstrumentationScope>,
    /// The span.
    pub span: Span,
}

impl SpanRecord {
    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span id as lowercase hex; empty for a root span.
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    /// A span attribute.
    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        attr(&self.span.attributes, key)
    }

    /// A span attribute that is a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        attr_str(&self.span.attributes, key)
    }

    /// A span attribute that is an integer.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        attr_i64(&self.span.attributes, key)
    }

    /// A resource attribute that is a string (`service.name`).
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        attr_str(&self.resource, key)
    }

    /// The span's attribute keys, sorted.
    pub fn attr_keys(&self) -> Vec<&str> {
        let mut keys: Vec<_> = self
            .span
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// A received log record with the resource and scope it was exported under.
#[derive(Clone, Debug)]
pub struct LogRecordEntry {
    /// Which receiver got it.
    pub transport: Transport,
    /// The resource attributes.
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope.
    pub scope: Option<InstrumentationScope>,
    /// The log record.
    pub record: LogRecord,
}

impl LogRecordEntry {
    /// The trace id as lowercase hex; empty when the record has none.
    pub fn trace_id(&self) -> String {
        hex(&self.record.trace_id)
    }

    /// The span id as lowercase hex; empty when the record has none.
    pub fn span_id(&self) -> String {
        hex(&self.record.span_id)
    }

    /// A record attribute that is a string.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        attr_str(&self.record.attributes, key)
    }

    /// The body when it is a string.
    pub fn body_str(&self) -> Option<&str> {
        match self.record.body.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s),
            _ => None,
        }
    }
}

/// A received metric with the resource and scope it was exported under.
#[derive(Clone, Debug)]
pub struct MetricRecord {
    /// Which receiver got it.
    pub transport: Transport,
    /// The resource attributes.
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope.
    pub scope: Option<InstrumentationScope>,
    /// The metric, with every data point of that export.
    pub metric: Metric,
}

impl MetricRecord {
    /// A resource attribute that is a string.
    pub fn resource_str(&self, key: &str) -> Option<&str> {
        attr_str(&self.resource, key)
    }

    /// The histogram points whose string attributes include every `(key, value)` of `labels`.
    pub fn histogram_points(
        &self,
        labels: &[(&str, &str)],
    ) -> Vec<&opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint> {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        match &self.metric.data {
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .filter(|p| {
                    labels
                        .iter()
                        .all(|(k, v)| attr_str(&p.attributes, k) == Some(*v))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The number points (sum or gauge) whose string attributes include every `(key, value)`
    /// of `labels`.
    pub fn number_points(
        &self,
        labels: &[(&str, &str)],
    ) -> Vec<&opentelemetry_proto::tonic::metrics::v1::NumberDataPoint> {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let points = match &self.metric.data {
            Some(Data::Sum(s)) => &s.data_points,
            Some(Data::Gauge(g)) => &g.data_points,
            _ => return Vec::new(),
        };
        points
            .iter()
            .filter(|p| {
                labels
                    .iter()
                    .all(|(k, v)| attr_str(&p.attributes, k) == Some(*v))
            })
            .collect()
    }
}

/// The value of `key` among `attributes`.
pub fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The value of `key` among `attributes` if it is a string.
pub fn attr_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The value of `key` among `attributes` if it is an integer.
pub fn attr_i64(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        _ => None,
    }
}
