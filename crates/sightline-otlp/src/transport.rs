//! What both transports share: the retry loop within the exporter's timeout, and the reading
//! of a collector's partial success.

use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

use crate::config::{ConfigError, ExporterConfig, Protocol};
use crate::grpc::GrpcTransport;
use crate::http::HttpTransport;

/// Retries after the first attempt, for the failures the OTLP specification calls retryable.
const MAX_RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why one attempt failed, and whether the specification lets us try again.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) retryable: bool,
    /// A status code, never the collector's message (it may echo credentials).
    pub(crate) reason: String,
}

/// The connection to the collector, over the configured protocol.
#[derive(Debug)]
pub(crate) enum Transport {
    Grpc(GrpcTransport),
    // Boxed: the hyper client is large, and the exporter holds one transport for good.
    Http(Box<HttpTransport>),
}

impl Transport {
    pub(crate) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        Ok(match config.protocol_in_use() {
            Protocol::Grpc => Self::Grpc(GrpcTransport::new(config)?),
            Protocol::HttpProtobuf => Self::Http(Box::new(HttpTransport::new(config)?)),
        })
    }

    async fn send<R>(&self, body: Bytes, timeout: Duration) -> Result<R, Failure>
    where
        R: prost::Message + Default + Send + 'static,
    {
        match self {
            Self::Grpc(grpc) => grpc.send(body, timeout).await,
            Self::Http(http) => http.send(body, timeout).await,
        }
    }

    /// Sends `body`, retrying the retryable failures with exponential backoff, all within
    /// `timeout`. A partial success is logged, not retried (the specification says so).
    pub(crate) async fn export<R>(&self, body: Bytes, timeout: Duration) -> OTelSdkResult
    where
        R: prost::Message + Default + Send + PartialSuccess + 'static,
    {
        let body = match self {
            Self::Http(http) => http.prepare(body),
            // tonic compresses each message itself.
            Self::Grpc(_) => body,
        };
        let deadline = Instant::now() + timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.send::<R>(body.clone(), remaining).await {
                Ok(response) => {
                    if let Some((rejected, message)) = response.rejected()
                        && (rejected > 0 || !message.is_empty())
                    {
                        // The OTLP log bridge leaves this crate's events out, so this cannot
                        // feed itself.
                        tracing::warn!(
                            signal = R::SIGNAL,
                            rejected,
                            error_message = message,
                            "the OTLP collector rejected part of an export"
                        );
                    }
                    return Ok(());
                }
                Err(failure)
                    if attempt < MAX_RETRIES
                        && failure.retryable
                        && Instant::now() + backoff < deadline =>
                {
                    // The batch thread waits; the request path never does (the queue in
                    // front of it counts what it cannot take).
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    attempt += 1;
                }
                Err(failure) => {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "OTLP export failed: {}",
                        failure.reason
                    )));
                }
            }
        }
    }
}

/// The partial-success part of an export response: how many items were rejected, and why.
pub(crate) trait PartialSuccess {
    /// The signal, for the warning.
    const SIGNAL: &'static str;

    fn rejected(&self) -> Option<(i64, &str)>;
}

impl PartialSuccess
    for opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse
{
    const SIGNAL: &'static str = "traces";

    fn rejected(&self) -> Option<(i64, &str)> {
        let partial = self.partial_success.as_ref()?;
        Some((partial.rejected_spans, partial.error_message.as_str()))
    }
}

#[cfg(feature = "logs")]
impl PartialSuccess for opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse {
    const SIGNAL: &'static str = "logs";

    fn rejected(&self) -> Option<(i64, &str)> {
        let partial = self.partial_success.as_ref()?;
        Some((partial.rejected_log_records, partial.error_message.as_str()))
    }
}

/// What both exporters hold: the transport, the timeout of an export, and the resource
/// encoded once.
#[derive(Debug)]
pub(crate) struct Sender {
    transport: Transport,
    timeout: Duration,
    pub(crate) resource: EncodedResource,
}

impl Sender {
    pub(crate) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: Transport::new(config)?,
            timeout: config.timeout_in_use(),
            resource: EncodedResource::default(),
        })
    }

    /// Sends an encoded request, as [`Transport::export`] does.
    pub(crate) async fn send<R>(&self, request: Vec<u8>) -> OTelSdkResult
    where
        R: prost::Message + Default + Send + PartialSuccess + 'static,
    {
        self.transport
            .export::<R>(Bytes::from(request), self.timeout)
            .await
    }
}

/// The encoded `Resource` message and its schema URL, set once by the provider.
#[derive(Default)]
pub(crate) struct EncodedResource {
    pub(crate) message: Vec<u8>,
    pub(crate) schema_url: String,
}

impl std::fmt::Debug for EncodedResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedResource")
            .field("bytes", &self.message.len())
            .finish_non_exhaustive()
    }
}

impl EncodedResource {
    pub(crate) fn set(&mut self, resource: &Resource) {
        self.message.clear();
        crate::wire::encode_resource(resource, &mut self.message);
        self.schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }
}
