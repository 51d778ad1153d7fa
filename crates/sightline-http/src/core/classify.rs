//! How a call ended, and what kind of failure an error is: decided from types, never from an
//! error's text.

use std::error::Error;

use http::StatusCode;

use super::semconv;

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Outcome {
    /// The response stream reached its end.
    Completed,
    /// The inner service returned an error of this kind.
    Failed(ErrorKind),
    /// The response body returned an error.
    BodyFailed,
    /// The future or body was dropped before the end: the caller went away.
    Cancelled,
}

/// What kind of failure an inner service's error is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ErrorKind {
    /// A timeout: an [`std::io::ErrorKind::TimedOut`], tower's `Elapsed`, tonic's
    /// `TimeoutExpired` or a `DEADLINE_EXCEEDED` status, anywhere in the source chain.
    Timeout,
    /// A cancellation: a `CANCELLED` status.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    Cancelled,
    /// Anything else.
    Other,
}

/// The kind of `error`, found by walking its source chain and looking at each link's type.
///
/// A concrete error type is recognised when it is one of the types above, or a boxed
/// `dyn Error` (tower's `BoxError`); another concrete type is [`ErrorKind::Other`], as its
/// sources cannot be reached through `Debug + Display`.
pub(crate) fn error_kind<E>(error: &E) -> ErrorKind
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
        } else if let Some(e) = any.downcast_ref::<tower::timeout::error::Elapsed>() {
            Some(e)
        } else if let Some(e) = reqwest_root(any) {
            Some(e)
        } else {
            grpc_root(any)
        };
    let mut link = root;
    while let Some(e) = link {
        if let Some(kind) = link_kind(e) {
            return kind;
        }
        link = e.source();
    }
    ErrorKind::Other
}

/// A `reqwest-middleware` error: `reqwest`'s own, or the middleware's.
#[cfg(feature = "reqwest")]
fn reqwest_root(any: &dyn std::any::Any) -> Option<&(dyn Error + 'static)> {
    match any.downcast_ref::<reqwest_middleware::Error>()? {
        reqwest_middleware::Error::Reqwest(e) => Some(e),
        reqwest_middleware::Error::Middleware(e) => Some(e.as_ref()),
    }
}

#[cfg(not(feature = "reqwest"))]
fn reqwest_root(_: &dyn std::any::Any) -> Option<&(dyn Error + 'static)> {
    None
}

#[cfg(feature = "grpc")]
fn grpc_root(any: &dyn std::any::Any) -> Option<&(dyn Error + 'static)> {
    if let Some(e) = any.downcast_ref::<tonic::Status>() {
        Some(e)
    } else if let Some(e) = any.downcast_ref::<tonic::transport::Error>() {
        Some(e)
    } else {
        None
    }
}

#[cfg(not(feature = "grpc"))]
fn grpc_root(_: &dyn std::any::Any) -> Option<&(dyn Error + 'static)> {
    None
}

/// The kind one link of a source chain tells, if it tells one.
fn link_kind(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return (io.kind() == std::io::ErrorKind::TimedOut).then_some(ErrorKind::Timeout);
    }
    if e.is::<tower::timeout::error::Elapsed>() {
        return Some(ErrorKind::Timeout);
    }
    #[cfg(feature = "reqwest")]
    if let Some(e) = e.downcast_ref::<reqwest::Error>() {
        return e.is_timeout().then_some(ErrorKind::Timeout);
    }
    grpc_link_kind(e)
}

#[cfg(feature = "grpc")]
fn grpc_link_kind(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    if e.is::<tonic::TimeoutExpired>() {
        return Some(ErrorKind::Timeout);
    }
    match e.downcast_ref::<tonic::Status>()?.code() {
        tonic::Code::DeadlineExceeded => Some(ErrorKind::Timeout),
        tonic::Code::Cancelled => Some(ErrorKind::Cancelled),
        _ => None,
    }
}

#[cfg(not(feature = "grpc"))]
fn grpc_link_kind(_: &(dyn Error + 'static)) -> Option<ErrorKind> {
    None
}

/// Which side of a call the middleware is on: a server fails on 5xx answers, a client also on
/// 4xx ones.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Side {
    Server,
    Client,
}

/// `error.type` of a finished HTTP call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum HttpError {
    /// No error.
    None,
    /// An answer the side counts as an error; the status is the error type.
    Status(StatusCode),
    /// The inner service timed out.
    Timeout,
    /// The inner service or the response body failed.
    Other,
    /// The caller went away before the end.
    Cancelled,
}

impl HttpError {
    /// Classifies a finished HTTP call.
    pub(crate) fn of(side: Side, status: Option<StatusCode>, outcome: Outcome) -> Self {
        let status_error = status.filter(|s| match side {
            Side::Server => s.is_server_error(),
            Side::Client => s.is_client_error() || s.is_server_error(),
        });
        match (side, outcome, status_error) {
            // A client's own failure names it even after an error answer's head.
            (Side::Client, Outcome::Failed(ErrorKind::Timeout), _) => Self::Timeout,
            (Side::Client, Outcome::Failed(_) | Outcome::BodyFailed, _) => Self::Other,
            (_, _, Some(status)) => Self::Status(status),
            (_, Outcome::Completed, None) => Self::None,
            (_, Outcome::Failed(_) | Outcome::BodyFailed, None) => Self::Other,
            (_, Outcome::Cancelled, None) => Self::Cancelled,
        }
    }

    /// The `error.type` value; `None` when the call succeeded.
    pub(crate) fn as_str(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Status(status) => Some(semconv::status_str(status)),
            Self::Timeout => Some("timeout"),
            Self::Other => Some(semconv::OTHER),
            Self::Cancelled => Some("cancelled"),
        }
    }

    /// A small number per kind, for metric-handle cache keys (the status is keyed apart).
    #[cfg(feature = "metrics")]
    pub(crate) fn class(self) -> u32 {
        match self {
            Self::None | Self::Status(_) => 0,
            Self::Other => 1,
            Self::Cancelled => 2,
            Self::Timeout => 3,
        }
    }

    /// Whether the span's status is Error: an error answer or a failure, not a cancellation.
    pub(crate) fn is_span_error(self) -> bool {
        matches!(self, Self::Status(_) | Self::Timeout | Self::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error: timed out")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn timeouts_are_found_by_type_along_the_source_chain() {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "timeout");
        assert_eq!(error_kind(&timed_out()), ErrorKind::Timeout);
        assert_eq!(error_kind(&refused()), ErrorKind::Other, "text is not read");
        let boxed: Box<dyn Error + Send + Sync> = Box::new(Wrapper(timed_out()));
        assert_eq!(
            error_kind(&boxed),
            ErrorKind::Timeout,
            "source chain is walked"
        );
        let boxed: Box<dyn Error + Send + Sync> = Box::new(Wrapper(refused()));
        assert_eq!(error_kind(&boxed), ErrorKind::Other);
        let elapsed: Box<dyn Error + Send + Sync> = Box::new(tower::timeout::error::Elapsed::new());
        assert_eq!(error_kind(&elapsed), ErrorKind::Timeout);
        assert_eq!(
            error_kind(&Wrapper(timed_out())),
            ErrorKind::Other,
            "a concrete type's sources cannot be reached"
        );
        assert_eq!(error_kind(&"request timed out"), ErrorKind::Other);
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn tonic_statuses_and_timeouts() {
        let deadline = tonic::Status::deadline_exceeded("late");
        assert_eq!(error_kind(&deadline), ErrorKind::Timeout);
        assert_eq!(
            error_kind(&tonic::Status::cancelled("gone")),
            ErrorKind::Cancelled
        );
        assert_eq!(
            error_kind(&tonic::Status::internal("timeout")),
            ErrorKind::Other
        );
        let expired: Box<dyn Error + Send + Sync> = Box::new(tonic::TimeoutExpired(()));
        assert_eq!(error_kind(&expired), ErrorKind::Timeout);
    }

    #[test]
    fn http_errors_by_side() {
        let s = |code| Some(StatusCode::from_u16(code).expect("valid"));
        use Outcome::*;
        assert_eq!(
            HttpError::of(Side::Server, s(404), Completed),
            HttpError::None
        );
        assert_eq!(
            HttpError::of(Side::Client, s(404), Completed).as_str(),
            Some("404")
        );
        assert_eq!(
            HttpError::of(Side::Server, s(503), BodyFailed).as_str(),
            Some("503")
        );
        assert_eq!(
            HttpError::of(Side::Client, s(503), BodyFailed).as_str(),
            Some("_OTHER")
        );
        assert_eq!(
            HttpError::of(Side::Client, None, Failed(ErrorKind::Timeout)).as_str(),
            Some("timeout")
        );
        assert_eq!(
            HttpError::of(Side::Server, None, Failed(ErrorKind::Timeout)).as_str(),
            Some("_OTHER"),
            "a server passes its inner errors on as _OTHER"
        );
        assert_eq!(
            HttpError::of(Side::Server, s(200), Cancelled).as_str(),
            Some("cancelled")
        );
        assert!(!HttpError::Cancelled.is_span_error());
    }
}
