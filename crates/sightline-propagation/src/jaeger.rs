//! Jaeger's `uber-trace-id` header: `{trace-id}:{span-id}:{parent-span-id}:{flags}`.
//!
//! Read leniently, as Jaeger clients write it: hex ids of up to 32 (trace) and 16 (span)
//! digits that may drop leading zeros, either case, the colons possibly percent-encoded
//! (`%3A`, as some HTTP stacks send them); the parent span id is deprecated and `0` is
//! accepted; `flags` is hex, bit `0x01` sampled and `0x02` debug. All-zero trace or span ids are
//! invalid. Written strictly: zero-padded lowercase ids, parent `0`, flags in hex. Jaeger's
//! baggage headers (`uberctx-*`) are not read; use W3C `baggage`.
//!
//! ```
//! use sightline_propagation::jaeger::{self, JaegerContext};
//!
//! let ctx = jaeger::parse(b"4bf92f3577b34da6a3ce929d0e0e4736:f067aa0ba902b7:0:1").unwrap();
//! assert_eq!(ctx.span_id.to_string(), "00f067aa0ba902b7");
//! assert!(ctx.is_sampled());
//! assert_eq!(
//!     jaeger::encode(&ctx).as_str(),
//!     "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"
//! );
//! ```

use std::fmt;

use crate::{SpanId, TraceId};

/// The header name, lowercase.
pub const UBER_TRACE_ID: &str = "uber-trace-id";

/// Flag bit: the trace is sampled.
pub const FLAG_SAMPLED: u8 = 0x01;
/// Flag bit: debug (sample whatever the sampler says).
pub const FLAG_DEBUG: u8 = 0x02;

/// A parsed `uber-trace-id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JaegerContext {
    /// The trace id (64-bit ids are left-padded with zeros).
    pub trace_id: TraceId,
    /// The caller's span id: the parent of the span you start.
    pub span_id: SpanId,
    /// The deprecated parent span id; `None` when `0`.
    pub parent_span_id: Option<SpanId>,
    /// The flags byte: [`FLAG_SAMPLED`], [`FLAG_DEBUG`], others kept as sent.
    pub flags: u8,
}

impl JaegerContext {
    /// Whether the sampled or debug bit is set.
    pub fn is_sampled(&self) -> bool {
        self.flags & (FLAG_SAMPLED | FLAG_DEBUG) != 0
    }

    /// Whether the debug bit is set.
    pub fn is_debug(&self) -> bool {
        self.flags & FLAG_DEBUG != 0
    }
}

/// Why an `uber-trace-id` value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JaegerError {
    /// Not four `:`-separated fields.
    FieldCount,
    /// The trace id is empty, longer than 32 digits, not hex, or all zeros.
    InvalidTraceId,
    /// The span id is empty, longer than 16 digits, not hex, or all zeros.
    InvalidSpanId,
    /// The parent span id is empty, longer than 16 digits or not hex.
    InvalidParentSpanId,
    /// The flags are empty, longer than 2 digits or not hex.
    InvalidFlags,
}

impl fmt::Display for JaegerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JaegerError::FieldCount => "uber-trace-id must have four colon-separated fields",
            JaegerError::InvalidTraceId => "invalid trace id in uber-trace-id",
            JaegerError::InvalidSpanId => "invalid span id in uber-trace-id",
            JaegerError::InvalidParentSpanId => "invalid parent span id in uber-trace-id",
            JaegerError::InvalidFlags => "invalid flags in uber-trace-id",
        })
    }
}

impl std::error::Error for JaegerError {}

/// Hex digits into the low end of `out`, left-padded with zeros; `None` if empty, too long
/// or not hex.
fn decode_padded<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.is_empty() || hex.len() > 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    // Walk from the last digit, filling nibbles from the end.
    for (i, &c) in hex.iter().rev().enumerate() {
        let nibble = (c as char).to_digit(16)? as u8;
        let byte = N - 1 - i / 2;
        out[byte] |= if i % 2 == 0 { nibble } else { nibble << 4 };
    }
    Some(out)
}

/// Parses an `uber-trace-id` value. Allocates nothing.
pub fn parse(value: &[u8]) -> Result<JaegerContext, JaegerError> {
    let value = value.trim_ascii();
    // At most four fields, split on ':' or "%3A"/"%3a".
    let mut fields: [&[u8]; 4] = [&[]; 4];
    let (mut count, mut start, mut i) = (0usize, 0usize, 0usize);
    while i <= value.len() {
        let sep = if i == value.len() {
            Some(0)
        } else if value[i] == b':' {
            Some(1)
        } else if value[i..].len() >= 3
            && value[i] == b'%'
            && value[i + 1] == b'3'
            && value[i + 2].eq_ignore_ascii_case(&b'a')
        {
            Some(3)
        } else {
            None
        };
        match sep {
            Some(len) => {
                if count == 4 {
                    return Err(JaegerError::FieldCount);
                }
                fields[count] = &value[start..i];
                count += 1;
                if i == value.len() {
                    break;
                }
                i += len;
                start = i;
            }
            None => i += 1,
        }
    }
    if count != 4 {
        return Err(JaegerError::FieldCount);
    }
    let trace_id = decode_padded::<16>(fields[0])
        .map(TraceId)
        .filter(TraceId::is_valid)
        .ok_or(JaegerError::InvalidTraceId)?;
    let span_id = decode_padded::<8>(fields[1])
        .map(SpanId)
        .filter(SpanId::is_valid)
        .ok_or(JaegerError::InvalidSpanId)?;
    let parent = decode_padded::<8>(fields[2]).ok_or(JaegerError::InvalidParentSpanId)?;
    let flags = decode_padded::<1>(fields[3]).ok_or(JaegerError::InvalidFlags)?[0];
    Ok(JaegerContext {
        trace_id,
        span_id,
        parent_span_id: Some(SpanId(parent)).filter(SpanId::is_valid),
        flags,
    })
}

/// An encoded `uber-trace-id`, on the stack.
#[derive(Clone, Copy)]
pub struct JaegerBuf {
    buf: [u8; 55],
    len: usize,
}

impl JaegerBuf {
    /// The header value.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits, ':' and '0' are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Debug for JaegerBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encodes `{trace-id:032x}:{span-id:016x}:0:{flags:x}` (the deprecated parent is always
/// written as `0`). Allocates nothing.
pub fn encode(ctx: &JaegerContext) -> JaegerBuf {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 55];
    buf[..32].copy_from_slice(&ctx.trace_id.to_hex());
    buf[32] = b':';
    buf[33..49].copy_from_slice(&ctx.span_id.to_hex());
    buf[49] = b':';
    buf[50] = b'0';
    buf[51] = b':';
    let mut len = 52;
    if ctx.flags >= 0x10 {
        buf[len] = HEX[usize::from(ctx.flags >> 4)];
        len += 1;
    }
    buf[len] = HEX[usize::from(ctx.flags & 0x0f)];
    JaegerBuf { buf, len: len + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";

    /// Expected trace id, span id and flags, or the error.
    type Expected = Result<(&'static str, &'static str, u8), JaegerError>;

    #[test]
    fn parse_table() {
        let ok = |v: &str| parse(v.as_bytes());
        let cases: &[(String, Expected, &str)] = &[
            (format!("{T}:{S}:0:1"), Ok((T, S, 1)), "canonical, sampled"),
            (format!("{T}:{S}:0:0"), Ok((T, S, 0)), "not sampled"),
            (format!("{T}:{S}:0:3"), Ok((T, S, 3)), "sampled + debug"),
            (
                "a3ce929d0e0e4736:f067aa0ba902b7:0:1".to_owned(),
                Ok(("0000000000000000a3ce929d0e0e4736", S, 1)),
                "64-bit trace id and a span id without leading zeros are padded",
            ),
            (
                format!("{T}%3A{S}%3a0%3A1"),
                Ok((T, S, 1)),
                "percent-encoded colons",
            ),
            (
                format!(" {T}:{S}:0:1 "),
                Ok((T, S, 1)),
                "surrounding whitespace",
            ),
            (
                format!("{}:{S}:0:1", T.to_uppercase()),
                Ok((T, S, 1)),
                "uppercase hex is read (Jaeger clients are lenient)",
            ),
            (
                format!("{T}:{S}:0"),
                Err(JaegerError::FieldCount),
                "three fields",
            ),
            (
                format!("{T}:{S}:0:1:9"),
                Err(JaegerError::FieldCount),
                "five fields",
            ),
            (
                format!(":{S}:0:1"),
                Err(JaegerError::InvalidTraceId),
                "empty trace id",
            ),
            (
                format!("{}:{S}:0:1", "0".repeat(32)),
                Err(JaegerError::InvalidTraceId),
                "all-zero trace id",
            ),
            (
                format!("{T}1:{S}:0:1"),
                Err(JaegerError::InvalidTraceId),
                "33 digits",
            ),
            (
                format!("{T}:0:0:1"),
                Err(JaegerError::InvalidSpanId),
                "zero span id",
            ),
            (
                format!("{T}:{S}g:0:1"),
                Err(JaegerError::InvalidSpanId),
                "not hex",
            ),
            (
                format!("{T}:{S}::1"),
                Err(JaegerError::InvalidParentSpanId),
                "empty parent",
            ),
            (
                format!("{T}:{S}:0:"),
                Err(JaegerError::InvalidFlags),
                "empty flags",
            ),
            (
                format!("{T}:{S}:0:100"),
                Err(JaegerError::InvalidFlags),
                "three flag digits",
            ),
        ];
        for (input, want, why) in cases {
            let got = ok(input).map(|c| (c.trace_id.to_string(), c.span_id.to_string(), c.flags));
            let want = want.map(|(t, s, f)| (t.to_owned(), s.to_owned(), f));
            assert_eq!(got, want, "{why}: {input:?}");
        }
    }

    #[test]
    fn parent_zero_is_none() {
        let ctx = parse(format!("{T}:{S}:0:1").as_bytes()).unwrap();
        assert_eq!(ctx.parent_span_id, None);
        let ctx = parse(format!("{T}:{S}:{S}:1").as_bytes()).unwrap();
        assert_eq!(
            ctx.parent_span_id.map(|p| p.to_string()).as_deref(),
            Some(S)
        );
    }

    #[test]
    fn propagator_reads_and_writes_jaeger_when_configured() {
        use crate::{Format, InjectContext, Propagator, TraceFlags};

        let p = Propagator::builder()
            .extract_formats(&[Format::TraceContext, Format::Jaeger])
            .inject_formats(&[Format::Jaeger])
            .build();
        let value = format!("{T}:{S}:0:3");
        let extracted = p.extract(&[("uber-trace-id", value.as_str())]);
        let parent = extracted.parent.expect("valid jaeger context");
        assert_eq!(parent.format, Format::Jaeger);
        assert!(parent.flags.is_sampled() && parent.b3_debug);

        let bad = p.extract(&[("uber-trace-id", "nope")]);
        assert!(bad.parent.is_none() && bad.errors.jaeger);

        let mut out: Vec<(String, String)> = Vec::new();
        p.inject(
            &InjectContext {
                trace_id: parent.trace_id,
                span_id: SpanId([0x2a; 8]),
                flags: TraceFlags(TraceFlags::SAMPLED.0),
                tracestate: None,
                baggage: None,
                b3_debug: false,
            },
            &mut out,
        );
        assert_eq!(
            out,
            [(
                "uber-trace-id".to_owned(),
                format!("{T}:2a2a2a2a2a2a2a2a:0:1")
            )]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn encode_then_parse_round_trips(
            t in any::<[u8; 16]>(), s in any::<[u8; 8]>(), flags in any::<u8>()
        ) {
            prop_assume!(t != [0; 16] && s != [0; 8]);
            let ctx = JaegerContext {
                trace_id: TraceId(t),
                span_id: SpanId(s),
                parent_span_id: None,
                flags,
            };
            let encoded = encode(&ctx);
            prop_assert_eq!(parse(encoded.as_str().as_bytes()), Ok(ctx));
        }
    }
}
