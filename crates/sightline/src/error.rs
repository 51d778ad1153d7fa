use std::fmt;

/// Why [`SightlineBuilder::build`](crate::SightlineBuilder::build) failed. Nothing global has
/// been changed when it fails (no subscriber, recorder or provider installed).
///
/// ```
/// use sightline::{ConfigError, Error, Sightline};
///
/// match Sightline::builder().log_filter("checkout=[").build() {
///     Err(Error::Config(ConfigError::LogFilter { directives, .. })) => {
///         assert_eq!(directives, "checkout=[");
///     }
///     other => panic!("expected a log filter error, got {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A setting is wrong or cannot be honoured with the features compiled in.
    Config(ConfigError),
    /// An OTLP exporter could not be configured (endpoint, protocol, headers, TLS, runtime).
    #[cfg(feature = "otlp")]
    Exporter(sightline_otlp::ConfigError),
    /// A global that `build` installs was installed already by someone else.
    AlreadyInstalled(Global),
    /// A thread of Sightline's own could not be started.
    Io(std::io::Error),
}

/// A global that Sightline installs, in the order it installs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Global {
    /// The `metrics` recorder (the Prometheus exposition).
    MetricsRecorder,
    /// The `tracing` subscriber (JSON lines, the OpenTelemetry bridges).
    TracingSubscriber,
}

/// A setting that is wrong, by cause.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The log filter is not valid `RUST_LOG` syntax.
    LogFilter {
        /// The directives given.
        directives: String,
        /// The parser's reason.
        source: tracing_subscriber::filter::ParseError,
    },
    /// OTLP logs were switched on with no OTLP endpoint in code or in the environment.
    OtlpLogsWithoutEndpoint,
    /// OTLP logs were switched on while `json_logs` is off: the log bridge is part of the
    /// subscriber that `json_logs` installs.
    OtlpLogsWithoutSubscriber,
    /// A histogram's bucket list was refused by the Prometheus exporter.
    HistogramBuckets,
    /// A setting needs a cargo feature of `sightline` that is off.
    FeatureDisabled {
        /// The feature.
        feature: &'static str,
        /// What needed it.
        needed_by: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            #[cfg(feature = "otlp")]
            Self::Exporter(e) => write!(f, "invalid OTLP exporter configuration: {e}"),
            Self::AlreadyInstalled(Global::MetricsRecorder) => {
                f.write_str("a global `metrics` recorder is already installed")
            }
            Self::AlreadyInstalled(Global::TracingSubscriber) => {
                f.write_str("a global tracing subscriber is already installed")
            }
            Self::Io(_) => f.write_str("a thread of Sightline's could not be started"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LogFilter { directives, .. } => write!(f, "log filter {directives:?}"),
            Self::OtlpLogsWithoutEndpoint => {
                f.write_str("OTLP logs are switched on but no OTLP endpoint is configured")
            }
            Self::OtlpLogsWithoutSubscriber => {
                f.write_str("OTLP logs need the subscriber that `json_logs` installs")
            }
            Self::HistogramBuckets => f.write_str("a histogram's buckets were refused"),
            Self::FeatureDisabled { feature, needed_by } => {
                write!(
                    f,
                    "{needed_by} needs the `{feature}` feature of `sightline`"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            #[cfg(feature = "otlp")]
            Self::Exporter(e) => Some(e),
            Self::AlreadyInstalled(_) => None,
            Self::Io(e) => Some(e),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::LogFilter { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

#[cfg(feature = "otlp")]
impl From<sightline_otlp::ConfigError> for Error {
    fn from(e: sightline_otlp::ConfigError) -> Self {
        Self::Exporter(e)
    }
}
