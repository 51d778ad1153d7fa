//! Quick start: an axum service with traces, RED metrics, request IDs and JSON logs from one
//! builder and one layer.
//!
//! Run it with `cargo run -p example-quickstart` (listens on 127.0.0.1:3000, or on `ADDR`),
//! then look at:
//!
//! - `curl -i 127.0.0.1:3000/users/7`: the `x-request-id` response header; on stdout, a
//!   JSON line from the handler and an access-log line, both with the same `trace_id`,
//!   `span_id` and `request_id`;
//! - `curl 127.0.0.1:3000/orders/7`: the handler's `load order` span is a child of the server
//!   span (in your trace viewer too), and the line logged inside it carries the request's
//!   `trace_id` and `request_id` with that child's own `span_id`;
//! - `curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
//!   127.0.0.1:3000/users/7`: the log lines now carry that trace id;
//! - `curl 127.0.0.1:3000/orders/0`: a 500 after its `load order` child span has ended (the
//!   order does not exist);
//! - `curl '127.0.0.1:3000/slow?ms=1200'`: answers after sleeping that long (at most 5000 ms);
//! - with `OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1`, one trace in ten
//!   is exported, plus every request that fails with a 5xx or takes longer than
//!   `SIGHTLINE_KEEP_SLOWER_THAN_MS` (1000 by default), each with its child spans; with
//!   `OTEL_TRACES_SAMPLER=parentbased_sightline_adaptive OTEL_TRACES_SAMPLER_ARG=5`, about 5
//!   traces per second per route; `sightline_traces_total{decision}` and
//!   `sightline_traces_sampling_ratio` on `/metrics` show the decisions;
//! - `curl 127.0.0.1:3000/fail`: a 500, logged at ERROR, counted with `error_type="500"`;
//! - `curl -i 127.0.0.1:3000/panic`: the handler panics; the answer is a 500, the span has
//!   status Error and an `exception` event with the panic message, the access line is at
//!   ERROR, and the next request is served as usual;
//! - `curl 127.0.0.1:3000/proxy/users/7`: the handler calls `{UPSTREAM}/users/7` (`UPSTREAM`
//!   defaults to this service itself) with `reqwest` and Sightline's middleware: a CLIENT span,
//!   child of the server span, whose id is the upstream's `traceparent` parent;
//! - `curl 127.0.0.1:3000/healthz`: a probe: no span and no access line, still counted in
//!   `http_server_request_duration_seconds{http_route="/healthz"}`;
//! - with `SIGHTLINE_DEBUG=1`, `http://127.0.0.1:3000/debug/sightline` in a browser: per
//!   route the requests, errors and p50/p95/p99, the recent errors and slowest requests with
//!   their trace ids and span trees; and `curl -o cpu.pb.gz
//!   '127.0.0.1:3000/debug/pprof/profile?seconds=10'` then `go tool pprof cpu.pb.gz` (both
//!   404 without the variable; internal routes, for a trusted network);
//! - behind a load balancer, `SIGHTLINE_TRUSTED_PROXIES=10.0.0.0/8` (addresses or networks,
//!   comma-separated): `client.address` is then read from `X-Forwarded-For` / `Forwarded`
//!   when, and only when, the request comes from one of them;
//! - `curl -d '{"name":"Ada","email":"ada@example.com","phone":"+447700900123","password":"pw"}'
//!   -H 'content-type: application/json' 127.0.0.1:3000/signup`: a line with the sign-up
//!   as `#[derive(Redact)]` writes it: the email as a keyed hash, the phone masked
//!   (`+44********23`), no password;
//! - `curl 127.0.0.1:3000/metrics`: `http_server_request_duration_seconds` by
//!   `http_route="/users/{id}"`, and `http_server_active_requests`;
//! - with `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317` (an OpenTelemetry Collector,
//!   Jaeger or Tempo), the server spans `GET /users/{id}` in your trace viewer, and, with
//!   `OTEL_LOGS_EXPORTER=otlp` too, the log lines as OTLP log records with the same trace
//!   and span ids (an `https://` endpoint works too: this example turns on `otlp-tls`; add
//!   `OTEL_EXPORTER_OTLP_CERTIFICATE` for a private CA and `OTEL_EXPORTER_OTLP_HEADERS` for
//!   an API key);
//! - with `SIGHTLINE_CAPTURE_HEADERS=accept,authorization` (comma-separated header names),
//!   those request and response headers on the server span as `http.request.header.<name>` /
//!   `http.response.header.<name>`; `authorization`, `cookie` and the other sensitive ones
//!   are recorded as `REDACTED`.

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use sightline::opentelemetry::KeyValue;
use sightline::{RequestId, Sightline};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let captured = captured_headers()?;
    let sightline = Sightline::builder().service_name("quickstart").build()?;
    let server_layer = sightline
        .http_server_layer_builder()
        .capture_request_headers(captured.clone())
        .capture_response_headers(captured)
        .build();

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let proxy = Proxy {
        client: sightline::reqwest_middleware::ClientBuilder::new(
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
        )
        .with(sightline.reqwest_middleware())
        .build(),
        upstream: std::env::var("UPSTREAM")
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|_| format!("http://{local}")),
    };

    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/orders/{id}", get(order))
        .route("/slow", get(slow))
        .route("/fail", get(fail))
        .route("/panic", get(panic))
        .route("/proxy/users/{id}", get(proxy_user).with_state(proxy))
        .route("/signup", axum::routing::post(signup))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", sightline.metrics_handler())
        // Every debug path is a 404 unless SIGHTLINE_DEBUG=1. Merged before the layer: a
        // router merged after it would take over the fallback, and unmatched requests would
        // no longer be counted.
        .merge(sightline.debug_router())
        .layer(server_layer);

    tracing::info!(addr = %local, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(sightline::shutdown_signal())
    .await?;

    // Export the spans still queued while the runtime (and the exporter's connection) is up.
    sightline.shutdown_async().await?;
    Ok(())
}

/// The header names in `SIGHTLINE_CAPTURE_HEADERS` (comma-separated; none when unset).
fn captured_headers() -> Result<Vec<HeaderName>, Box<dyn std::error::Error>> {
    let names = std::env::var("SIGHTLINE_CAPTURE_HEADERS").unwrap_or_default();
    let mut out = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        out.push(HeaderName::try_from(name.to_ascii_lowercase())?);
    }
    Ok(out)
}

/// A small JSON answer; its log line carries the request's trace and request IDs.
async fn user(Path(id): Path<String>, request_id: RequestId) -> Json<serde_json::Value> {
    // One line puts the user on the request's server span.
    sightline::server_span().set_attribute(KeyValue::new("enduser.id", id.clone()));
    tracing::info!(user.id = %id, "looking up user");
    Json(serde_json::json!({ "id": id, "name": "Ada", "request_id": request_id.as_str() }))
}

/// A handler that panics: Sightline answers 500 and records the panic.
async fn panic() -> &'static str {
    panic!("the quick start panics on purpose")
}

/// The `reqwest` client of `/proxy`, and where it goes.
#[derive(Clone)]
struct Proxy {
    client: sightline::reqwest_middleware::ClientWithMiddleware,
    upstream: String,
}

/// `GET {UPSTREAM}/users/{id}` through the traced client: the upstream's status and body.
async fn proxy_user(State(proxy): State<Proxy>, Path(id): Path<String>) -> (StatusCode, String) {
    let url = format!("{}/users/{id}", proxy.upstream);
    match proxy.client.get(&url).send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            match response.text().await {
                Ok(body) => (status, body),
                Err(e) => (StatusCode::BAD_GATEWAY, format!("upstream body: {e}")),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "upstream call failed");
            (StatusCode::BAD_GATEWAY, format!("upstream: {e}"))
        }
    }
}

/// An order, looked up in a span of the handler's own; order `0` does not exist, which the
/// handler answers with a 500 once the lookup's span has ended.
async fn order(Path(id): Path<String>) -> (StatusCode, Json<serde_json::Value>) {
    tracing::info!(order.id = %id, "looking up order");
    let status = load_order(&id).await;
    if id == "0" {
        tracing::error!(order.id = %id, "order 0 cannot be loaded");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "id": id, "error": "order 0 cannot be loaded" })),
        );
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({ "id": id, "status": status })),
    )
}

/// `GET /slow?ms=N`: answers 200 after sleeping N milliseconds (at most 5000; 0 when N is
/// missing or not a number).
async fn slow(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> String {
    let ms = query
        .get("ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or(0)
        .min(5000);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

/// The store lookup as a span of its own: exported as a child of the server span, and its
/// log line carries that child's `span_id` (with the request's `trace_id` and `request_id`).
#[tracing::instrument(name = "load order", skip_all, fields(order.id = %id))]
async fn load_order(id: &str) -> &'static str {
    tokio::task::yield_now().await;
    tracing::info!("order loaded");
    "shipped"
}

/// A sign-up as it is logged: the email keyed-hashed (so lines of one user can be joined
/// without the address), the phone masked, the password left out.
#[derive(sightline::logging::redact::Redact)]
#[redact(crate = "sightline::logging")]
struct Signup {
    name: String,
    #[redact(hash)]
    email: String,
    #[redact(mask = "3-2")]
    phone: String,
    #[redact(omit)]
    #[allow(dead_code, reason = "checked by a real service, never logged")]
    password: String,
}

/// `POST /signup` with `{"name", "email", "phone", "password"}`: logs the sign-up with its
/// secrets redacted and answers 201, or 400 when a field is missing.
async fn signup(Json(body): Json<serde_json::Value>) -> (StatusCode, Json<serde_json::Value>) {
    use sightline::logging::redact::Redact as _;

    let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let (Some(name), Some(email), Some(phone), Some(password)) = (
        field("name"),
        field("email"),
        field("phone"),
        field("password"),
    ) else {
        tracing::warn!("sign-up without name, email, phone or password");
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "name, email, phone and password are required" })),
        );
    };
    let signup = Signup {
        name,
        email,
        phone,
        password,
    };
    tracing::info!(signup = %signup.redacted(), "signed up");
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "name": signup.name })),
    )
}

/// Always fails: a 500, so the error rate has something to show.
async fn fail() -> (StatusCode, &'static str) {
    tracing::warn!("about to fail on purpose");
    (StatusCode::INTERNAL_SERVER_ERROR, "failed on purpose")
}
