//! Log lines keep their request's `trace_id`, `span_id` and `request_id` across `.await`
//! points and in spawned tasks that carry the span (`Instrument`), with many requests in flight
//! on a multi-threaded runtime, through the facade's subscriber and server layer. A task
//! spawned without the span has no ids: the span is what carries them.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use sightline_tests::logs::Captured;
use tower::ServiceExt as _;
use tracing::Instrument as _;

async fn work(Path(n): Path<u64>) -> &'static str {
    tracing::info!(n, step = "start", "step");
    tokio::time::sleep(Duration::from_millis(1 + n % 3)).await;
    tracing::info!(n, step = "after sleep", "step");
    tokio::task::yield_now().await;
    tracing::info!(n, step = "after yield", "step");
    let carried = tokio::spawn(
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tracing::info!(n, step = "instrumented task", "step");
        }
        .instrument(tracing::Span::current()),
    );
    let bare = tokio::spawn(async move {
        tracing::info!(n, step = "bare task", "step");
    });
    let _ = tokio::join!(carried, bare);
    tracing::info!(n, step = "end", "step");
    "ok"
}

fn trace_id(n: u64) -> String {
    format!("{:032x}", 0xabc0_0000 + n)
}

#[test]
fn ids_follow_the_request_across_awaits_and_instrumented_tasks() {
    const REQUESTS: u64 = 24;
    let out = Captured::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sightline = runtime.block_on(async {
        sightline::Sightline::builder()
            .service_name("tasks-test")
            .log_filter("info")
            .prometheus(false)
            .otlp_logs(false)
            .log_writer(out.clone())
            .build()
            .expect("builds")
    });
    let app = Router::new()
        .route("/work/{n}", get(work))
        .layer(sightline.http_server_layer());

    runtime.block_on(async {
        let calls: Vec<_> = (0..REQUESTS)
            .map(|n| {
                let request = http::Request::get(format!("/work/{n}"))
                    .header(
                        "traceparent",
                        format!("00-{}-00f067aa0ba902b7-01", trace_id(n)),
                    )
                    .header("x-request-id", format!("req-{n}"))
                    .body(Body::empty())
                    .expect("request");
                let app = app.clone();
                tokio::spawn(async move {
                    let response = app.oneshot(request).await.expect("infallible");
                    assert_eq!(response.status(), 200);
                    // The request ends (and its access line is written) with the body.
                    axum::body::to_bytes(response.into_body(), 1024)
                        .await
                        .expect("body");
                })
            })
            .collect();
        for call in calls {
            call.await.expect("request task");
        }
    });
    sightline.shutdown().expect("shuts down");
    drop(runtime);

    let lines: Vec<serde_json::Value> = out.lines().into_iter().map(|l| l.json).collect();
    let mut seen = std::collections::HashMap::<(u64, String), usize>::new();
    let mut span_ids = std::collections::HashMap::<u64, String>::new();
    for line in &lines {
        let Some(n) = line["fields"]["n"].as_u64() else {
            continue;
        };
        let step = line["fields"]["step"].as_str().expect("step").to_owned();
        *seen.entry((n, step.clone())).or_default() += 1;
        if step == "bare task" {
            assert!(line.get("trace_id").is_none(), "{line}");
            assert!(line.get("request_id").is_none(), "{line}");
            continue;
        }
        assert_eq!(line["trace_id"], trace_id(n), "{line}");
        assert_eq!(line["request_id"], format!("req-{n}"), "{line}");
        let span_id = line["span_id"].as_str().expect("span_id").to_owned();
        let first = span_ids.entry(n).or_insert_with(|| span_id.clone());
        assert_eq!(*first, span_id, "one server span per request: {line}");
    }
    let steps = [
        "start",
        "after sleep",
        "after yield",
        "instrumented task",
        "bare task",
        "end",
    ];
    for n in 0..REQUESTS {
        for step in steps {
            assert_eq!(
                seen.get(&(n, step.to_owned())),
                Some(&1),
                "request {n}, {step}"
            );
        }
    }
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "sightline_http::access")
        .collect();
    assert_eq!(access.len(), REQUESTS as usize);
    for line in access {
        let id = line["request_id"].as_str().expect("request_id");
        let n: u64 = id.trim_start_matches("req-").parse().expect("our id");
        assert_eq!(line["trace_id"], trace_id(n), "{line}");
        assert_eq!(
            line["span_id"].as_str(),
            span_ids.get(&n).map(String::as_str)
        );
    }
}
