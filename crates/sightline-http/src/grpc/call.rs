//! What a call carries from its start to the end of its response stream, and the one place
//! where it ends. Shared by the server and client middlewares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use http::HeaderValue;
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span as _, Status};
use opentelemetry::{Context, KeyValue};

use super::Shared;
use super::code::Code;
use super::method::{MethodInfo, Resolved};
use crate::request_id::RequestId;

/// How a call ended, before its status is known.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    /// The response stream reached its end (with or without a status).
    Completed,
    /// The inner service or the response body returned an error; the code it stands for.
    Failed(Code),
    /// The future or body was dropped before the end: the caller went away or cancelled.
    Cancelled,
}

/// Bytes and messages of the request stream, counted by the request body wrapper (which the
/// inner service owns) and read when the call ends.
#[derive(Default)]
pub(crate) struct RequestCounters {
    pub(crate) bytes: AtomicU64,
    pub(crate) messages: AtomicU64,
}

/// How much earlier than the caller's deadline a drop still counts as the deadline: tonic
/// starts its timer before this layer's clock starts.
const DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_millis(5);

/// Per-call state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody). Dropping it unfinished ends the call as cancelled,
/// so no path leaks a span or an in-flight gauge.
pub(crate) struct CallState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: Instant,
    pub(crate) method: Resolved,
    pub(crate) health_check: bool,
    /// The caller's deadline (`grpc-timeout`), measured from `start`.
    pub(crate) deadline: Option<std::time::Duration>,
    pub(crate) otel_span: Option<BoxedSpan>,
    /// The call's span as an OpenTelemetry context, attached while the inner service runs.
    pub(crate) otel_cx: Option<Context>,
    pub(crate) span: tracing::Span,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) client_addr: Option<SocketAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) request: Option<Arc<RequestCounters>>,
    /// The status, once the response head (trailers-only) or trailers told it.
    pub(crate) code: Option<Code>,
    /// The response head came without a status: a handler is answering with a stream.
    pub(crate) streamed: bool,
    pub(crate) response_bytes: u64,
    pub(crate) response_messages: super::body::MessageCounter,
    /// The method whose in-flight gauge went up (`None`: `_OTHER`).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) active_at_start: Option<Arc<MethodInfo>>,
    /// Whether the span got its method attributes at the start.
    pub(crate) method_recorded: bool,
    pub(crate) finished: bool,
}

impl CallState {
    /// Ends the call: metrics, span, access log. Runs at most once.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        let shared = Arc::clone(&self.shared);
        // What proves a handler answered: a response head without a status (it streams its
        // answer, even if the caller then cancels), or a trailers-only status a handler gives
        // (not UNAVAILABLE or RESOURCE_EXHAUSTED, what load shedding and limits in front of
        // the handlers answer). A drop before the head, a deadline or an inner layer's error
        // says nothing about the method; UNIMPLEMENTED says it does not exist.
        let served = match (self.streamed, self.code) {
            (_, Some(Code::Unimplemented)) => false,
            (true, _) => true,
            (false, Some(code)) => !matches!(code, Code::Unavailable | Code::ResourceExhausted),
            (false, None) => false,
        };
        let code = match outcome {
            Outcome::Completed => self.code.unwrap_or(Code::Unknown),
            Outcome::Failed(code) => self.code.unwrap_or(code),
            // tonic enforces `grpc-timeout` outside this layer by dropping the call: a drop
            // at or past the caller's deadline is the deadline, not the caller leaving.
            // tonic's clock starts a little before this layer sees the call (measured: the
            // drop came 0.15 ms short of the deadline by our clock), hence the slack.
            Outcome::Cancelled if self.deadline.is_some_and(|d| elapsed + DEADLINE_SLACK >= d) => {
                Code::DeadlineExceeded
            }
            Outcome::Cancelled => Code::Cancelled,
        };
        let error = shared.error_codes.contains(code);

        // A method first seen in this call is recognised once a handler answered it.
        if let Resolved::Pending(name) = &self.method {
            self.method = shared.methods.settle(name, served);
        }
        let info: &MethodInfo = match &self.method {
            Resolved::Known(info) => info,
            _ => shared.methods.other(),
        };

        #[cfg(feature = "metrics")]
        if let Some(style) = &shared.metrics {
            // Only servers keep an in-flight gauge.
            if shared.server {
                // The gauge went up under the method known at the start.
                style.active(self.active_method()).decrement(1.0);
            }
            let messages = shared.message_counts.then(|| {
                let requests = self
                    .request
                    .as_ref()
                    .map_or(0, |r| r.messages.load(Ordering::Relaxed));
                (requests, self.response_messages.count)
            });
            style.record(info, code, error, elapsed.as_secs_f64(), messages);
        }

        if let Some(mut span) = self.otel_span.take() {
            if info.is_other() {
                span.update_name(std::borrow::Cow::Borrowed("grpc"));
            }
            if !self.method_recorded {
                let mut attrs = Vec::with_capacity(2);
                push_method_attributes(&shared, info, &self.method, &mut attrs);
                for attr in attrs {
                    span.set_attribute(attr);
                }
            }
            if shared.legacy_semconv {
                span.set_attribute(KeyValue::new(
                    "rpc.grpc.status_code",
                    i64::from(code.as_i32()),
                ));
            } else {
                span.set_attribute(KeyValue::new("rpc.response.status_code", code.as_str()));
            }
            if error {
                span.set_attribute(KeyValue::new("error.type", code.as_str()));
                span.set_status(Status::error(""));
            }
            span.end_with_timestamp(SystemTime::now());
        }

        if shared.access_log && !self.health_check {
            self.log_access(info, code, error, elapsed.as_micros() as f64 / 1e3);
        }
    }

    /// Records the captured response metadata found in a response head or trailers.
    pub(crate) fn capture_response_metadata(&mut self, headers: &http::HeaderMap) {
        if let Some(span) = &mut self.otel_span
            && self.shared.metadata.captures_response()
        {
            for attr in self.shared.metadata.response(headers) {
                span.set_attribute(attr);
            }
        }
    }

    /// The method whose gauge went up when the call started (a pending method counts as
    /// `_OTHER` until it is recognised, so the gauge adds no series for unknown names).
    #[cfg(feature = "metrics")]
    fn active_method(&self) -> &MethodInfo {
        match &self.active_at_start {
            Some(info) => info,
            None => self.shared.methods.other(),
        }
    }

    fn log_access(&self, info: &MethodInfo, code: Code, error: bool, duration_ms: f64) {
        let rpc_method = info.rpc_method;
        let requested = self.method.requested();
        let method_original = info.is_other().then_some(requested);
        let status = code.as_str();
        let error_type = error.then_some(status);
        let request_bytes = self
            .request
            .as_ref()
            .map(|r| r.bytes.load(Ordering::Relaxed));
        let response_bytes = self.response_bytes;
        let client = self
            .client_addr
            .as_ref()
            .map(|a| crate::text_cache::ip(a.ip()));
        // Displayed (unquoted in text formats) as before, but not formatted again.
        let client = client.as_deref().map(tracing::field::display);
        let user_agent = self.user_agent.as_ref().map(crate::headers::header_text);
        let user_agent = user_agent.as_deref();
        macro_rules! access {
            ($level:expr) => {
                tracing::event!(
                    target: "sightline_http::access",
                    parent: &self.span,
                    $level,
                    rpc.system.name = "grpc",
                    rpc.method = rpc_method,
                    rpc.method_original = method_original,
                    rpc.response.status_code = status,
                    duration_ms,
                    rpc.request.body.size = request_bytes,
                    rpc.response.body.size = response_bytes,
                    client.address = client,
                    user_agent.original = user_agent,
                    error.type = error_type,
                    "call completed"
                )
            };
        }
        let levels = &self.shared.access_log_levels;
        let level = match code {
            Code::Ok => levels.success,
            _ if error => levels.server_error,
            _ => levels.client_error,
        };
        // One callsite per level: a `tracing` callsite has a fixed level.
        match level {
            None => {}
            Some(tracing::Level::ERROR) => access!(tracing::Level::ERROR),
            Some(tracing::Level::WARN) => access!(tracing::Level::WARN),
            Some(tracing::Level::INFO) => access!(tracing::Level::INFO),
            Some(tracing::Level::DEBUG) => access!(tracing::Level::DEBUG),
            Some(_) => access!(tracing::Level::TRACE),
        }
    }
}

impl Drop for CallState {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

/// Appends the method attributes of a span: `rpc.method` (and `rpc.method_original` for an
/// unrecognised method on the server), or the pre-1.38 `rpc.service` and `rpc.method`.
pub(crate) fn push_method_attributes(
    shared: &Shared,
    info: &MethodInfo,
    resolved: &Resolved,
    attrs: &mut Vec<KeyValue>,
) {
    if shared.legacy_semconv {
        if info.is_other() {
            // The old conventions had no `_OTHER`: the service and method as asked.
            let (service, method) = resolved
                .requested()
                .split_once('/')
                .unwrap_or((resolved.requested(), ""));
            attrs.push(KeyValue::new("rpc.service", service.to_owned()));
            attrs.push(KeyValue::new("rpc.method", method.to_owned()));
        } else {
            attrs.push(KeyValue::new("rpc.service", info.service));
            attrs.push(KeyValue::new("rpc.method", info.short_method));
        }
    } else {
        attrs.push(KeyValue::new("rpc.method", info.rpc_method));
        if info.is_other() {
            attrs.push(KeyValue::new(
                "rpc.method_original",
                resolved.requested().to_owned(),
            ));
        }
    }
}

/// The `grpc-timeout` of a request: 1 to 8 ASCII digits and a unit (`H`, `M`, `S`, `m`, `u`,
/// `n`); `None` when absent or malformed.
pub(crate) fn grpc_timeout(headers: &http::HeaderMap) -> Option<std::time::Duration> {
    use std::time::Duration;

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
