//! The quick start's internal pages: off by default; with `SIGHTLINE_DEBUG=1`, the debug page
//! after real traffic (read by a real headless Chromium, and as HTML), and CPU profiles in the
//! pprof format, one at a time, decoded here with the pprof protobuf schema.

use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

use prost::Message as _;
use sightline_tests::http::HttpClient;
use sightline_tests::process::{ExampleProcess, profile_dir};
use sightline_tests::util::{TempDir, random_span_id, random_trace_id};

use crate::support::{quickstart, traceparent};

/// `perftools.profiles.Profile` (github.com/google/pprof/proto/profile.proto), the fields
/// read here, written from the schema independently of the encoder under test.
mod pprof_schema {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub(crate) sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub(crate) sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub(crate) location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub(crate) function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub(crate) string_table: Vec<String>,
        #[prost(int64, tag = "10")]
        pub(crate) duration_nanos: i64,
        #[prost(int64, tag = "12")]
        pub(crate) period: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ValueType {
        #[prost(int64, tag = "1")]
        pub(crate) r#type: i64,
        #[prost(int64, tag = "2")]
        pub(crate) unit: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub(crate) location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub(crate) value: Vec<i64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Location {
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        #[prost(message, repeated, tag = "4")]
        pub(crate) line: Vec<Line>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Line {
        #[prost(uint64, tag = "1")]
        pub(crate) function_id: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Function {
        #[prost(uint64, tag = "1")]
        pub(crate) id: u64,
        #[prost(int64, tag = "2")]
        pub(crate) name: i64,
    }
}

async fn status(client: &HttpClient, url: &str) -> u16 {
    client
        .get(url, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_routes_are_404_unless_asked_for() {
    let mut app = quickstart(&[]).await;
    let client = HttpClient::new();
    assert_eq!(status(&client, &app.url("/debug/sightline")).await, 404);
    assert_eq!(
        status(&client, &app.url("/debug/pprof/profile?seconds=1")).await,
        404
    );
    let mut off = quickstart(&[("SIGHTLINE_DEBUG", "0")]).await;
    assert_eq!(status(&client, &off.url("/debug/sightline")).await, 404);
    app.terminate().await;
    off.terminate().await;
}

/// Some traffic: ok calls, a failure with a known trace id, a query with a secret.
async fn traffic(app: &ExampleProcess, client: &HttpClient) -> String {
    for i in 0..5 {
        assert_eq!(
            status(client, &app.url(&format!("/users/{i}?token=s3cr3t-q"))).await,
            200
        );
    }
    let trace_id = random_trace_id();
    let failed = client
        .get_with(
            &app.url("/fail"),
            &[("traceparent", &traceparent(&trace_id, &random_span_id()))],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.status, 500);
    trace_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_page_shows_routes_errors_and_traces_and_hides_secrets() {
    let mut app = quickstart(&[("SIGHTLINE_DEBUG", "1")]).await;
    let client = HttpClient::new();
    let trace_id = traffic(&app, &client).await;
    let page = client
        .get(&app.url("/debug/sightline"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status, 200);
    assert!(
        page.headers
            .iter()
            .any(|(name, value)| name == "content-type" && value.starts_with(b"text/html")),
        "{:?}",
        page.headers
    );
    let html = page.text();
    assert!(
        html.contains("<td class=\"name\">/users/{id}</td><td class=\"count\">5</td>"),
        "{html}"
    );
    assert!(
        html.contains(
            "<td class=\"name\">/fail</td><td class=\"count\">1</td><td class=\"errors\">1</td>"
        ),
        "{html}"
    );
    assert!(html.contains(&trace_id), "the failure's trace id: {html}");
    assert!(!html.contains("s3cr3t"), "a query value leaked: {html}");
    assert!(
        !html.contains("http://") && !html.contains("src="),
        "no external asset"
    );
    app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_page_renders_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("Chromium is installed (scripts/test installs Debian's `chromium`)");
    let mut app = quickstart(&[("SIGHTLINE_DEBUG", "1")]).await;
    let client = HttpClient::new();
    let trace_id = traffic(&app, &client).await;
    let url = app.url("/debug/sightline");
    let profile = TempDir::new("chromium");
    let screenshot = profile_dir().join("debug-sightline.png");
    let run = |args: &[&str]| {
        let output = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--virtual-time-budget=3000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(&url)
            .output()
            .expect("chromium runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dom = tokio::task::block_in_place(|| run(&["--dump-dom"]));
    // The DOM Chromium built: the tables, their rows, the failure's trace id.
    for needle in [
        "<table id=\"http-routes\">",
        "<td class=\"name\">/users/{id}</td>",
        "<table id=\"recent-errors\">",
        trace_id.as_str(),
        "<span id=\"service\">quickstart</span>",
    ] {
        assert!(dom.contains(needle), "{needle} not in the DOM:\n{dom}");
    }
    let screenshot_arg = format!("--screenshot={}", screenshot.display());
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1200,900",
                &screenshot_arg,
            ])
            .arg(&url2)
            .output()
            .expect("chromium runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
    .await
    .expect("joined");
    let png = std::fs::read(&screenshot).expect("the screenshot, kept as a test artifact");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000);
    app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_profiles_are_pprof_one_at_a_time() {
    let mut app = quickstart(&[("SIGHTLINE_DEBUG", "1")]).await;
    let client = HttpClient::new();
    for bad in ["0", "61", "soon"] {
        assert_eq!(
            status(
                &client,
                &app.url(&format!("/debug/pprof/profile?seconds={bad}"))
            )
            .await,
            400,
            "{bad}"
        );
    }
    let url = app.url("/debug/pprof/profile?seconds=2");
    let profile = tokio::spawn({
        let client = client.clone();
        async move { client.get(&url, &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status(&client, &app.url("/debug/pprof/profile?seconds=1")).await,
        409,
        "one profile at a time"
    );
    // Load while the profiler samples, bounded in count and time.
    let until = tokio::time::Instant::now() + Duration::from_millis(1800);
    let mut sent = 0;
    while tokio::time::Instant::now() < until && sent < 2000 {
        let _ = client.get(&app.url(&format!("/users/{sent}")), &[]).await;
        sent += 1;
    }
    let response = profile
        .await
        .expect("joined")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", response.text());
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&response.body[..])
        .read_to_end(&mut decoded)
        .expect("gzip");
    let profile = pprof_schema::Profile::decode(decoded.as_slice()).expect("a pprof profile");
    assert!(!profile.sample.is_empty(), "samples");
    assert_eq!(profile.duration_nanos, 2_000_000_000);
    assert!(profile.period > 0);
    let string = |i: i64| {
        profile
            .string_table
            .get(i as usize)
            .map(String::as_str)
            .unwrap_or("")
    };
    assert_eq!(string(0), "", "the string table starts empty");
    let ours = profile
        .function
        .iter()
        .filter(|f| string(f.name).contains("sightline_http"))
        .count();
    assert!(
        ours > 0,
        "no frame of the server layer among {} functions",
        profile.function.len()
    );
    // Every sample points at known locations, and every location at known functions.
    let locations: std::collections::HashSet<u64> = profile.location.iter().map(|l| l.id).collect();
    let functions: std::collections::HashSet<u64> = profile.function.iter().map(|f| f.id).collect();
    assert!(
        profile
            .sample
            .iter()
            .all(|s| s.location_id.iter().all(|id| locations.contains(id)))
    );
    assert!(profile.location.iter().all(|l| {
        l.line
            .iter()
            .all(|line| functions.contains(&line.function_id))
    }));
    assert_eq!(profile.sample_type.len(), 2);
    app.terminate().await;
}
