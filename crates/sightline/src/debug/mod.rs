//! `/debug/sightline` and `/debug/pprof/profile`: what a developer without a Prometheus, a
//! Grafana or a trace viewer can still see, from the process itself. Off unless asked for
//! (`SIGHTLINE_DEBUG=1` or `SightlineBuilder::debug(true)`); internal routes, meant for an
//! admin listener or a trusted network.

mod profile;
pub(crate) mod recent;
mod stats;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use recent::{RecentSpans, SpanSummary};

/// Longest CPU profile, in seconds.
pub(crate) const MAX_PROFILE_SECONDS: u64 = 60;
/// Samples per second of a CPU profile.
const PROFILE_FREQUENCY: i32 = 99;

/// What the debug routes read.
#[derive(Clone)]
pub(crate) struct DebugState {
    pub(crate) recent: RecentSpans,
    pub(crate) exposition: Option<crate::recorders::Renderer>,
    pub(crate) sampler: String,
    pub(crate) exporter: String,
    pub(crate) service: String,
    profiling: Arc<AtomicBool>,
    started: Instant,
}

impl DebugState {
    pub(crate) fn new(
        recent: RecentSpans,
        exposition: Option<crate::recorders::Renderer>,
        sampler: String,
        exporter: String,
        service: String,
    ) -> Self {
        Self {
            recent,
            exposition,
            sampler,
            exporter,
            service,
            profiling: Arc::new(AtomicBool::new(false)),
            started: Instant::now(),
        }
    }
}

/// The debug routes.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: DebugState) -> axum::Router<S> {
    let page_state = state.clone();
    axum::Router::new()
        .route(
            "/debug/sightline",
            axum::routing::get(move || std::future::ready(page(&page_state))),
        )
        .route(
            "/debug/pprof/profile",
            axum::routing::get(move |uri: Uri| cpu_profile(state.clone(), uri)),
        )
}

/// HTML-escaped text.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "–".to_owned(), |s| format!("{:.1} ms", s * 1000.0))
}

fn stats_table(out: &mut String, title: &str, id: &str, exposition: &str, metric: &str, key: &str) {
    let stats = stats::parse(exposition, metric, key);
    let _ = write!(
        out,
        "<h2>{}</h2><table id=\"{id}\"><tr><th>{}</th><th>requests</th><th>errors</th>\
         <th>error share</th><th>p50</th><th>p95</th><th>p99</th></tr>",
        esc(title),
        esc(key)
    );
    if stats.is_empty() {
        out.push_str("<tr><td colspan=\"7\">none yet</td></tr>");
    }
    for (name, s) in &stats {
        let share = if s.count > 0.0 {
            s.errors / s.count * 100.0
        } else {
            0.0
        };
        let _ = write!(
            out,
            "<tr class=\"call\"><td class=\"name\">{}</td><td class=\"count\">{}</td>\
             <td class=\"errors\">{}</td><td>{share:.1}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            s.count,
            s.errors,
            millis(s.quantile(0.5)),
            millis(s.quantile(0.95)),
            millis(s.quantile(0.99)),
        );
    }
    out.push_str("</table>");
}

fn calls_table(out: &mut String, state: &DebugState, title: &str, id: &str, calls: &[SpanSummary]) {
    let _ = write!(
        out,
        "<h2>{}</h2><table id=\"{id}\"><tr><th>span</th><th>status</th><th>duration</th>\
         <th>trace id</th><th>ended</th><th>span tree</th></tr>",
        esc(title)
    );
    if calls.is_empty() {
        out.push_str("<tr><td colspan=\"6\">none yet</td></tr>");
    }
    for call in calls {
        let ago = SystemTime::now()
            .duration_since(call.end)
            .unwrap_or_default()
            .as_secs();
        let _ = write!(
            out,
            "<tr class=\"call\"><td>{}</td><td class=\"status\">{}</td><td>{}</td>\
             <td class=\"trace-id\"><code>{}</code></td><td>{ago} s ago</td><td>",
            esc(&call.name),
            esc(&call.status),
            millis(Some(call.duration.as_secs_f64())),
            call.trace_id,
        );
        tree(out, &state.recent.trace(call.trace_id), call.span_id);
        out.push_str("</td></tr>");
    }
    out.push_str("</table>");
}

/// The spans of one trace under `root`, as nested lists.
fn tree(out: &mut String, spans: &[SpanSummary], root: opentelemetry::trace::SpanId) {
    let Some(span) = spans.iter().find(|s| s.span_id == root) else {
        return;
    };
    let _ = write!(
        out,
        "<ul class=\"tree\"><li>{} <small>{:?}, {}{}</small>",
        esc(&span.name),
        span.kind,
        millis(Some(span.duration.as_secs_f64())),
        if span.error { ", error" } else { "" }
    );
    for child in spans
        .iter()
        .filter(|s| s.parent == root && s.span_id != root)
    {
        tree(out, spans, child.span_id);
    }
    out.push_str("</li></ul>");
}

/// The page: rendered whole on each request, refreshed by the browser every 5 seconds.
fn page(state: &DebugState) -> Response {
    let exposition = state
        .exposition
        .as_ref()
        .map(crate::recorders::Renderer::render)
        .unwrap_or_default();
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>Sightline: {service}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}\
         th{{background:#f3f3f3}}ul.tree{{margin:0;padding-left:1em}}code{{font-size:12px}}\
         </style></head><body><h1>Sightline: <span id=\"service\">{service}</span></h1>\
         <p>Up {up} s. Internal page: serve it on an admin listener or a trusted network only. \
         Refreshes every 5 s.</p>",
        service = esc(&state.service),
        up = state.started.elapsed().as_secs(),
    );
    stats_table(
        &mut out,
        "HTTP routes",
        "http-routes",
        &exposition,
        "http_server_request_duration_seconds",
        "http_route",
    );
    stats_table(
        &mut out,
        "gRPC methods",
        "grpc-methods",
        &exposition,
        "rpc_server_call_duration_seconds",
        "rpc_method",
    );
    calls_table(
        &mut out,
        state,
        "Recent errors",
        "recent-errors",
        &state.recent.errors(10),
    );
    calls_table(
        &mut out,
        state,
        "Slowest recent requests",
        "slowest",
        &state.recent.slowest(10),
    );
    let dropped: Vec<&str> = exposition
        .lines()
        .filter(|l| l.starts_with("sightline_telemetry_dropped"))
        .collect();
    let _ = write!(
        out,
        "<h2>Pipeline</h2><table id=\"pipeline\"><tr><th>sampler</th><td>{}</td></tr>\
         <tr><th>span export</th><td>{}</td></tr><tr><th>dropped</th><td>{}</td></tr></table>\
         </body></html>",
        esc(&state.sampler),
        esc(&state.exporter),
        if dropped.is_empty() {
            "nothing".to_owned()
        } else {
            dropped
                .iter()
                .map(|l| esc(l))
                .collect::<Vec<_>>()
                .join("<br>")
        }
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

/// Resets the one-profile-at-a-time flag however the profile ends.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

/// `GET /debug/pprof/profile?seconds=N`: a CPU profile of N seconds (1 to 60, default 10),
/// one at a time, as the gzipped pprof protobuf `go tool pprof` and its peers read.
async fn cpu_profile(state: DebugState, uri: Uri) -> Response {
    let seconds = match uri.query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("seconds="))
            .map(str::to_owned)
    }) {
        None => 10,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=MAX_PROFILE_SECONDS).contains(&n) => n,
            _ => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    &format!("seconds must be a whole number from 1 to {MAX_PROFILE_SECONDS}"),
                );
            }
        },
    };
    if state.profiling.swap(true, Ordering::AcqRel) {
        return plain(
            StatusCode::CONFLICT,
            "a profile is already being taken; try again after it",
        );
    }
    let _running = Running(Arc::clone(&state.profiling));
    let started = SystemTime::now();
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(PROFILE_FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
    {
        Ok(guard) => guard,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("profiler: {e}")),
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let report = match guard.report().build() {
        Ok(report) => report,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("profiler: {e}")),
    };
    drop(guard);
    let bytes = profile::encode(
        &report,
        PROFILE_FREQUENCY,
        started,
        Duration::from_secs(seconds),
    );
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let body = match std::io::Write::write_all(&mut gzip, &bytes).and_then(|()| gzip.finish()) {
        Ok(body) => body,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("gzip: {e}")),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"profile.pb.gz\"",
        )
        .body(Body::from(body))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}
