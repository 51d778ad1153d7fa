//! The LogQL recipes in docs/logql.md filter on labels that exist: every label a query names
//! after `| json` is present, under that name, in the lines the quick start writes once
//! flattened the way Loki's `json` parser flattens them; and, evaluated on those real lines
//! (label filters as Loki compares them), each recipe selects the lines it promises.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sightline_tests::http::HttpClient;

use crate::support::{ACCESS_TARGET, access_line, json_lines, quickstart};

/// The label names Loki's `json` stage gives a line (see [`flattened_values`]).
fn flatten(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    let mut labels = BTreeMap::new();
    flattened_values(prefix, value, &mut labels);
    out.extend(labels.into_keys());
}

/// The LogQL queries of the document: the contents of its ```logql blocks.
fn queries(doc: &str) -> Vec<String> {
    let mut queries = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        let trimmed = line.trim();
        match &mut current {
            None if trimmed == "```logql" => current = Some(String::new()),
            Some(query) if trimmed == "```" => {
                queries.push(std::mem::take(query));
                current = None;
            }
            Some(query) => {
                query.push_str(trimmed);
                query.push(' ');
            }
            None => {}
        }
    }
    queries
}

/// The labels a query filters on after its `| json` stage (`name=`, `name!=`, `name>`, ...),
/// and those it groups by or prints in `line_format`.
fn filtered_labels(query: &str) -> BTreeSet<String> {
    let after_json = query.split_once("| json").map_or("", |(_, rest)| rest);
    let mut labels = BTreeSet::new();
    for stage in after_json.split('|') {
        let stage = stage.trim();
        if let Some(format) = stage.strip_prefix("line_format") {
            for part in format.split("{{.").skip(1) {
                if let Some(name) = part.split("}}").next() {
                    labels.insert(name.trim().to_owned());
                }
            }
            continue;
        }
        let name: String = stage
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest = stage[name.len()..].trim_start();
        if !name.is_empty()
            && ["=", "!=", ">", "<", "=~", "!~"]
                .iter()
                .any(|op| rest.starts_with(op))
        {
            labels.insert(name);
        }
    }
    if let Some((_, by)) = query.split_once("by (") {
        for name in by.split(')').next().unwrap_or("").split(',') {
            labels.insert(name.trim().to_owned());
        }
    }
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipe_filters_on_labels_the_lines_have() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/logql.md"))
        .expect("docs/logql.md");
    let queries = queries(&doc);
    assert!(
        queries.len() >= 5,
        "the recipes were not found: {queries:?}"
    );

    let mut app = quickstart(&[]).await;
    let client = HttpClient::new();
    let mut request_ids = Vec::new();
    for path in ["/users/7", "/fail"] {
        let response = client
            .get(&app.url(path), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        request_ids.push(response.header("x-request-id").expect("request id"));
    }
    for id in &request_ids {
        assert!(
            access_line(&app, id).await.is_some(),
            "no access line for {id}"
        );
    }
    let _ = app.terminate().await;

    let lines = json_lines(&app);
    let mut in_requests = BTreeSet::new();
    for line in lines.iter().filter(|l| l.json.get("trace_id").is_some()) {
        flatten("", &line.json, &mut in_requests);
    }
    let failing_access = lines
        .iter()
        .find(|l| l.target() == Some(ACCESS_TARGET) && l.json["level"].as_str() == Some("ERROR"))
        .expect("an ERROR access line for /fail");
    let mut access = BTreeSet::new();
    flatten("", &failing_access.json, &mut access);
    assert!(access.contains("fields_http_route") && access.contains("fields_duration_ms"));

    for query in &queries {
        for label in filtered_labels(query) {
            assert!(
                in_requests.contains(&label),
                "{label:?} (in {query:?}) is not a label of the quick start's lines; \
                 they have: {in_requests:?}"
            );
        }
    }
}

/// Loki's `json` stage: nested keys joined with `_`, characters outside `[A-Za-z0-9_]` made
/// `_`, every leaf a label; numbers and booleans as their text.
fn flattened_values(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let key: String = key
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}_{key}")
                };
                flattened_values(&name, value, out);
            }
        }
        Value::String(text) => {
            out.insert(prefix.to_owned(), text.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// One label filter stage: `name op value`, the value a string literal or a number.
#[derive(Debug, PartialEq)]
struct LabelFilter {
    name: String,
    op: &'static str,
    value: String,
}

/// The label filters of a query's pipeline after `| json`, up to a range (`[5m]`); other
/// stages (`line_format`) select nothing and are skipped.
fn label_filters(query: &str) -> Vec<LabelFilter> {
    let after_json = query.split_once("| json").map_or("", |(_, rest)| rest);
    let pipeline = after_json.split('[').next().unwrap_or("");
    let mut filters = Vec::new();
    for stage in pipeline.split('|') {
        let stage = stage.trim();
        let name: String = stage
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest = stage[name.len()..].trim_start();
        // Longest operators first.
        let Some(op) = [">=", "<=", "!=", "=", ">", "<"]
            .into_iter()
            .find(|op| rest.starts_with(op))
        else {
            continue;
        };
        let value = rest[op.len()..].trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or("").to_owned(),
            None => value
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect(),
        };
        if !name.is_empty() {
            filters.push(LabelFilter { name, op, value });
        }
    }
    filters
}

/// Whether a line's labels pass every filter, as Loki compares them: strings for `=` and `!=`,
/// numbers for the ordering operators (a label that is not a number fails those).
fn selects(filters: &[LabelFilter], labels: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|f| {
        let got = labels.get(&f.name);
        match f.op {
            "=" => got.is_some_and(|v| *v == f.value),
            "!=" => got.is_none_or(|v| *v != f.value),
            op => {
                let (Some(got), Ok(want)) = (
                    got.and_then(|v| v.parse::<f64>().ok()),
                    f.value.parse::<f64>(),
                ) else {
                    return false;
                };
                match op {
                    ">" => got > want,
                    ">=" => got >= want,
                    "<" => got < want,
                    _ => got <= want,
                }
            }
        }
    })
}

/// The recipes run on the quick start's real lines: each selects the lines it promises. The
/// requests use the trace id and request ID the document shows, so those queries run as
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipe_selects_the_lines_it_promises() {
    const DOC_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const DOC_REQUEST: &str = "4a69790d-156a-45e1-8551-e986823ab911";
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/logql.md"))
        .expect("docs/logql.md");
    let queries = queries(&doc);
    assert!(
        queries.iter().any(|q| q.contains(DOC_TRACE))
            && queries.iter().any(|q| q.contains(DOC_REQUEST)),
        "the recipes name the ids this test sends: {queries:?}"
    );

    let mut app = quickstart(&[]).await;
    let client = HttpClient::new();
    let traceparent = format!("00-{DOC_TRACE}-00f067aa0ba902b7-01");
    let ok = client
        .get_with(&app.url("/users/7"), &[("traceparent", &traceparent)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ok_id = ok.header("x-request-id").expect("request id");
    let failed = client
        .get_with(&app.url("/fail"), &[("x-request-id", DOC_REQUEST)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.status, 500);
    for id in [ok_id.as_str(), DOC_REQUEST] {
        assert!(
            access_line(&app, id).await.is_some(),
            "no access line for {id}"
        );
    }
    let _ = app.terminate().await;

    let lines: Vec<BTreeMap<String, String>> = json_lines(&app)
        .iter()
        .map(|l| {
            let mut labels = BTreeMap::new();
            flattened_values("", &l.json, &mut labels);
            labels
        })
        .collect();
    let describe = |selected: &[&BTreeMap<String, String>]| {
        selected
            .iter()
            .map(|l| format!("{} {:?}", l["level"], l.get("message")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let access_lines = lines
        .iter()
        .filter(|l| l.get("target").map(String::as_str) == Some(ACCESS_TARGET))
        .count();
    assert_eq!(access_lines, 2, "one access line per request");

    for query in &queries {
        let filters = label_filters(query);
        assert!(!filters.is_empty(), "no label filter read from {query:?}");
        let selected: Vec<&BTreeMap<String, String>> =
            lines.iter().filter(|l| selects(&filters, l)).collect();
        let label = |l: &BTreeMap<String, String>, k: &str| l.get(k).cloned().unwrap_or_default();
        if let Some(slow) = filters.iter().find(|f| f.name == "fields_duration_ms") {
            // Nothing in the quick start is slow: with the threshold at 0 the recipe must
            // select exactly the access lines, so its target and duration labels are right.
            assert!(slow.op == ">", "{query}");
            let at_zero: Vec<LabelFilter> = filters
                .iter()
                .map(|f| LabelFilter {
                    name: f.name.clone(),
                    op: f.op,
                    value: if f.name == slow.name {
                        "0".into()
                    } else {
                        f.value.clone()
                    },
                })
                .collect();
            let n = lines.iter().filter(|l| selects(&at_zero, l)).count();
            assert_eq!(n, access_lines, "{query} with a threshold of 0 ms");
            assert!(
                selected.iter().all(|l| label(l, "fields_duration_ms")
                    .parse::<f64>()
                    .is_ok_and(|ms| ms > 250.0)),
                "{query}: {}",
                describe(&selected)
            );
            continue;
        }
        assert!(
            !selected.is_empty(),
            "{query} selects none of the quick start's lines"
        );
        if query.contains(DOC_TRACE) {
            // Every line of the /users/7 request: the handler's and the access line.
            assert_eq!(selected.len(), 2, "{query}: {}", describe(&selected));
        } else if query.contains(DOC_REQUEST) {
            // Every line of the /fail request: the handler's warning and the access line.
            assert_eq!(selected.len(), 2, "{query}: {}", describe(&selected));
            assert!(
                selected
                    .iter()
                    .all(|l| label(l, "request_id") == DOC_REQUEST)
            );
        } else {
            // The error recipes: the failing request's access line, and nothing else.
            assert_eq!(selected.len(), 1, "{query}: {}", describe(&selected));
            assert_eq!(label(selected[0], "level"), "ERROR");
            assert_eq!(label(selected[0], "fields_http_route"), "/fail");
            assert_eq!(label(selected[0], "request_id"), DOC_REQUEST);
        }
    }
}

#[test]
fn the_filter_reader_and_evaluator() {
    let q = r#"topk(5, sum by (r) (count_over_time({job="x"} | json | level="ERROR" | fields_http_response_status_code >= 500 | line_format "{{.trace_id}}" [5m])))"#;
    let filters = label_filters(q);
    assert_eq!(
        filters,
        [
            LabelFilter {
                name: "level".into(),
                op: "=",
                value: "ERROR".into()
            },
            LabelFilter {
                name: "fields_http_response_status_code".into(),
                op: ">=",
                value: "500".into()
            },
        ]
    );
    let mut line = BTreeMap::new();
    flattened_values(
        "",
        &serde_json::json!({"level": "ERROR", "fields": {"http.response.status_code": 503}}),
        &mut line,
    );
    assert!(selects(&filters, &line));
    line.insert("fields_http_response_status_code".into(), "404".into());
    assert!(!selects(&filters, &line));
    line.insert("fields_http_response_status_code".into(), "n/a".into());
    assert!(!selects(&filters, &line), "not a number");
}

#[test]
fn the_query_reader_finds_filters_groupings_and_printed_labels() {
    let q = r#"topk(5, sum by (fields_http_route) (count_over_time({job="x"} | json | level="ERROR" | fields_duration_ms > 250 | line_format "{{.trace_id}}" [5m])))"#;
    let labels: Vec<String> = filtered_labels(q).into_iter().collect();
    assert_eq!(
        labels,
        [
            "fields_duration_ms",
            "fields_http_route",
            "level",
            "trace_id"
        ]
    );
    let mut flat = BTreeSet::new();
    flatten(
        "",
        &serde_json::json!({"service.name": "a", "fields": {"http.route": "/"}}),
        &mut flat,
    );
    assert_eq!(
        flat.into_iter().collect::<Vec<_>>(),
        ["fields_http_route", "service_name"]
    );
}
