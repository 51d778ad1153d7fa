//! OTLP/gRPC export that writes the protobuf wire format straight from the SDK's [`SpanData`]
//! and log records, in one pass over the batch.
//!
//! `opentelemetry-otlp` first converts every span or record into the owned
//! `opentelemetry-proto` structs (a `String` per attribute key and string value, a `Vec` per
//! id), after cloning the whole span batch for its retries, and then lets prost encode them,
//! which measures every nested message again at each level. Measured with callgrind on the
//! load benchmark's server, that took about 28,000 instructions per exported span, as much as
//! everything else Sightline does for a request together. Here a batch is encoded once, from
//! borrowed data, into one buffer, and the buffer is sent through tonic as it is (ADR 0007).
//!
//! The bytes decode to what `opentelemetry-proto`'s conversion produces (the same field
//! values, the same field order): the unit and property tests check that against the SDK's
//! own conversion, and the end-to-end suites decode every export with the real proto types.

mod traces;
mod wire;

#[cfg(feature = "otlp-logs")]
mod logs;

use std::marker::PhantomData;
use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use crate::Error;

/// Retries after the first attempt, for the codes the OTLP specification calls retryable.
const MAX_RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Which OTLP signal an exporter sends: its gRPC method and its environment variables.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signal {
    Traces,
    #[cfg_attr(not(feature = "otlp-logs"), allow(dead_code))]
    Logs,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Self::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Self::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    fn var(self, suffix: &str) -> String {
        let signal = match self {
            Self::Traces => "TRACES",
            Self::Logs => "LOGS",
        };
        format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}")
    }
}

/// A tonic channel to the collector, with the metadata and timeout every export carries.
pub(crate) struct Transport {
    channel: Channel,
    metadata: MetadataMap,
    timeout: Duration,
    path: &'static str,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Configured as the SDK's exporter would be: the programmatic endpoint, else the
    /// signal's variable, else `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4317`;
    /// headers from the signal's `..._HEADERS` variable, else `OTEL_EXPORTER_OTLP_HEADERS`.
    /// The channel connects on first use, so building one needs a Tokio runtime but no
    /// collector.
    pub(crate) fn from_config(
        signal: Signal,
        endpoint: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        if let Some(compression) = crate::otlp::env(&signal.var("COMPRESSION"))
            .or_else(|| crate::otlp::env("OTEL_EXPORTER_OTLP_COMPRESSION"))
            .filter(|c| c != "none")
        {
            return Err(Error::InvalidConfig(format!(
                "OTLP compression {compression:?} is not supported; unset \
                 OTEL_EXPORTER_OTLP_COMPRESSION or set it to \"none\""
            )));
        }
        let endpoint = endpoint
            .map(str::to_owned)
            .or_else(|| crate::otlp::env(&signal.var("ENDPOINT")))
            .or_else(|| crate::otlp::env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .unwrap_or_else(|| "http://localhost:4317".to_owned());
        let ca = crate::otlp::env(&signal.var("CERTIFICATE"))
            .or_else(|| crate::otlp::env("OTEL_EXPORTER_OTLP_CERTIFICATE"));
        Self::new(
            signal,
            &endpoint,
            timeout,
            &headers_from_env(signal),
            ca.as_deref(),
        )
    }

    fn new(
        signal: Signal,
        endpoint: &str,
        timeout: Duration,
        headers: &[(String, String)],
        ca_file: Option<&str>,
    ) -> Result<Self, Error> {
        let tls = endpoint.starts_with("https://");
        if tls && !cfg!(feature = "otlp-tls") {
            return Err(Error::InvalidConfig(format!(
                "OTLP endpoint {endpoint}: TLS needs the `otlp-tls` feature of `sightline`; \
                 or export to a local collector over http://"
            )));
        }
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "user-agent",
            tonic::metadata::MetadataValue::from_static(concat!(
                "sightline/",
                env!("CARGO_PKG_VERSION")
            )),
        );
        for (name, value) in headers {
            let key =
                tonic::metadata::MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .map_err(|_| Error::InvalidConfig(format!("OTLP header name {name:?}")))?;
            let value = value
                .parse()
                .map_err(|_| Error::InvalidConfig(format!("OTLP header {name:?}: bad value")))?;
            metadata.insert(key, value);
        }
        // tonic spawns the channel's worker on the current runtime; say so rather than panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::InvalidConfig(
                "OTLP/gRPC export needs a Tokio runtime: build Sightline inside one".into(),
            ));
        }
        #[cfg_attr(not(feature = "otlp-tls"), allow(unused_mut))]
        let mut channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| Error::InvalidConfig(format!("OTLP endpoint {endpoint:?}: {e}")))?
            .timeout(timeout)
            .connect_timeout(timeout);
        #[cfg(feature = "otlp-tls")]
        if tls {
            channel = channel
                .tls_config(tls_config(ca_file)?)
                .map_err(|e| Error::InvalidConfig(format!("OTLP endpoint {endpoint}: {e}")))?;
        }
        #[cfg(not(feature = "otlp-tls"))]
        let _ = (tls, ca_file);
        let channel = channel.connect_lazy();
        Ok(Self {
            channel,
            metadata,
            timeout,
            path: signal.path(),
        })
    }

    async fn send<R>(&self, body: Bytes, timeout: Duration) -> Result<R, tonic::Status>
    where
        R: prost::Message + Default + Send + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        // The channel enforces the smaller of this and its own timeout.
        request.set_timeout(timeout);
        let path = http::uri::PathAndQuery::from_static(self.path);
        grpc.unary(request, path, PreEncoded::<R>(PhantomData))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sends `body`, retrying the retryable codes with exponential backoff, all within the
    /// exporter's timeout. A partial success is logged, not retried (the specification says
    /// so). The collector's message may echo credentials: an error keeps only the code.
    async fn export<R>(&self, body: Bytes) -> OTelSdkResult
    where
        R: prost::Message + Default + Send + PartialSuccess + 'static,
    {
        let deadline = std::time::Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match self.send::<R>(body.clone(), remaining).await {
                Ok(response) => {
                    if let Some((rejected, message)) = response.rejected()
                        && (rejected > 0 || !message.is_empty())
                    {
                        // The OTLP log bridge leaves this module's events out, so this
                        // cannot feed itself.
                        tracing::warn!(
                            signal = self.path,
                            rejected,
                            error_message = message,
                            "the OTLP collector rejected part of an export"
                        );
                    }
                    return Ok(());
                }
                Err(status)
                    if attempt < MAX_RETRIES
                        && retryable(status.code())
                        && std::time::Instant::now() + backoff < deadline =>
                {
                    // The batch thread waits; the request path never does (the queue in
                    // front of it counts what it cannot take).
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    attempt += 1;
                }
                Err(status) => {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "OTLP export failed: {:?}",
                        status.code()
                    )));
                }
            }
        }
    }
}

/// The partial-success part of an export response: how many items were rejected, and why.
trait PartialSuccess {
    fn rejected(&self) -> Option<(i64, &str)>;
}

impl PartialSuccess
    for opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse
{
    fn rejected(&self) -> Option<(i64, &str)> {
        let partial = self.partial_success.as_ref()?;
        Some((partial.rejected_spans, partial.error_message.as_str()))
    }
}

#[cfg(feature = "otlp-logs")]
impl PartialSuccess for opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse {
    fn rejected(&self) -> Option<(i64, &str)> {
        let partial = self.partial_success.as_ref()?;
        Some((partial.rejected_log_records, partial.error_message.as_str()))
    }
}

/// TLS to the collector: the system's root certificates, plus the PEM file of
/// `OTEL_EXPORTER_OTLP_CERTIFICATE` (the collector's own CA, say) when it is set.
#[cfg(feature = "otlp-tls")]
fn tls_config(ca_file: Option<&str>) -> Result<tonic::transport::ClientTlsConfig, Error> {
    let mut config = tonic::transport::ClientTlsConfig::new().with_enabled_roots();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::InvalidConfig(format!("OTEL_EXPORTER_OTLP_CERTIFICATE {path:?}: {e}"))
        })?;
        config = config.ca_certificate(tonic::transport::Certificate::from_pem(pem));
    }
    Ok(config)
}

/// The codes the OTLP specification lists as retryable.
fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::OutOfRange
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    )
}

/// The signal's `..._HEADERS` variable, else `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs
/// separated by commas, values percent-decoded (the OTLP exporter specification).
fn headers_from_env(signal: Signal) -> Vec<(String, String)> {
    let Some(raw) = crate::otlp::env(&signal.var("HEADERS"))
        .or_else(|| crate::otlp::env("OTEL_EXPORTER_OTLP_HEADERS"))
    else {
        return Vec::new();
    };
    raw.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_owned(), percent_decode(value.trim())))
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A tonic codec whose request is already encoded and whose response is `R`.
struct PreEncoded<R>(PhantomData<fn() -> R>);

impl<R: prost::Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self(PhantomData)
    }
}

struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl<R: prost::Message + Default + Send + 'static> Decoder for PreEncoded<R> {
    type Item = R;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        R::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("OTLP export response: {e}")))
    }
}

/// The encoded `Resource` message and its schema URL, set once by the provider.
#[derive(Default)]
struct EncodedResource {
    message: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    fn set(&mut self, resource: &Resource) {
        self.message.clear();
        wire::encode_resource(resource, &mut self.message);
        self.schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }
}

/// Spans exported by OTLP/gRPC, encoded by [`traces::encode_request`].
pub(crate) struct GrpcSpanExporter {
    transport: Transport,
    resource: EncodedResource,
}

impl std::fmt::Debug for GrpcSpanExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSpanExporter")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl GrpcSpanExporter {
    pub(crate) fn new(transport: Transport) -> Self {
        Self {
            transport,
            resource: EncodedResource::default(),
        }
    }
}

impl SpanExporter for GrpcSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut buf = Vec::with_capacity(batch.len() * 512 + self.resource.message.len() + 64);
        traces::encode_request(
            &self.resource.message,
            &self.resource.schema_url,
            &batch,
            &mut buf,
        );
        drop(batch);
        self.transport
            .export::<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse>(
                Bytes::from(buf),
            )
            .await
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource.set(resource);
    }
}

#[cfg(feature = "otlp-logs")]
pub(crate) use logs::GrpcLogExporter;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SpanExporter as _;

    use super::*;

    #[test]
    fn bad_header_names_are_refused_with_a_reason() {
        let err = Transport::new(
            Signal::Traces,
            "http://127.0.0.1:4317",
            Duration::from_secs(1),
            &[("bad name".to_owned(), "v".to_owned())],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad name"), "{err}");
    }

    #[cfg(not(feature = "otlp-tls"))]
    #[test]
    fn https_needs_the_tls_feature() {
        let err = Transport::new(
            Signal::Traces,
            "https://collector.example:4317",
            Duration::from_secs(1),
            &[],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("otlp-tls"), "{err}");
    }

    #[cfg(feature = "otlp-tls")]
    #[tokio::test]
    async fn an_unreadable_certificate_file_is_refused_with_its_name() {
        let err = Transport::new(
            Signal::Traces,
            "https://localhost:4317",
            Duration::from_secs(1),
            &[],
            Some("/nonexistent/ca.pem"),
        )
        .unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn no_runtime_is_an_error_not_a_panic() {
        let err = Transport::new(
            Signal::Traces,
            "http://127.0.0.1:4317",
            Duration::from_secs(1),
            &[],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Tokio runtime"), "{err}");
    }

    /// A collector that is not there: the export retries, then fails with the code only, in
    /// bounded time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_collector_fails_the_export_after_bounded_retries() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // bound, then closed: nobody listens there now
        let scope = InstrumentationScope::builder("t").build();
        let export = |timeout: Duration| {
            let transport = Transport::new(
                Signal::Traces,
                &format!("http://127.0.0.1:{port}"),
                timeout,
                &[],
                None,
            )
            .unwrap();
            let mut exporter = GrpcSpanExporter::new(transport);
            exporter.set_resource(&Resource::builder().with_service_name("s").build());
            let batch = vec![traces::tests::span(1, &scope)];
            async move {
                let started = std::time::Instant::now();
                let result = exporter.export(batch).await;
                (result, started.elapsed())
            }
        };

        let (result, elapsed) = export(Duration::from_secs(3)).await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains("Unavailable"), "{err}");
        // 100 + 200 + 400 ms of backoff between four refused connections.
        assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");

        // The retries stay within the exporter's timeout.
        let (result, elapsed) = export(Duration::from_millis(250)).await;
        assert!(result.is_err());
        assert!(elapsed < Duration::from_millis(250), "{elapsed:?}");
    }

    /// A collector that accepts the connection and never answers: the export gives up at
    /// the exporter's timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_collector_fails_the_export_at_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket); // read nothing, answer nothing
            }
        });
        let transport = Transport::new(
            Signal::Traces,
            &format!("http://127.0.0.1:{port}"),
            Duration::from_millis(300),
            &[],
            None,
        )
        .unwrap();
        let exporter = GrpcSpanExporter::new(transport);
        let scope = InstrumentationScope::builder("t").build();
        let started = std::time::Instant::now();
        let result = exporter.export(vec![traces::tests::span(1, &scope)]).await;
        let elapsed = started.elapsed();
        assert!(result.is_err());
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
        silent.abort();
    }

    #[test]
    fn headers_are_percent_decoded() {
        assert_eq!(percent_decode("Bearer%20abc%3D"), "Bearer abc=");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn signal_variables() {
        assert_eq!(
            Signal::Logs.var("HEADERS"),
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS"
        );
        assert_eq!(
            Signal::Traces.path(),
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        );
    }
}
