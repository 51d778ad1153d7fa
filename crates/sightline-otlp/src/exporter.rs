//! The span exporter: a batch encoded once by [`crate::traces`], sent over either transport.

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::SpanData;

use crate::config::{ConfigError, ExporterConfig, Signal};
use crate::transport::Sender;

/// Exports spans to an OpenTelemetry Collector (or Jaeger, Tempo, any OTLP receiver) by
/// OTLP/gRPC or OTLP/HTTP, for any `SdkTracerProvider`.
///
/// The batch is encoded straight from the SDK's [`SpanData`] into one buffer, byte for byte
/// what `opentelemetry-otlp` would send after converting every span to the proto structs,
/// at a fraction of the cost (docs/adr/0007). Failed exports are retried with backoff within
/// the timeout when the specification calls the failure retryable.
///
/// Build it inside a Tokio runtime: the connection lives on that runtime, while the batch
/// processor's own thread runs the exports.
///
/// ```no_run
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use sightline_otlp::SpanExporter;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // `OTEL_EXPORTER_OTLP_ENDPOINT`, `..._PROTOCOL`, `..._HEADERS`, ... as operators set them.
/// let exporter = SpanExporter::from_env()?;
/// let provider = SdkTracerProvider::builder()
///     .with_batch_exporter(exporter)
///     .build();
/// # drop(provider);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SpanExporter {
    sender: Sender,
}

impl SpanExporter {
    /// An exporter configured by `config` (see [`ExporterConfig`]). Fails on a configuration
    /// it cannot honour, or outside a Tokio runtime; never connects here (the first export
    /// does), so a collector that is down is no error.
    pub fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            sender: Sender::new(config)?,
        })
    }

    /// An exporter configured by the `OTEL_EXPORTER_OTLP_*` environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::new(&ExporterConfig::from_env(Signal::Traces)?)
    }
}

impl opentelemetry_sdk::trace::SpanExporter for SpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let resource = &self.sender.resource;
        let parts = self.sender.encode_parts(&batch, &|spans, buf| {
            crate::traces::encode_request(&resource.message, &resource.schema_url, spans, buf);
        });
        drop(batch);
        self.sender
            .send_parts::<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse>(
                parts,
            )
            .await
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.sender.resource.set(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry::InstrumentationScope;
    use opentelemetry_sdk::trace::SpanExporter as _;

    use super::*;
    use crate::config::Protocol;

    fn exporter_to(protocol: Protocol, port: u16, timeout: Duration) -> SpanExporter {
        let config = ExporterConfig::new(Signal::Traces)
            .protocol(protocol)
            .base_endpoint(format!("http://127.0.0.1:{port}"))
            .timeout(timeout);
        let mut exporter = SpanExporter::new(&config).expect("valid configuration");
        exporter.set_resource(&Resource::builder().with_service_name("s").build());
        exporter
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
        for (protocol, reason) in [
            (Protocol::Grpc, "Unavailable"),
            (Protocol::HttpProtobuf, "connection"),
        ] {
            let exporter = exporter_to(protocol, port, Duration::from_secs(3));
            let started = std::time::Instant::now();
            let result = exporter
                .export(vec![crate::traces::tests::span(1, &scope)])
                .await;
            let elapsed = started.elapsed();
            let err = result.unwrap_err().to_string();
            assert!(err.contains(reason), "{protocol:?}: {err}");
            // 100 + 200 + 400 ms of backoff between four refused connections.
            assert!(
                elapsed >= Duration::from_millis(700),
                "{protocol:?}: {elapsed:?}"
            );
            assert!(
                elapsed < Duration::from_secs(3),
                "{protocol:?}: {elapsed:?}"
            );

            // The retries stay within the exporter's timeout.
            let exporter = exporter_to(protocol, port, Duration::from_millis(250));
            let started = std::time::Instant::now();
            let result = exporter
                .export(vec![crate::traces::tests::span(1, &scope)])
                .await;
            assert!(result.is_err());
            assert!(
                started.elapsed() < Duration::from_millis(250),
                "{protocol:?}: {:?}",
                started.elapsed()
            );
        }
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
        let scope = InstrumentationScope::builder("t").build();
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
            let exporter = exporter_to(protocol, port, Duration::from_millis(300));
            let started = std::time::Instant::now();
            let result = exporter
                .export(vec![crate::traces::tests::span(1, &scope)])
                .await;
            let elapsed = started.elapsed();
            assert!(result.is_err(), "{protocol:?}");
            assert!(
                elapsed >= Duration::from_millis(250),
                "{protocol:?}: {elapsed:?}"
            );
            assert!(
                elapsed < Duration::from_millis(1500),
                "{protocol:?}: {elapsed:?}"
            );
        }
        silent.abort();
    }

    /// OTLP/HTTP: the request a collector receives is the encoded batch, POSTed to the
    /// signal's path with the protobuf content type and the configured headers; a 503 is
    /// retried and a 400 is not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_posts_the_encoded_batch_and_retries_only_retryable_statuses() {
        use std::sync::{Arc, Mutex};

        use http_body_util::BodyExt as _;
        use prost::Message as _;

        type Seen = Arc<Mutex<Vec<(String, String, String, usize)>>>;
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let statuses = Arc::new(Mutex::new(vec![200u16, 503, 400]));
        let server = {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let seen = Arc::clone(&seen);
                    let statuses = Arc::clone(&statuses);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            move |request: http::Request<hyper::body::Incoming>| {
                                let seen = Arc::clone(&seen);
                                let statuses = Arc::clone(&statuses);
                                async move {
                                    let (parts, body) = request.into_parts();
                                    let body = body.collect().await.unwrap().to_bytes();
                                    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body).unwrap();
                                    let header = |name: &str| {
                                        parts.headers.get(name).map_or_else(String::new, |v| {
                                            v.to_str().unwrap().to_owned()
                                        })
                                    };
                                    seen.lock().unwrap().push((
                                        parts.uri.path().to_owned(),
                                        header("content-type"),
                                        header("api-key"),
                                        request.resource_spans[0].scope_spans[0].spans.len(),
                                    ));
                                    let status = statuses.lock().unwrap().pop().unwrap_or(200);
                                    Ok::<_, std::convert::Infallible>(
                                        http::Response::builder()
                                            .status(status)
                                            .body(http_body_util::Full::new(bytes::Bytes::new()))
                                            .unwrap(),
                                    )
                                }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                            .await;
                    });
                }
            })
        };
        let config = ExporterConfig::new(Signal::Traces)
            .protocol(Protocol::HttpProtobuf)
            .base_endpoint(format!("http://127.0.0.1:{port}/"))
            .header("API-Key", "k1")
            .timeout(Duration::from_secs(5));
        let mut exporter = SpanExporter::new(&config).unwrap();
        exporter.set_resource(&Resource::builder().with_service_name("s").build());
        let scope = InstrumentationScope::builder("t").build();
        let batch = || {
            vec![
                crate::traces::tests::span(1, &scope),
                crate::traces::tests::span(2, &scope),
            ]
        };

        // 400: not retried.
        let err = exporter.export(batch()).await.unwrap_err().to_string();
        assert!(err.contains("HTTP 400"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1);
        // 503, then 200: one retry, success.
        exporter.export(batch()).await.expect("retried to success");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        for (path, content_type, api_key, spans) in seen {
            assert_eq!(path, "/v1/traces");
            assert_eq!(content_type, "application/x-protobuf");
            assert_eq!(api_key, "k1");
            assert_eq!(spans, 2);
        }
        server.abort();
    }
}
