//! `promtool test rules` cases for the generated rules, per objective: a burst of bad requests
//! fires the fast-burn page, a quiet period fires nothing, and a slow burn fires only the
//! ticket. They run against the rules at full scale (`rule_files: [rules.yaml]`, the file
//! `sightline slo rules` writes, beside the tests).

use serde_json::{Value, json};

use crate::rules::{FAST_BURN, SLOW_BURN, annotations};
use crate::spec::{Kind, Objective, Spec, Target};

/// Requests per minute of the synthetic traffic.
const RATE: f64 = 1000.0;

/// The series of an objective's traffic: `(series, values)` pairs for `input_series`, with
/// `bad(minute)` the share of bad requests in each minute, over `minutes` minutes.
fn traffic(
    spec: &Spec,
    objective: &Objective,
    minutes: usize,
    bad: &dyn Fn(usize) -> f64,
) -> Vec<Value> {
    let mut matchers: Vec<String> = spec
        .selector
        .iter()
        .map(|(label, value)| format!("{label}={}", Value::String(value.clone())))
        .collect();
    let (count, bucket) = match &objective.target {
        Target::HttpRoute(route) => {
            matchers.push(format!("http_route={}", Value::String(route.clone())));
            (
                "http_server_request_duration_seconds_count",
                "http_server_request_duration_seconds_bucket",
            )
        }
        Target::RpcMethod(method) => {
            matchers.push(format!("rpc_method={}", Value::String(method.clone())));
            (
                "rpc_server_call_duration_seconds_count",
                "rpc_server_call_duration_seconds_bucket",
            )
        }
    };
    // Cumulative counters, one sample a minute.
    let mut good = vec![0.0f64];
    let mut failed = vec![0.0f64];
    for minute in 0..minutes {
        let share = bad(minute);
        good.push(good[minute] + RATE * (1.0 - share));
        failed.push(failed[minute] + RATE * share);
    }
    let values = |samples: &[f64]| {
        samples
            .iter()
            .map(|v| format!("{}", (v * 1000.0).round() / 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let series = |name: &str, extra: Option<String>| {
        let mut all = matchers.clone();
        all.extend(extra);
        format!("{name}{{{}}}", all.join(","))
    };
    match objective.kind {
        Kind::Availability => vec![
            json!({"series": series(count, None), "values": values(&good)}),
            json!({
                "series": series(count, Some("error_type=\"500\"".to_owned())),
                "values": values(&failed),
            }),
        ],
        Kind::Latency(seconds) => {
            let total: Vec<f64> = good.iter().zip(&failed).map(|(g, f)| g + f).collect();
            vec![
                json!({"series": series(count, None), "values": values(&total)}),
                json!({
                    "series": series(bucket, Some(format!("le=\"{seconds}\""))),
                    "values": values(&good),
                }),
            ]
        }
    }
}

fn expected(spec: &Spec, objective: &Objective, alert: &str, firing: bool) -> Value {
    let page = alert == FAST_BURN;
    let alerts = if firing {
        vec![json!({
            "exp_labels": {
                "service": spec.service,
                "objective": objective.name,
                "severity": if page { "page" } else { "ticket" },
            },
            "exp_annotations": annotations(spec, objective, page),
        })]
    } else {
        Vec::new()
    };
    json!({"alertname": alert, "exp_alerts": alerts})
}

fn case(
    spec: &Spec,
    objective: &Objective,
    name: &str,
    minutes: usize,
    bad: &dyn Fn(usize) -> f64,
    page: bool,
    ticket: bool,
) -> Value {
    let eval_time = format!("{minutes}m");
    let mut checks = Vec::new();
    for (alert, firing) in [(FAST_BURN, page), (SLOW_BURN, ticket)] {
        let mut check = expected(spec, objective, alert, firing);
        check["eval_time"] = json!(eval_time);
        checks.push(check);
    }
    json!({
        "name": format!("{}: {name}", objective.name),
        "interval": "1m",
        "input_series": traffic(spec, objective, minutes, bad),
        "alert_rule_test": checks,
    })
}

/// The test file of `spec`.
pub fn tests(spec: &Spec) -> Value {
    let mut cases = Vec::new();
    for objective in &spec.objectives {
        let budget = 1.0 - objective.goal;
        // Half the requests go bad after an hour: pages within minutes.
        let burst = |minute: usize| if minute >= 60 { 0.5 } else { 0.0 };
        cases.push(case(
            spec,
            objective,
            "a burst of bad requests pages",
            75,
            &burst,
            true,
            false,
        ));
        // Nothing goes wrong.
        cases.push(case(
            spec,
            objective,
            "a quiet period fires nothing",
            75,
            &|_| 0.0,
            false,
            false,
        ));
        // A steady 4.5x burn for a day: above the ticket's 3x, below the page's 6x and 14.4x.
        let slow = move |_| 4.5 * budget;
        cases.push(case(
            spec,
            objective,
            "a slow burn opens only a ticket",
            1500,
            &slow,
            false,
            true,
        ));
    }
    json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": cases,
    })
}
