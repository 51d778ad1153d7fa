//! `sightline slo` (package `sightline-cli`) as an operator uses it: the generated rules pass
//! `promtool check rules` and the generated `promtool` tests; and, live, a real Prometheus
//! loads the rules at a scaled-down window, scrapes the running quick start, pages on a burst
//! of 5xx and resolves after it, while every query of the generated dashboard returns data.
//!
//! Build the binaries first: `cargo build -p sightline-cli -p example-quickstart`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sightline_tests::http::HttpClient;
use sightline_tests::process::{ExampleProcess, profile_dir};
use sightline_tests::prometheus::{Prometheus, tool};
use sightline_tests::util::TempDir;

/// The spec of these tests: other objectives than the examples' own `slo.yaml`.
const SPEC: &str = "\
service: quickstart
objectives:
  - name: fail-available
    http_route: /fail
    availability: 99
  - name: users-fast
    http_route: /users/{id}
    latency_seconds: 0.5
    latency_target: 99.5
  - name: hello-available
    rpc_method: sightline.example.v1.Greeter/SayHello
    availability: 99.9
";

fn sightline() -> PathBuf {
    let path = profile_dir().join(format!("sightline{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} not found; build it first: cargo build -p sightline-cli",
        path.display()
    );
    path
}

/// `sightline slo <what> --spec <spec> [extra]`: its stdout; panics with its stderr.
fn slo(what: &str, spec: &Path, extra: &[&str]) -> String {
    let output = Command::new(sightline())
        .args(["slo", what, "--spec"])
        .arg(spec)
        .args(extra)
        .output()
        .expect("sightline runs");
    assert!(
        output.status.success(),
        "sightline slo {what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn write_spec(dir: &TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("slo.yaml");
    std::fs::write(&path, text).expect("write the spec");
    path
}

fn promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(tool("promtool"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("promtool runs (apt-get install -y prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn generated_rules_pass_promtool_and_their_own_tests() {
    let dir = TempDir::new("slo-promtool");
    let spec = write_spec(&dir, SPEC);
    std::fs::write(dir.path().join("rules.yaml"), slo("rules", &spec, &[])).expect("write");
    std::fs::write(dir.path().join("tests.yaml"), slo("tests", &spec, &[])).expect("write");
    let checked = promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(dir.path(), &["test", "rules", "tests.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // A scaled-down copy is still valid.
    std::fs::write(
        dir.path().join("scaled.yaml"),
        slo("rules", &spec, &["--window-scale", "0.01"]),
    )
    .expect("write");
    promtool(dir.path(), &["check", "rules", "scaled.yaml"]);
    // The dashboard is JSON a Grafana model reader accepts: panels with targets.
    let dashboard: serde_json::Value =
        serde_json::from_str(&slo("dashboard", &spec, &[])).expect("JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 6));
}

#[test]
fn the_examples_specs_generate_clean_rules() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for example in ["examples/quickstart/slo.yaml", "examples/grpc/slo.yaml"] {
        let spec = root.join(example);
        let dir = TempDir::new("slo-examples");
        std::fs::write(dir.path().join("rules.yaml"), slo("rules", &spec, &[])).expect("write");
        std::fs::write(dir.path().join("tests.yaml"), slo("tests", &spec, &[])).expect("write");
        promtool(dir.path(), &["check", "rules", "rules.yaml"]);
        promtool(dir.path(), &["test", "rules", "tests.yaml"]);
    }
}

#[test]
fn a_bad_spec_is_refused_with_its_line_and_field() {
    let dir = TempDir::new("slo-bad");
    let spec = write_spec(
        &dir,
        "service: s\nobjectives:\n  - name: a\n    http_route: /a\n    availability: 120\n",
    );
    let output = Command::new(sightline())
        .args(["slo", "rules", "--spec"])
        .arg(&spec)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 5") && stderr.contains("objectives[0].availability"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout");
}

/// Polls the alerts until `pred` holds for the page of `fail-available`, within `timeout`.
async fn wait_page(prometheus: &Prometheus, firing: bool, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        let alerts = prometheus.alerts().await.unwrap_or_default();
        let page = alerts.iter().any(|a| {
            a["labels"]["alertname"] == "SLOErrorBudgetFastBurn"
                && a["labels"]["objective"] == "fail-available"
                && a["labels"]["severity"] == "page"
                && a["state"] == "firing"
        });
        if page == firing {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_burst_pages_live_and_resolves_and_the_dashboard_has_data() {
    let dir = TempDir::new("slo-live");
    let spec = write_spec(&dir, SPEC);
    let rules = slo("rules", &spec, &["--window-scale", "0.01"]);
    let app = ExampleProcess::start("example-quickstart", &[]).await;
    let prometheus =
        Prometheus::start_with(app.addr(), "/metrics", "quickstart", Some(&rules)).await;
    let client = HttpClient::new();
    // Some healthy traffic first, then a burst of 5xx on /fail, bounded in count and time.
    for i in 0..20 {
        let _ = client.get(&app.url(&format!("/users/{i}")), &[]).await;
    }
    let burst_end = Instant::now() + Duration::from_secs(6);
    let mut sent = 0;
    while Instant::now() < burst_end && sent < 600 {
        let answer = client.get(&app.url("/fail"), &[]).await.expect("answers");
        assert_eq!(answer.status, 500);
        let _ = client.get(&app.url("/users/1"), &[]).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        wait_page(&prometheus, true, Duration::from_secs(30)).await,
        "the page did not fire: {:?}\n{}",
        prometheus.alerts().await,
        prometheus.log()
    );

    // Every query of the dashboard, variables filled in, returns data (while traffic of the
    // burst is still inside the windows).
    let dashboard: serde_json::Value =
        serde_json::from_str(&slo("dashboard", &spec, &[])).expect("JSON");
    let fill = |expr: &str| {
        expr.replace("$service", "quickstart")
            .replace("$route", ".+")
            .replace("$method", ".+")
            .replace("$__rate_interval", "30s")
    };
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            // The gRPC panels need a gRPC service: the quick start has none.
            if !expr.contains("rpc_") {
                queries.push(fill(expr));
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(query) = variable["definition"].as_str()
            && let Some(args) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
            && let Some((metric, label)) = args.rsplit_once(',')
            && !metric.contains("rpc_")
        {
            queries.push(fill(&format!("count by ({}) ({metric})", label.trim())));
        }
    }
    assert!(queries.len() >= 8, "{queries:?}");
    for query in &queries {
        let result = prometheus
            .query(query)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            result.as_array().is_some_and(|r| !r.is_empty()),
            "no data for {query}"
        );
    }

    // The burst is over: the page resolves once the short windows have emptied.
    assert!(
        wait_page(&prometheus, false, Duration::from_secs(60)).await,
        "the page did not resolve: {:?}",
        prometheus.alerts().await
    );
}
