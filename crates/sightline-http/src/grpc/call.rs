//! What a gRPC call carries on either side, from its start to the end of its response
//! stream, and where its status is decided: from the trailers, a trailers-only head or a
//! non-200 HTTP status, else from how the call ended.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute;

use super::body::MessageCounter;
use super::code::Code;
use super::method::{MethodInfo, Resolved};
use super::{Grpc, RPC_STATUS_CODE, legacy};
use crate::core::classify::{ErrorKind, Outcome};
use crate::core::config::Common;
use crate::core::headers::HeaderCapture;
use crate::core::lifecycle::Call;
use crate::core::span;

/// How much earlier than the caller's deadline a drop still counts as the deadline: tonic
/// starts its timer before this layer's clock starts.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

/// What differs between the server's and the client's calls.
pub(crate) trait Side {
    /// The layer's configuration.
    fn config(&self) -> (&Common, &Grpc);

    /// The `tracing` span the inner service is called and polled in.
    fn span(&self) -> Option<&tracing::Span> {
        None
    }

    /// The OpenTelemetry context attached while the inner service is called and polled.
    fn context(&self) -> Option<&Context>;

    /// The response head arrived (after its status and metadata were read).
    fn on_head(&mut self, _headers: &mut http::HeaderMap) {}

    /// The code an error of the inner service stands for.
    fn failed(kind: ErrorKind) -> Code;

    /// Whether a panic of the inner service becomes an `INTERNAL` answer (a server).
    fn catches_panics(&self) -> bool {
        false
    }

    /// The call ended: a server lowers its in-flight gauge.
    #[cfg(feature = "metrics")]
    fn ended(&self, _labels: &super::metrics::Labels) {}

    /// The messages received in the request stream (a client cannot see them).
    #[cfg(feature = "metrics")]
    fn request_messages(&self) -> u64 {
        0
    }

    /// Writes the access log, after the span ended.
    fn log(&self, _call: &CallCore, _settled: &Settled) {}
}

/// A gRPC call's state: what both sides keep, and what one side adds.
pub(crate) struct GrpcCall<X> {
    pub(crate) core: CallCore,
    pub(crate) side: X,
}

impl<X: Side> Call for GrpcCall<X> {
    fn span(&self) -> Option<&tracing::Span> {
        self.side.span()
    }

    fn context(&self) -> Option<&Context> {
        self.side.context()
    }

    fn on_head(&mut self, parts: &mut http::response::Parts) {
        self.core.on_head(parts, &self.side.config().0.capture);
        self.side.on_head(&mut parts.headers);
    }

    fn on_data(&mut self, data: &impl Buf) {
        self.core.on_data(data, self.side.config().1.message_counts);
    }

    fn catches_panics(&self) -> bool {
        self.side.catches_panics()
    }

    fn on_panic(&mut self, message: Option<&str>) {
        self.core.panicked = Some(message.map(str::to_owned));
    }

    /// A trailers-only `INTERNAL` answer, as tonic gives a handler's error.
    fn panic_response(&self) -> http::response::Parts {
        let (mut parts, ()) = http::Response::new(()).into_parts();
        let headers = &mut parts.headers;
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("13"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("the%20handler%20panicked"),
        );
        parts
    }

    fn on_trailers(&mut self, trailers: &http::HeaderMap) {
        self.core
            .on_trailers(trailers, &self.side.config().0.capture);
    }

    fn finish(&mut self, outcome: Outcome) {
        let grpc = self.side.config().1;
        let settled = self.core.settle(grpc, outcome, X::failed);
        #[cfg(feature = "metrics")]
        if let Some(labels) = &grpc.metrics {
            self.side.ended(labels);
            let messages = grpc.message_counts.then(|| {
                (
                    self.side.request_messages(),
                    self.core.response_messages.count,
                )
            });
            labels.record(
                self.core.info(grpc),
                settled.code,
                settled.error,
                settled.elapsed.as_secs_f64(),
                messages,
                self.core.span.as_ref().map(|span| span.span_context()),
            );
        }
        self.core.end_span(grpc, &settled);
        self.side.log(&self.core, &settled);
    }
}

/// The part of a call's state both sides keep.
pub(crate) struct CallCore {
    pub(crate) start: Instant,
    pub(crate) method: Resolved,
    /// The caller's deadline (`grpc-timeout`), measured from `start`.
    pub(crate) deadline: Option<Duration>,
    pub(crate) span: Option<crate::core::tracer::CallSpan>,
    /// Whether the span got its method attributes at the start.
    pub(crate) method_recorded: bool,
    /// The status, once the response head (trailers-only) or trailers told it.
    code: Option<Code>,
    /// The response head came without a status: a handler is answering with a stream.
    streamed: bool,
    pub(crate) response_bytes: u64,
    pub(crate) response_messages: MessageCounter,
    /// The inner service panicked, with its message when it had one.
    pub(crate) panicked: Option<Option<String>>,
}

/// How a call ended, once its status is decided.
pub(crate) struct Settled {
    pub(crate) elapsed: Duration,
    pub(crate) code: Code,
    /// Whether `code` is one of the layer's error codes.
    pub(crate) error: bool,
}

impl CallCore {
    pub(crate) fn new(
        start: Instant,
        method: Resolved,
        headers: &http::HeaderMap,
        span: Option<crate::core::tracer::CallSpan>,
        method_recorded: bool,
    ) -> Self {
        Self {
            start,
            method,
            deadline: grpc_timeout(headers),
            span,
            method_recorded,
            code: None,
            streamed: false,
            response_bytes: 0,
            response_messages: MessageCounter::default(),
            panicked: None,
        }
    }

    /// Reads a trailers-only status from the response head (a non-200 HTTP status stands for
    /// a gRPC code of its own) and records the captured response metadata.
    fn on_head(&mut self, parts: &http::response::Parts, capture: &HeaderCapture) {
        self.code = Code::from_headers(&parts.headers).or_else(|| {
            (parts.status != http::StatusCode::OK).then(|| Code::from_http_status(parts.status))
        });
        self.streamed = self.code.is_none();
        capture.record_response_head(parts, self.span.as_mut());
    }

    fn on_data(&mut self, data: &impl Buf, count_messages: bool) {
        self.response_bytes += data.remaining() as u64;
        if count_messages {
            self.response_messages.feed_buf(data);
        }
    }

    fn on_trailers(&mut self, trailers: &http::HeaderMap, capture: &HeaderCapture) {
        self.code = Code::from_headers(trailers).or(self.code);
        capture.record_response(trailers, self.span.as_mut());
    }

    /// Decides the call's status, and settles a method first seen in this call: it is
    /// recognised once a handler answered it. `failed` is the code an error of the inner
    /// service stands for on this side.
    fn settle(
        &mut self,
        grpc: &Grpc,
        outcome: Outcome,
        failed: impl FnOnce(ErrorKind) -> Code,
    ) -> Settled {
        let elapsed = self.start.elapsed();
        let code = match outcome {
            Outcome::Completed => self.code.unwrap_or(Code::Unknown),
            Outcome::Failed(kind) => self.code.unwrap_or_else(|| failed(kind)),
            Outcome::BodyFailed => self.code.unwrap_or(Code::Unknown),
            // tonic enforces `grpc-timeout` outside this layer by dropping the call: a drop
            // at or past the caller's deadline is the deadline, not the caller leaving.
            // tonic's clock starts a little before this layer sees the call (measured: the
            // drop came 0.15 ms short of the deadline by our clock), hence the slack.
            Outcome::Cancelled if self.deadline.is_some_and(|d| elapsed + DEADLINE_SLACK >= d) => {
                Code::DeadlineExceeded
            }
            Outcome::Cancelled => Code::Cancelled,
        };
        if let Resolved::Pending(name) = &self.method {
            self.method = grpc.methods.settle(name, self.served());
        }
        Settled {
            elapsed,
            code,
            error: grpc.error_codes.contains(code),
        }
    }

    /// What proves a handler answered: a response head without a status (it streams its
    /// answer, even if the caller then cancels), or a trailers-only status a handler gives
    /// (not UNAVAILABLE or RESOURCE_EXHAUSTED, what load shedding and limits in front of the
    /// handlers answer). A drop before the head, a deadline or an inner layer's error says
    /// nothing about the method; UNIMPLEMENTED says it does not exist.
    fn served(&self) -> bool {
        match (self.streamed, self.code) {
            (_, Some(Code::Unimplemented)) => false,
            (true, _) => true,
            (false, Some(code)) => !matches!(code, Code::Unavailable | Code::ResourceExhausted),
            (false, None) => false,
        }
    }

    /// The method, or `_OTHER` when it is not recognised.
    pub(crate) fn info<'a>(&'a self, grpc: &'a Grpc) -> &'a MethodInfo {
        match &self.method {
            Resolved::Known(info) => info,
            _ => grpc.methods.other(),
        }
    }

    /// Ends the span: the method attributes if the start did not know them, the status and,
    /// for an error code, `error.type` and status Error.
    fn end_span(&mut self, grpc: &Grpc, settled: &Settled) {
        let Some(mut otel) = self.span.take() else {
            return;
        };
        let info = self.info(grpc);
        if info.is_other() {
            otel.update_name(Cow::Borrowed("grpc"));
        }
        let mut attrs = Vec::with_capacity(4);
        if !self.method_recorded {
            method_attributes(grpc, info, &self.method, &mut attrs);
        }
        attrs.push(if grpc.legacy_semconv {
            KeyValue::new(
                legacy::RPC_GRPC_STATUS_CODE,
                i64::from(settled.code.as_i32()),
            )
        } else {
            KeyValue::new(RPC_STATUS_CODE, settled.code.as_str())
        });
        if settled.error {
            attrs.push(KeyValue::new(attribute::ERROR_TYPE, settled.code.as_str()));
        }
        if let Some(message) = self.panicked.take() {
            use opentelemetry::trace::Span as _;
            let mut event = vec![KeyValue::new(attribute::EXCEPTION_TYPE, "panic")];
            if let Some(message) = message {
                event.push(KeyValue::new(attribute::EXCEPTION_MESSAGE, message));
            }
            otel.add_event("exception", event);
        }
        span::end(otel, attrs, settled.error);
    }
}

/// `rpc.system.name = "grpc"` (`rpc.system` with the legacy names).
pub(crate) fn system_attribute(grpc: &Grpc) -> KeyValue {
    if grpc.legacy_semconv {
        KeyValue::new(legacy::RPC_SYSTEM, "grpc")
    } else {
        KeyValue::new(attribute::RPC_SYSTEM_NAME, "grpc")
    }
}

/// The span name of a call: `rpc.method`, or `grpc` for a method not (yet) recognised.
pub(crate) fn span_name(method: &Resolved) -> Cow<'static, str> {
    match method {
        Resolved::Known(info) if !info.is_other() => Cow::Borrowed(info.rpc_method),
        Resolved::Pending(name) => Cow::Owned(name.to_string()),
        _ => Cow::Borrowed("grpc"),
    }
}

/// Appends the method attributes of a span: `rpc.method` (and `rpc.method_original` for an
/// unrecognised method), or the pre-1.38 `rpc.service` and `rpc.method`.
pub(crate) fn method_attributes(
    grpc: &Grpc,
    info: &MethodInfo,
    resolved: &Resolved,
    attrs: &mut Vec<KeyValue>,
) {
    if grpc.legacy_semconv {
        if info.is_other() {
            // The old conventions had no `_OTHER`: the service and method as asked.
            let (service, method) = resolved
                .requested()
                .split_once('/')
                .unwrap_or((resolved.requested(), ""));
            attrs.push(KeyValue::new(legacy::RPC_SERVICE, service.to_owned()));
            attrs.push(KeyValue::new(attribute::RPC_METHOD, method.to_owned()));
        } else {
            attrs.push(KeyValue::new(legacy::RPC_SERVICE, info.service));
            attrs.push(KeyValue::new(attribute::RPC_METHOD, info.short_method));
        }
    } else {
        attrs.push(KeyValue::new(attribute::RPC_METHOD, info.rpc_method));
        if info.is_other() {
            attrs.push(KeyValue::new(
                attribute::RPC_METHOD_ORIGINAL,
                resolved.requested().to_owned(),
            ));
        }
    }
}

/// Bytes and messages of the request stream, counted by the request body wrapper (which the
/// inner service owns) and read when the call ends.
#[derive(Default)]
pub(crate) struct RequestCounters {
    pub(crate) bytes: std::sync::atomic::AtomicU64,
    pub(crate) messages: std::sync::atomic::AtomicU64,
}

/// The request counters of a call, when anything reads them.
pub(crate) fn request_counters(wanted: bool) -> Option<Arc<RequestCounters>> {
    wanted.then(|| Arc::new(RequestCounters::default()))
}

/// The `grpc-timeout` of a request: 1 to 8 ASCII digits and a unit (`H`, `M`, `S`, `m`, `u`,
/// `n`); `None` when absent or malformed.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.as_bytes();
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::grpc_timeout;
    use std::time::Duration;

    #[test]
    fn timeouts() {
        let parse = |v: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_static(v));
            grpc_timeout(&headers)
        };
        assert_eq!(parse("200m"), Some(Duration::from_millis(200)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
