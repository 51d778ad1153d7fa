//! What every middleware of this crate shares, written once: the common configuration and its
//! setters, span start, propagation, address parsing, outcome classification, the response
//! future and body with the finish-once lifecycle, the access-log emitter and per-process name
//! interning.
//!
//! The protocol modules (`server`, `client`, `grpc::server`, `grpc::client`) import this module
//! and never each other: each is a layer, a service, a per-call state and its metrics.

pub(crate) mod access;
#[cfg(feature = "metrics")]
pub(crate) mod budget;
pub(crate) mod classify;
pub(crate) mod config;
pub(crate) mod forwarded;
pub(crate) mod headers;
pub(crate) mod intern;
pub(crate) mod lifecycle;
pub(crate) mod middleware;
pub(crate) mod net;
pub(crate) mod propagate;
pub(crate) mod query;
pub(crate) mod semconv;
pub(crate) mod span;
pub(crate) mod text_cache;
pub(crate) mod tracer;
