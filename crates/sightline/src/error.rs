use std::fmt;

/// Why [`SightlineBuilder::build`](crate::SightlineBuilder::build) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; the message says which and why.
    InvalidConfig(String),
    /// The OTLP span exporter could not be built.
    #[cfg(feature = "otlp")]
    Exporter(opentelemetry_otlp::ExporterBuildError),
    /// A global `tracing` subscriber is already installed.
    Subscriber(tracing::subscriber::SetGlobalDefaultError),
    /// The Prometheus recorder could not be installed (for example, a `metrics` recorder is
    /// already installed).
    #[cfg(feature = "prometheus")]
    MetricsRecorder(metrics_exporter_prometheus::BuildError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            #[cfg(feature = "otlp")]
            Error::Exporter(_) => f.write_str("failed to build the OTLP span exporter"),
            Error::Subscriber(_) => f.write_str("a global tracing subscriber is already installed"),
            #[cfg(feature = "prometheus")]
            Error::MetricsRecorder(_) => f.write_str("failed to install the Prometheus recorder"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidConfig(_) => None,
            #[cfg(feature = "otlp")]
            Error::Exporter(e) => Some(e),
            Error::Subscriber(e) => Some(e),
            #[cfg(feature = "prometheus")]
            Error::MetricsRecorder(e) => Some(e),
        }
    }
}
