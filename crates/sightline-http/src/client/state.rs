//! What an outgoing call carries from the request to the end of its response body, and the
//! one place where it ends.

use std::error::Error;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{StatusCode, Version};
use opentelemetry::KeyValue;
use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span as _, Status};
use opentelemetry_semantic_conventions::attribute;

use super::Shared;
use crate::semconv;

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    /// The response body reached its end.
    Completed,
    /// The inner service or the response body failed; the `error.type`.
    Failed(&'static str),
    /// The future or body was dropped before the end: the caller went away.
    Cancelled,
}

/// Per-call state, moved from the [`ResponseFuture`](super::ResponseFuture) into the
/// [`ResponseBody`](super::ResponseBody). Dropping it unfinished ends the call as cancelled.
pub(crate) struct CallState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) start: Instant,
    pub(crate) method: usize,
    pub(crate) server_address: Option<Arc<str>>,
    pub(crate) server_port: u16,
    pub(crate) span: Option<BoxedSpan>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) finished: bool,
}

impl CallState {
    /// Notes the response head.
    pub(crate) fn response(&mut self, status: StatusCode, version: Version) {
        self.status = Some(status);
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new(
                attribute::NETWORK_PROTOCOL_VERSION,
                semconv::protocol_version(version),
            ));
        }
    }

    /// Records the captured response headers on the span.
    pub(crate) fn capture_response_headers(&mut self, headers: &http::HeaderMap) {
        if let (true, Some(span)) = (self.shared.headers.captures_response(), &mut self.span) {
            for attribute in self.shared.headers.response(headers) {
                span.set_attribute(attribute);
            }
        }
    }

    /// Ends the call: span and metrics. Runs at most once.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        let status = self.status;
        let http_error = status.is_some_and(|s| s.is_client_error() || s.is_server_error());
        let error_type: Option<&'static str> = match outcome {
            Outcome::Failed(error_type) => Some(error_type),
            _ if http_error => status.map(semconv::status_str),
            Outcome::Completed => None,
            Outcome::Cancelled => Some("cancelled"),
        };

        #[cfg(feature = "metrics")]
        if let Some(histograms) = &self.shared.histograms {
            histograms.record(
                &super::metrics::CallLabels {
                    method: self.method,
                    server_address: self.server_address.as_ref(),
                    server_port: self.server_port,
                    status,
                    error_type,
                },
                elapsed.as_secs_f64(),
            );
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (
            elapsed,
            self.method,
            self.server_port,
            &self.server_address,
            &self.shared,
        );

        if let Some(mut span) = self.span.take() {
            if let Some(status) = status {
                span.set_attribute(KeyValue::new(
                    attribute::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                ));
            }
            if let Some(error_type) = error_type {
                span.set_attribute(KeyValue::new(attribute::ERROR_TYPE, error_type));
            }
            if http_error || matches!(outcome, Outcome::Failed(_)) {
                span.set_status(Status::error(""));
            }
            span.end_with_timestamp(SystemTime::now());
        }
    }
}

impl Drop for CallState {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

/// `error.type` of a failed call: `timeout` when the error, or one of its sources, is an
/// [`std::io::ErrorKind::TimedOut`] or speaks of a timeout; `_OTHER` otherwise.
///
/// Runs only on the error path, so formatting the error here is acceptable.
pub(crate) fn error_type<E>(error: &E) -> &'static str
where
    E: std::fmt::Debug + std::fmt::Display + 'static,
{
    let any: &dyn std::any::Any = error;
    let root: Option<&(dyn Error + 'static)> =
        if let Some(e) = any.downcast_ref::<Box<dyn Error + Send + Sync>>() {
            Some(&**e)
        } else if let Some(e) = any.downcast_ref::<Box<dyn Error + Send>>() {
            Some(&**e)
        } else if let Some(e) = any.downcast_ref::<Box<dyn Error>>() {
            Some(&**e)
        } else if let Some(e) = any.downcast_ref::<std::io::Error>() {
            Some(e)
        } else {
            None
        };
    let timed_out = match root {
        Some(mut e) => loop {
            if link_timed_out(e) {
                break true;
            }
            match e.source() {
                Some(next) => e = next,
                None => break false,
            }
        },
        // A concrete error type: its `Debug` usually shows the whole chain
        // (`hyper_util`'s shows `kind: TimedOut`).
        None => mentions_timeout(&error.to_string()) || mentions_timeout(&format!("{error:?}")),
    };
    if timed_out { "timeout" } else { "_OTHER" }
}

fn link_timed_out(e: &(dyn Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        || mentions_timeout(&e.to_string())
        || mentions_timeout(&format!("{e:?}"))
}

fn mentions_timeout(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("timed out") || text.contains("timeout") || text.contains("timedout")
}

#[cfg(test)]
mod tests {
    use super::error_type;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn classifies_timeouts() {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "no");
        assert_eq!(error_type(&timed_out()), "timeout");
        assert_eq!(error_type(&refused()), "_OTHER");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Wrapper(timed_out()));
        assert_eq!(error_type(&boxed), "timeout", "source chain is walked");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Wrapper(refused()));
        assert_eq!(error_type(&boxed), "_OTHER");
        assert_eq!(
            error_type(&Wrapper(timed_out())),
            "timeout",
            "Debug shows the kind"
        );
        assert_eq!(error_type(&"request timed out"), "timeout");
    }
}
