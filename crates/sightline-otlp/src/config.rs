//! Where and how an exporter sends: endpoint, protocol, headers, timeout and certificate,
//! from code or from the `OTEL_EXPORTER_OTLP_*` environment.
//!
//! Reading the environment is one pure step ([`ExporterConfig::from_env_with`] takes the
//! lookup as a function), so every rule of the OTLP exporter specification is a table test
//! here rather than a test that changes the process environment.

use std::fmt;
use std::time::Duration;

/// An OTLP signal: which service an exporter calls and which variables configure it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Spans: `TraceService/Export`, `/v1/traces`, `OTEL_EXPORTER_OTLP_TRACES_*`.
    Traces,
    /// Log records: `LogsService/Export`, `/v1/logs`, `OTEL_EXPORTER_OTLP_LOGS_*`.
    Logs,
    /// Metrics: `MetricsService/Export`, `/v1/metrics`, `OTEL_EXPORTER_OTLP_METRICS_*`.
    Metrics,
}

impl Signal {
    /// The gRPC method of the signal's export service.
    pub(crate) fn grpc_path(self) -> &'static str {
        match self {
            Self::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Self::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Self::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }

    /// The path OTLP/HTTP appends to a base endpoint.
    pub(crate) fn http_path(self) -> &'static str {
        match self {
            Self::Traces => "/v1/traces",
            Self::Logs => "/v1/logs",
            Self::Metrics => "/v1/metrics",
        }
    }

    /// The signal's own variable for `suffix`, as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    ///
    /// ```
    /// use sightline_otlp::{Setting, Signal};
    ///
    /// assert_eq!(Signal::Logs.variable(Setting::Headers), "OTEL_EXPORTER_OTLP_LOGS_HEADERS");
    /// assert_eq!(Setting::Headers.general_variable(), "OTEL_EXPORTER_OTLP_HEADERS");
    /// ```
    pub fn variable(self, suffix: Setting) -> &'static str {
        use Setting::*;
        match (self, suffix) {
            (Self::Traces, Endpoint) => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            (Self::Traces, Protocol) => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            (Self::Traces, Headers) => "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            (Self::Traces, Timeout) => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            (Self::Traces, Compression) => "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            (Self::Traces, Certificate) => "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            (Self::Traces, ClientCertificate) => "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            (Self::Traces, ClientKey) => "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            (Self::Traces, Insecure) => "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
            (Self::Logs, Endpoint) => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            (Self::Logs, Protocol) => "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            (Self::Logs, Headers) => "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
            (Self::Logs, Timeout) => "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
            (Self::Logs, Compression) => "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
            (Self::Logs, Certificate) => "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
            (Self::Logs, ClientCertificate) => "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
            (Self::Logs, ClientKey) => "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
            (Self::Logs, Insecure) => "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
            (Self::Metrics, Endpoint) => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            (Self::Metrics, Protocol) => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            (Self::Metrics, Headers) => "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            (Self::Metrics, Timeout) => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            (Self::Metrics, Compression) => "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            (Self::Metrics, Certificate) => "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            (Self::Metrics, ClientCertificate) => "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
            (Self::Metrics, ClientKey) => "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
            (Self::Metrics, Insecure) => "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
        }
    }
}

/// One of the exporter settings that the environment can give, per signal or for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// `..._ENDPOINT`
    Endpoint,
    /// `..._PROTOCOL`
    Protocol,
    /// `..._HEADERS`
    Headers,
    /// `..._TIMEOUT`, in milliseconds
    Timeout,
    /// `..._COMPRESSION`
    Compression,
    /// `..._CERTIFICATE`, a PEM file
    Certificate,
    /// `..._CLIENT_CERTIFICATE`, a PEM file (mutual TLS)
    ClientCertificate,
    /// `..._CLIENT_KEY`, a PEM file (mutual TLS)
    ClientKey,
    /// `..._INSECURE`: plain text for an endpoint written without a scheme
    Insecure,
}

impl Setting {
    /// The variable for every signal, as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn general_variable(self) -> &'static str {
        match self {
            Self::Endpoint => "OTEL_EXPORTER_OTLP_ENDPOINT",
            Self::Protocol => "OTEL_EXPORTER_OTLP_PROTOCOL",
            Self::Headers => "OTEL_EXPORTER_OTLP_HEADERS",
            Self::Timeout => "OTEL_EXPORTER_OTLP_TIMEOUT",
            Self::Compression => "OTEL_EXPORTER_OTLP_COMPRESSION",
            Self::Certificate => "OTEL_EXPORTER_OTLP_CERTIFICATE",
            Self::ClientCertificate => "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            Self::ClientKey => "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            Self::Insecure => "OTEL_EXPORTER_OTLP_INSECURE",
        }
    }
}

/// The wire protocol of an exporter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (default port 4317). The default, as the specification recommends.
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

impl Protocol {
    /// The specification's name: `grpc` or `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }

    /// Reads the specification's name; `None` for any other text (`http/json` included,
    /// which is not offered).
    ///
    /// ```
    /// use sightline_otlp::Protocol;
    ///
    /// assert_eq!(Protocol::from_name("http/protobuf"), Some(Protocol::HttpProtobuf));
    /// assert_eq!(Protocol::from_name("http/json"), None);
    /// assert_eq!(Protocol::Grpc.as_str(), "grpc");
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }

    fn default_endpoint(self) -> &'static str {
        match self {
            Self::Grpc => "http://localhost:4317",
            Self::HttpProtobuf => "http://localhost:4318",
        }
    }
}

/// How export requests are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Not compressed: the default, right for a collector on the same host or network.
    #[default]
    None,
    /// gzip: `grpc-encoding: gzip` over gRPC, `Content-Encoding: gzip` over HTTP. Spans
    /// compress to about a fifth; worth it across a WAN or to a SaaS endpoint.
    Gzip,
}

impl Compression {
    /// Reads the specification's name: `gzip` or `none`.
    ///
    /// ```
    /// use sightline_otlp::Compression;
    ///
    /// assert_eq!(Compression::from_name("gzip"), Some(Compression::Gzip));
    /// assert_eq!(Compression::from_name("zstd"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "gzip" => Some(Self::Gzip),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// Where the endpoint came from, which decides whether OTLP/HTTP appends the signal's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    /// The specification's default for the protocol.
    Default,
    /// A base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, [`ExporterConfig::base_endpoint`]):
    /// OTLP/HTTP appends `/v1/traces` or `/v1/logs`.
    Base(String),
    /// The signal's own URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// [`ExporterConfig::endpoint`]), used as it is.
    Signal(String),
}

/// Everything an exporter needs to reach the collector. Plain data: build it in code, from
/// the environment, or both (code after the environment wins).
///
/// ```
/// use std::time::Duration;
/// use sightline_otlp::{ExporterConfig, Protocol, Signal};
///
/// // What `OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318` and
/// // `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` would say, with a timeout set in code.
/// let env = |name: &str| match name {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_owned()),
///     "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".to_owned()),
///     _ => None,
/// };
/// let config = ExporterConfig::from_env_with(Signal::Traces, env)?
///     .timeout(Duration::from_secs(3));
/// assert_eq!(config.protocol_in_use(), Protocol::HttpProtobuf);
/// assert_eq!(config.url(), "http://collector:4318/v1/traces");
/// # Ok::<(), sightline_otlp::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExporterConfig {
    signal: Signal,
    endpoint: Endpoint,
    protocol: Protocol,
    headers: Vec<(String, String)>,
    timeout: Duration,
    certificate: Option<String>,
    client_identity: Option<(String, String)>,
    compression: Compression,
    max_request_bytes: usize,
    insecure: bool,
    warnings: Vec<String>,
}

/// The largest export request sent by default: a batch that would encode larger goes as
/// several requests, since collectors refuse bigger ones whole (4 MiB is gRPC's and the
/// OpenTelemetry Collector's default message limit).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The specification's default export timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl ExporterConfig {
    /// The specification's defaults for `signal`: gRPC to `http://localhost:4317`, no
    /// headers, a 10-second timeout.
    pub fn new(signal: Signal) -> Self {
        Self {
            signal,
            endpoint: Endpoint::Default,
            protocol: Protocol::Grpc,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            certificate: None,
            client_identity: None,
            compression: Compression::None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            insecure: false,
            warnings: Vec::new(),
        }
    }

    /// The configuration the process environment gives (see
    /// [`from_env_with`](Self::from_env_with)).
    pub fn from_env(signal: Signal) -> Result<Self, ConfigError> {
        Self::from_env_with(signal, |name| std::env::var(name).ok())
    }

    /// The configuration that the `OTEL_EXPORTER_OTLP_*` variables give, looked up through
    /// `env`: for each setting the signal's own variable, else the general one, else the
    /// default. Empty values count as unset.
    ///
    /// Compression other than `gzip` and `none` is refused; so are an unknown protocol, a header name that is not a valid header, and a timeout that is not a whole
    /// number of milliseconds.
    pub fn from_env_with(
        signal: Signal,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .map(|value| (name, value))
        };
        let lookup = |setting: Setting| {
            get(signal.variable(setting)).or_else(|| get(setting.general_variable()))
        };
        let mut config = Self::new(signal);
        if let Some(url) = get(signal.variable(Setting::Endpoint)) {
            config.endpoint = Endpoint::Signal(url.1.trim().to_owned());
        } else if let Some(url) = get(Setting::Endpoint.general_variable()) {
            config.endpoint = Endpoint::Base(url.1.trim().to_owned());
        }
        if let Some((variable, value)) = lookup(Setting::Protocol) {
            config.protocol = Protocol::from_name(&value).ok_or_else(|| ConfigError::Protocol {
                variable,
                value: value.clone(),
            })?;
        }
        if let Some((variable, value)) = lookup(Setting::Compression) {
            config.compression = Compression::from_name(&value)
                .ok_or(ConfigError::Compression { variable, value })?;
        }
        if let Some((variable, value)) = lookup(Setting::Timeout) {
            let millis: u64 = value
                .trim()
                .parse()
                .map_err(|_| ConfigError::Timeout { variable, value })?;
            config.timeout = Duration::from_millis(millis);
        }
        if let Some((_, value)) = lookup(Setting::Headers) {
            config.headers = parse_headers(&value)?;
        }
        if let Some((_, value)) = lookup(Setting::Certificate) {
            config.certificate = Some(value.trim().to_owned());
        }
        if let Some((variable, value)) = lookup(Setting::Insecure) {
            // A boolean of the specification: `true` (any case) is true, anything else false,
            // and a value that is neither true nor false is worth a warning.
            config.insecure = value.trim().eq_ignore_ascii_case("true");
            if !config.insecure && !value.trim().eq_ignore_ascii_case("false") {
                config.warnings.push(format!(
                    "{variable}={value:?} is not true or false; false is used"
                ));
            }
        }
        match (
            lookup(Setting::ClientCertificate),
            lookup(Setting::ClientKey),
        ) {
            (Some((_, cert)), Some((_, key))) => {
                config.client_identity = Some((cert.trim().to_owned(), key.trim().to_owned()));
            }
            (None, None) => {}
            (Some((variable, _)), None) | (None, Some((variable, _))) => {
                return Err(ConfigError::ClientIdentityHalf { variable });
            }
        }
        Ok(config)
    }

    /// Whether the environment names an endpoint for `signal` (its own variable or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`): what decides, when code says nothing, whether a signal
    /// is exported at all.
    pub fn endpoint_in_env(signal: Signal, env: impl Fn(&str) -> Option<String>) -> bool {
        [
            signal.variable(Setting::Endpoint),
            Setting::Endpoint.general_variable(),
        ]
        .into_iter()
        .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()))
    }

    /// The signal's own URL, used as it is (`http://collector:4318/v1/traces` for OTLP/HTTP).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Endpoint::Signal(url.into());
        self
    }

    /// The collector's base URL: OTLP/HTTP appends `/v1/traces` or `/v1/logs`, as it does to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; gRPC uses it as it is.
    pub fn base_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Endpoint::Base(url.into());
        self
    }

    /// The wire protocol. Defaults to gRPC.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// A header (gRPC metadata) sent with every export, an API key say. Names are
    /// lower-cased. Defaults to none beyond `user-agent`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long one export may take, retries included. Defaults to 10 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A PEM file of the collector's CA, trusted besides the system's roots (`https://`
    /// endpoints; the `tls` feature). Defaults to none.
    pub fn certificate(mut self, pem_file: impl Into<String>) -> Self {
        self.certificate = Some(pem_file.into());
        self
    }

    /// A client certificate and its private key (PEM files) for collectors that require
    /// mutual TLS. Defaults to none.
    pub fn client_identity(
        mut self,
        certificate_file: impl Into<String>,
        key_file: impl Into<String>,
    ) -> Self {
        self.client_identity = Some((certificate_file.into(), key_file.into()));
        self
    }

    /// The client certificate and key files, if any.
    pub fn client_identity_files(&self) -> Option<(&str, &str)> {
        self.client_identity
            .as_ref()
            .map(|(cert, key)| (cert.as_str(), key.as_str()))
    }

    /// The largest export request, before compression: a batch that would encode larger is
    /// sent as several requests, so one huge span or record cannot take its batch-mates down
    /// with it (a single item larger than this still goes, alone). Defaults to
    /// [`DEFAULT_MAX_REQUEST_BYTES`] (4 MiB).
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes.max(1);
        self
    }

    /// The largest export request.
    pub fn max_request_bytes_in_use(&self) -> usize {
        self.max_request_bytes
    }

    /// How export requests are compressed. Defaults to none.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The compression the exporter will use.
    pub fn compression_in_use(&self) -> Compression {
        self.compression
    }

    /// The signal this configuration is for.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The protocol the exporter will speak.
    pub fn protocol_in_use(&self) -> Protocol {
        self.protocol
    }

    /// Non-fatal problems met while reading the environment (a boolean that is neither true
    /// nor false, say), one line each, for the caller to report.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// For an endpoint written without a scheme (`collector:4317`): plain text when `true`,
    /// TLS otherwise. Defaults to `OTEL_EXPORTER_OTLP_INSECURE`, else `false`.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The URL the exporter will send to.
    pub fn url(&self) -> String {
        let (base, append) = match &self.endpoint {
            Endpoint::Default => (self.protocol.default_endpoint(), true),
            Endpoint::Base(url) => (url.as_str(), true),
            Endpoint::Signal(url) => (url.as_str(), false),
        };
        let scheme = if self.insecure { "http://" } else { "https://" };
        let owned;
        let base = if base.contains("://") {
            base
        } else {
            owned = format!("{scheme}{base}");
            owned.as_str()
        };
        match self.protocol {
            Protocol::HttpProtobuf if append => {
                format!("{}{}", base.trim_end_matches('/'), self.signal.http_path())
            }
            _ => base.to_owned(),
        }
    }

    /// The headers sent with every export.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// How long one export may take.
    pub fn timeout_in_use(&self) -> Duration {
        self.timeout
    }

    /// The PEM file of an extra CA, if any.
    pub fn certificate_file(&self) -> Option<&str> {
        self.certificate.as_deref()
    }
}

/// `key=value` pairs separated by commas, values percent-decoded (the OTLP exporter
/// specification); names must be valid header names.
fn parse_headers(raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for pair in raw.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        if http::HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes()).is_err() {
            return Err(ConfigError::HeaderName {
                name: key.to_owned(),
            });
        }
        headers.push((key.to_owned(), percent_decode(value.trim())));
    }
    Ok(headers)
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

/// Why an exporter could not be configured or built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A protocol other than `grpc` and `http/protobuf`.
    Protocol {
        /// The variable that held it.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// Compression other than `gzip` and `none`.
    Compression {
        /// The variable that held it.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// A timeout that is not a whole number of milliseconds.
    Timeout {
        /// The variable that held it.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// A header name that is not a valid header (or gRPC metadata key).
    HeaderName {
        /// The name.
        name: String,
    },
    /// A header value that cannot be sent (a control character, say).
    HeaderValue {
        /// The header's name; the value is not repeated, it may be a secret.
        name: String,
    },
    /// An endpoint that is not a URL.
    Endpoint {
        /// The endpoint.
        url: String,
    },
    /// An `https://` endpoint without TLS support compiled in.
    TlsNotCompiled {
        /// The endpoint.
        url: String,
    },
    /// A certificate or key file could not be read or holds no PEM item.
    Certificate {
        /// Its path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Only one of a client certificate and its key was given.
    ClientIdentityHalf {
        /// The variable that was set.
        variable: &'static str,
    },
    /// TLS could not be set up with the certificate given.
    Tls {
        /// The endpoint.
        url: String,
    },
    /// No Tokio runtime: the exporter's connection lives on the runtime it is built in.
    NoRuntime,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol { variable, value } => write!(
                f,
                "{variable}={value:?}: expected \"grpc\" or \"http/protobuf\""
            ),
            Self::Compression { variable, value } => {
                write!(f, "{variable}={value:?}: expected \"gzip\" or \"none\"")
            }
            Self::Timeout { variable, value } => {
                write!(f, "{variable}={value:?}: expected a number of milliseconds")
            }
            Self::HeaderName { name } => write!(f, "OTLP header name {name:?} is not valid"),
            Self::HeaderValue { name } => write!(f, "OTLP header {name:?}: bad value"),
            Self::Endpoint { url } => write!(f, "OTLP endpoint {url:?} is not a valid URL"),
            Self::TlsNotCompiled { url } => write!(
                f,
                "OTLP endpoint {url}: TLS needs the `otlp-tls` feature of `sightline` (`tls` \
                 of `sightline-otlp`); or export to a local collector over http://"
            ),
            Self::Certificate { path, .. } => {
                write!(
                    f,
                    "{path:?} (OTEL_EXPORTER_OTLP_CERTIFICATE, or a client certificate or key) \
                     cannot be read as PEM"
                )
            }
            Self::Tls { url } => write!(f, "OTLP endpoint {url}: TLS could not be set up"),
            Self::ClientIdentityHalf { variable } => write!(
                f,
                "{variable} is set without its pair: mutual TLS needs both \
                 OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY"
            ),
            Self::NoRuntime => f.write_str(
                "OTLP export needs a Tokio runtime: build the exporter (or Sightline) inside one",
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Certificate { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoints_follow_the_specification() {
        // (variables, signal, expected URL, why)
        type Case<'a> = (&'a [(&'a str, &'a str)], Signal, &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (&[], Signal::Traces, "http://localhost:4317", "gRPC default"),
            (
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
                Signal::Traces,
                "http://localhost:4318/v1/traces",
                "HTTP default gets the signal path",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
                ],
                Signal::Logs,
                "http://c:4318/v1/logs",
                "the general endpoint is a base URL for HTTP",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
                ],
                Signal::Metrics,
                "http://c:4318/v1/metrics",
                "metrics read their own protocol and not the traces endpoint",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
                ],
                Signal::Traces,
                "http://t:9/custom",
                "the signal's endpoint wins and is used as it is",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")],
                Signal::Traces,
                "http://c:4317",
                "gRPC takes the base URL as it is",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "  "),
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ],
                Signal::Traces,
                "http://c:4317",
                "an empty variable counts as unset",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ],
                Signal::Logs,
                "http://localhost:4318/v1/logs",
                "the signal's protocol wins",
            ),
        ];
        for (vars, signal, url, why) in cases {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vars.to_vec().into_boxed_slice());
            let config = ExporterConfig::from_env_with(*signal, env_of(vars)).expect(why);
            assert_eq!(config.url(), *url, "{why}");
        }
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let cases: &[(&'static [(&str, &str)], &str)] = &[
            (
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
                "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\"",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")],
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=\"zstd\"",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")],
                "OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\"",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_HEADERS", "bad name=v")],
                "\"bad name\"",
            ),
        ];
        for (vars, needle) in cases {
            let err = ExporterConfig::from_env_with(Signal::Traces, env_of(vars)).unwrap_err();
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn settings_come_from_the_signal_then_the_general_variable() {
        let config = ExporterConfig::from_env_with(
            Signal::Logs,
            env_of(&[
                ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=general"),
                (
                    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
                    "api-key=a%20b,x-tenant = t1 ,=skip,bare",
                ),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
                ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            config.headers(),
            [
                ("api-key".to_owned(), "a b".to_owned()),
                ("x-tenant".to_owned(), "t1".to_owned())
            ]
        );
        assert_eq!(config.timeout_in_use(), Duration::from_millis(2500));
        assert_eq!(config.certificate_file(), Some("/ca.pem"));
        assert_eq!(
            config.compression_in_use(),
            Compression::Gzip,
            "the signal's wins"
        );
    }

    #[test]
    fn endpoints_without_a_scheme_follow_insecure() {
        // (variables, expected URL, warnings)
        type Case = (&'static [(&'static str, &'static str)], &'static str, usize);
        let cases: &[Case] = &[
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
                "https://collector:4317",
                0,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                    ("OTEL_EXPORTER_OTLP_INSECURE", "TRUE"),
                ],
                "http://collector:4317",
                0,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
                    ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "yes"),
                ],
                "https://collector:4317",
                1,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                    ("OTEL_EXPORTER_OTLP_INSECURE", "false"),
                ],
                "http://collector:4317",
                0,
            ),
        ];
        for (vars, url, warnings) in cases {
            let config =
                ExporterConfig::from_env_with(Signal::Traces, env_of(vars)).expect("valid");
            assert_eq!(config.url(), *url, "{vars:?}");
            assert_eq!(config.warnings().len(), *warnings, "{vars:?}");
        }
    }

    #[test]
    fn code_after_the_environment_wins() {
        let config = ExporterConfig::from_env_with(
            Signal::Traces,
            env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")]),
        )
        .expect("valid")
        .protocol(Protocol::HttpProtobuf)
        .base_endpoint("http://code:4318");
        assert_eq!(config.url(), "http://code:4318/v1/traces");
        assert!(ExporterConfig::endpoint_in_env(
            Signal::Logs,
            env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317")])
        ));
        assert!(!ExporterConfig::endpoint_in_env(
            Signal::Logs,
            env_of(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:4317")])
        ));
    }
}
