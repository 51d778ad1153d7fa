//! gRPC status codes, read from `grpc-status` without allocating.

use http::{HeaderMap, StatusCode};

/// A gRPC status code, as sent in `grpc-status`.
///
/// ```
/// use sightline_http::grpc::Code;
///
/// assert_eq!(Code::from_i32(13), Some(Code::Internal));
/// assert_eq!(Code::Internal.as_str(), "INTERNAL");
/// assert_eq!(Code::from_bytes(b"5"), Some(Code::NotFound));
/// assert_eq!(Code::from_bytes(b"17"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Code {
    /// `0`: not an error.
    Ok = 0,
    /// `1`: the operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// `2`: unknown error.
    Unknown = 2,
    /// `3`: the client specified an invalid argument.
    InvalidArgument = 3,
    /// `4`: the deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// `5`: some requested entity was not found.
    NotFound = 5,
    /// `6`: the entity a client tried to create already exists.
    AlreadyExists = 6,
    /// `7`: the caller may not execute the operation.
    PermissionDenied = 7,
    /// `8`: some resource has been exhausted.
    ResourceExhausted = 8,
    /// `9`: the system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// `10`: the operation was aborted.
    Aborted = 10,
    /// `11`: the operation was attempted past the valid range.
    OutOfRange = 11,
    /// `12`: the operation is not implemented or not supported.
    Unimplemented = 12,
    /// `13`: internal error.
    Internal = 13,
    /// `14`: the service is currently unavailable.
    Unavailable = 14,
    /// `15`: unrecoverable data loss or corruption.
    DataLoss = 15,
    /// `16`: the request lacks valid authentication credentials.
    Unauthenticated = 16,
}

const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const ALL: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// The code for a number, `None` outside 0..=16.
    pub fn from_i32(code: i32) -> Option<Self> {
        usize::try_from(code).ok().and_then(|i| ALL.get(i).copied())
    }

    /// The code in a `grpc-status` value (ASCII decimal), `None` if it is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [d @ b'0'..=b'9'] => Self::from_i32(i32::from(d - b'0')),
            [b'1', d @ b'0'..=b'6'] => Self::from_i32(10 + i32::from(d - b'0')),
            _ => None,
        }
    }

    /// The code's number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code's name as the semantic conventions record it in `rpc.status_code`
    /// (`"OK"`, `"NOT_FOUND"`, ...).
    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The code a client derives from a response whose HTTP status is not 200, per gRPC's
    /// "HTTP to gRPC status code mapping".
    pub fn from_http_status(status: StatusCode) -> Self {
        match status.as_u16() {
            200 => Self::Ok,
            400 => Self::Internal,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::Unimplemented,
            429 | 502 | 503 | 504 => Self::Unavailable,
            _ => Self::Unknown,
        }
    }

    /// Reads `grpc-status` from headers or trailers. A malformed value reads as
    /// [`Code::Unknown`], as gRPC clients treat it.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers
            .get("grpc-status")
            .map(|v| Self::from_bytes(v.as_bytes()).unwrap_or(Self::Unknown))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Code`]s: which ones count as errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSet(u32);

impl CodeSet {
    /// The codes the semantic conventions call server errors: `UNKNOWN`, `DEADLINE_EXCEEDED`,
    /// `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`.
    pub const SERVER_ERRORS: Self = Self::empty()
        .with(Code::Unknown)
        .with(Code::DeadlineExceeded)
        .with(Code::Unimplemented)
        .with(Code::Internal)
        .with(Code::Unavailable)
        .with(Code::DataLoss);

    /// Every code but `OK`: what the semantic conventions call client errors.
    pub const ALL_ERRORS: Self = Self(((1 << 17) - 1) & !1);

    /// No code.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// This set with `code` added.
    pub const fn with(self, code: Code) -> Self {
        Self(self.0 | 1 << code as u32)
    }

    /// This set without `code`.
    pub const fn without(self, code: Code) -> Self {
        Self(self.0 & !(1 << code as u32))
    }

    /// Whether `code` is in the set.
    pub const fn contains(self, code: Code) -> bool {
        self.0 & 1 << code as u32 != 0
    }
}

impl FromIterator<Code> for CodeSet {
    fn from_iter<I: IntoIterator<Item = Code>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for (i, code) in ALL.iter().enumerate() {
            assert_eq!(code.as_i32() as usize, i);
            assert_eq!(Code::from_bytes(i.to_string().as_bytes()), Some(*code));
        }
        for bad in [&b""[..], b"17", b"-1", b"01", b"1x", b"100", b" 1"] {
            assert_eq!(Code::from_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sets() {
        assert!(CodeSet::SERVER_ERRORS.contains(Code::Internal));
        assert!(!CodeSet::SERVER_ERRORS.contains(Code::NotFound));
        assert!(!CodeSet::SERVER_ERRORS.contains(Code::Cancelled));
        assert!(CodeSet::ALL_ERRORS.contains(Code::NotFound));
        assert!(!CodeSet::ALL_ERRORS.contains(Code::Ok));
        assert!(
            !CodeSet::ALL_ERRORS
                .without(Code::NotFound)
                .contains(Code::NotFound)
        );
    }
}
