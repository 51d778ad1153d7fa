//! The OpenMetrics exposition (ADR 0015): the Prometheus text that `metrics-exporter-prometheus`
//! renders, rewritten line by line, with the duration histograms' exemplars on their buckets
//! and the service's identity as `target_info`; and the choice between the two formats by
//! the scraper's `Accept`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use metrics_exporter_prometheus::formatting::{
    sanitize_label_key, sanitize_label_value, sanitize_metric_name,
};
use opentelemetry_sdk::Resource;
use sightline_http::exemplars::{self, Exemplar};

/// The content type of the OpenMetrics exposition.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the Prometheus text exposition.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a scraper's `Accept` prefers OpenMetrics to the text format: an
/// `application/openmetrics-text` range with a weight above zero and at least that of any
/// range the text format matches. No `Accept` means the text format.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn wants_openmetrics(accept: Option<&http::HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(weight),
            "text/plain" | "text/*" | "*/*" => text = text.max(weight),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

/// `target_info`'s labels: every resource attribute, keys sanitised as Prometheus names.
pub(crate) fn target_labels(resource: &Resource) -> String {
    let mut attributes: Vec<(String, String)> = resource
        .iter()
        .map(|(key, value)| (sanitize_label_key(key.as_str()), value.to_string()))
        .collect();
    attributes.sort();
    attributes.dedup_by(|a, b| a.0 == b.0);
    let mut labels = String::new();
    for (key, value) in attributes {
        if !labels.is_empty() {
            labels.push(',');
        }
        let _ = write!(labels, "{key}=\"{}\"", sanitize_label_value(&value));
    }
    labels
}

/// Appends `target_info` to a Prometheus text exposition, as a gauge of 1.
pub(crate) fn text_with_target_info(mut text: String, target_labels: &str) -> String {
    if !target_labels.is_empty() {
        text.push_str("# HELP target_info Target metadata\n# TYPE target_info gauge\n");
        let _ = writeln!(text, "target_info{{{target_labels}}} 1");
    }
    text
}

/// The exemplars of every series, by bucket sample name and label set.
pub(crate) struct ExemplarIndex {
    /// `<name>_bucket` → sorted `key="value"` labels → `(upper bound, exemplar)`s: nested, so
    /// that a bucket line is looked up by the `&str`s it is parsed into.
    series: HashMap<String, HashMap<String, Vec<(f64, Exemplar)>>>,
}

impl ExemplarIndex {
    /// What the middlewares have recorded so far. Every histogram with exemplars is a
    /// duration in seconds, so its exposition name ends in `_seconds`.
    pub(crate) fn collect() -> Self {
        let mut series: HashMap<String, HashMap<_, _>> = HashMap::new();
        for recorded in exemplars::collect() {
            let mut name = sanitize_metric_name(recorded.metric);
            if !name.ends_with("_seconds") {
                name.push_str("_seconds");
            }
            name.push_str("_bucket");
            let labels = canonical(recorded.labels.iter().map(|(k, v)| {
                format!("{}=\"{}\"", sanitize_label_key(k), sanitize_label_value(v))
            }));
            series
                .entry(name)
                .or_default()
                .insert(labels, recorded.buckets);
        }
        Self { series }
    }

    fn find(&self, name: &str, labels: &str, bound: f64) -> Option<&Exemplar> {
        self.series
            .get(name)?
            .get(labels)?
            .iter()
            .find(|(b, _)| *b == bound || (b.is_infinite() && bound.is_infinite()))
            .map(|(_, e)| e)
    }
}

fn canonical(labels: impl Iterator<Item = String>) -> String {
    let mut labels: Vec<String> = labels.collect();
    labels.sort();
    labels.join(",")
}

/// A sample line's name, its labels (`key="value"` as written) and the rest.
fn split_sample(line: &str) -> Option<(&str, Vec<&str>, &str)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if line.as_bytes()[name_end] == b' ' {
        return Some((name, Vec::new(), &line[name_end..]));
    }
    let bytes = line.as_bytes();
    let mut labels = Vec::new();
    let (mut start, mut i, mut quoted) = (name_end + 1, name_end + 1, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                labels.push(&line[start..i]);
                start = i + 1;
            }
            b'}' if !quoted => {
                if i > start {
                    labels.push(&line[start..i]);
                }
                return Some((name, labels, &line[i + 1..]));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Rewrites a Prometheus text exposition as OpenMetrics 1.0: counters are `<family>`
/// with samples `<family>_total`, `untyped` is `unknown`, help text escapes quotes, blank
/// lines go, bucket lines of series with exemplars carry the latest one, `target_info`
/// comes last, then `# EOF`.
pub(crate) fn openmetrics(text: &str, index: &ExemplarIndex, target_labels: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4 + 64);
    // The HELP line comes before its TYPE line, which decides the family's name.
    let mut help: Option<(&str, &str)> = None;
    let mut family_is_histogram = false;
    let flush_help = |out: &mut String, help: &mut Option<(&str, &str)>, family: &str| {
        if let Some((_, text)) = help.take() {
            let _ = writeln!(out, "# HELP {family} {}", text.replace('"', "\\\""));
        }
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((previous, _)) = help {
                flush_help(&mut out, &mut help, previous);
            }
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (family, kind) = match kind {
                "counter" => match name.strip_suffix("_total") {
                    Some(family) => (family, "counter"),
                    None => (name, "unknown"),
                },
                "untyped" => (name, "unknown"),
                other => (name, other),
            };
            family_is_histogram = kind == "histogram";
            match help {
                Some((help_name, _)) if help_name == name => {
                    flush_help(&mut out, &mut help, family);
                }
                Some((previous, _)) => flush_help(&mut out, &mut help, previous),
                None => {}
            }
            let _ = writeln!(out, "# TYPE {family} {kind}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        out.push_str(line);
        if family_is_histogram && let Some(exemplar) = bucket_exemplar(line, index) {
            write_exemplar(&mut out, exemplar);
        }
        out.push('\n');
    }
    if let Some((previous, _)) = help {
        flush_help(&mut out, &mut help, previous);
    }
    if !target_labels.is_empty() {
        out.push_str("# TYPE target info\n# HELP target Target metadata\n");
        let _ = writeln!(out, "target_info{{{target_labels}}} 1");
    }
    out.push_str("# EOF\n");
    out
}

fn bucket_exemplar<'a>(line: &str, index: &'a ExemplarIndex) -> Option<&'a Exemplar> {
    if index.series.is_empty() {
        return None;
    }
    let (name, labels, _) = split_sample(line)?;
    // Only the buckets of a histogram with exemplars have their labels put in order.
    if !index.series.contains_key(name) {
        return None;
    }
    let mut bound = None;
    let rest = labels
        .into_iter()
        .filter_map(|label| match label.strip_prefix("le=\"") {
            Some(le) => {
                let le = le.trim_end_matches('"');
                bound = Some(if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse::<f64>().ok()?
                });
                None
            }
            None => Some(label.to_owned()),
        });
    let labels = canonical(rest);
    index.find(name, &labels, bound?)
}

/// ` # {trace_id="…",span_id="…"} <value> <timestamp>`: 62 characters of labels, well
/// within OpenMetrics' 128.
fn write_exemplar(out: &mut String, exemplar: &Exemplar) {
    let seconds = exemplar
        .timestamp
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = write!(
        out,
        " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {seconds:.3}",
        exemplar.trace_id, exemplar.span_id, exemplar.value
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> bool {
        wants_openmetrics(Some(&http::HeaderValue::from_str(value).expect("value")))
    }

    #[test]
    fn the_scrapers_accept_decides_the_format() {
        // What Prometheus 2.x sends.
        assert!(accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(accept("application/openmetrics-text; version=1.0.0"));
        assert!(!accept("text/plain;version=0.0.4"));
        assert!(!accept("*/*"));
        assert!(!accept("text/plain, application/openmetrics-text;q=0.5"));
        assert!(!accept("application/openmetrics-text;q=0"));
        assert!(!wants_openmetrics(None));
    }

    #[test]
    fn samples_split_into_name_labels_and_value() {
        let (name, labels, rest) =
            split_sample(r#"a_bucket{route="/a,\"b\"}",le="0.5"} 3"#).expect("sample");
        assert_eq!(name, "a_bucket");
        assert_eq!(labels, vec![r#"route="/a,\"b\"}""#, r#"le="0.5""#]);
        assert_eq!(rest, " 3");
        assert_eq!(split_sample("up 1"), Some(("up", vec![], " 1")));
    }

    #[test]
    fn text_becomes_openmetrics_with_exemplars() {
        let text = "# HELP requests_total Requests, \"all\" of them.\n\
                    # TYPE requests_total counter\n\
                    requests_total{path=\"/\"} 3\n\
                    \n\
                    # TYPE legacy counter\n\
                    legacy 1\n\
                    \n\
                    # HELP d_seconds Duration.\n\
                    # TYPE d_seconds histogram\n\
                    d_seconds_bucket{b=\"2\",a=\"1\",le=\"0.5\"} 1\n\
                    d_seconds_bucket{b=\"2\",a=\"1\",le=\"+Inf\"} 2\n\
                    d_seconds_sum{b=\"2\",a=\"1\"} 3.25\n\
                    d_seconds_count{b=\"2\",a=\"1\"} 2\n";
        let exemplar = |trace: u128, value: f64| Exemplar {
            trace_id: opentelemetry::trace::TraceId::from(trace),
            span_id: opentelemetry::trace::SpanId::from(7),
            value,
            timestamp: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        };
        let mut series = HashMap::new();
        series.insert(
            "d_seconds_bucket".to_owned(),
            HashMap::from([(
                "a=\"1\",b=\"2\"".to_owned(),
                vec![(0.5, exemplar(1, 0.25)), (f64::INFINITY, exemplar(2, 3.0))],
            )]),
        );
        let index = ExemplarIndex { series };
        let om = openmetrics(text, &index, "service_name=\"checkout\"");
        assert_eq!(
            om,
            "# HELP requests Requests, \\\"all\\\" of them.\n\
             # TYPE requests counter\n\
             requests_total{path=\"/\"} 3\n\
             # TYPE legacy unknown\n\
             legacy 1\n\
             # HELP d_seconds Duration.\n\
             # TYPE d_seconds histogram\n\
             d_seconds_bucket{b=\"2\",a=\"1\",le=\"0.5\"} 1 # {trace_id=\"00000000000000000000000000000001\",span_id=\"0000000000000007\"} 0.25 1700000000.123\n\
             d_seconds_bucket{b=\"2\",a=\"1\",le=\"+Inf\"} 2 # {trace_id=\"00000000000000000000000000000002\",span_id=\"0000000000000007\"} 3 1700000000.123\n\
             d_seconds_sum{b=\"2\",a=\"1\"} 3.25\n\
             d_seconds_count{b=\"2\",a=\"1\"} 2\n\
             # TYPE target info\n\
             # HELP target Target metadata\n\
             target_info{service_name=\"checkout\"} 1\n\
             # EOF\n"
        );
    }

    #[test]
    fn target_info_is_a_gauge_in_the_text_format() {
        let text = text_with_target_info(String::new(), "service_name=\"a\"");
        assert_eq!(
            text,
            "# HELP target_info Target metadata\n# TYPE target_info gauge\n\
             target_info{service_name=\"a\"} 1\n"
        );
        assert_eq!(text_with_target_info("x 1\n".into(), ""), "x 1\n");
    }
}
