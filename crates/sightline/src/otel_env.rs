//! The OpenTelemetry SDK environment variables that are not the exporter's, each read by one
//! pure function. A value that cannot be used leaves one warning naming the variable and the
//! value, and the specification's fallback is used: a typo never fails the service.

#[cfg(feature = "otlp-metrics")]
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{Sampler, SpanLimits};

/// The adaptive sampler's target when `OTEL_TRACES_SAMPLER_ARG` is unset: traces per second
/// per route.
const DEFAULT_ADAPTIVE_TARGET: f64 = 10.0;

/// A sampler named by `OTEL_TRACES_SAMPLER`.
#[derive(Debug)]
pub(crate) enum EnvSampler {
    /// One of the specification's.
    Spec(Sampler),
    /// Ours.
    Adaptive(crate::AdaptiveSampling),
}
use sightline_propagation::{Format, Propagator};

use crate::resolve::Env;

/// Reads variables through `env`, collecting warnings.
pub(crate) struct Reader<'a> {
    env: Env<'a>,
    pub(crate) warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(env: Env<'a>) -> Self {
        Self {
            env,
            warnings: Vec::new(),
        }
    }

    /// The variable's value, trimmed; unset and empty are the same.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.env)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn warn(&mut self, name: &str, value: &str, why: &str) {
        self.warnings.push(format!("{name}={value:?} {why}"));
    }

    /// `OTEL_SDK_DISABLED`: `true` turns export and recording off.
    pub(crate) fn sdk_disabled(&mut self) -> bool {
        let name = "OTEL_SDK_DISABLED";
        match self.get(name) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                self.warn(name, &v, "is not true or false; the SDK stays enabled");
                false
            }
        }
    }

    /// A whole number, else `None` with a warning.
    fn number(&mut self, name: &str) -> Option<u64> {
        let value = self.get(name)?;
        match value.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.warn(name, &value, "is not a whole number; the default is used");
                None
            }
        }
    }

    /// The first of `names` that is set and valid.
    fn first_number(&mut self, names: &[&str]) -> Option<u64> {
        names.iter().find_map(|name| self.number(name))
    }

    /// `OTEL_BSP_*` or `OTEL_BLRP_*` (`prefix`) over `defaults`.
    #[cfg(feature = "otlp")]
    pub(crate) fn batch(
        &mut self,
        prefix: &str,
        defaults: sightline_otlp::BatchSettings,
    ) -> sightline_otlp::BatchSettings {
        let mut settings = defaults;
        if let Some(ms) = self.number(&format!("{prefix}_SCHEDULE_DELAY")) {
            settings.scheduled_delay = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = self.number(&format!("{prefix}_MAX_QUEUE_SIZE")) {
            settings.max_queue_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = self.number(&format!("{prefix}_MAX_EXPORT_BATCH_SIZE")) {
            settings.max_export_batch_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        settings
    }

    /// The span limits of `OTEL_SPAN_*_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`,
    /// `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` and the general `OTEL_ATTRIBUTE_COUNT_LIMIT`.
    pub(crate) fn span_limits(&mut self) -> SpanLimits {
        let mut limits = SpanLimits::default();
        let to_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(n) = self.first_number(&[
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
        ]) {
            limits.max_attributes_per_span = to_u32(n);
        }
        if let Some(n) = self.number("OTEL_SPAN_EVENT_COUNT_LIMIT") {
            limits.max_events_per_span = to_u32(n);
        }
        if let Some(n) = self.number("OTEL_SPAN_LINK_COUNT_LIMIT") {
            limits.max_links_per_span = to_u32(n);
        }
        if let Some(n) = self.number("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT") {
            limits.max_attributes_per_event = to_u32(n);
        }
        if let Some(n) = self.number("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT") {
            limits.max_attributes_per_link = to_u32(n);
        }
        limits
    }

    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`:
    /// string values longer than this many characters are cut. `None`: no limit.
    pub(crate) fn span_value_length_limit(&mut self) -> Option<usize> {
        self.first_number(&[
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        ])
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// `OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT`, and
    /// `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
    #[cfg(feature = "otlp-logs")]
    pub(crate) fn log_record_limits(&mut self) -> (Option<usize>, Option<usize>) {
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let count = self
            .first_number(&[
                "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])
            .map(to_usize);
        let length = self
            .first_number(&[
                "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ])
            .map(to_usize);
        (count, length)
    }

    /// `OTEL_BSP_EXPORT_TIMEOUT` or `OTEL_BLRP_EXPORT_TIMEOUT` (`prefix`), milliseconds; zero
    /// is no limit of its own.
    #[cfg(feature = "otlp")]
    pub(crate) fn export_timeout(&mut self, prefix: &str) -> Option<std::time::Duration> {
        self.number(&format!("{prefix}_EXPORT_TIMEOUT"))
            .filter(|&ms| ms > 0)
            .map(std::time::Duration::from_millis)
    }

    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; `None` when unset (the default,
    /// `parentbased_always_on`). Besides the specification's samplers, ours:
    /// `parentbased_sightline_adaptive` and `sightline_adaptive`, whose argument is the target
    /// number of sampled traces per second per route.
    pub(crate) fn sampler(&mut self) -> Option<EnvSampler> {
        let name = "OTEL_TRACES_SAMPLER";
        let value = self.get(name)?;
        let arg = "OTEL_TRACES_SAMPLER_ARG";
        let ratio = |reader: &mut Self| match reader.get(arg) {
            None => 1.0,
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => r,
                _ => {
                    reader.warn(arg, &v, "is not a ratio from 0 to 1; 1.0 is used");
                    1.0
                }
            },
        };
        let target = |reader: &mut Self| match reader.get(arg) {
            None => DEFAULT_ADAPTIVE_TARGET,
            Some(v) => match v.parse::<f64>() {
                Ok(t) if t.is_finite() && t > 0.0 => t,
                _ => {
                    reader.warn(
                        arg,
                        &v,
                        "is not a positive number of traces per second; 10 is used",
                    );
                    DEFAULT_ADAPTIVE_TARGET
                }
            },
        };
        let parent_based = |root: Sampler| EnvSampler::Spec(Sampler::ParentBased(Box::new(root)));
        Some(match value.to_ascii_lowercase().as_str() {
            "always_on" => EnvSampler::Spec(Sampler::AlwaysOn),
            "always_off" => EnvSampler::Spec(Sampler::AlwaysOff),
            "traceidratio" => EnvSampler::Spec(Sampler::TraceIdRatioBased(ratio(self))),
            "parentbased_always_on" => parent_based(Sampler::AlwaysOn),
            "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
            "parentbased_traceidratio" => parent_based(Sampler::TraceIdRatioBased(ratio(self))),
            "parentbased_sightline_adaptive" => {
                EnvSampler::Adaptive(crate::AdaptiveSampling::new(target(self)))
            }
            "sightline_adaptive" => {
                EnvSampler::Adaptive(crate::AdaptiveSampling::new(target(self)).parent_based(false))
            }
            _ => {
                self.warn(
                    name,
                    &value,
                    "is not a sampler offered here (always_on, always_off, traceidratio, \
                     sightline_adaptive and their parentbased_ forms); parentbased_always_on is \
                     used",
                );
                return None;
            }
        })
    }

    /// `SIGHTLINE_KEEP_ERRORS` (true/false) and `SIGHTLINE_KEEP_SLOWER_THAN_MS` (0 keeps none
    /// for being slow) over `policy`.
    pub(crate) fn keep(&mut self, mut policy: crate::KeepPolicy) -> crate::KeepPolicy {
        let errors = "SIGHTLINE_KEEP_ERRORS";
        if let Some(value) = self.get(errors) {
            match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => policy = policy.errors(true),
                "0" | "false" | "no" | "off" => policy = policy.errors(false),
                _ => self.warn(errors, &value, "is not true or false; it is left as it was"),
            }
        }
        match self.number("SIGHTLINE_KEEP_SLOWER_THAN_MS") {
            Some(0) => policy = policy.slower_than(None),
            Some(ms) => policy = policy.slower_than(Some(std::time::Duration::from_millis(ms))),
            None => {}
        }
        policy
    }

    /// `OTEL_PROPAGATORS`: the formats read (in order) and written, and baggage. `None` when
    /// unset, or when no value is known (with a warning), so a typo keeps the default.
    pub(crate) fn propagator(&mut self) -> Option<Propagator> {
        let name = "OTEL_PROPAGATORS";
        let value = self.get(name)?;
        let mut formats: Vec<Format> = Vec::new();
        let mut baggage = false;
        let mut none = false;
        let mut known = 0;
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let format = match item.to_ascii_lowercase().as_str() {
                "tracecontext" => Some(Format::TraceContext),
                "b3" => Some(Format::B3Single),
                "b3multi" => Some(Format::B3Multi),
                #[cfg(feature = "jaeger")]
                "jaeger" => Some(Format::Jaeger),
                "baggage" => {
                    baggage = true;
                    None
                }
                "none" => {
                    none = true;
                    None
                }
                #[cfg(not(feature = "jaeger"))]
                "jaeger" => {
                    self.warn(
                        name,
                        item,
                        "needs the `jaeger` feature of `sightline`; skipped",
                    );
                    continue;
                }
                _ => {
                    self.warn(name, item, "is not a propagator offered here; skipped");
                    continue;
                }
            };
            known += 1;
            if let Some(format) = format
                && !formats.contains(&format)
            {
                formats.push(format);
            }
        }
        if none {
            // `none` alone switches propagation off; beside others it is ignored, as the
            // specification's examples read.
            if known == 1 {
                return Some(
                    Propagator::builder()
                        .extract_formats(&[])
                        .inject_formats(&[])
                        .baggage(false)
                        .build(),
                );
            }
        }
        if known == 0 {
            self.warn(
                name,
                &value,
                "names no propagator offered here; the default is used",
            );
            return None;
        }
        Some(
            Propagator::builder()
                .extract_formats(&formats)
                .inject_formats(&formats)
                .baggage(baggage)
                .build(),
        )
    }

    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs, percent-decoded. A malformed list is
    /// discarded whole, as the specification says, with a warning.
    pub(crate) fn resource_attributes(&mut self) -> Vec<KeyValue> {
        let name = "OTEL_RESOURCE_ATTRIBUTES";
        let Some(value) = self.get(name) else {
            return Vec::new();
        };
        let mut attributes = Vec::new();
        for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
            let decoded = pair.split_once('=').and_then(|(k, v)| {
                let key = percent_decode(k.trim())?;
                let value = percent_decode(v.trim())?;
                (!key.is_empty()).then_some((key, value))
            });
            match decoded {
                Some((key, value)) => attributes.push(KeyValue::new(key, value)),
                None => {
                    self.warn(
                        name,
                        &value,
                        &format!("has a malformed entry {pair:?}; all of it is ignored"),
                    );
                    return Vec::new();
                }
            }
        }
        attributes
    }

    /// `OTEL_METRIC_EXPORT_INTERVAL` and `OTEL_METRIC_EXPORT_TIMEOUT` (milliseconds), each
    /// `None` when unset or wrong (with a warning). An interval of zero is wrong too.
    #[cfg(feature = "otlp-metrics")]
    pub(crate) fn metric_export(&mut self) -> (Option<Duration>, Option<Duration>) {
        let name = "OTEL_METRIC_EXPORT_INTERVAL";
        let interval = match self.number(name) {
            Some(0) => {
                self.warn(
                    name,
                    "0",
                    "is not a positive number of milliseconds; 60000 is used",
                );
                None
            }
            other => other.map(Duration::from_millis),
        };
        let timeout = self
            .number("OTEL_METRIC_EXPORT_TIMEOUT")
            .map(Duration::from_millis);
        (interval, timeout)
    }

    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, and a warning for an
    /// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION` other than explicit buckets.
    #[cfg(feature = "otlp-metrics")]
    pub(crate) fn metric_temporality(&mut self) -> sightline_otlp::Temporality {
        let aggregation = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";
        if let Some(value) = self.get(aggregation) {
            match value.to_ascii_lowercase().as_str() {
                "explicit_bucket_histogram" => {}
                "base2_exponential_bucket_histogram" => self.warn(
                    aggregation,
                    &value,
                    "is not offered here; histograms keep explicit buckets",
                ),
                _ => self.warn(
                    aggregation,
                    &value,
                    "is not explicit_bucket_histogram or base2_exponential_bucket_histogram; \
                     histograms keep explicit buckets",
                ),
            }
        }
        let name = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        match self.get(name) {
            None => sightline_otlp::Temporality::Cumulative,
            Some(value) => sightline_otlp::Temporality::parse(&value).unwrap_or_else(|| {
                self.warn(
                    name,
                    &value,
                    "is not cumulative, delta or lowmemory; cumulative is used",
                );
                sightline_otlp::Temporality::Cumulative
            }),
        }
    }

    /// A switch: `1`, `true`, `yes` or `on` (any case) is on; unset, empty, `0`, `false`,
    /// `no` or `off` is off; anything else is off with a warning.
    pub(crate) fn flag(&mut self, name: &str) -> bool {
        let Some(value) = self.get(name) else {
            return false;
        };
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                self.warn(name, &value, "is not 1/true or 0/false; it stays off");
                false
            }
        }
    }

    /// `SIGHTLINE_TENANT_HEADER` and `SIGHTLINE_TENANTS` (comma-separated values, or `*`):
    /// the tenant label of the server's duration histogram; none without a header name.
    pub(crate) fn tenant_label(
        &mut self,
    ) -> Option<(http::HeaderName, sightline_http::server::TenantValues)> {
        let header_var = "SIGHTLINE_TENANT_HEADER";
        let header = self.get(header_var)?;
        let Ok(header) = http::HeaderName::try_from(header.to_ascii_lowercase()) else {
            self.warn(header_var, &header, "is not a header name; no tenant label");
            return None;
        };
        let values = match self.get("SIGHTLINE_TENANTS") {
            Some(list) if list == "*" => sightline_http::server::TenantValues::Any,
            Some(list) => sightline_http::server::TenantValues::Only(
                list.split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            None => {
                self.warn(
                    header_var,
                    header.as_str(),
                    "is set without SIGHTLINE_TENANTS; every tenant is _OTHER",
                );
                sightline_http::server::TenantValues::Only(Vec::new())
            }
        };
        Some((header, values))
    }

    /// `SIGHTLINE_METRIC_CARDINALITY_LIMIT`: the most series a metric may have.
    pub(crate) fn series_limit(&mut self) -> Option<usize> {
        let name = "SIGHTLINE_METRIC_CARDINALITY_LIMIT";
        match self.number(name) {
            Some(0) => {
                self.warn(name, "0", "is not a positive number; the default is used");
                None
            }
            other => other.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// `SIGHTLINE_TRUSTED_PROXIES`: addresses and networks (`10.0.0.1`, `10.0.0.0/8`,
    /// `fd00::/8`), comma-separated; an entry that is neither is left out with a warning.
    pub(crate) fn trusted_proxies(&mut self) -> Vec<ipnet::IpNet> {
        let name = "SIGHTLINE_TRUSTED_PROXIES";
        let Some(value) = self.get(name) else {
            return Vec::new();
        };
        let mut networks = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(network) => networks.push(network),
                Err(_) => self.warn(
                    name,
                    entry,
                    "is not an IP address or network; that entry is ignored",
                ),
            }
        }
        networks
    }

    /// A comma-separated list of exporter names (`OTEL_TRACES_EXPORTER`, ...), lower-cased.
    pub(crate) fn exporters(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|v| {
            v.split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect()
        })
    }

    /// Warns about each exporter in `list` that is not one of `offered`.
    pub(crate) fn unknown_exporters(&mut self, name: &str, list: &[String], offered: &[&str]) {
        for exporter in list {
            if !offered.contains(&exporter.as_str()) {
                let why = format!(
                    "is not offered here (offered: {}); ignored",
                    offered.join(", ")
                );
                self.warn(name, exporter, &why);
            }
        }
    }
}

/// `%XX` decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(vars: &'static [(&'static str, &'static str)]) -> Reader<'static> {
        let env: &'static dyn Fn(&str) -> Option<String> =
            Box::leak(Box::new(crate::resolve::tests::env_of(vars)));
        Reader::new(env)
    }

    #[test]
    fn keep_policy_from_the_environment() {
        use std::time::Duration;
        let default = crate::KeepPolicy::default();
        let mut unset = reader(&[]);
        assert_eq!(unset.keep(default), default);
        let mut set = reader(&[
            ("SIGHTLINE_KEEP_ERRORS", "false"),
            ("SIGHTLINE_KEEP_SLOWER_THAN_MS", "250"),
        ]);
        let policy = set.keep(default);
        assert!(!policy.keeps_errors());
        assert_eq!(
            policy.slower_than_threshold(),
            Some(Duration::from_millis(250))
        );
        let mut off = reader(&[("SIGHTLINE_KEEP_SLOWER_THAN_MS", "0")]);
        assert_eq!(off.keep(default).slower_than_threshold(), None);
        let mut bad = reader(&[
            ("SIGHTLINE_KEEP_ERRORS", "maybe"),
            ("SIGHTLINE_KEEP_SLOWER_THAN_MS", "soon"),
        ]);
        assert_eq!(bad.keep(default), default);
        assert_eq!(bad.warnings.len(), 2, "{:?}", bad.warnings);
    }

    #[test]
    fn samplers_by_name_with_their_argument() {
        // (variables, expected sampler as Debug text or None, warnings)
        type Case = (
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
            usize,
        );
        let cases: &[Case] = &[
            (&[], None, 0),
            (&[("OTEL_TRACES_SAMPLER", "always_on")], Some("AlwaysOn"), 0),
            (
                &[("OTEL_TRACES_SAMPLER", "ALWAYS_OFF")],
                Some("AlwaysOff"),
                0,
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0"),
                ],
                Some("TraceIdRatioBased(0.0)"),
                0,
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
                ],
                Some("ParentBased(TraceIdRatioBased(0.25))"),
                0,
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ],
                Some("TraceIdRatioBased(1.0)"),
                1,
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "parentbased_always_off")],
                Some("ParentBased(AlwaysOff)"),
                0,
            ),
            (&[("OTEL_TRACES_SAMPLER", "bogus")], None, 1),
            (&[("OTEL_TRACES_SAMPLER", "xray")], None, 1),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "parentbased_sightline_adaptive"),
                    ("OTEL_TRACES_SAMPLER_ARG", "5"),
                ],
                Some("adaptive 5 parent-based"),
                0,
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "sightline_adaptive")],
                Some("adaptive 10"),
                0,
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "parentbased_sightline_adaptive"),
                    ("OTEL_TRACES_SAMPLER_ARG", "-3"),
                ],
                Some("adaptive 10 parent-based"),
                1,
            ),
        ];
        for (vars, expected, warnings) in cases {
            let mut reader = reader(vars);
            let sampler = reader.sampler().map(|s| match s {
                EnvSampler::Spec(s) => format!("{s:?}"),
                EnvSampler::Adaptive(a) if a.honours_parent() => {
                    format!("adaptive {} parent-based", a.target())
                }
                EnvSampler::Adaptive(a) => format!("adaptive {}", a.target()),
            });
            assert_eq!(sampler.as_deref(), *expected, "{vars:?}");
            assert_eq!(
                reader.warnings.len(),
                *warnings,
                "{vars:?}: {:?}",
                reader.warnings
            );
        }
        let mut bogus = reader(&[("OTEL_TRACES_SAMPLER", "bogus")]);
        let _ = bogus.sampler();
        assert!(
            bogus.warnings[0].starts_with("OTEL_TRACES_SAMPLER=\"bogus\""),
            "{:?}",
            bogus.warnings
        );
    }

    #[test]
    fn propagators_by_name() {
        let extract = |p: &Propagator| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "traceparent",
                http::HeaderValue::from_static(
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            );
            headers.insert(
                "x-b3-traceid",
                http::HeaderValue::from_static("80f198ee56343ba864fe8b2a57d3eff7"),
            );
            headers.insert(
                "x-b3-spanid",
                http::HeaderValue::from_static("e457b5a2e4d86bd1"),
            );
            headers.insert("x-b3-sampled", http::HeaderValue::from_static("1"));
            p.extract(&headers)
                .parent
                .map(|c| String::from_utf8_lossy(&c.trace_id.to_hex()).into_owned())
        };
        let w3c = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned());
        let b3 = Some("80f198ee56343ba864fe8b2a57d3eff7".to_owned());
        // (value, trace id extracted, warnings)
        let cases: &[(&'static str, &Option<String>, usize)] = &[
            ("b3multi", &b3, 0),
            ("tracecontext,baggage", &w3c, 0),
            ("b3multi, tracecontext", &b3, 0),
            ("tracecontext,xray", &w3c, 1),
            ("none", &None, 0),
        ];
        for (value, expected, warnings) in cases {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vec![("OTEL_PROPAGATORS", *value)].into_boxed_slice());
            let mut reader = reader(vars);
            let propagator = reader.propagator().expect("configured");
            assert_eq!(&extract(&propagator), *expected, "{value}");
            assert_eq!(
                reader.warnings.len(),
                *warnings,
                "{value}: {:?}",
                reader.warnings
            );
        }
        let mut typo = reader(&[("OTEL_PROPAGATORS", "tracecontxt")]);
        assert!(typo.propagator().is_none(), "a typo keeps the default");
        assert_eq!(typo.warnings.len(), 2, "{:?}", typo.warnings);
    }

    #[test]
    fn resource_attributes_are_percent_decoded_or_discarded_whole() {
        let mut ok = reader(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,team=a%2Cb%20c, region = eu ",
        )]);
        let attributes = ok.resource_attributes();
        assert_eq!(
            attributes,
            [
                KeyValue::new("deployment.environment", "prod"),
                KeyValue::new("team", "a,b c"),
                KeyValue::new("region", "eu"),
            ]
        );
        assert!(ok.warnings.is_empty());
        for bad in ["a=1,broken", "a=%zz", "=1"] {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vec![("OTEL_RESOURCE_ATTRIBUTES", bad)].into_boxed_slice());
            let mut reader = reader(vars);
            assert!(reader.resource_attributes().is_empty(), "{bad}");
            assert_eq!(reader.warnings.len(), 1, "{bad}");
        }
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn numbers_and_limits() {
        let mut reader = reader(&[
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "3"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ]);
        let batch = reader.batch("OTEL_BSP", sightline_otlp::BatchSettings::SPANS);
        assert_eq!(batch.scheduled_delay, std::time::Duration::from_millis(250));
        assert_eq!(batch.max_queue_size, 2048, "unparsable: the default");
        assert_eq!(batch.max_export_batch_size, 64);
        let limits = reader.span_limits();
        assert_eq!(limits.max_attributes_per_span, 10);
        assert_eq!(limits.max_events_per_span, 3);
        assert_eq!(reader.span_value_length_limit(), Some(16));
        assert!(reader.sdk_disabled());
        assert_eq!(reader.warnings.len(), 1, "{:?}", reader.warnings);
        assert!(reader.warnings[0].starts_with("OTEL_BSP_MAX_QUEUE_SIZE=\"lots\""));
    }
}
