//! OTLP/HTTP with protobuf bodies: the same encoded request, POSTed with hyper.
//!
//! hyper is already in every tonic build, so this path costs no dependency; the SDK's HTTP
//! exporter would bring a second HTTP client (reqwest) and its URL stack.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{Compression, ConfigError, ExporterConfig};
use crate::transport::Failure;

/// The largest response body read: a partial success is a few hundred bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The connector: plain TCP, and TLS with the `tls` feature.
#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = HttpConnector;

/// A hyper client to the collector's signal URL.
pub(crate) struct HttpTransport {
    client: Client<Connector, Full<Bytes>>,
    uri: http::Uri,
    headers: http::HeaderMap,
    gzip: bool,
    /// Requests run on the runtime the exporter was built in: the SDK's batch processor
    /// polls the export on a thread of its own, outside any runtime.
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    pub(crate) fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        let url = config.url();
        let uri: http::Uri = url
            .parse()
            .ok()
            .filter(|u: &http::Uri| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
            .ok_or_else(|| ConfigError::Endpoint { url: url.clone() })?;
        let tls = uri.scheme_str() == Some("https");
        if tls && !cfg!(feature = "tls") {
            return Err(ConfigError::TlsNotCompiled { url });
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT));
        let gzip = config.compression_in_use() == Compression::Gzip;
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (name, value) in config.headers() {
            let key = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| ConfigError::HeaderName { name: name.clone() })?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| ConfigError::HeaderValue { name: name.clone() })?;
            headers.insert(key, value);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.timeout_in_use()));
        connector.set_nodelay(true);
        #[cfg(feature = "tls")]
        let connector = {
            connector.enforce_http(false);
            // An `http://` collector never uses the TLS settings: no roots are loaded for it.
            let tls_config = if tls {
                crate::tls::http(config)?
            } else {
                crate::tls::unused()
            };
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config)
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(Self {
            client,
            uri,
            headers,
            gzip,
            runtime,
        })
    }

    /// The body as it goes on the wire: compressed once, whatever the retries.
    pub(crate) fn prepare(&self, body: Bytes) -> Bytes {
        if self.gzip { gzip(&body) } else { body }
    }

    pub(crate) async fn send<R>(&self, body: Bytes, timeout: Duration) -> Result<R, Failure>
    where
        R: prost::Message + Default + Send + 'static,
    {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        let client = self.client.clone();
        let call = async move {
            let response = client.request(request).await.map_err(|e| Failure {
                retryable: e.is_connect(),
                reason: if e.is_connect() {
                    "HTTP connection refused or failed".into()
                } else {
                    "HTTP request failed".into()
                },
            })?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                // An empty body is a full success; a body that is not the response message
                // is not worth failing an export that the collector accepted.
                return Ok(R::decode(body).unwrap_or_default());
            }
            Err(Failure {
                // The specification's retryable statuses.
                retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
                reason: format!("HTTP {}", status.as_u16()),
            })
        };
        // The timer is made on the runtime too: the caller's thread has none.
        let timed = async move { tokio::time::timeout(timeout, call).await };
        match self.runtime.spawn(timed).await {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => Err(Failure {
                retryable: false,
                reason: "HTTP timed out".into(),
            }),
            Err(_) => Err(Failure {
                retryable: false,
                reason: "the runtime stopped".into(),
            }),
        }
    }
}

/// `body` gzip-compressed, at the default level, on the batch thread.
fn gzip(body: &Bytes) -> Bytes {
    use std::io::Write as _;

    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    // Writing to a `Vec` cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}
