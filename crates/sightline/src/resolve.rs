//! The one pure step: the builder's settings and the environment become [`Settings`], with
//! every validation done. Nothing here starts a thread or touches a global; the environment
//! is a function, so every rule is a table test.

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{Sampler, SpanLimits};
use opentelemetry_semantic_conventions::attribute::SERVICE_NAME;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::builder::SightlineBuilder;
use crate::error::{ConfigError, Error};
use crate::otel_env::Reader;

/// A lookup of an environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything `build` needs, resolved and checked.
pub(crate) struct Settings {
    pub(crate) service_name: String,
    pub(crate) service_version: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, less `service.name` (resolved above).
    pub(crate) resource_attributes: Vec<KeyValue>,
    /// Where spans go; `None`: not exported (they still get ids).
    #[cfg(feature = "otlp")]
    pub(crate) traces: Option<sightline_otlp::ExporterConfig>,
    #[cfg(feature = "otlp")]
    pub(crate) span_batch: sightline_otlp::BatchSettings,
    /// `OTEL_TRACES_EXPORTER=console`: spans as JSON lines on stderr.
    pub(crate) console_traces: bool,
    /// The application's own tracer provider, used as it is.
    pub(crate) tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// Where log records go; `None`: the JSON lines are the only log output.
    #[cfg(feature = "otlp-logs")]
    pub(crate) logs: Option<sightline_otlp::ExporterConfig>,
    #[cfg(feature = "otlp-logs")]
    pub(crate) log_batch: sightline_otlp::BatchSettings,
    #[cfg(feature = "otlp-logs")]
    pub(crate) log_limits: sightline_otlp::LogRecordLimits,
    /// The head decision, and what is kept of what it did not pick.
    pub(crate) head: crate::sampling::Head,
    pub(crate) keep: crate::KeepPolicy,
    pub(crate) span_limits: SpanLimits,
    /// String attribute values are cut to this many characters, and whether the cut is
    /// marked (Sightline's default limit) or not (a limit the operator or code set).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) value_length_limit: Option<(usize, bool)>,
    /// Whether Sightline installs its subscriber (else the application composes
    /// [`crate::Sightline::tracing_layer`] into its own).
    pub(crate) install_subscriber: bool,
    /// The JSON lines and the subscriber; `None` when `json_logs(false)`.
    pub(crate) json: Option<JsonLogs>,
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) prometheus: bool,
    /// Bucket boundaries set in code.
    #[cfg_attr(
        not(any(feature = "prometheus", feature = "otlp-metrics")),
        allow(dead_code)
    )]
    pub(crate) histogram_buckets: Vec<(crate::HistogramMatch, Vec<f64>)>,
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) exemplars: bool,
    /// Where and how often metrics are pushed; `None`: they are not.
    #[cfg(feature = "otlp-metrics")]
    pub(crate) metrics_push: Option<MetricsPush>,
    pub(crate) propagator: Option<sightline_propagation::Propagator>,
    /// Whether the debug routes are served.
    #[cfg_attr(not(feature = "debug"), allow(dead_code))]
    pub(crate) debug: bool,
    /// The tenant label of the server's duration histogram.
    pub(crate) tenant_label: Option<(http::HeaderName, sightline_http::server::TenantValues)>,
    /// The series limit of the server's duration histogram.
    pub(crate) series_limit: Option<usize>,
    /// The proxies whose forwarding headers the server layers believe.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Values that were wrong but have a fallback: one line each on stderr.
    pub(crate) warnings: Vec<String>,
}

/// The OTLP metrics push, resolved.
#[cfg(feature = "otlp-metrics")]
pub(crate) struct MetricsPush {
    pub(crate) config: sightline_otlp::ExporterConfig,
    pub(crate) interval: std::time::Duration,
    pub(crate) timeout: std::time::Duration,
    pub(crate) temporality: sightline_otlp::Temporality,
}

/// The subscriber's settings.
pub(crate) struct JsonLogs {
    pub(crate) filter: EnvFilter,
    pub(crate) writer: Option<BoxMakeWriter>,
    pub(crate) buffer_bytes: usize,
    pub(crate) field_names: Option<sightline_logging::FieldNames>,
}

fn non_empty(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

impl Settings {
    pub(crate) fn resolve(builder: SightlineBuilder, env: Env<'_>) -> Result<Self, Error> {
        let mut reader = Reader::new(env);
        let sdk_disabled = reader.sdk_disabled();

        let mut resource_attributes = reader.resource_attributes();
        let resource_service_name = resource_attributes
            .iter()
            .position(|kv| kv.key.as_str() == SERVICE_NAME)
            .map(|i| resource_attributes.remove(i).value.to_string());
        // OTEL_SERVICE_NAME over the resource's `service.name`, both over code (ADR 0002).
        let service_name = non_empty(env, "OTEL_SERVICE_NAME")
            .or(resource_service_name)
            .or_else(|| builder.service_name.clone())
            .unwrap_or_else(|| {
                let exe = std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                format!("unknown_service:{exe}")
            });

        let traces_exporters = reader.exporters("OTEL_TRACES_EXPORTER");
        if let Some(list) = &traces_exporters {
            reader.unknown_exporters("OTEL_TRACES_EXPORTER", list, &["otlp", "console", "none"]);
        }
        let console_traces = !sdk_disabled
            && traces_exporters
                .as_ref()
                .is_some_and(|list| list.iter().any(|e| e == "console"));
        let logs_exporters = reader.exporters("OTEL_LOGS_EXPORTER");
        if let Some(list) = &logs_exporters {
            reader.unknown_exporters("OTEL_LOGS_EXPORTER", list, &["otlp", "console", "none"]);
        }
        // A list names every metrics exporter wanted: `otlp` alone turns `/metrics` off.
        let metrics_exporters = reader.exporters("OTEL_METRICS_EXPORTER");
        let offered: &[&str] = if cfg!(feature = "otlp-metrics") {
            &["prometheus", "otlp", "none"]
        } else {
            &["prometheus", "none"]
        };
        if let Some(list) = &metrics_exporters {
            reader.unknown_exporters("OTEL_METRICS_EXPORTER", list, offered);
        }
        let metrics_named = |name: &str| {
            metrics_exporters
                .as_ref()
                .map(|list| list.iter().any(|e| e == name))
        };
        let prometheus = builder.prometheus && metrics_named("prometheus").unwrap_or(true);
        #[cfg(feature = "otlp-metrics")]
        let metrics_push = {
            let wanted = builder
                .otlp_metrics
                .unwrap_or_else(|| metrics_named("otlp").unwrap_or(false));
            let (interval, timeout) = reader.metric_export();
            let temporality = reader.metric_temporality();
            (wanted && !sdk_disabled)
                .then(|| -> Result<MetricsPush, Error> {
                    Ok(MetricsPush {
                        config: exporter_config(sightline_otlp::Signal::Metrics, &builder, env)?,
                        interval: builder
                            .metric_export_interval
                            .or(interval)
                            .unwrap_or(sightline_otlp::DEFAULT_EXPORT_INTERVAL),
                        timeout: timeout.unwrap_or(sightline_otlp::DEFAULT_EXPORT_TIMEOUT),
                        temporality,
                    })
                })
                .transpose()?
        };

        #[cfg(feature = "otlp")]
        let traces = {
            use sightline_otlp::Signal;
            let named = |name: &str| {
                traces_exporters
                    .as_ref()
                    .is_some_and(|list| list.iter().any(|e| e == name))
            };
            let wanted = if sdk_disabled || named("none") {
                false
            } else if named("otlp") {
                true
            } else if named("console") {
                // A list that names exporters names them all: console alone.
                false
            } else {
                builder.otlp_endpoint.is_some()
                    || sightline_otlp::ExporterConfig::endpoint_in_env(Signal::Traces, env)
            };
            // The application's own provider exports its spans itself.
            (wanted && builder.tracer_provider.is_none())
                .then(|| exporter_config(Signal::Traces, &builder, env))
                .transpose()?
        };
        #[cfg(not(feature = "otlp"))]
        if builder.otlp_endpoint.is_some() {
            return Err(ConfigError::FeatureDisabled {
                feature: "otlp",
                needed_by: "an OTLP endpoint",
            }
            .into());
        } else if non_empty(env, "OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            reader.warnings.push(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the `otlp` feature is off: spans are \
                 not exported"
                    .to_owned(),
            );
        }

        let logs_on = !sdk_disabled && otlp_logs_enabled(&builder, logs_exporters.as_deref(), env)?;
        #[cfg(feature = "otlp-logs")]
        let logs = (logs_on && builder.json_logs)
            .then(|| exporter_config(sightline_otlp::Signal::Logs, &builder, env))
            .transpose()?;
        #[cfg(not(feature = "otlp-logs"))]
        let _ = logs_on;

        // A batch processor's export timeout bounds each export when it is the shorter one
        // (the OTLP timeout bounds each attempt and its retries); code's timeout wins.
        #[cfg(feature = "otlp")]
        let traces = {
            let bsp = reader.export_timeout("OTEL_BSP");
            traces.map(|config| shorter_timeout(config, bsp, &builder))
        };
        #[cfg(feature = "otlp-logs")]
        let logs = {
            let blrp = reader.export_timeout("OTEL_BLRP");
            logs.map(|config| shorter_timeout(config, blrp, &builder))
        };
        #[cfg(feature = "otlp-logs")]
        let log_limits = {
            let (count, length) = reader.log_record_limits();
            let limits = sightline_otlp::LogRecordLimits::default()
                .attribute_count(count.unwrap_or(DEFAULT_LOG_ATTRIBUTE_COUNT));
            // As for spans: code, else the environment (cut exactly), else Sightline's
            // default, marked.
            match builder.attribute_value_length_limit {
                Some(Some(limit)) => limits.attribute_value_length(limit),
                Some(None) => limits,
                None => match length {
                    Some(limit) => limits.attribute_value_length(limit),
                    None => limits
                        .attribute_value_length(crate::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT)
                        .marked(crate::TRUNCATED),
                },
            }
        };

        #[cfg(feature = "otlp")]
        let (span_batch, log_batch) = {
            let code = |mut batch: sightline_otlp::BatchSettings| {
                if let Some(delay) = builder.export_interval {
                    batch.scheduled_delay = delay;
                }
                if let Some(size) = builder.export_queue_size {
                    batch.max_queue_size = size;
                }
                batch
            };
            (
                code(reader.batch("OTEL_BSP", sightline_otlp::BatchSettings::SPANS)),
                code(reader.batch("OTEL_BLRP", sightline_otlp::BatchSettings::LOGS)),
            )
        };
        #[cfg(all(feature = "otlp", not(feature = "otlp-logs")))]
        let _ = log_batch;

        let from_env = reader.sampler();
        let head = if sdk_disabled {
            // Spans still get ids for the log lines; nothing is recorded.
            crate::sampling::Head::Spec(Sampler::AlwaysOff)
        } else {
            match (&builder.sampler, builder.adaptive_sampling, from_env) {
                (Some(sampler), _, _) => crate::sampling::Head::Spec(sampler.clone()),
                (None, Some(settings), _)
                | (None, None, Some(crate::otel_env::EnvSampler::Adaptive(settings))) => {
                    crate::sampling::Head::Adaptive {
                        adaptive: std::sync::Arc::new(crate::sampling::Adaptive::new(settings)),
                        parent_based: settings.honours_parent(),
                    }
                }
                (None, None, Some(crate::otel_env::EnvSampler::Spec(sampler))) => {
                    crate::sampling::Head::Spec(sampler)
                }
                (None, None, None) => {
                    crate::sampling::Head::Spec(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
                }
            }
        };
        // Keeping is on by default where the head can drop; the code's policy, then the
        // variables, over that.
        let keep = reader.keep(builder.keep.unwrap_or(if head.can_drop() {
            crate::KeepPolicy::default()
        } else {
            crate::KeepPolicy::none()
        }));
        let span_limits = reader.span_limits();
        let value_length_limit = match builder.attribute_value_length_limit {
            Some(limit) => limit.map(|l| (l, false)),
            None => Some(match reader.span_value_length_limit() {
                Some(limit) => (limit, false),
                None => (crate::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT, true),
            }),
        };
        let propagator = match builder.propagator.clone() {
            Some(propagator) => Some(propagator),
            None => reader.propagator(),
        };

        let debug = builder
            .debug
            .unwrap_or_else(|| reader.flag("SIGHTLINE_DEBUG"));
        let tenant_label = reader.tenant_label();
        let series_limit = reader.series_limit();
        let trusted_proxies = match &builder.trusted_proxies {
            Some(networks) => networks.clone(),
            None => reader.trusted_proxies(),
        };
        let mut warnings = reader.warnings;
        // The exporters' own non-fatal findings, once each (both signals read the general
        // variables).
        #[cfg(feature = "otlp")]
        {
            #[cfg_attr(
                not(any(feature = "otlp-logs", feature = "otlp-metrics")),
                allow(unused_mut)
            )]
            let mut exporters = vec![traces.as_ref()];
            #[cfg(feature = "otlp-logs")]
            exporters.push(logs.as_ref());
            #[cfg(feature = "otlp-metrics")]
            exporters.push(metrics_push.as_ref().map(|push| &push.config));
            for warning in exporters
                .into_iter()
                .flatten()
                .flat_map(sightline_otlp::ExporterConfig::warnings)
            {
                if !warnings.contains(warning) {
                    warnings.push(warning.clone());
                }
            }
        }
        let json = if builder.json_logs {
            let filter = match builder.log_filter {
                Some(directives) => EnvFilter::try_new(&directives)
                    .map_err(|source| ConfigError::LogFilter { directives, source })?,
                None => match non_empty(env, "RUST_LOG") {
                    Some(directives) => EnvFilter::try_new(&directives).unwrap_or_else(|e| {
                        warnings.push(format!(
                            "RUST_LOG={directives:?} is not a valid filter ({e}); using \"info\""
                        ));
                        EnvFilter::new("info")
                    }),
                    None => EnvFilter::new("info"),
                },
            };
            Some(JsonLogs {
                filter,
                writer: builder.log_writer,
                buffer_bytes: builder.log_buffer_bytes,
                field_names: builder.log_field_names,
            })
        } else {
            None
        };

        Ok(Self {
            service_name,
            service_version: builder.service_version,
            resource_attributes,
            #[cfg(feature = "otlp")]
            traces,
            #[cfg(feature = "otlp")]
            span_batch,
            #[cfg(feature = "otlp-logs")]
            logs,
            #[cfg(feature = "otlp-logs")]
            log_batch,
            #[cfg(feature = "otlp-logs")]
            log_limits,
            console_traces: console_traces && builder.tracer_provider.is_none(),
            tracer_provider: builder.tracer_provider.clone(),
            head,
            keep,
            span_limits,
            value_length_limit,
            json,
            install_subscriber: builder.install_subscriber,
            histogram_buckets: builder.histogram_buckets.clone(),
            exemplars: builder.exemplars,
            prometheus,
            #[cfg(feature = "otlp-metrics")]
            metrics_push,
            propagator,
            debug,
            tenant_label,
            series_limit,
            trusted_proxies,
            warnings,
        })
    }
}

/// The specification's default attribute count limit, for log records as for spans.
#[cfg(feature = "otlp-logs")]
const DEFAULT_LOG_ATTRIBUTE_COUNT: usize = 128;

/// `config` with `export_timeout` as its timeout when that is shorter and code set none.
#[cfg(feature = "otlp")]
fn shorter_timeout(
    config: sightline_otlp::ExporterConfig,
    export_timeout: Option<std::time::Duration>,
    builder: &SightlineBuilder,
) -> sightline_otlp::ExporterConfig {
    match export_timeout {
        Some(timeout) if builder.otlp_timeout.is_none() && timeout < config.timeout_in_use() => {
            config.timeout(timeout)
        }
        _ => config,
    }
}

/// The exporter configuration of `signal`: the environment's, with what code set on top.
#[cfg(feature = "otlp")]
fn exporter_config(
    signal: sightline_otlp::Signal,
    builder: &SightlineBuilder,
    env: Env<'_>,
) -> Result<sightline_otlp::ExporterConfig, Error> {
    let mut config = sightline_otlp::ExporterConfig::from_env_with(signal, env)?;
    if let Some(protocol) = builder.otlp_protocol {
        config = config.protocol(match protocol {
            crate::OtlpProtocol::Grpc => sightline_otlp::Protocol::Grpc,
            crate::OtlpProtocol::HttpProtobuf => sightline_otlp::Protocol::HttpProtobuf,
        });
    }
    if let Some(endpoint) = &builder.otlp_endpoint {
        config = config.base_endpoint(endpoint.clone());
    }
    if let Some(timeout) = builder.otlp_timeout {
        config = config.timeout(timeout);
    }
    if let Some(bytes) = builder.otlp_max_request_bytes {
        config = config.max_request_bytes(bytes);
    }
    Ok(config)
}

/// Whether OTLP logs are exported, from the builder's switch, `OTEL_LOGS_EXPORTER` and the
/// endpoint configuration.
///
/// Opt-in: the JSON lines on stdout are the log pipeline by default, and exporting every
/// line a second time costs about 12 µs per request under load (docs/performance.md).
fn otlp_logs_enabled(
    builder: &SightlineBuilder,
    exporters: Option<&[String]>,
    env: Env<'_>,
) -> Result<bool, Error> {
    if !cfg!(feature = "otlp-logs") {
        return match builder.otlp_logs {
            Some(true) => Err(ConfigError::FeatureDisabled {
                feature: "otlp-logs",
                needed_by: "OTLP logs",
            }
            .into()),
            _ => Ok(false),
        };
    }
    let has_endpoint = builder.otlp_endpoint.is_some()
        || non_empty(env, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT").is_some()
        || non_empty(env, "OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    match builder.otlp_logs {
        Some(false) => Ok(false),
        Some(true) if !has_endpoint => Err(ConfigError::OtlpLogsWithoutEndpoint.into()),
        Some(true) if !builder.json_logs => Err(ConfigError::OtlpLogsWithoutSubscriber.into()),
        Some(true) => Ok(true),
        None => Ok(has_endpoint && exporters.is_some_and(|list| list.iter().any(|e| e == "otlp"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Sightline;

    /// An environment of `vars`, for the table tests of this module and `otel_env`.
    pub(crate) fn env_of(
        vars: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn resolve(
        builder: SightlineBuilder,
        vars: &'static [(&'static str, &'static str)],
    ) -> Result<Settings, Error> {
        Settings::resolve(builder, &env_of(vars))
    }

    #[test]
    fn service_name_environment_then_code_then_executable() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
        let cases: &[Case<'_>] = &[
            (&[("OTEL_SERVICE_NAME", "ops")], Some("code"), "ops"),
            (&[("OTEL_SERVICE_NAME", "  ")], Some("code"), "code"),
            (&[], Some("code"), "code"),
        ];
        for (vars, code, expected) in cases {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vars.to_vec().into_boxed_slice());
            let mut builder = Sightline::builder();
            if let Some(name) = code {
                builder = builder.service_name(*name);
            }
            let settings = resolve(builder, vars).expect("valid");
            assert_eq!(settings.service_name, *expected);
        }
        let settings = resolve(Sightline::builder(), &[]).expect("valid");
        assert!(
            settings.service_name.starts_with("unknown_service:"),
            "{}",
            settings.service_name
        );
    }

    #[test]
    fn a_bad_log_filter_is_an_error_by_variant() {
        let err = resolve(Sightline::builder().log_filter("bad[="), &[])
            .err()
            .expect("refused");
        assert!(
            matches!(err, Error::Config(ConfigError::LogFilter { ref directives, .. }) if directives == "bad[="),
            "{err:?}"
        );
    }

    #[test]
    fn a_bad_rust_log_falls_back_to_info_with_a_line_naming_it() {
        let settings = resolve(Sightline::builder(), &[("RUST_LOG", "bad[=")]).expect("valid");
        assert_eq!(settings.warnings.len(), 1, "{:?}", settings.warnings);
        assert!(
            settings.warnings[0].contains("RUST_LOG=\"bad[=\""),
            "{:?}",
            settings.warnings
        );
    }

    #[cfg(feature = "otlp-logs")]
    const ENDPOINT: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");

    #[cfg(feature = "otlp-logs")]
    #[test]
    fn otlp_logs_switch() {
        use sightline_otlp::Protocol;
        // (builder switch, json_logs, variables, Ok(exported) or Err)
        type Case = (
            Option<bool>,
            bool,
            &'static [(&'static str, &'static str)],
            Result<bool, ()>,
        );
        let cases: &[Case] = &[
            (None, true, &[], Ok(false)),
            (None, true, &[ENDPOINT], Ok(false)),
            (
                None,
                true,
                &[ENDPOINT, ("OTEL_LOGS_EXPORTER", "console, otlp")],
                Ok(true),
            ),
            (
                None,
                false,
                &[ENDPOINT, ("OTEL_LOGS_EXPORTER", "otlp")],
                Ok(false),
            ),
            (Some(true), true, &[], Err(())),
            (Some(true), false, &[ENDPOINT], Err(())),
            (Some(true), true, &[ENDPOINT], Ok(true)),
            (
                Some(false),
                true,
                &[ENDPOINT, ("OTEL_LOGS_EXPORTER", "otlp")],
                Ok(false),
            ),
        ];
        for (i, (switch, json, vars, expected)) in cases.iter().enumerate() {
            let mut builder = Sightline::builder().json_logs(*json);
            if let Some(on) = switch {
                builder = builder.otlp_logs(*on);
            }
            let got = resolve(builder, vars)
                .map(|s| s.logs.is_some())
                .map_err(|_| ());
            assert_eq!(got, *expected, "case {i}");
        }
        let settings = resolve(
            Sightline::builder()
                .otlp_logs(true)
                .otlp_endpoint("http://c:4318")
                .otlp_protocol(crate::OtlpProtocol::HttpProtobuf),
            &[],
        )
        .expect("valid");
        let logs = settings.logs.expect("on");
        assert_eq!(logs.protocol_in_use(), Protocol::HttpProtobuf);
        assert_eq!(logs.url(), "http://c:4318/v1/logs");
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn traces_are_exported_when_an_endpoint_is_named() {
        let settings = resolve(Sightline::builder(), &[]).expect("valid");
        assert!(settings.traces.is_none());
        let settings = resolve(
            Sightline::builder(),
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317")],
        )
        .expect("valid");
        assert_eq!(settings.traces.expect("exported").url(), "http://t:4317");
        let settings = resolve(
            Sightline::builder().otlp_timeout(Duration::from_millis(1500)),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ],
        )
        .expect("valid");
        assert_eq!(
            settings.traces.expect("exported").timeout_in_use(),
            Duration::from_millis(1500),
            "code over the environment"
        );
        let err = resolve(
            Sightline::builder(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
        )
        .err()
        .expect("refused");
        assert!(matches!(err, Error::Exporter(_)), "{err:?}");
    }

    #[cfg(feature = "otlp-metrics")]
    #[test]
    fn metrics_exporters_follow_the_list_and_code_over_it() {
        // (builder otlp_metrics, builder prometheus, variables, (prometheus, pushed))
        type Case = (
            Option<bool>,
            bool,
            &'static [(&'static str, &'static str)],
            (bool, bool),
        );
        let cases: &[Case] = &[
            (None, true, &[], (true, false)),
            (
                None,
                true,
                &[("OTEL_METRICS_EXPORTER", "otlp")],
                (false, true),
            ),
            (
                None,
                true,
                &[("OTEL_METRICS_EXPORTER", "Prometheus, OTLP")],
                (true, true),
            ),
            (
                None,
                true,
                &[("OTEL_METRICS_EXPORTER", "none")],
                (false, false),
            ),
            (
                None,
                true,
                &[("OTEL_METRICS_EXPORTER", "console,prometheus")],
                (true, false),
            ),
            (
                None,
                false,
                &[("OTEL_METRICS_EXPORTER", "prometheus")],
                (false, false),
            ),
            (Some(true), true, &[], (true, true)),
            (
                Some(false),
                true,
                &[("OTEL_METRICS_EXPORTER", "otlp")],
                (false, false),
            ),
            (
                None,
                true,
                &[
                    ("OTEL_METRICS_EXPORTER", "otlp"),
                    ("OTEL_SDK_DISABLED", "true"),
                ],
                (false, false),
            ),
        ];
        for (i, (push, prometheus, vars, expected)) in cases.iter().enumerate() {
            let mut builder = Sightline::builder().prometheus(*prometheus);
            if let Some(on) = push {
                builder = builder.otlp_metrics(*on);
            }
            let settings = resolve(builder, vars).expect("valid");
            assert_eq!(
                (settings.prometheus, settings.metrics_push.is_some()),
                *expected,
                "case {i}"
            );
        }
        let settings = resolve(
            Sightline::builder(),
            &[("OTEL_METRICS_EXPORTER", "console,otlp")],
        )
        .expect("valid");
        assert_eq!(settings.warnings.len(), 1, "{:?}", settings.warnings);
        assert!(
            settings.warnings[0].starts_with("OTEL_METRICS_EXPORTER=\"console\""),
            "{:?}",
            settings.warnings
        );
    }

    #[cfg(feature = "otlp-metrics")]
    #[test]
    fn metric_push_settings_from_the_environment() {
        use sightline_otlp::{Protocol, Temporality};
        let settings = resolve(
            Sightline::builder().otlp_metrics(true),
            &[
                ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
                ("OTEL_METRIC_EXPORT_TIMEOUT", "900"),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                    "LowMemory",
                ),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ],
        )
        .expect("valid");
        assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
        let push = settings.metrics_push.expect("pushed");
        assert_eq!(push.interval, Duration::from_millis(250));
        assert_eq!(push.timeout, Duration::from_millis(900));
        assert_eq!(push.temporality, Temporality::LowMemory);
        assert_eq!(push.config.protocol_in_use(), Protocol::HttpProtobuf);
        assert_eq!(push.config.url(), "http://c:4318/v1/metrics");

        // Defaults, and code over the environment.
        let settings = resolve(
            Sightline::builder()
                .otlp_metrics(true)
                .metric_export_interval(Duration::from_secs(5)),
            &[("OTEL_METRIC_EXPORT_INTERVAL", "250")],
        )
        .expect("valid");
        let push = settings.metrics_push.expect("pushed");
        assert_eq!(push.interval, Duration::from_secs(5));
        assert_eq!(push.timeout, Duration::from_secs(30));
        assert_eq!(push.temporality, Temporality::Cumulative);
        assert_eq!(push.config.url(), "http://localhost:4317");

        // Wrong values: one line each, and the defaults.
        let settings = resolve(
            Sightline::builder().otlp_metrics(true),
            &[
                ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
                ("OTEL_METRIC_EXPORT_TIMEOUT", "soon"),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                    "weekly",
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                    "base2_exponential_bucket_histogram",
                ),
            ],
        )
        .expect("valid");
        let push = settings.metrics_push.as_ref().expect("pushed");
        assert_eq!(push.interval, Duration::from_secs(60));
        assert_eq!(push.timeout, Duration::from_secs(30));
        assert_eq!(push.temporality, Temporality::Cumulative);
        let named: Vec<&str> = settings
            .warnings
            .iter()
            .map(|w| w.split('=').next().unwrap_or_default())
            .collect();
        assert_eq!(
            named,
            [
                "OTEL_METRIC_EXPORT_INTERVAL",
                "OTEL_METRIC_EXPORT_TIMEOUT",
                "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            ],
            "{:?}",
            settings.warnings
        );
    }

    #[cfg(feature = "otlp-logs")]
    #[test]
    fn log_record_limits_from_code_then_the_environment_then_the_default() {
        use sightline_otlp::LogRecordLimits;
        let limits = |builder: SightlineBuilder, vars: &'static [(&'static str, &'static str)]| {
            resolve(builder, vars).expect("valid").log_limits
        };
        let default = LogRecordLimits::default().attribute_count(128);
        assert_eq!(
            limits(Sightline::builder(), &[]),
            default
                .attribute_value_length(crate::DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT)
                .marked(crate::TRUNCATED)
        );
        assert_eq!(
            limits(
                Sightline::builder(),
                &[
                    ("OTEL_ATTRIBUTE_COUNT_LIMIT", "20"),
                    ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "5"),
                    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64"),
                ],
            ),
            LogRecordLimits::default()
                .attribute_count(5)
                .attribute_value_length(64),
            "the log record's own variable first; a configured length cuts without a mark"
        );
        assert_eq!(
            limits(
                Sightline::builder(),
                &[("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16")],
            ),
            default.attribute_value_length(16)
        );
        assert_eq!(
            limits(
                Sightline::builder().attribute_value_length_limit(None),
                &[("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16")],
            ),
            default,
            "code over the environment"
        );
    }

    #[cfg(feature = "otlp-logs")]
    #[test]
    fn a_shorter_batch_export_timeout_bounds_each_export() {
        let vars: &'static [(&'static str, &'static str)] = &[
            ENDPOINT,
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
            ("OTEL_BLRP_EXPORT_TIMEOUT", "60000"),
        ];
        let settings = resolve(Sightline::builder(), vars).expect("valid");
        assert_eq!(
            settings.traces.expect("spans").timeout_in_use(),
            Duration::from_secs(2)
        );
        assert_eq!(
            settings.logs.expect("logs").timeout_in_use(),
            Duration::from_secs(10),
            "the OTLP timeout is the shorter one"
        );
        let settings = resolve(
            Sightline::builder().otlp_timeout(Duration::from_secs(5)),
            vars,
        )
        .expect("valid");
        assert_eq!(
            settings.traces.expect("spans").timeout_in_use(),
            Duration::from_secs(5),
            "code over the environment"
        );
    }
}
