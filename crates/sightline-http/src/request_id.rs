//! Request IDs: kept when the caller sent a well-formed one, generated otherwise.
//!
//! The server middleware reads the request ID header (`x-request-id` by default). A value of
//! 1 to 128 visible ASCII characters (`!` to `~`) is kept as it is; anything else (empty, too
//! long, spaces, control characters, non-ASCII) is replaced by a freshly generated ID, so a
//! hostile value never reaches a log line. The ID is then:
//!
//! - set on the request headers, so handlers and downstream layers see the final value;
//! - inserted as a [`RequestId`] request extension (an axum extractor with the `axum` feature);
//! - recorded as the `request_id` field of the request's `tracing` span, so every log line of
//!   the request carries it;
//! - set on the response headers.
//!
//! ```
//! use sightline_http::request_id::RequestId;
//! use http::HeaderValue;
//!
//! assert!(RequestId::from_header_value(&HeaderValue::from_static("req-42")).is_some());
//! assert!(RequestId::from_header_value(&HeaderValue::from_static("has space")).is_none());
//! let generated = RequestId::generate();
//! assert_eq!(generated.as_str().len(), 36);
//! ```

use http::HeaderValue;

/// Longest request ID that is kept; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The default request ID header, `x-request-id`.
pub const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The ID of one request, as carried in the request ID header.
///
/// Always 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters, so it can be printed anywhere
/// without escaping. Cloning is cheap (a reference count).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Accepts `value` if it is 1 to 128 visible ASCII characters, else returns `None`.
    pub fn from_header_value(value: &HeaderValue) -> Option<Self> {
        is_valid(value.as_bytes()).then(|| Self(value.clone()))
    }

    /// Generates a random (version 4) UUID, formatted on the stack.
    pub fn generate() -> Self {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        // A lowercase hyphenated UUID is always a valid header value.
        Self(HeaderValue::from_str(text).expect("a UUID is a valid header value"))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // Validated as visible ASCII on construction.
        self.0.to_str().unwrap_or_default()
    }

    /// The ID as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `bytes` is an acceptable request ID: 1 to 128 visible ASCII characters.
pub fn is_valid(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The request ID of the request, or a new one: the first valid value of `name` in `headers`.
///
/// A request with several lines of the header is treated as malformed: it gets a new ID.
pub(crate) fn from_headers_or_generate(
    headers: &http::HeaderMap,
    name: &http::HeaderName,
) -> (RequestId, bool) {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => match RequestId::from_header_value(value) {
            Some(id) => (id, true),
            None => (RequestId::generate(), false),
        },
        _ => (RequestId::generate(), false),
    }
}

#[cfg(feature = "axum")]
mod extract {
    use super::RequestId;
    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;

    /// Rejection of the [`RequestId`] extractor when no Sightline server layer ran.
    #[derive(Debug, Clone, Copy)]
    pub struct MissingRequestId;

    impl IntoResponse for MissingRequestId {
        fn into_response(self) -> Response {
            (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "missing request ID: the Sightline server layer is not applied to this route",
            )
                .into_response()
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for RequestId {
        type Rejection = MissingRequestId;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<RequestId>()
                .cloned()
                .ok_or(MissingRequestId)
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestId {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<RequestId>().cloned())
        }
    }
}

#[cfg(feature = "axum")]
pub use extract::MissingRequestId;

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    #[test]
    fn validity_rules() {
        let long = "a".repeat(MAX_REQUEST_ID_LEN);
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let cases: &[(&[u8], bool, &str)] = &[
            (b"abc-123", true, "plain token"),
            (b"!~", true, "visible ASCII bounds"),
            (long.as_bytes(), true, "exactly 128 characters"),
            (b"", false, "empty"),
            (too_long.as_bytes(), false, "129 characters"),
            (b"a b", false, "space is not visible"),
            (b"a\tb", false, "tab"),
            (b"a\x1b[31m", false, "ANSI escape"),
            (b"caf\xc3\xa9", false, "non-ASCII"),
            (b"a\x7f", false, "DEL"),
        ];
        for (input, valid, why) in cases {
            assert_eq!(is_valid(input), *valid, "{why}");
        }
    }

    #[test]
    fn keeps_valid_replaces_invalid_and_duplicates() {
        let name = X_REQUEST_ID;
        let mut headers = HeaderMap::new();
        headers.insert(&name, HeaderValue::from_static("abc"));
        let (id, kept) = from_headers_or_generate(&headers, &name);
        assert!(kept);
        assert_eq!(id.as_str(), "abc");

        headers.append(&name, HeaderValue::from_static("def"));
        let (id, kept) = from_headers_or_generate(&headers, &name);
        assert!(!kept);
        assert_eq!(id.as_str().len(), 36);

        let mut headers = HeaderMap::new();
        headers.insert(&name, HeaderValue::from_bytes(b"x\ty").unwrap());
        let (id, kept) = from_headers_or_generate(&headers, &name);
        assert!(!kept);
        assert!(is_valid(id.as_str().as_bytes()));
    }

    #[test]
    fn generated_ids_are_unique_uuids() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().as_bytes()[14], b'4', "version 4");
    }
}
