//! Access-log configuration shared by the HTTP and gRPC middlewares.
//!
//! Each completed request writes one access-log event (target `sightline_http::access`,
//! message `request completed`) whose level depends on how the request ended. The levels are
//! an [`AccessLogLevels`], set with
//! [`ServerLayerBuilder::access_log_levels`](crate::server::ServerLayerBuilder::access_log_levels).

use tracing::Level;

/// The level of the access-log event for each kind of outcome; `None` writes no event for that
/// kind.
///
/// Defaults to INFO for successes, WARN for client errors and ERROR for server errors. For
/// HTTP a *server error* is a 5xx answer; a *client error* is a 4xx answer, or a request that
/// ended without a complete response (the client went away, the inner service or the body
/// failed); everything else is a *success*.
///
/// The events are filtered like any other `tracing` event: a level below the subscriber's
/// filter (`RUST_LOG`) writes nothing either.
///
/// ```
/// use sightline_http::access::AccessLogLevels;
/// use tracing::Level;
///
/// // Successes only at DEBUG, client errors not at all; server errors stay ERROR.
/// let levels = AccessLogLevels {
///     success: Some(Level::DEBUG),
///     client_error: None,
///     ..AccessLogLevels::default()
/// };
/// let layer = sightline_http::ServerLayer::builder().access_log_levels(levels).build();
/// # drop(layer);
/// assert_eq!(AccessLogLevels::default().server_error, Some(Level::ERROR));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccessLogLevels {
    /// Requests that succeeded (HTTP: 1xx, 2xx and 3xx answers; gRPC: `OK`). Defaults to INFO.
    pub success: Option<Level>,
    /// Requests the client got wrong or abandoned (HTTP: 4xx answers, and requests that ended
    /// without a complete response; gRPC: codes other than `OK` that are not errors, such as
    /// `NOT_FOUND` or `CANCELLED`). Defaults to WARN.
    pub client_error: Option<Level>,
    /// Requests the server failed (HTTP: 5xx answers; gRPC: the layer's error codes). Defaults
    /// to ERROR.
    pub server_error: Option<Level>,
}

impl AccessLogLevels {
    /// No access-log event for any outcome.
    ///
    /// ```
    /// use sightline_http::access::AccessLogLevels;
    ///
    /// assert_eq!(AccessLogLevels::OFF.success, None);
    /// ```
    pub const OFF: AccessLogLevels = AccessLogLevels {
        success: None,
        client_error: None,
        server_error: None,
    };

    /// The default levels: INFO, WARN and ERROR.
    pub const DEFAULT: AccessLogLevels = AccessLogLevels {
        success: Some(Level::INFO),
        client_error: Some(Level::WARN),
        server_error: Some(Level::ERROR),
    };
}

impl Default for AccessLogLevels {
    fn default() -> Self {
        AccessLogLevels::DEFAULT
    }
}
