//! Prometheus recording rules and multi-window, multi-burn-rate alerts, in the style of the
//! SRE workbook's "Alerting on SLOs" chapter.
//!
//! Per objective, the error ratio is recorded over every window the alerts read, and over
//! the 30-day budget period; the error budget left is recorded from the latter:
//!
//! | alert | severity | long window | short window | burn rate |
//! |---|---|---|---|---|
//! | `SLOErrorBudgetFastBurn` | page | 1h | 5m | 14.4 |
//! | | | 6h | 30m | 6 |
//! | `SLOErrorBudgetSlowBurn` | ticket | 1d | 2h | 3 |
//! | | | 3d | 6h | 1 |

use serde_json::{Map, Value, json};

use crate::spec::{Kind, Objective, Spec, Target};

/// The windows the alerts read, in seconds, with their names in rule names.
pub const WINDOWS: [(&str, u64); 7] = [
    ("5m", 300),
    ("30m", 1800),
    ("1h", 3600),
    ("2h", 7200),
    ("6h", 21_600),
    ("1d", 86_400),
    ("3d", 259_200),
];

/// The budget period.
pub const PERIOD: (&str, u64) = ("30d", 2_592_000);

/// How long the page's condition must hold, in seconds.
pub const PAGE_FOR: u64 = 120;
/// How long the ticket's condition must hold, in seconds.
pub const TICKET_FOR: u64 = 900;

/// The name of the recording rule of the error ratio over `window`.
pub fn error_ratio_rule(window: &str) -> String {
    format!("sightline:slo_errors:ratio_rate{window}")
}

/// The recorded objective (the promised share of good requests), for dashboards.
pub const OBJECTIVE_RULE: &str = "sightline:slo_objective:ratio";
/// The recorded error budget left over the period (1: untouched, 0: spent, below 0: overspent).
pub const BUDGET_RULE: &str = "sightline:slo_error_budget_remaining:ratio";

/// The page: the budget goes within days.
pub const FAST_BURN: &str = "SLOErrorBudgetFastBurn";
/// The ticket: the budget goes before the period ends.
pub const SLOW_BURN: &str = "SLOErrorBudgetSlowBurn";

/// A duration scaled by `scale`, in Prometheus' syntax, in the largest whole unit.
pub fn duration(seconds: u64, scale: f64) -> String {
    let millis = (seconds as f64 * 1000.0 * scale).round().max(1.0) as u64;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// A number as a reader writes it: `0.001`, not `0.0009999999999998899`.
pub fn number(value: f64) -> String {
    let text = format!("{value:.10}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// A PromQL string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What an objective's series are called and how they are selected.
pub struct Series {
    /// The histogram's `_count` series.
    pub count: &'static str,
    /// The histogram's `_bucket` series.
    pub bucket: &'static str,
    /// The matchers of the service and the route or method, without braces.
    pub matchers: String,
}

impl Series {
    /// The series of `objective` in `spec`.
    pub fn of(spec: &Spec, objective: &Objective) -> Self {
        let mut matchers: Vec<String> = spec
            .selector
            .iter()
            .map(|(label, value)| format!("{label}={}", quoted(value)))
            .collect();
        let (count, bucket) = match &objective.target {
            Target::HttpRoute(route) => {
                matchers.push(format!("http_route={}", quoted(route)));
                (
                    "http_server_request_duration_seconds_count",
                    "http_server_request_duration_seconds_bucket",
                )
            }
            Target::RpcMethod(method) => {
                matchers.push(format!("rpc_method={}", quoted(method)));
                (
                    "rpc_server_call_duration_seconds_count",
                    "rpc_server_call_duration_seconds_bucket",
                )
            }
        };
        Self {
            count,
            bucket,
            matchers: matchers.join(","),
        }
    }
}

/// The `le` matcher of a bucket boundary: `"0.25"`, or `"1"` and `"1.0"` (Prometheus 3
/// normalises whole boundaries to `1.0`; older servers keep the exporter's `1`).
pub fn le_matcher(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("le=~{}", quoted(&format!("{seconds}(\\.0)?")))
    } else {
        format!("le={}", quoted(&seconds.to_string()))
    }
}

/// The error ratio of `objective` over a window written `range`.
pub fn error_ratio(spec: &Spec, objective: &Objective, range: &str) -> String {
    let s = Series::of(spec, objective);
    let total = format!("sum(rate({}{{{}}}[{range}]))", s.count, s.matchers);
    match objective.kind {
        // Server errors are the requests with an `error_type` (5xx, a failure, a gRPC server
        // error code); `or vector(0)`: no error at all is a ratio of 0, not no data.
        Kind::Availability => format!(
            "(sum(rate({}{{{},error_type!=\"\"}}[{range}])) or vector(0)) / {total}",
            s.count, s.matchers
        ),
        Kind::Latency(seconds) => format!(
            "1 - (sum(rate({}{{{},{}}}[{range}])) / {total})",
            s.bucket,
            s.matchers,
            le_matcher(seconds)
        ),
    }
}

/// The labels every rule and alert of `objective` carries.
fn labels(spec: &Spec, objective: &Objective) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert("service".into(), json!(spec.service));
    labels.insert("objective".into(), json!(objective.name));
    labels
}

fn selector(spec: &Spec, objective: &Objective) -> String {
    format!(
        "service={},objective={}",
        quoted(&spec.service),
        quoted(&objective.name)
    )
}

/// What the objective promises, in words.
pub fn promise(objective: &Objective) -> String {
    let what = match &objective.target {
        Target::HttpRoute(route) => format!("HTTP route {route}"),
        Target::RpcMethod(method) => format!("gRPC method {method}"),
    };
    let percent = format_percent(objective.goal);
    match objective.kind {
        Kind::Availability => format!("{percent}% of requests to {what} are not server errors"),
        Kind::Latency(seconds) => {
            format!("{percent}% of requests to {what} complete within {seconds}s")
        }
    }
}

fn format_percent(goal: f64) -> String {
    let percent = (goal * 100.0 * 1e6).round() / 1e6;
    percent.to_string()
}

/// The annotations of an alert.
pub fn annotations(spec: &Spec, objective: &Objective, page: bool) -> Map<String, Value> {
    let mut annotations = Map::new();
    let (summary, description) = if page {
        (
            format!(
                "{} is burning the error budget of {} fast",
                spec.service, objective.name
            ),
            format!(
                "SLO: {}. At this rate the 30-day error budget is gone within 2 days \
                 (burn rate above 14.4 over 1h and 5m, or above 6 over 6h and 30m).",
                promise(objective)
            ),
        )
    } else {
        (
            format!(
                "{} is burning the error budget of {} steadily",
                spec.service, objective.name
            ),
            format!(
                "SLO: {}. At this rate the 30-day error budget is gone before the period ends \
                 (burn rate above 3 over 1d and 2h, or above 1 over 3d and 6h).",
                promise(objective)
            ),
        )
    };
    annotations.insert("summary".into(), json!(summary));
    annotations.insert("description".into(), json!(description));
    annotations
}

/// One `groups` entry: the objective's recording rules and its two alerts.
fn group(spec: &Spec, objective: &Objective, scale: f64) -> Value {
    let mut rules = Vec::new();
    for (name, seconds) in WINDOWS.iter().chain(std::iter::once(&PERIOD)) {
        rules.push(json!({
            "record": error_ratio_rule(name),
            "expr": error_ratio(spec, objective, &duration(*seconds, scale)),
            "labels": labels(spec, objective),
        }));
    }
    rules.push(json!({
        "record": OBJECTIVE_RULE,
        "expr": format!("vector({})", number(objective.goal)),
        "labels": labels(spec, objective),
    }));
    let sel = selector(spec, objective);
    let budget = number(1.0 - objective.goal);
    rules.push(json!({
        "record": BUDGET_RULE,
        "expr": format!("1 - ({}{{{sel}}} / {budget})", error_ratio_rule(PERIOD.0)),
        "labels": labels(spec, objective),
    }));
    let burn = |long: &str, short: &str, rate: f64| {
        format!(
            "({}{{{sel}}} > ({rate} * {budget}) and {}{{{sel}}} > ({rate} * {budget}))",
            error_ratio_rule(long),
            error_ratio_rule(short)
        )
    };
    let alert = |name: &str, severity: &str, expr: String, for_seconds: u64, page: bool| {
        let mut labels = labels(spec, objective);
        labels.insert("severity".into(), json!(severity));
        json!({
            "alert": name,
            "expr": expr,
            "for": duration(for_seconds, scale),
            "labels": labels,
            "annotations": annotations(spec, objective, page),
        })
    };
    rules.push(alert(
        FAST_BURN,
        "page",
        format!("{} or {}", burn("1h", "5m", 14.4), burn("6h", "30m", 6.0)),
        PAGE_FOR,
        true,
    ));
    rules.push(alert(
        SLOW_BURN,
        "ticket",
        format!("{} or {}", burn("1d", "2h", 3.0), burn("3d", "6h", 1.0)),
        TICKET_FOR,
        false,
    ));
    json!({
        "name": format!("sightline-slo:{}:{}", spec.service, objective.name),
        "rules": rules,
    })
}

/// The rules file of `spec`, every window and `for` multiplied by `scale`.
pub fn rules(spec: &Spec, scale: f64) -> Value {
    json!({
        "groups": spec
            .objectives
            .iter()
            .map(|objective| group(spec, objective, scale))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_scale_down_to_milliseconds() {
        assert_eq!(duration(300, 1.0), "5m");
        assert_eq!(duration(259_200, 1.0), "3d");
        assert_eq!(duration(300, 0.01), "3s");
        assert_eq!(duration(120, 0.01), "1200ms");
        assert_eq!(duration(259_200, 0.01), "2592s");
    }

    #[test]
    fn whole_boundaries_match_both_spellings() {
        assert_eq!(le_matcher(0.25), "le=\"0.25\"");
        assert_eq!(le_matcher(1.0), "le=~\"1(\\\\.0)?\"");
    }
}
