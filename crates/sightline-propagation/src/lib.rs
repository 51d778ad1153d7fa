//! W3C Trace Context, W3C Baggage and B3 codecs: pure parsing and formatting of trace-context
//! headers, with no async runtime, no Tower and no HTTP types unless asked for.
//!
//! The middleware in `sightline-http` uses [`Propagator`]; queues and custom transports can use
//! it too, or the codecs one by one: [`traceparent`], [`tracestate`], [`baggage`] and [`b3`].
//!
//! # Quick start
//!
//! ```
//! use sightline_propagation::{InjectContext, Propagator, SpanId};
//!
//! let propagator = Propagator::new(); // W3C + B3 in, W3C out, baggage on
//!
//! // any `HeaderSource`: `http::HeaderMap` (feature `http`) or a list of pairs
//! let incoming = [
//!     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//!     ("baggage", "tenant=acme"),
//! ];
//! let extracted = propagator.extract(&incoming);
//! assert!(!extracted.errors.any());
//! let parent = extracted.parent.expect("a valid remote parent");
//! assert_eq!(parent.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//!
//! // ...start a span with `parent` as its parent, then call out with the new span's id:
//! let mut outgoing: Vec<(String, String)> = Vec::new();
//! propagator.inject(
//!     &InjectContext {
//!         trace_id: parent.trace_id,
//!         span_id: SpanId([0x2a; 8]),
//!         flags: parent.flags,
//!         tracestate: parent.tracestate.as_ref(),
//!         baggage: extracted.baggage.as_ref(),
//!         b3_debug: parent.b3_debug,
//!     },
//!     &mut outgoing,
//! );
//! assert_eq!(outgoing[0], ("traceparent".into(), "00-4bf92f3577b34da6a3ce929d0e0e4736-2a2a2a2a2a2a2a2a-01".into()));
//! assert_eq!(outgoing[1], ("baggage".into(), "tenant=acme".into()));
//! ```
//!
//! # What is enforced
//!
//! - `traceparent`: exactly one header line; version `00` exactly 55 characters; later
//!   versions read by their prefix; `ff` invalid; lowercase hex only; no all-zero ids; the
//!   `random` flag kept; unknown flag bits never written. A rejected `traceparent` drops the
//!   `tracestate` with it.
//! - `tracestate`: lines combined; the Level 2 key grammar (no `tenant@system` limits) and
//!   the value grammar; at most 32 members, else the whole header is dropped; a duplicated key
//!   keeps its first member; truncation drops whole members.
//! - `baggage`: lenient per member; percent-decoding; properties kept; at most 64 members and
//!   8192 bytes, whole members only. A `+` is a literal plus (see [`baggage`]).
//! - B3: single header before multi; 64- or 128-bit trace ids; `0`/`1`/`d` and
//!   `X-B3-Flags: 1`; sampling-only values such as `b3: 0`.
//!
//! Every parser says why it rejected a value ([`TraceparentError`], [`TracestateError`],
//! [`b3::B3Error`]) and is tested never to panic on arbitrary bytes.
//!
//! # Features
//!
//! | feature         | default? | what it does                                                                       |
//! |-----------------|----------|------------------------------------------------------------------------------------|
//! | `http`          | no       | implements [`HeaderSource`] and [`HeaderSink`] for `http::HeaderMap`                |
//! | `jaeger`        | no       | the [`jaeger`](crate) module: Jaeger `uber-trace-id` as `Format::Jaeger`            |
//! | `opentelemetry` | no       | the `otel` module: `TextMapPropagator` for W3C Trace Context, B3 and W3C Baggage    |

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod b3;
pub mod baggage;
mod headers;
mod ids;
#[cfg(feature = "jaeger")]
#[cfg_attr(docsrs, doc(cfg(feature = "jaeger")))]
pub mod jaeger;
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub mod otel;
mod propagator;
pub mod traceparent;
pub mod tracestate;

pub use baggage::Baggage;
pub use headers::{HeaderSink, HeaderSource};
pub use ids::{SpanId, TraceFlags, TraceId};
pub use propagator::{
    BAGGAGE, DEFAULT_MAX_TRACESTATE_LEN, ExtractErrors, Extracted, Format, InjectContext,
    Propagator, PropagatorBuilder, RemoteContext, TRACEPARENT, TRACESTATE,
};
pub use traceparent::{Traceparent, TraceparentBuf, TraceparentError};
pub use tracestate::{TraceState, TracestateError};
