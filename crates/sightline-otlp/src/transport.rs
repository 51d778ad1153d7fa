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
    max_request_bytes: usize,
    signal: &'static str,
    pub(crate) resource: EncodedResource,
}

impl Sender {
    pub(crate) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            transport: Transport::new(config)?,
            timeout: config.timeout_in_use(),
            max_request_bytes: config.max_request_bytes_in_use(),
            signal: match config.signal() {
                crate::config::Signal::Traces => "spans",
                crate::config::Signal::Logs => "logs",
                crate::config::Signal::Metrics => "metrics",
            },
            resource: EncodedResource::default(),
        })
    }

    /// `items` encoded as one request, or as several of at most `max_request_bytes` each
    /// when one would be larger (halving until each fits; an item larger than the limit goes
    /// alone). Each part with the number of items in it.
    pub(crate) fn encode_parts<T>(
        &self,
        items: &[T],
        encode: &dyn Fn(&[T], &mut Vec<u8>),
    ) -> Vec<(Vec<u8>, usize)> {
        let mut parts = Vec::with_capacity(1);
        split(items, self.max_request_bytes, encode, &mut parts);
        parts
    }

    /// Sends each part. A part that fails loses only its own items: when others got through,
    /// the lost ones are counted here in [`DROPPED`](crate::DROPPED) and the export reports
    /// success; when every part failed, the error goes to the caller (the counting exporter
    /// counts them all), so each item is counted once.
    pub(crate) async fn send_parts<R>(&self, parts: Vec<(Vec<u8>, usize)>) -> OTelSdkResult
    where
        R: prost::Message + Default + Send + PartialSuccess + 'static,
    {
        let total: usize = parts.iter().map(|(_, n)| n).sum();
        let mut lost = 0;
        let mut first_error = None;
        for (request, count) in parts {
            if let Err(e) = self.send::<R>(request).await {
                lost += count;
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) if lost == total => Err(e),
            _ => {
                if lost > 0 {
                    metrics::counter!(crate::DROPPED, "signal" => self.signal, "reason" => "export_failed")
                        .increment(lost as u64);
                }
                Ok(())
            }
        }
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

fn split<T>(
    items: &[T],
    max: usize,
    encode: &dyn Fn(&[T], &mut Vec<u8>),
    parts: &mut Vec<(Vec<u8>, usize)>,
) {
    let mut request = Vec::new();
    encode(items, &mut request);
    if request.len() > max && items.len() > 1 {
        let (first, second) = items.split_at(items.len() / 2);
        split(first, max, encode, parts);
        split(second, max, encode, parts);
    } else {
        parts.push((request, items.len()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_until_each_request_fits_and_no_item_is_lost() {
        // Items are byte counts; a request is their concatenation.
        let encode = |items: &[usize], buf: &mut Vec<u8>| {
            for &n in items {
                buf.extend(std::iter::repeat_n(0u8, n));
            }
        };
        // (items, max, expected part sizes in items)
        let cases: &[(&[usize], usize, &[usize])] = &[
            (&[10, 10, 10], 100, &[3]),
            (&[10, 10, 10, 10], 15, &[1, 1, 1, 1]),
            (&[10, 10, 10, 10], 20, &[2, 2]),
            (&[500, 1, 1, 1], 100, &[1, 1, 2]),
            (&[500], 100, &[1]),
        ];
        for (items, max, expected) in cases {
            let mut parts = Vec::new();
            split(items, *max, &encode, &mut parts);
            let sizes: Vec<usize> = parts.iter().map(|(_, n)| *n).collect();
            assert_eq!(sizes, *expected, "{items:?} under {max}");
            assert_eq!(sizes.iter().sum::<usize>(), items.len());
            for (request, n) in &parts {
                assert!(request.len() <= *max || *n == 1, "{items:?} under {max}");
            }
        }
    }
}
