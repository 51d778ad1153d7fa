//! OTLP/gRPC: an already encoded request sent through a tonic channel.

use std::marker::PhantomData;
use std::time::Duration;

use bytes::{BufMut as _, Bytes};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use crate::config::{Compression, ConfigError, ExporterConfig};
use crate::transport::Failure;

/// A tonic channel to the collector, with the metadata every export carries.
pub(crate) struct GrpcTransport {
    channel: Channel,
    metadata: MetadataMap,
    path: &'static str,
    gzip: bool,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// The channel connects on first use, so building one needs a Tokio runtime but no
    /// collector.
    pub(crate) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        let endpoint = config.url();
        let tls = endpoint.starts_with("https://");
        if tls && !cfg!(feature = "tls") {
            return Err(ConfigError::TlsNotCompiled { url: endpoint });
        }
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "user-agent",
            tonic::metadata::MetadataValue::from_static(crate::USER_AGENT),
        );
        for (name, value) in config.headers() {
            let key =
                tonic::metadata::MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .map_err(|_| ConfigError::HeaderName { name: name.clone() })?;
            let value = value
                .parse()
                .map_err(|_| ConfigError::HeaderValue { name: name.clone() })?;
            metadata.insert(key, value);
        }
        // tonic spawns the channel's worker on the current runtime; say so rather than panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let timeout = config.timeout_in_use();
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|_| ConfigError::Endpoint {
                url: endpoint.clone(),
            })?
            .timeout(timeout)
            .connect_timeout(timeout);
        #[cfg(feature = "tls")]
        if tls {
            channel =
                channel
                    .tls_config(crate::tls::grpc(config)?)
                    .map_err(|_| ConfigError::Tls {
                        url: endpoint.clone(),
                    })?;
        }
        Ok(Self {
            channel: channel.connect_lazy(),
            metadata,
            path: config.signal().grpc_path(),
            gzip: config.compression_in_use() == Compression::Gzip,
        })
    }

    pub(crate) async fn send<R>(&self, body: Bytes, timeout: Duration) -> Result<R, Failure>
    where
        R: prost::Message + Default + Send + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        if self.gzip {
            grpc = grpc
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        grpc.ready().await.map_err(|_| Failure {
            retryable: true,
            reason: "gRPC Unavailable".into(),
        })?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        // The channel enforces the smaller of this and its own timeout.
        request.set_timeout(timeout);
        let path = http::uri::PathAndQuery::from_static(self.path);
        grpc.unary(request, path, PreEncoded::<R>(PhantomData))
            .await
            .map(tonic::Response::into_inner)
            // The collector's message may echo credentials: keep only the code.
            .map_err(|status| Failure {
                retryable: retryable(status.code()),
                reason: format!("gRPC {:?}", status.code()),
            })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Signal;

    #[tokio::test]
    async fn bad_header_names_are_refused_with_a_reason() {
        let config = ExporterConfig::new(Signal::Traces).header("bad name", "v");
        let err = GrpcTransport::new(&config).unwrap_err();
        assert!(err.to_string().contains("bad name"), "{err}");
    }

    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn https_needs_the_tls_feature() {
        let config = ExporterConfig::new(Signal::Traces).endpoint("https://collector.example:4317");
        let err = GrpcTransport::new(&config).unwrap_err();
        assert!(err.to_string().contains("otlp-tls"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn an_unreadable_certificate_file_is_refused_with_its_name() {
        let config = ExporterConfig::new(Signal::Traces)
            .endpoint("https://localhost:4317")
            .certificate("/nonexistent/ca.pem");
        let err = GrpcTransport::new(&config).unwrap_err().to_string();
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn outside_a_runtime_the_error_says_so() {
        let err = GrpcTransport::new(&ExporterConfig::new(Signal::Traces)).unwrap_err();
        assert!(matches!(err, ConfigError::NoRuntime), "{err}");
    }
}
