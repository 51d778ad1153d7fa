//! Tower middleware that gives axum services traces, RED metrics, request IDs and an access
//! log, following the OpenTelemetry semantic conventions.
//!
//! Most users reach this crate through the `sightline` facade, which also sets up exporters.
//! Used alone:
//!
//! ```
//! use axum::{Router, routing::get};
//! use sightline_http::server::ServerLayer;
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "{}" }))
//!     .layer(
//!         ServerLayer::builder()
//!             .tracer(opentelemetry::global::tracer("checkout"))
//!             .build(),
//!     );
//! ```
//!
//! # Features
//!
//! | feature | default? | what it does |
//! |---|---|---|
//! | `metrics` | yes | `http.server.request.duration` and `http.server.active_requests` through the `metrics` facade |
//! | `jaeger` | no | Jaeger's `uber-trace-id` as a propagation format |
//! | `grpc` | no | gRPC middlewares for tonic servers and channels ([`grpc`]) |
//! | `axum` | yes | route templates from axum's `MatchedPath`, client addresses from `ConnectInfo`, [`RequestId`] as an extractor |

pub mod access;
pub mod client;
mod core;
#[cfg(feature = "metrics")]
pub mod exemplars;
#[cfg(feature = "grpc")]
pub mod grpc;
mod head;
#[cfg(all(test, feature = "metrics", feature = "grpc"))]
mod interning_tests;
pub mod request_id;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod server;
mod server_span;

pub use client::{ClientLayer, ClientLayerBuilder};
pub use core::headers::DEFAULT_SENSITIVE_HEADERS;
pub use core::span::REQUEST_SPAN_FIELDS;
pub use head::{RequestHead, ResponseHead};
pub use request_id::RequestId;
pub use server::{ServerLayer, ServerLayerBuilder};
pub use server_span::{ServerSpan, server_span};
