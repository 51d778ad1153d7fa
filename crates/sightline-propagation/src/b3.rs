//! B3 propagation (openzipkin/b3-propagation), single-header and multi-header forms.
//!
//! ```text
//! b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90
//!     {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}   sampling and parent optional
//! b3: 0                                                   a sampling decision alone
//!
//! X-B3-TraceId: 80f198ee56343ba864fe8b2a57d3eff7
//! X-B3-SpanId: e457b5a2e4d86bd1
//! X-B3-ParentSpanId: 05e3ac9a4f6e3b90
//! X-B3-Sampled: 1          (1/0; true/false accepted)
//! X-B3-Flags: 1            (debug, implies sampled)
//! ```
//!
//! Rules: the trace id is 16 or 32 lowercase hex digits (16 are left-padded with zeros to a
//! 128-bit [`TraceId`]); span ids are 16 lowercase hex digits; no id may be all zeros. The
//! sampling state is `0` (deny), `1` (accept) or `d` (debug, which implies accept); absent means
//! "defer" (the receiver decides). When both forms arrive, the single header wins (that choice is
//! made by [`Propagator`](crate::Propagator), which tries the formats in order).
//!
//! Encoding writes a 64-bit trace id as 16 digits when its upper half is zero, so a trace that
//! arrived in 64-bit form leaves in the same form.

use core::fmt;

use crate::ids::{HexError, decode_hex, encode_hex};
use crate::{SpanId, TraceId};

/// The single header's name.
pub const B3: &str = "b3";
/// The multi-header trace id's name (lowercase, as HTTP/2 requires).
pub const X_B3_TRACE_ID: &str = "x-b3-traceid";
/// The multi-header span id's name.
pub const X_B3_SPAN_ID: &str = "x-b3-spanid";
/// The multi-header parent span id's name.
pub const X_B3_PARENT_SPAN_ID: &str = "x-b3-parentspanid";
/// The multi-header sampling decision's name.
pub const X_B3_SAMPLED: &str = "x-b3-sampled";
/// The multi-header debug flag's name.
pub const X_B3_FLAGS: &str = "x-b3-flags";

/// A B3 sampling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// `0`: do not record.
    Deny,
    /// `1`: record.
    Accept,
    /// `d` (single) or `X-B3-Flags: 1` (multi): record, and force it past any sampler.
    Debug,
    /// Absent: the receiver decides.
    Defer,
}

impl Sampling {
    /// `Some(true)` for accept and debug, `Some(false)` for deny, `None` for defer.
    pub fn is_sampled(&self) -> Option<bool> {
        match self {
            Sampling::Accept | Sampling::Debug => Some(true),
            Sampling::Deny => Some(false),
            Sampling::Defer => None,
        }
    }
}

/// A B3 trace context.
///
/// ```
/// use sightline_propagation::b3::{self, B3Single, Sampling};
///
/// let B3Single::Context(ctx) = b3::parse_single(b"64fe8b2a57d3eff7-e457b5a2e4d86bd1-d")? else { unreachable!() };
/// assert_eq!(ctx.trace_id.to_string(), "000000000000000064fe8b2a57d3eff7", "64-bit ids are left-padded");
/// assert_eq!(ctx.sampling, Sampling::Debug);
/// assert_eq!(b3::encode_single(&ctx).as_str(), "64fe8b2a57d3eff7-e457b5a2e4d86bd1-d");
/// # Ok::<(), b3::B3Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct B3Context {
    /// The trace id; 64-bit ids are left-padded with zeros.
    pub trace_id: TraceId,
    /// The span id. When injecting, this is the id of the span making the outgoing call (your
    /// new client span), never the incoming caller's span id.
    pub span_id: SpanId,
    /// The parent span id, when sent.
    pub parent_span_id: Option<SpanId>,
    /// The sampling state.
    pub sampling: Sampling,
}

/// What a B3 header carried: a full context, or only a sampling decision (e.g. `b3: 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum B3Single {
    /// Trace id, span id and more.
    Context(B3Context),
    /// Only a sampling state, no ids: `b3: 0` ("deny") is the common case.
    SamplingOnly(Sampling),
}

/// Why a B3 value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum B3Error {
    /// Empty, or not 1 to 4 `-`-separated fields.
    Malformed,
    /// An id holds an uppercase hex digit; B3 ids are lowercase.
    UppercaseHex,
    /// The trace id is not 16 or 32 hex digits, or is all zeros.
    InvalidTraceId,
    /// The span id is not 16 hex digits, or is all zeros.
    InvalidSpanId,
    /// The parent span id is not 16 hex digits, or is all zeros.
    InvalidParentSpanId,
    /// The sampling state is not `0`, `1` or `d` (single), or `0`, `1`, `true`, `false` (multi).
    InvalidSampling,
    /// Multi-header: a span id without a trace id.
    MissingTraceId,
    /// Multi-header: a trace id without a span id.
    MissingSpanId,
}

impl B3Error {
    /// A short lowercase `snake_case` name, stable and suitable as a metric label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            B3Error::Malformed => "malformed",
            B3Error::UppercaseHex => "uppercase_hex",
            B3Error::InvalidTraceId => "invalid_trace_id",
            B3Error::InvalidSpanId => "invalid_span_id",
            B3Error::InvalidParentSpanId => "invalid_parent_span_id",
            B3Error::InvalidSampling => "invalid_sampling",
            B3Error::MissingTraceId => "missing_trace_id",
            B3Error::MissingSpanId => "missing_span_id",
        }
    }
}

impl fmt::Display for B3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            B3Error::Malformed => "b3 value is empty or has the wrong number of fields",
            B3Error::UppercaseHex => "b3 id contains uppercase hex digits",
            B3Error::InvalidTraceId => "b3 trace id is not 16 or 32 hex digits, or is all zeros",
            B3Error::InvalidSpanId => "b3 span id is not 16 hex digits, or is all zeros",
            B3Error::InvalidParentSpanId => {
                "b3 parent span id is not 16 hex digits, or is all zeros"
            }
            B3Error::InvalidSampling => "b3 sampling state is not recognised",
            B3Error::MissingTraceId => "b3 span id without a trace id",
            B3Error::MissingSpanId => "b3 trace id without a span id",
        })
    }
}

impl std::error::Error for B3Error {}

fn id_error(e: HexError, otherwise: B3Error) -> B3Error {
    match e {
        HexError::Uppercase => B3Error::UppercaseHex,
        HexError::Invalid => otherwise,
    }
}

fn parse_trace_id(s: &[u8]) -> Result<TraceId, B3Error> {
    let err = |e| id_error(e, B3Error::InvalidTraceId);
    let id = match s.len() {
        16 => {
            let low: [u8; 8] = decode_hex(s).map_err(err)?;
            let mut full = [0u8; 16];
            full[8..].copy_from_slice(&low);
            TraceId(full)
        }
        32 => TraceId(decode_hex(s).map_err(err)?),
        _ => return Err(B3Error::InvalidTraceId),
    };
    if id.is_valid() {
        Ok(id)
    } else {
        Err(B3Error::InvalidTraceId)
    }
}

fn parse_span_id(s: &[u8], otherwise: B3Error) -> Result<SpanId, B3Error> {
    let id = SpanId(decode_hex(s).map_err(|e| id_error(e, otherwise))?);
    if id.is_valid() {
        Ok(id)
    } else {
        Err(otherwise)
    }
}

fn parse_single_sampling(s: &[u8]) -> Result<Sampling, B3Error> {
    match s {
        b"0" => Ok(Sampling::Deny),
        b"1" => Ok(Sampling::Accept),
        b"d" => Ok(Sampling::Debug),
        _ => Err(B3Error::InvalidSampling),
    }
}

/// Parses a `b3` single-header value: `{trace}-{span}[-{sampling}[-{parent}]]`, or a bare
/// `0`, `1` or `d`.
///
/// ```
/// use sightline_propagation::b3::{self, B3Error, B3Single, Sampling};
///
/// assert_eq!(b3::parse_single(b"0"), Ok(B3Single::SamplingOnly(Sampling::Deny)));
/// assert_eq!(b3::parse_single(b"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x"), Err(B3Error::InvalidSampling));
/// ```
pub fn parse_single(value: &[u8]) -> Result<B3Single, B3Error> {
    if value.len() == 1 {
        return parse_single_sampling(value).map(B3Single::SamplingOnly);
    }
    let mut fields = value.split(|&b| b == b'-');
    let (Some(trace), Some(span)) = (fields.next(), fields.next()) else {
        return Err(B3Error::Malformed);
    };
    let sampling = fields.next();
    let parent = fields.next();
    if fields.next().is_some() {
        return Err(B3Error::Malformed);
    }
    let trace_id = parse_trace_id(trace)?;
    let span_id = parse_span_id(span, B3Error::InvalidSpanId)?;
    let sampling = sampling.map_or(Ok(Sampling::Defer), parse_single_sampling)?;
    let parent_span_id = parent
        .map(|p| parse_span_id(p, B3Error::InvalidParentSpanId))
        .transpose()?;
    Ok(B3Single::Context(B3Context {
        trace_id,
        span_id,
        parent_span_id,
        sampling,
    }))
}

/// Parses the multi-header form from the values of `X-B3-TraceId`, `X-B3-SpanId`,
/// `X-B3-Sampled`, `X-B3-Flags` and `X-B3-ParentSpanId` (each `None` when absent).
///
/// Returns the same [`B3Single`] shape as [`parse_single`]: a context when both ids are
/// present, a sampling decision alone when neither is. `X-B3-Flags: 1` means debug and wins
/// over `X-B3-Sampled`; other `X-B3-Flags` values are ignored. `X-B3-Sampled` accepts `1`, `0`,
/// `true` and `false`. All five absent is [`B3Error::Malformed`], and so is an `X-B3-Flags`
/// other than `1` with nothing else (ignored, it leaves no decision).
///
/// ```
/// use sightline_propagation::b3::{self, B3Single, Sampling};
///
/// let got = b3::parse_multi(Some(b"64fe8b2a57d3eff7"), Some(b"e457b5a2e4d86bd1"), Some(b"true"), None, None)?;
/// let B3Single::Context(ctx) = got else { unreachable!() };
/// assert_eq!(ctx.sampling, Sampling::Accept);
/// assert_eq!(b3::parse_multi(None, None, None, Some(b"1"), None)?, B3Single::SamplingOnly(Sampling::Debug));
/// # Ok::<(), b3::B3Error>(())
/// ```
pub fn parse_multi(
    trace_id: Option<&[u8]>,
    span_id: Option<&[u8]>,
    sampled: Option<&[u8]>,
    flags: Option<&[u8]>,
    parent: Option<&[u8]>,
) -> Result<B3Single, B3Error> {
    let sampling = if flags == Some(b"1") {
        Sampling::Debug
    } else {
        match sampled {
            None => Sampling::Defer,
            Some(b"1" | b"true") => Sampling::Accept,
            Some(b"0" | b"false") => Sampling::Deny,
            Some(_) => return Err(B3Error::InvalidSampling),
        }
    };
    match (trace_id, span_id) {
        // an ignored `X-B3-Flags` value alone carries no decision: as if all were absent
        (None, None) if sampled.is_none() && flags != Some(b"1") => Err(B3Error::Malformed),
        (None, None) => Ok(B3Single::SamplingOnly(sampling)),
        (None, Some(_)) => Err(B3Error::MissingTraceId),
        (Some(_), None) => Err(B3Error::MissingSpanId),
        (Some(trace), Some(span)) => Ok(B3Single::Context(B3Context {
            trace_id: parse_trace_id(trace)?,
            span_id: parse_span_id(span, B3Error::InvalidSpanId)?,
            parent_span_id: parent
                .map(|p| parse_span_id(p, B3Error::InvalidParentSpanId))
                .transpose()?,
            sampling,
        })),
    }
}

/// Longest single-header value: 32 + 1 + 16 + 1 + 1 + 1 + 16.
const B3_SINGLE_MAX: usize = 68;

/// An encoded `b3` value on the stack, from [`encode_single`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct B3SingleBuf {
    buf: [u8; B3_SINGLE_MAX],
    len: usize,
}

impl B3SingleBuf {
    /// The value as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).expect("b3 is ASCII")
    }

    /// The value as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

impl AsRef<str> for B3SingleBuf {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for B3SingleBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for B3SingleBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lowercase hex of a trace id: 16 digits when the upper half is zero, else 32.
fn trace_id_hex(id: &TraceId, out: &mut [u8; 32]) -> usize {
    if id.0[..8] == [0; 8] {
        encode_hex(&id.0[8..], &mut out[..16]);
        16
    } else {
        encode_hex(&id.0, out);
        32
    }
}

/// Formats `ctx` as a `b3` single-header value, without allocating.
///
/// The parent span id is written only with an explicit sampling state: the format is
/// positional, so a deferred decision leaves the parent out. Pass the id of the span making
/// the outgoing call as `span_id`, never the caller's.
///
/// ```
/// use sightline_propagation::b3::{self, B3Context, Sampling};
/// use sightline_propagation::{SpanId, TraceId};
///
/// let ctx = B3Context { trace_id: TraceId([0xab; 16]), span_id: SpanId([1; 8]), parent_span_id: None, sampling: Sampling::Accept };
/// assert_eq!(b3::encode_single(&ctx).as_str(), "abababababababababababababababab-0101010101010101-1");
/// ```
pub fn encode_single(ctx: &B3Context) -> B3SingleBuf {
    let mut out = B3SingleBuf {
        buf: [0; B3_SINGLE_MAX],
        len: 0,
    };
    let mut trace = [0u8; 32];
    let n = trace_id_hex(&ctx.trace_id, &mut trace);
    out.push(&trace[..n]);
    out.push(b"-");
    out.push(&ctx.span_id.to_hex());
    let sampling: &[u8] = match ctx.sampling {
        Sampling::Deny => b"-0",
        Sampling::Accept => b"-1",
        Sampling::Debug => b"-d",
        Sampling::Defer => return out,
    };
    out.push(sampling);
    if let Some(parent) = ctx.parent_span_id {
        out.push(b"-");
        out.push(&parent.to_hex());
    }
    out
}

/// Writes `ctx` as B3 multi-headers through `set(name, value)`, without allocating.
///
/// Names are the lowercase `x-b3-*` constants of this module. Debug is sent as
/// `x-b3-flags: 1` without `x-b3-sampled` (debug implies accept); a deferred decision sends
/// neither.
///
/// ```
/// use sightline_propagation::b3::{self, B3Context, Sampling};
/// use sightline_propagation::{SpanId, TraceId};
///
/// let ctx = B3Context { trace_id: TraceId([0xab; 16]), span_id: SpanId([1; 8]), parent_span_id: None, sampling: Sampling::Debug };
/// let mut headers = Vec::new();
/// b3::encode_multi(&ctx, &mut |name, value| headers.push((name, value.to_owned())));
/// assert_eq!(headers[2], ("x-b3-flags", "1".to_owned()));
/// ```
pub fn encode_multi(ctx: &B3Context, set: &mut dyn FnMut(&'static str, &str)) {
    let mut trace = [0u8; 32];
    let n = trace_id_hex(&ctx.trace_id, &mut trace);
    set(X_B3_TRACE_ID, ascii(&trace[..n]));
    set(X_B3_SPAN_ID, ascii(&ctx.span_id.to_hex()));
    match ctx.sampling {
        Sampling::Deny => set(X_B3_SAMPLED, "0"),
        Sampling::Accept => set(X_B3_SAMPLED, "1"),
        Sampling::Debug => set(X_B3_FLAGS, "1"),
        Sampling::Defer => {}
    }
    if let Some(parent) = ctx.parent_span_id {
        set(X_B3_PARENT_SPAN_ID, ascii(&parent.to_hex()));
    }
}

fn ascii(hex: &[u8]) -> &str {
    core::str::from_utf8(hex).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T128: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const T64: &str = "64fe8b2a57d3eff7";
    const S: &str = "e457b5a2e4d86bd1";
    const P: &str = "05e3ac9a4f6e3b90";

    fn trace(hex: &str) -> TraceId {
        parse_trace_id(hex.as_bytes()).expect("valid test id")
    }

    fn span(hex: &str) -> SpanId {
        SpanId::from_hex(hex.as_bytes()).expect("valid test id")
    }

    fn ctx(t: &str, sampling: Sampling, parent: Option<&str>) -> Result<B3Single, B3Error> {
        Ok(B3Single::Context(B3Context {
            trace_id: trace(t),
            span_id: span(S),
            parent_span_id: parent.map(span),
            sampling,
        }))
    }

    #[test]
    fn single_table() {
        use B3Error::*;
        use Sampling::*;
        let cases: Vec<(String, Result<B3Single, B3Error>, &str)> = vec![
            (
                format!("{T128}-{S}-1-{P}"),
                ctx(T128, Accept, Some(P)),
                "all four fields",
            ),
            (
                format!("{T128}-{S}"),
                ctx(T128, Defer, None),
                "sampling and parent are optional; absent = defer",
            ),
            (format!("{T128}-{S}-0"), ctx(T128, Deny, None), "0 = deny"),
            (format!("{T128}-{S}-d"), ctx(T128, Debug, None), "d = debug"),
            (
                format!("{T64}-{S}-1"),
                ctx(T64, Accept, None),
                "64-bit trace id, left-padded",
            ),
            (
                "0".into(),
                Ok(B3Single::SamplingOnly(Deny)),
                "bare 0 is a deny decision",
            ),
            (
                "1".into(),
                Ok(B3Single::SamplingOnly(Accept)),
                "bare 1 is an accept decision",
            ),
            (
                "d".into(),
                Ok(B3Single::SamplingOnly(Debug)),
                "bare d is a debug decision",
            ),
            (
                "x".into(),
                Err(InvalidSampling),
                "bare value must be 0, 1 or d",
            ),
            ("".into(), Err(Malformed), "empty value"),
            (T128.into(), Err(Malformed), "trace id alone"),
            (
                format!("{T128}-{S}-1-{P}-x"),
                Err(Malformed),
                "more than four fields",
            ),
            (
                format!("{T128}-{S}-true"),
                Err(InvalidSampling),
                "single header sampling is 0, 1 or d",
            ),
            (
                format!("{T128}-{S}-{P}"),
                Err(InvalidSampling),
                "third field is sampling, not a parent",
            ),
            (
                format!("{T128}-{S}-"),
                Err(InvalidSampling),
                "empty sampling field",
            ),
            (
                format!("{}-{S}", T128.to_uppercase()),
                Err(UppercaseHex),
                "ids are lowercase hex",
            ),
            (
                format!("{T128}-{}", S.to_uppercase()),
                Err(UppercaseHex),
                "span id is lowercase hex",
            ),
            (
                format!("{}-{S}", &T128[..31]),
                Err(InvalidTraceId),
                "trace id is 16 or 32 digits",
            ),
            (
                format!("{}0-{S}", T64),
                Err(InvalidTraceId),
                "17-digit trace id",
            ),
            (
                format!("{}-{S}", "0".repeat(32)),
                Err(InvalidTraceId),
                "all-zero trace id",
            ),
            (
                format!("{}-{S}", "0".repeat(16)),
                Err(InvalidTraceId),
                "all-zero 64-bit trace id",
            ),
            (
                format!("{T128}-{}", "0".repeat(16)),
                Err(InvalidSpanId),
                "all-zero span id",
            ),
            (
                format!("{T128}-{}", &S[..15]),
                Err(InvalidSpanId),
                "span id is 16 digits",
            ),
            (
                format!("{T128}-{S}1"),
                Err(InvalidSpanId),
                "17-digit span id",
            ),
            (
                format!("{T128}-{S}-1-{}", "0".repeat(16)),
                Err(InvalidParentSpanId),
                "all-zero parent",
            ),
            (
                format!("{T128}-{S}-1-xyz"),
                Err(InvalidParentSpanId),
                "parent is 16 hex digits",
            ),
            (
                format!("{T128}-{S}-1-"),
                Err(InvalidParentSpanId),
                "empty parent",
            ),
            (
                format!("{}-{S}", "g".repeat(32)),
                Err(InvalidTraceId),
                "non-hex trace id",
            ),
        ];
        for (input, want, rule) in cases {
            assert_eq!(parse_single(input.as_bytes()), want, "{rule}: {input:?}");
        }
    }

    #[test]
    fn multi_table() {
        use B3Error::*;
        use Sampling::*;
        type Case<'a> = ([Option<&'a str>; 5], Result<B3Single, B3Error>, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                [Some(T128), Some(S), Some("1"), None, Some(P)],
                ctx(T128, Accept, Some(P)),
                "all headers",
            ),
            (
                [Some(T128), Some(S), None, None, None],
                ctx(T128, Defer, None),
                "no sampled header = defer",
            ),
            (
                [Some(T64), Some(S), Some("0"), None, None],
                ctx(T64, Deny, None),
                "X-B3-Sampled: 0 and a 64-bit id",
            ),
            (
                [Some(T128), Some(S), Some("true"), None, None],
                ctx(T128, Accept, None),
                "true is accepted",
            ),
            (
                [Some(T128), Some(S), Some("false"), None, None],
                ctx(T128, Deny, None),
                "false is accepted",
            ),
            (
                [Some(T128), Some(S), None, Some("1"), None],
                ctx(T128, Debug, None),
                "X-B3-Flags: 1 = debug",
            ),
            (
                [Some(T128), Some(S), Some("0"), Some("1"), None],
                ctx(T128, Debug, None),
                "debug wins over sampled",
            ),
            (
                [Some(T128), Some(S), Some("1"), Some("0"), None],
                ctx(T128, Accept, None),
                "other flags values are ignored",
            ),
            (
                [Some(T128), Some(S), Some("yes"), None, None],
                Err(InvalidSampling),
                "sampled is 1/0/true/false",
            ),
            (
                [Some(T128), Some(S), Some("d"), None, None],
                Err(InvalidSampling),
                "d is not a multi-header value",
            ),
            (
                [None, None, Some("0"), None, None],
                Ok(B3Single::SamplingOnly(Deny)),
                "sampling-only deny",
            ),
            (
                [None, None, None, Some("1"), None],
                Ok(B3Single::SamplingOnly(Debug)),
                "sampling-only debug",
            ),
            (
                [None, None, None, None, None],
                Err(Malformed),
                "nothing present",
            ),
            (
                [Some(T128), None, None, None, None],
                Err(MissingSpanId),
                "trace id without span id",
            ),
            (
                [None, Some(S), None, None, None],
                Err(MissingTraceId),
                "span id without trace id",
            ),
            (
                [Some("xyz"), Some(S), None, None, None],
                Err(InvalidTraceId),
                "bad trace id",
            ),
            (
                [Some(T128), Some(&S[1..]), None, None, None],
                Err(InvalidSpanId),
                "bad span id",
            ),
            (
                [Some(T128), Some(S), None, None, Some("0000000000000000")],
                Err(InvalidParentSpanId),
                "bad parent",
            ),
            (
                [None, None, None, Some("0"), None],
                Err(Malformed),
                "an ignored X-B3-Flags alone is no sampling decision (found by fuzz/b3_multi)",
            ),
        ];
        for ([t, s, sampled, flags, parent], want, rule) in cases {
            let got = parse_multi(
                t.map(str::as_bytes),
                s.map(str::as_bytes),
                sampled.map(str::as_bytes),
                flags.map(str::as_bytes),
                parent.map(str::as_bytes),
            );
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn encode_forms() {
        let base = B3Context {
            trace_id: trace(T128),
            span_id: span(S),
            parent_span_id: Some(span(P)),
            sampling: Sampling::Defer,
        };
        assert_eq!(
            encode_single(&base).as_str(),
            format!("{T128}-{S}"),
            "defer drops the parent"
        );
        let debug = B3Context {
            sampling: Sampling::Debug,
            ..base
        };
        assert_eq!(encode_single(&debug).as_str(), format!("{T128}-{S}-d-{P}"));
        let short = B3Context {
            trace_id: trace(T64),
            sampling: Sampling::Deny,
            parent_span_id: None,
            ..base
        };
        assert_eq!(encode_single(&short).as_str(), format!("{T64}-{S}-0"));

        let mut got = Vec::new();
        encode_multi(&debug, &mut |n, v| got.push((n, v.to_owned())));
        assert_eq!(
            got,
            [
                (X_B3_TRACE_ID, T128.to_owned()),
                (X_B3_SPAN_ID, S.to_owned()),
                (X_B3_FLAGS, "1".to_owned()),
                (X_B3_PARENT_SPAN_ID, P.to_owned()),
            ]
        );
    }

    fn context() -> impl Strategy<Value = B3Context> {
        (
            any::<[u8; 16]>(),
            any::<bool>(),
            any::<[u8; 8]>(),
            proptest::option::of(any::<[u8; 8]>()),
            prop_oneof![
                Just(Sampling::Deny),
                Just(Sampling::Accept),
                Just(Sampling::Debug),
                Just(Sampling::Defer)
            ],
        )
            .prop_filter_map("ids must be valid", |(mut t, short, s, p, sampling)| {
                if short {
                    t[..8].fill(0);
                }
                let ctx = B3Context {
                    trace_id: TraceId(t),
                    span_id: SpanId(s),
                    parent_span_id: p.map(SpanId),
                    sampling,
                };
                let valid = ctx.trace_id.is_valid()
                    && ctx.span_id.is_valid()
                    && ctx.parent_span_id.is_none_or(|p| p.is_valid());
                valid.then_some(ctx)
            })
    }

    proptest! {
        #[test]
        fn single_round_trip(ctx in context()) {
            let want = if ctx.sampling == Sampling::Defer { B3Context { parent_span_id: None, ..ctx } } else { ctx };
            prop_assert_eq!(parse_single(encode_single(&ctx).as_bytes()), Ok(B3Single::Context(want)));
        }

        #[test]
        fn multi_round_trip(ctx in context()) {
            let mut h: [Option<String>; 5] = Default::default();
            encode_multi(&ctx, &mut |n, v| {
                let i = [X_B3_TRACE_ID, X_B3_SPAN_ID, X_B3_SAMPLED, X_B3_FLAGS, X_B3_PARENT_SPAN_ID]
                    .iter()
                    .position(|x| *x == n)
                    .expect("known header");
                h[i] = Some(v.to_owned());
            });
            let b = |i: usize| h[i].as_deref().map(str::as_bytes);
            prop_assert_eq!(parse_multi(b(0), b(1), b(2), b(3), b(4)), Ok(B3Single::Context(ctx)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_single(&bytes);
            let _ = parse_multi(Some(&bytes), Some(&bytes), Some(&bytes), Some(&bytes), Some(&bytes));
        }

        #[test]
        fn near_valid_never_panic(s in "[0-9a-fdA-F-]{0,72}") {
            let _ = parse_single(s.as_bytes());
        }
    }
}
