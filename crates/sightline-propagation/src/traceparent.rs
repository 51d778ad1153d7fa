//! The W3C `traceparent` header (Trace Context Level 2, §3.2).
//!
//! ```text
//! traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03
//!              ^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ ^^^^^^^^^^^^^^^^ ^^
//!         version trace-id (32 hex)                parent-id (16)   trace-flags
//! ```
//!
//! [`Traceparent::parse`] applies every rule of the specification and says which one a value
//! broke ([`TraceparentError`]); [`Traceparent::encode`] writes version `00` into a 55-byte stack
//! buffer. Neither allocates.
//!
//! Rules enforced by [`Traceparent::parse`]:
//!
//! - hex is lowercase only; an uppercase digit is [`TraceparentError::UppercaseHex`];
//! - version `ff` is invalid; version `00` is exactly 55 characters;
//! - a version above `00` is read by the version-00 layout of its first 55 characters, and if the
//!   value is longer the 56th character must be `-` (§3.2.4, versioning);
//! - an all-zero trace-id or parent-id is invalid;
//! - trace-flags are kept as received (unknown bits included); [`Traceparent::encode`] keeps only
//!   `sampled` (0x01) and `random` (0x02).
//!
//! Header-level rules (exactly one `traceparent` line; drop `tracestate` when `traceparent` is
//! invalid) are applied by [`Propagator::extract`](crate::Propagator::extract).

use core::fmt;

use crate::ids::{HexError, decode_hex, encode_hex};
use crate::{SpanId, TraceFlags, TraceId};

/// The length of a version-00 `traceparent` value.
pub const TRACEPARENT_LEN: usize = 55;

/// A parsed `traceparent` value.
///
/// ```
/// use sightline_propagation::{Traceparent, TraceFlags};
///
/// let tp = Traceparent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
/// assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
/// assert!(tp.flags.is_sampled());
/// assert_eq!(tp.encode().as_str(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// # Ok::<(), sightline_propagation::TraceparentError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Traceparent {
    /// The version read from the header (`0x00` for everything this crate writes).
    pub version: u8,
    /// The trace id; never all-zero after a successful parse.
    pub trace_id: TraceId,
    /// The caller's span id (`parent-id`); never all-zero after a successful parse.
    pub parent_id: SpanId,
    /// The trace flags as received, unknown bits included.
    pub flags: TraceFlags,
}

/// Why a `traceparent` value was rejected.
///
/// `Display` is lowercase and names the rule, for debug logs and metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Shorter than 55 characters, or a version-00 value that is not exactly 55.
    Length,
    /// A hex field holds an uppercase digit; the specification allows lowercase only.
    UppercaseHex,
    /// A field holds a character that is not a hex digit.
    InvalidHex,
    /// Version `ff`, which the specification forbids.
    InvalidVersion,
    /// The trace-id is all zeros.
    AllZeroTraceId,
    /// The parent-id is all zeros.
    AllZeroParentId,
    /// A `-` is missing between fields, or a future-version value continues without one after
    /// the flags.
    MissingDelimiter,
    /// More than one `traceparent` header line was received (reported by
    /// [`Propagator::extract`](crate::Propagator::extract), never by [`Traceparent::parse`]).
    MultipleHeaders,
}

impl TraceparentError {
    /// A short lowercase `snake_case` name, stable and suitable as a metric label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            TraceparentError::Length => "length",
            TraceparentError::UppercaseHex => "uppercase_hex",
            TraceparentError::InvalidHex => "invalid_hex",
            TraceparentError::InvalidVersion => "invalid_version",
            TraceparentError::AllZeroTraceId => "all_zero_trace_id",
            TraceparentError::AllZeroParentId => "all_zero_parent_id",
            TraceparentError::MissingDelimiter => "missing_delimiter",
            TraceparentError::MultipleHeaders => "multiple_headers",
        }
    }
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceparentError::Length => {
                "traceparent has the wrong length (version 00 is exactly 55 characters)"
            }
            TraceparentError::UppercaseHex => "traceparent contains uppercase hex digits",
            TraceparentError::InvalidHex => "traceparent contains a character that is not hex",
            TraceparentError::InvalidVersion => "traceparent version ff is invalid",
            TraceparentError::AllZeroTraceId => "traceparent trace-id is all zeros",
            TraceparentError::AllZeroParentId => "traceparent parent-id is all zeros",
            TraceparentError::MissingDelimiter => "traceparent is missing a '-' delimiter",
            TraceparentError::MultipleHeaders => "more than one traceparent header",
        })
    }
}

impl std::error::Error for TraceparentError {}

impl From<HexError> for TraceparentError {
    fn from(e: HexError) -> Self {
        match e {
            HexError::Uppercase => TraceparentError::UppercaseHex,
            HexError::Invalid => TraceparentError::InvalidHex,
        }
    }
}

impl Traceparent {
    /// Builds a version-00 value from its parts.
    pub fn new(trace_id: TraceId, parent_id: SpanId, flags: TraceFlags) -> Traceparent {
        Traceparent {
            version: 0,
            trace_id,
            parent_id,
            flags,
        }
    }

    /// Parses one `traceparent` header line. Does not allocate.
    ///
    /// Surrounding whitespace is not trimmed: HTTP libraries strip it already.
    ///
    /// ```
    /// use sightline_propagation::{Traceparent, TraceparentError};
    ///
    /// let upper = b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
    /// assert_eq!(Traceparent::parse(upper), Err(TraceparentError::UppercaseHex));
    ///
    /// // a future version may append fields after a '-'
    /// let v1 = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
    /// assert_eq!(Traceparent::parse(v1)?.version, 1);
    /// # Ok::<(), TraceparentError>(())
    /// ```
    pub fn parse(value: &[u8]) -> Result<Traceparent, TraceparentError> {
        if value.len() < TRACEPARENT_LEN {
            return Err(TraceparentError::Length);
        }
        let [version] = decode_hex::<1>(&value[0..2])?;
        if version == 0xff {
            return Err(TraceparentError::InvalidVersion);
        }
        if version == 0 && value.len() != TRACEPARENT_LEN {
            return Err(TraceparentError::Length);
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return Err(TraceparentError::MissingDelimiter);
        }
        if value.len() > TRACEPARENT_LEN && value[TRACEPARENT_LEN] != b'-' {
            return Err(TraceparentError::MissingDelimiter);
        }
        let trace_id = TraceId(decode_hex(&value[3..35])?);
        let parent_id = SpanId(decode_hex(&value[36..52])?);
        let [flags] = decode_hex::<1>(&value[53..55])?;
        if !trace_id.is_valid() {
            return Err(TraceparentError::AllZeroTraceId);
        }
        if !parent_id.is_valid() {
            return Err(TraceparentError::AllZeroParentId);
        }
        Ok(Traceparent {
            version,
            trace_id,
            parent_id,
            flags: TraceFlags(flags),
        })
    }

    /// Formats this value as version `00` into a stack buffer. Does not allocate.
    ///
    /// The version written is always `00`, whatever [`version`](Self::version) holds, and the
    /// flags keep only `sampled` and `random`: a version-00 writer must not set bits it does
    /// not understand.
    ///
    /// ```
    /// use sightline_propagation::{SpanId, Traceparent, TraceFlags, TraceId};
    ///
    /// let tp = Traceparent { version: 7, trace_id: TraceId([1; 16]), parent_id: SpanId([2; 8]), flags: TraceFlags(0xff) };
    /// assert_eq!(tp.encode().as_str(), "00-01010101010101010101010101010101-0202020202020202-03");
    /// ```
    pub fn encode(&self) -> TraceparentBuf {
        let mut buf = [0u8; TRACEPARENT_LEN];
        buf[0] = b'0';
        buf[1] = b'0';
        buf[2] = b'-';
        encode_hex(&self.trace_id.0, &mut buf[3..35]);
        buf[35] = b'-';
        encode_hex(&self.parent_id.0, &mut buf[36..52]);
        buf[52] = b'-';
        encode_hex(&[self.flags.known().0], &mut buf[53..55]);
        TraceparentBuf(buf)
    }
}

impl fmt::Display for Traceparent {
    /// Writes the same text as [`Traceparent::encode`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode().as_str())
    }
}

/// An encoded `traceparent` value on the stack (55 ASCII bytes), from [`Traceparent::encode`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceparentBuf([u8; TRACEPARENT_LEN]);

impl TraceparentBuf {
    /// The value as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).expect("traceparent is ASCII")
    }

    /// The value as bytes, e.g. for `HeaderValue::from_bytes`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<str> for TraceparentBuf {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for TraceparentBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TraceparentBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TRACE: [u8; 16] = [
        0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47,
        0x36,
    ];
    const SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

    fn ok(version: u8, flags: u8) -> Result<Traceparent, TraceparentError> {
        Ok(Traceparent {
            version,
            trace_id: TraceId(TRACE),
            parent_id: SpanId(SPAN),
            flags: TraceFlags(flags),
        })
    }

    #[test]
    fn parse_table() {
        use TraceparentError::*;
        let cases: &[(&str, Result<Traceparent, TraceparentError>, &str)] = &[
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ok(0, 1),
                "valid, sampled",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                ok(0, 0),
                "valid, not sampled",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
                ok(0, 3),
                "random flag kept (Level 2 §3.2.2.5)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
                ok(0, 0xff),
                "unknown flags kept on parse",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                Err(UppercaseHex),
                "trace-id is lowercase hex (§3.2.2.3)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                Err(UppercaseHex),
                "parent-id is lowercase hex (§3.2.2.4)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
                Err(UppercaseHex),
                "trace-flags are lowercase hex (§3.2.2.5)",
            ),
            (
                "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Err(UppercaseHex),
                "version is lowercase hex (§3.2.2.1)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
                Err(InvalidHex),
                "trace-id is hex",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
                Err(InvalidHex),
                "parent-id is hex",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
                Err(InvalidHex),
                "trace-flags are hex",
            ),
            (
                "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Err(InvalidHex),
                "version is hex",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Err(InvalidVersion),
                "version ff is invalid (§3.2.2.1)",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                Err(AllZeroTraceId),
                "all-zero trace-id is invalid (§3.2.2.3)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                Err(AllZeroParentId),
                "all-zero parent-id is invalid (§3.2.2.4)",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                Err(Length),
                "version 00 is exactly 55 characters",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                Err(Length),
                "version 00 has no extra fields",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                Err(Length),
                "short flags",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                Err(Length),
                "missing flags",
            ),
            ("", Err(Length), "empty value"),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Err(MissingDelimiter),
                "'-' after version",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
                Err(MissingDelimiter),
                "'-' after trace-id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
                Err(MissingDelimiter),
                "'-' after parent-id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47361-0f067aa0ba902b7-01",
                Err(MissingDelimiter),
                "fields in the wrong place",
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ok(1, 1),
                "future version, 55 characters",
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
                ok(0xcc, 1),
                "future version, extra fields after '-' (§3.2.4)",
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what",
                Err(MissingDelimiter),
                "future version: 56th character must be '-' (§3.2.4)",
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
                Err(Length),
                "future version is at least 55 characters",
            ),
            (
                "fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ok(0xfe, 1),
                "fe is the last valid version",
            ),
        ];
        for (input, want, rule) in cases {
            assert_eq!(
                Traceparent::parse(input.as_bytes()),
                *want,
                "{rule}: {input:?}"
            );
        }
    }

    #[test]
    fn encode_masks_flags_and_writes_version_00() {
        let tp = Traceparent {
            version: 0xcc,
            trace_id: TraceId(TRACE),
            parent_id: SpanId(SPAN),
            flags: TraceFlags(0xfd),
        };
        assert_eq!(
            tp.encode().as_str(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(tp.to_string(), tp.encode().as_str());
    }

    #[test]
    fn errors_display_lowercase() {
        use TraceparentError::*;
        for e in [
            Length,
            UppercaseHex,
            InvalidHex,
            InvalidVersion,
            AllZeroTraceId,
            AllZeroParentId,
            MissingDelimiter,
            MultipleHeaders,
        ] {
            let s = e.to_string();
            assert!(s.starts_with(char::is_lowercase), "{s}");
            assert!(!e.as_str().is_empty());
        }
    }

    proptest! {
        #[test]
        fn round_trip(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), flags in any::<u8>()) {
            prop_assume!(trace != [0; 16] && span != [0; 8]);
            let tp = Traceparent::new(TraceId(trace), SpanId(span), TraceFlags(flags));
            let parsed = Traceparent::parse(tp.encode().as_bytes());
            prop_assert_eq!(parsed, Ok(Traceparent { flags: TraceFlags(flags).known(), ..tp }));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Traceparent::parse(&bytes);
        }

        #[test]
        fn near_valid_never_panic(s in "[0-9a-fA-F-]{50,60}") {
            let _ = Traceparent::parse(s.as_bytes());
        }
    }
}
