//! The LogQL recipes in docs/logql.md filter on labels that exist: every label a query names
//! after `| json` is present, under that name, in the lines the quick start writes once
//! flattened the way Loki's `json` parser flattens them.

use std::collections::BTreeSet;

use serde_json::Value;
use sightline_tests::http::HttpClient;

use crate::support::{ACCESS_TARGET, access_line, json_lines, quickstart};

/// Loki's `json` stage: nested keys joined with `_`, characters outside `[A-Za-z0-9_]` made `_`.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
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
                flatten(&name, value, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
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
