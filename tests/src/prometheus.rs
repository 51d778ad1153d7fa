//! A real Prometheus server (the Debian `prometheus` package) scraping a target, `promtool`
//! checks, and a small parser for the text exposition format.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::http::HttpClient;
use crate::util::{TempDir, free_port, percent_encode, poll_until, poll_until_blocking};

/// How long Prometheus may take to report ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The job name of the scraped target, for `up{job=..}` queries.
pub const JOB: &str = "sightline";

/// The path of a Prometheus tool (`prometheus`, `promtool`) from Debian's package, or its bare
/// name for a `PATH` lookup.
pub fn tool(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A Prometheus server scraping one target every second; killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    port: u16,
    job: String,
    dir: TempDir,
    client: HttpClient,
}

impl Prometheus {
    /// Starts Prometheus on a free 127.0.0.1 port, scraping `http://<target><metrics_path>`
    /// every second, and waits until `/-/ready` answers 200 (up to [`READY_TIMEOUT`]).
    ///
    /// Panics if the binary is missing (`apt-get install prometheus`) or never gets ready,
    /// with its log.
    pub async fn start(target: SocketAddr, metrics_path: &str) -> Self {
        Self::start_with(target, metrics_path, JOB, None).await
    }

    /// [`start`](Self::start) with the scrape job named `job` and, when given, `rules` (a
    /// Prometheus rules file) loaded and evaluated every second.
    pub async fn start_with(
        target: SocketAddr,
        metrics_path: &str,
        job: &str,
        rules: Option<&str>,
    ) -> Self {
        let dir = TempDir::new("prometheus");
        let rule_files = match rules {
            Some(rules) => {
                std::fs::write(dir.path().join("rules.yaml"), rules).expect("write rules.yaml");
                "rule_files:\n  - rules.yaml\n"
            }
            None => "",
        };
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             {rule_files}scrape_configs:\n  - job_name: '{job}'\n    metrics_path: '{metrics_path}'\n    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .expect("create prometheus.log");
        let port = free_port();
        let binary = tool("prometheus");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--log.level=warn")
            // Exemplars are kept only with this flag (Prometheus 2.x).
            .arg("--enable-feature=exemplar-storage")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (install it: apt-get install -y prometheus)",
                    binary.display()
                )
            });
        let mut prometheus = Self {
            child,
            port,
            job: job.to_owned(),
            dir,
            client: HttpClient::new(),
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/-/ready", self.url());
        let client = self.client.clone();
        let ready = poll_until(READY_TIMEOUT, Duration::from_millis(100), || {
            let client = client.clone();
            let url = url.clone();
            async move {
                match client.get(&url, &[]).await {
                    Ok(r) if r.status == 200 => Some(()),
                    _ => None,
                }
            }
        })
        .await;
        if ready.is_none() {
            let exited = self.child.try_wait().ok().flatten();
            panic!(
                "prometheus not ready on port {} within {READY_TIMEOUT:?} (exit: {exited:?})\n{}",
                self.port,
                self.log()
            );
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Prometheus's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The alerts Prometheus holds now (pending and firing), from `/api/v1/alerts`.
    pub async fn alerts(&self) -> Result<Vec<Value>, String> {
        let url = format!("{}/api/v1/alerts", self.url());
        let json = self.client.get(&url, &[]).await?.json()?;
        if json["status"] != "success" {
            return Err(format!("alerts failed: {json}"));
        }
        Ok(json["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Runs an instant query and returns `data.result` (a vector: `[{metric, value}]`).
    pub async fn query(&self, promql: &str) -> Result<Value, String> {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.url(),
            percent_encode(promql)
        );
        let response = self.client.get(&url, &[]).await?;
        let json = response.json()?;
        if json["status"] != "success" {
            return Err(format!("query {promql:?} failed: {json}"));
        }
        Ok(json["data"]["result"].clone())
    }

    /// Runs `/api/v1/query_exemplars` for `promql` over the last hour and returns `data`: one
    /// entry per series, `{seriesLabels, exemplars: [{labels, value, timestamp}]}`.
    pub async fn query_exemplars(&self, promql: &str) -> Result<Value, String> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let url = format!(
            "{}/api/v1/query_exemplars?query={}&start={}&end={}",
            self.url(),
            percent_encode(promql),
            now.saturating_sub(3600),
            now + 60
        );
        let json = self.client.get(&url, &[]).await?.json()?;
        if json["status"] != "success" {
            return Err(format!("query_exemplars {promql:?} failed: {json}"));
        }
        Ok(json["data"].clone())
    }

    /// Runs `promql` until `accept` returns `Some` or `timeout` passes; returns the accepted
    /// value, or `Err` with the last result.
    pub async fn query_until<T>(
        &self,
        promql: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = std::time::Instant::now() + timeout;
        // Bounded by the deadline; each round runs one query.
        loop {
            let last = match self.query(promql).await {
                Ok(v) => match accept(&v) {
                    Some(a) => return Ok(a),
                    None => v.to_string(),
                },
                Err(e) => e,
            };
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{promql}: not accepted within {timeout:?}; last result: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(250).min(deadline - now)).await;
        }
    }

    /// Waits until the target has been scraped (successfully, `up == 1`) by a scrape that
    /// started after `after`, so every query sees what the target had exposed by then.
    pub async fn wait_for_scrape_after(
        &self,
        after: SystemTime,
        timeout: Duration,
    ) -> Result<(), String> {
        let after = after
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs_f64();
        let promql = format!("timestamp(up{{job=\"{}\"}} == 1)", self.job);
        self.query_until(&promql, timeout, |v| {
            scalar(v).filter(|ts| *ts > after).map(|_| ())
        })
        .await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The single sample value of an instant-vector result, if it has exactly one series.
pub fn scalar(result: &Value) -> Option<f64> {
    match result.as_array()?.as_slice() {
        [one] => sample_value(one),
        _ => None,
    }
}

/// The value of one series of an instant-vector result (`"value": [ts, "1.5"]`).
pub fn sample_value(series: &Value) -> Option<f64> {
    parse_prometheus_float(series["value"][1].as_str()?)
}

/// Parses a float as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, decimals, exponents).
pub fn parse_prometheus_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// The value of label `name` in every series of an instant-vector result.
pub fn label_values(result: &Value, name: &str) -> Vec<String> {
    result
        .as_array()
        .map(|series| {
            series
                .iter()
                .filter_map(|s| s["metric"][name].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses an OpenMetrics exposition with the reference parser (`prometheus_client`, in the
/// workspace's `.venv`: `tests/python/openmetrics_check.py`), since `promtool check metrics`
/// reads only the text format. `Ok` is its report: `families` (name → type) and `exemplars`
/// (`sample`, `labels`, `exemplar_labels`, `value`, `timestamp`); `Err` is why it refused.
///
/// Panics when the venv is missing, with how to make it.
pub fn openmetrics_check(text: &str) -> Result<Value, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf();
    let python = root.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "the OpenMetrics check needs a Python venv at {}; run ./scripts/test, or: python3 -m \
         venv .venv && .venv/bin/pip install -r tests/python/requirements.txt",
        python.display()
    );
    let mut command = Command::new(&python);
    command.arg(root.join("tests/python/openmetrics_check.py"));
    let output = run_with_stdin(command, text, "the OpenMetrics check")?;
    if !output.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("the check's report: {e}"))
}

/// Runs `command` with `text` on stdin and its output piped, for at most 30 s (then it is
/// killed); `what` names it in errors.
fn run_with_stdin(
    mut command: Command,
    text: &str,
    what: &str,
) -> Result<std::process::Output, String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .map_err(|e| format!("write to {what}: {e}"))?;
    let finished = poll_until_blocking(Duration::from_secs(30), Duration::from_millis(20), || {
        child.try_wait().ok().flatten()
    });
    if finished.is_none() {
        let _ = child.kill();
    }
    child
        .wait_with_output()
        .map_err(|e| format!("wait for {what}: {e}"))
}

/// Runs `promtool check metrics` with `text` on stdin. Any output is a problem (promtool
/// prints lint findings such as missing HELP or counter names without `_total`), so `Err`
/// carries everything it printed; `Ok` means it printed nothing and exited 0.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let binary = tool("promtool");
    let mut command = Command::new(&binary);
    command.args(["check", "metrics"]);
    let output = run_with_stdin(command, text, "promtool").map_err(|e| {
        format!(
            "{e} (apt-get install -y prometheus for {})",
            binary.display()
        )
    })?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && printed.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics ({}):\n{printed}",
            output.status
        ))
    }
}

/// One sample line of the text exposition format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name (`http_server_request_duration_seconds_bucket`).
    pub name: String,
    /// The labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The series identity: name and labels as they would be written.
    pub fn series_key(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }

    /// A label's value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Parses the sample lines of a text exposition (comments and blank lines skipped).
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let bad = |why: &str| format!("{why} in sample line {line:?}");
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| bad("no value"))?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let mut end = None;
        // One pass over the label block; each character is looked at once.
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return Err(bad("unquoted label value"));
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '"')) => break,
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, c)) => value.push(c),
                                None => return Err(bad("unterminated escape")),
                            },
                            Some((_, c)) => value.push(c),
                            None => return Err(bad("unterminated label value")),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
        let end = end.ok_or_else(|| bad("unterminated label set"))?;
        rest = &inner[end + 1..];
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| bad("no value"))?;
    let value = parse_prometheus_float(value_text).ok_or_else(|| bad("bad value"))?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// The set of series keys in an exposition.
pub fn series_set(text: &str) -> Result<BTreeSet<String>, String> {
    Ok(parse_exposition(text)?
        .iter()
        .map(Sample::series_key)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_escaped_labels() {
        let text = "# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"\\\\\"} 3\nup 1 1700000000000\n\
                    h_bucket{le=\"+Inf\"} 2\n";
        let samples = parse_exposition(text).expect("valid exposition");
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].label("b"), Some("q\"\\"));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].name, "up");
        assert!(samples[1].labels.is_empty());
        assert_eq!(samples[2].label("le"), Some("+Inf"));
    }
}
