//! Fixed vocabularies of the HTTP semantic conventions as `&'static str`, so that a request
//! records its method, status and protocol without allocating.

use http::{Method, StatusCode, Version};

/// The methods the semantic conventions know; anything else is recorded as `_OTHER`.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];

/// What the semantic conventions record for a value outside a known set (a method, an error).
pub(crate) const OTHER: &str = "_OTHER";

/// Index into [`METHODS`] of `_OTHER`.
pub(crate) const OTHER_METHOD: usize = 9;

/// Index into [`METHODS`] for a request method.
pub(crate) fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => OTHER_METHOD,
    }
}

/// `network.protocol.version` for an HTTP version.
pub(crate) fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => OTHER,
    }
}

const fn status_digits() -> [[u8; 3]; 1000] {
    let mut table = [[0u8; 3]; 1000];
    let mut code = 0;
    while code < 1000 {
        table[code] = [
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ];
        code += 1;
    }
    table
}

static STATUS_DIGITS: [[u8; 3]; 1000] = status_digits();

/// The status code as a `&'static str` ("200"), for metric labels and `error.type`.
pub(crate) fn status_str(status: StatusCode) -> &'static str {
    let code = usize::from(status.as_u16());
    STATUS_DIGITS
        .get(code)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .unwrap_or(OTHER)
}

/// `url.scheme` of a request: the URI's scheme when it has one (HTTP/2, absolute-form), else
/// the configured default.
pub(crate) fn scheme(uri: &http::Uri, default: &'static str) -> &'static str {
    match uri.scheme_str() {
        Some("https") => "https",
        Some("http") => "http",
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_are_three_digits() {
        assert_eq!(status_str(StatusCode::OK), "200");
        assert_eq!(status_str(StatusCode::INTERNAL_SERVER_ERROR), "500");
        assert_eq!(status_str(StatusCode::from_u16(999).unwrap()), "999");
        assert_eq!(status_str(StatusCode::from_u16(101).unwrap()), "101");
    }

    #[test]
    fn unknown_methods_are_other() {
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(METHODS[method_index(&custom)], "_OTHER");
        assert_eq!(METHODS[method_index(&Method::PATCH)], "PATCH");
    }
}
