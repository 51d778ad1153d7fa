//! A Grafana dashboard (JSON model, schema 39) built from the same metrics as the rules:
//! RED per route and per method from Sightline's histograms, and per objective its
//! attainment, burn rate and error budget left. Variables: the service (Prometheus' `job`),
//! the route and the method. The latency panels ask for exemplars, so a point links to its
//! trace through the data source's exemplar settings.

use serde_json::{Value, json};

use crate::rules::{BUDGET_RULE, OBJECTIVE_RULE, error_ratio_rule};
use crate::spec::{Spec, Target};

const DATASOURCE: &str = "${datasource}";

fn target(expr: impl Into<String>, legend: &str, exemplar: bool) -> Value {
    let expr: String = expr.into();
    json!({
        "datasource": {"type": "prometheus", "uid": DATASOURCE},
        "expr": expr,
        "legendFormat": legend,
        "exemplar": exemplar,
        "refId": "A",
    })
}

fn panel(id: u64, title: &str, unit: &str, targets: Vec<Value>, x: u64, y: u64) -> Value {
    let targets: Vec<Value> = targets
        .into_iter()
        .enumerate()
        .map(|(i, mut t)| {
            t["refId"] = json!(((b'A' + i as u8) as char).to_string());
            t
        })
        .collect();
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": DATASOURCE},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": targets,
    })
}

/// The RED panels of one kind of call: `(count, bucket, label, variable, what)`.
fn red(
    service: &str,
    panels: &mut Vec<Value>,
    next_id: &mut u64,
    y: &mut u64,
    names: (&str, &str, &str, &str, &str),
) {
    let (count, bucket, label, variable, what) = names;
    let sel = format!("{service},{label}=~\"${variable}\"");
    let mut add = |title: String, unit: &str, targets: Vec<Value>, x: u64, y: u64| {
        panels.push(panel(*next_id, &title, unit, targets, x, y));
        *next_id += 1;
    };
    add(
        format!("{what}: rate"),
        "reqps",
        vec![target(
            format!("sum by ({label}) (rate({count}{{{sel}}}[$__rate_interval]))"),
            &format!("{{{{{label}}}}}"),
            false,
        )],
        0,
        *y,
    );
    add(
        format!("{what}: error share"),
        "percentunit",
        vec![target(
            format!(
                "(sum by ({label}) (rate({count}{{{sel},error_type!=\"\"}}[$__rate_interval])) or \
                 (sum by ({label}) (rate({count}{{{sel}}}[$__rate_interval])) * 0)) / \
                 sum by ({label}) (rate({count}{{{sel}}}[$__rate_interval]))"
            ),
            &format!("{{{{{label}}}}}"),
            false,
        )],
        12,
        *y,
    );
    *y += 8;
    let quantile = |q: f64| {
        target(
            format!(
                "histogram_quantile({q}, sum by (le, {label}) (rate({bucket}{{{sel}}}[$__rate_interval])))"
            ),
            &format!("p{} {{{{{label}}}}}", (q * 100.0).round()),
            true,
        )
    };
    add(
        format!("{what}: latency (exemplars link to traces)"),
        "s",
        vec![quantile(0.5), quantile(0.95), quantile(0.99)],
        0,
        *y,
    );
    *y += 8;
}

/// The dashboard of `spec`.
pub fn dashboard(spec: &Spec) -> Value {
    let has_http = spec
        .objectives
        .iter()
        .any(|o| matches!(o.target, Target::HttpRoute(_)));
    let has_rpc = spec
        .objectives
        .iter()
        .any(|o| matches!(o.target, Target::RpcMethod(_)));
    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    let mut templating = vec![
        json!({
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Prometheus",
        }),
        json!({
            "name": "service",
            "type": "query",
            "datasource": {"type": "prometheus", "uid": DATASOURCE},
            "query": {"query": "label_values(sightline:slo_objective:ratio, service)", "refId": "service"},
            "definition": "label_values(sightline:slo_objective:ratio, service)",
            "current": {"text": spec.service, "value": spec.service},
            "refresh": 2,
        }),
    ];
    // The service's series: `job="$service"` (the variable) with the default selector, else
    // the spec's own matchers, as the rules select them.
    let default_selector = spec.selector == [("job".to_owned(), spec.service.clone())];
    let service = if default_selector {
        "job=\"$service\"".to_owned()
    } else {
        spec.selector
            .iter()
            .map(|(label, value)| format!("{label}={}", Value::String(value.clone())))
            .collect::<Vec<_>>()
            .join(",")
    };
    // Per kind of call: a variable for its route or method, then its RED panels.
    let kinds = [
        (
            has_http,
            (
                "http_server_request_duration_seconds_count",
                "http_server_request_duration_seconds_bucket",
                "http_route",
                "route",
                "HTTP",
            ),
        ),
        (
            has_rpc,
            (
                "rpc_server_call_duration_seconds_count",
                "rpc_server_call_duration_seconds_bucket",
                "rpc_method",
                "method",
                "gRPC",
            ),
        ),
    ];
    for (wanted, names) in kinds {
        if !wanted {
            continue;
        }
        let (count, _, label, variable, _) = names;
        let query = format!("label_values({count}{{{service}}}, {label})");
        templating.push(json!({
            "name": variable,
            "type": "query",
            "datasource": {"type": "prometheus", "uid": DATASOURCE},
            "query": {"query": query, "refId": variable},
            "definition": query,
            "includeAll": true,
            "multi": true,
            "allValue": ".+",
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
        }));
        red(&service, &mut panels, &mut id, &mut y, names);
    }
    let slo = "service=\"$service\"";
    let mut add = |title: &str, unit: &str, expr: String, x: u64, y: u64| {
        panels.push(panel(
            id,
            title,
            unit,
            vec![target(expr, "{{objective}}", false)],
            x,
            y,
        ));
        id += 1;
    };
    add(
        "SLO attainment over 30 days",
        "percentunit",
        format!("1 - {}{{{slo}}}", error_ratio_rule("30d")),
        0,
        y,
    );
    add(
        "Burn rate over 1h (1 spends the budget in exactly 30 days)",
        "none",
        format!(
            "{}{{{slo}}} / on (service, objective) (1 - {OBJECTIVE_RULE}{{{slo}}})",
            error_ratio_rule("1h")
        ),
        12,
        y,
    );
    add(
        "Error budget left",
        "percentunit",
        format!("{BUDGET_RULE}{{{slo}}}"),
        0,
        y + 8,
    );
    // Runtime and process, from the same registry.
    let job = service.as_str();
    let runtime_y = y + 16;
    let mut add_runtime = |title: &str, unit: &str, targets: Vec<Value>, x: u64, y: u64| {
        panels.push(panel(id, title, unit, targets, x, y));
        id += 1;
    };
    add_runtime(
        "Process CPU (cores)",
        "none",
        vec![target(
            format!("rate(process_cpu_seconds_total{{{job}}}[$__rate_interval])"),
            "{{instance}}",
            false,
        )],
        0,
        runtime_y,
    );
    add_runtime(
        "Process resident memory",
        "bytes",
        vec![target(
            format!("process_resident_memory_bytes{{{job}}}"),
            "{{instance}}",
            false,
        )],
        12,
        runtime_y,
    );
    add_runtime(
        "Tokio: alive tasks and global queue",
        "none",
        vec![
            target(format!("tokio_alive_tasks{{{job}}}"), "alive tasks", false),
            target(
                format!("tokio_global_queue_depth{{{job}}}"),
                "global queue",
                false,
            ),
        ],
        0,
        runtime_y + 8,
    );
    add_runtime(
        "Tokio: busy share of the workers",
        "percentunit",
        vec![target(
            format!(
                "rate(tokio_worker_busy_time_seconds{{{job}}}[$__rate_interval]) / \
                 tokio_workers{{{job}}}"
            ),
            "{{instance}}",
            false,
        )],
        12,
        runtime_y + 8,
    );
    json!({
        "title": format!("{}: RED and SLOs", spec.service),
        "uid": format!("sightline-{}", spec.service.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-")),
        "tags": ["sightline", "slo"],
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": templating},
        "annotations": {"list": []},
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exprs(spec: &str) -> Vec<String> {
        let dashboard = dashboard(&Spec::parse(spec).expect("valid"));
        let mut out = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                out.push(target["expr"].as_str().expect("expr").to_owned());
            }
        }
        out
    }

    #[test]
    fn the_red_panels_select_the_service_as_the_rules_do() {
        let default = exprs(
            "service: shop\nobjectives:\n  - name: a\n    http_route: /a\n    availability: 99\n",
        );
        assert!(default[0].contains("job=\"$service\""), "{}", default[0]);
        let custom = exprs(
            "service: shop\nselector:\n  namespace: prod\nobjectives:\n  - name: a\n    http_route: /a\n    availability: 99\n",
        );
        let red: Vec<&String> = custom
            .iter()
            .filter(|e| e.contains("http_server"))
            .collect();
        assert!(!red.is_empty());
        for expr in red {
            assert!(
                expr.contains("namespace=\"prod\"") && !expr.contains("job="),
                "{expr}"
            );
        }
    }
}
