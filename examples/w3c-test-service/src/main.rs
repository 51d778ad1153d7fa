//! The W3C Trace Context test service: the contract of the W3C conformance harness
//! (<https://github.com/w3c/trace-context/tree/main/test>), served with Sightline's server and
//! client layers, so the harness (or any peer) can check what Sightline propagates.
//!
//! `POST /test` takes a JSON array of `{"url": string, "arguments": array}`. For each element,
//! in order, the service POSTs `arguments` as a JSON body to `url` through
//! [`Sightline::http_client_layer`], inside the server span that the server layer made from
//! the incoming `traceparent`/`tracestate` (or B3) headers. So each outgoing call carries the
//! caller's trace id, the client span's id as its parent and the caller's `tracestate` and
//! `baggage`. It answers 200 once every call is done (a failed call is logged at WARN and does
//! not change the answer), and 400 for a body that is not such an array.
//!
//! Run it with `cargo run -p example-w3c-test-service` (listens on 127.0.0.1:5000, or on
//! `ADDR`), then:
//!
//! - run the W3C harness against it: `python test/test.py http://127.0.0.1:5000/test` in a
//!   checkout of `w3c/trace-context`;
//! - or by hand, with a listener on port 8080 (`nc -l 127.0.0.1 8080`) to look at the
//!   headers of the outgoing call:
//!   `curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
//!   -d '[{"url": "http://127.0.0.1:8080/", "arguments": []}]' 127.0.0.1:5000/test`;
//!   its `traceparent` keeps trace id `4bf92f35...` with a new parent id;
//! - on stdout, JSON log lines with that `trace_id`; with
//!   `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317`, a server span `POST /test` and one
//!   CLIENT span `POST` under it per call in your trace viewer.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sightline::Sightline;
use sightline::middleware::client::Client;
use tower::{ServiceBuilder, ServiceExt as _};

/// The outgoing HTTP client: hyper's, behind the Sightline client layer.
type TracedClient = Client<HyperClient<HttpConnector, Full<Bytes>>>;

/// How long one downstream call (head and body) may take before it is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let sightline = Sightline::builder()
        .service_name("w3c-test-service")
        .build()?;

    let hyper_client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client: TracedClient = ServiceBuilder::new()
        .layer(sightline.http_client_layer())
        .service(hyper_client);

    let app = Router::new()
        .route("/test", post(test))
        .with_state(client)
        .layer(sightline.http_server_layer());

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
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

/// One downstream call of the harness contract.
struct Call {
    url: String,
    arguments: serde_json::Value,
}

/// Reads `[{"url": string, "arguments": array}, ...]`; `None` for anything else.
fn parse_calls(body: &[u8]) -> Option<Vec<Call>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .as_array()?
        .iter()
        .map(|item| {
            let url = item.get("url")?.as_str()?.to_owned();
            let arguments = item.get("arguments")?;
            arguments.is_array().then(|| Call {
                url,
                arguments: arguments.clone(),
            })
        })
        .collect()
}

/// `POST /test`: makes the calls in order, each inside this request's server span.
async fn test(State(client): State<TracedClient>, body: Bytes) -> StatusCode {
    let Some(calls) = parse_calls(&body) else {
        tracing::info!("body is not an array of {{url, arguments}}");
        return StatusCode::BAD_REQUEST;
    };
    for call in calls {
        match tokio::time::timeout(CALL_TIMEOUT, send(&client, &call)).await {
            Ok(Ok(status)) => tracing::info!(url = %call.url, status, "called"),
            Ok(Err(error)) => tracing::warn!(url = %call.url, %error, "call failed"),
            Err(_) => tracing::warn!(url = %call.url, timeout = ?CALL_TIMEOUT, "call timed out"),
        }
    }
    StatusCode::OK
}

/// POSTs the call's `arguments` to its `url` and reads the answer to its end (the client
/// span ends with the response body).
async fn send(client: &TracedClient, call: &Call) -> Result<u16, String> {
    let request = http::Request::post(call.url.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(call.arguments.to_string())))
        .map_err(|e| format!("invalid request: {e}"))?;
    let response = client
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?;
    Ok(status)
}
