//! Scanners cannot blow up the metric cardinality: random paths all land in one
//! `http_route="unmatched"` series set, unknown methods in `_OTHER`.

use std::collections::BTreeSet;
use std::time::Duration;

use sightline_tests::http::HttpClient;
use sightline_tests::prometheus::{Sample, parse_exposition};

use crate::support::quickstart;

const SCANS: usize = 2_000;
const ODD_METHODS: usize = 100;
const WORKERS: usize = 4;
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// A path no route matches, and the random token in it.
fn scan_path(i: usize) -> (String, String) {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let path = match i % 5 {
        0 => format!("/scan/{token}"),
        1 => format!("/users/{i}/{token}"),
        2 => format!("/.env.{token}"),
        3 => format!("/wp-admin/{token}.php?x={token}"),
        _ => format!("/{token}/{i}/a/b/c"),
    };
    (path, token)
}

async fn exposition(client: &HttpClient, url: &str) -> (Vec<Sample>, String) {
    let text = client.get_text(url).await;
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (samples, text)
}

fn keys(samples: &[Sample]) -> BTreeSet<String> {
    samples.iter().map(Sample::series_key).collect()
}

/// The label sets of new series, ignoring `le` (one histogram is one set).
fn label_sets(samples: &[Sample], new: &BTreeSet<String>) -> BTreeSet<String> {
    samples
        .iter()
        .filter(|s| new.contains(&s.series_key()))
        .map(|s| {
            let mut s = s.clone();
            s.labels.remove("le");
            s.name = s
                .name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count")
                .to_owned();
            s.series_key()
        })
        .collect()
}

/// Sends `requests` from `WORKERS` concurrent keep-alive clients; returns the statuses seen.
async fn send_all(client: &HttpClient, requests: Vec<(String, String)>) -> BTreeSet<u16> {
    let mut chunks: Vec<Vec<(String, String)>> = vec![Vec::new(); WORKERS];
    for (i, r) in requests.into_iter().enumerate() {
        chunks[i % WORKERS].push(r);
    }
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut statuses = BTreeSet::new();
                for (method, url) in chunk {
                    let r = client
                        .request(&method, &url, &[])
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    statuses.insert(r.status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = BTreeSet::new();
    for task in tasks {
        statuses.extend(task.await.expect("request worker panicked"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_paths_and_methods_add_one_series_set() {
    tokio::time::timeout(TIME_LIMIT, run())
        .await
        .unwrap_or_else(|_| panic!("cardinality test did not finish within {TIME_LIMIT:?}"));
}

async fn run() {
    let app = quickstart(&[]).await;
    let client = HttpClient::new();
    let metrics = app.url("/metrics");

    for path in ["/users/1", "/healthz", "/fail"] {
        client
            .get(&app.url(path), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The first fetch records /metrics itself, so the baseline already has its series.
    exposition(&client, &metrics).await;
    let (before, _) = exposition(&client, &metrics).await;
    let before_keys = keys(&before);

    let (scans, tokens): (Vec<(String, String)>, Vec<String>) = (0..SCANS)
        .map(|i| {
            let (path, token) = scan_path(i);
            (("GET".to_owned(), app.url(&path)), token)
        })
        .unzip();
    let statuses = send_all(&client, scans).await;
    assert_eq!(
        statuses,
        BTreeSet::from([404]),
        "random paths are not found"
    );

    let (after, text) = exposition(&client, &metrics).await;
    let after_keys = keys(&after);
    let new: BTreeSet<String> = after_keys.difference(&before_keys).cloned().collect();
    let sets = label_sets(&after, &new);
    assert_eq!(
        sets.len(),
        1,
        "{SCANS} random paths must add exactly one series set, got {}: {sets:#?}",
        sets.len()
    );
    for series in &new {
        assert!(
            series.contains(r#"http_route="unmatched""#),
            "new series without http_route=\"unmatched\": {series}"
        );
    }
    assert_eq!(
        new.len(),
        17,
        "one histogram (15 buckets, _sum, _count) is 17 series, got {new:#?}"
    );
    let unmatched: f64 = after
        .iter()
        .filter(|s| {
            s.name == "http_server_request_duration_seconds_count"
                && s.label("http_route") == Some("unmatched")
        })
        .map(|s| s.value)
        .sum();
    assert_eq!(
        unmatched, SCANS as f64,
        "every scan counted once as unmatched"
    );
    let leaked: Vec<&String> = tokens
        .iter()
        .filter(|t| text.contains(t.as_str()))
        .take(5)
        .collect();
    assert!(
        leaked.is_empty(),
        "raw path segments in the exposition: {leaked:?}"
    );

    // Unknown methods: one `_OTHER` value, not one per method.
    let odd: Vec<(String, String)> = (0..ODD_METHODS)
        .map(|i| {
            let method = format!("X{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            (method.to_uppercase(), app.url(&scan_path(i).0))
        })
        .collect();
    let methods: Vec<String> = odd.iter().map(|(m, _)| m.clone()).collect();
    send_all(&client, odd).await;
    let (after_odd, text) = exposition(&client, &metrics).await;
    let new: BTreeSet<String> = keys(&after_odd).difference(&after_keys).cloned().collect();
    for series in &new {
        assert!(
            series.contains(r#"http_request_method="_OTHER""#),
            "unknown methods added a series other than _OTHER: {series}"
        );
    }
    assert!(
        label_sets(&after_odd, &new).len() <= 2,
        "{ODD_METHODS} unknown methods: at most one histogram set and one gauge set, got {new:#?}"
    );
    let leaked: Vec<&String> = methods
        .iter()
        .filter(|m| text.contains(m.as_str()))
        .take(5)
        .collect();
    assert!(
        leaked.is_empty(),
        "raw methods in the exposition: {leaked:?}"
    );
    assert!(
        after_odd.len() <= before.len() + 17 + 19,
        "series grew to {}",
        after_odd.len()
    );
}

/// The `_count` lines of the server's duration histogram in an exposition.
fn duration_counts(exposition: &str) -> Vec<&str> {
    exposition
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .collect()
}

async fn exposition_of(app: &sightline_tests::process::ExampleProcess) -> String {
    sightline_tests::http::HttpClient::new()
        .get(&app.url("/metrics"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_on_the_allow_list_get_their_own_label_and_others_are_other() {
    let mut app = crate::support::quickstart(&[
        ("SIGHTLINE_TENANT_HEADER", "x-tenant-id"),
        ("SIGHTLINE_TENANTS", "acme,globex"),
    ])
    .await;
    let client = sightline_tests::http::HttpClient::new();
    for tenant in ["acme", "acme", "globex", "initech", "umbrella"] {
        let answer = client
            .get_with(&app.url("/users/1"), &[("x-tenant-id", tenant)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.status, 200);
    }
    let answer = client
        .get(&app.url("/users/1"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 200);
    let exposition = exposition_of(&app).await;
    let counts = duration_counts(&exposition);
    let value = |needle: &str| {
        counts
            .iter()
            .find(|l| l.contains(needle))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no series with {needle}: {counts:#?}"))
            .to_owned()
    };
    assert_eq!(value("tenant=\"acme\""), "2");
    assert_eq!(value("tenant=\"globex\""), "1");
    assert_eq!(value("tenant=\"_OTHER\""), "2");
    assert!(
        counts
            .iter()
            .any(|l| l.contains("http_route=\"/users/{id}\"") && !l.contains("tenant=")),
        "no tenant label without the header: {counts:#?}"
    );
    assert!(!exposition.contains("initech") && !exposition.contains("umbrella"));
    app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_tenant_is_bounded_by_the_series_limit_with_one_overflow_series() {
    let mut app = crate::support::quickstart(&[
        ("SIGHTLINE_TENANT_HEADER", "x-tenant-id"),
        ("SIGHTLINE_TENANTS", "*"),
        ("SIGHTLINE_METRIC_CARDINALITY_LIMIT", "50"),
    ])
    .await;
    let client = sightline_tests::http::HttpClient::new();
    for i in 0..500 {
        let tenant = format!("tenant-{i}");
        let answer = client
            .get_with(&app.url("/users/1"), &[("x-tenant-id", &tenant)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.status, 200);
    }
    let exposition = exposition_of(&app).await;
    let counts = duration_counts(&exposition);
    assert!(counts.len() <= 51, "{} series: {counts:#?}", counts.len());
    let overflow: Vec<_> = counts
        .iter()
        .filter(|l| l.contains("otel_metric_overflow=\"true\""))
        .collect();
    assert_eq!(overflow.len(), 1, "{counts:#?}");
    let total: f64 = counts
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 500.0, "no request lost: {counts:#?}");
    assert!(
        exposition
            .lines()
            .any(|l| l.starts_with("sightline_metrics_overflow_total{") && !l.ends_with(" 0")),
        "the folding is counted: {exposition}"
    );
    app.terminate().await;
    assert!(
        app.stdout_lines()
            .iter()
            .any(|l| l.contains("series limit") && l.contains("http.server.request.duration")),
        "a warning names the metric:\n{}",
        app.output_report()
    );
}
