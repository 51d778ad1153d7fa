//! [`Propagator`]: the configured combination of codecs a middleware calls per request.

use crate::b3::{self, B3Context, B3Single, Sampling};
use crate::{
    Baggage, HeaderSink, HeaderSource, SpanId, TraceFlags, TraceId, TraceState, Traceparent,
    TraceparentError,
};

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";
/// The `baggage` header name.
pub const BAGGAGE: &str = "baggage";

/// The default for [`PropagatorBuilder::max_tracestate_len`]: the 512 characters the W3C
/// specification asks every vendor to propagate at least.
pub const DEFAULT_MAX_TRACESTATE_LEN: usize = 512;

/// The trace-context formats a [`Propagator`] reads and writes. Baggage is configured apart,
/// with [`PropagatorBuilder::baggage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// W3C Trace Context: `traceparent` and `tracestate`.
    TraceContext,
    /// B3 single header: `b3`.
    B3Single,
    /// B3 multi-header: `x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`, `x-b3-sampled`,
    /// `x-b3-flags`.
    B3Multi,
    /// Jaeger's `uber-trace-id` (feature `jaeger`).
    #[cfg(feature = "jaeger")]
    Jaeger,
}

/// A trace context received from the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteContext {
    /// The caller's trace id; continue it.
    pub trace_id: TraceId,
    /// The caller's span id: the parent of the span you start.
    pub span_id: SpanId,
    /// `sampled` and `random`; other bits are cleared. From B3: sampled for accept and debug,
    /// cleared for deny and for a deferred decision.
    pub flags: TraceFlags,
    /// The received `tracestate` (W3C only), already truncated to
    /// [`max_tracestate_len`](PropagatorBuilder::max_tracestate_len); `None` if absent, empty or
    /// rejected.
    pub tracestate: Option<TraceState>,
    /// The format it was read from.
    pub format: Format,
    /// B3 debug (`d`, or `X-B3-Flags: 1`): record this trace whatever the sampler says.
    pub b3_debug: bool,
}

/// What was present in the headers but rejected, so the middleware can count it.
///
/// A header that is absent is not an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractErrors {
    /// `traceparent` was present but invalid (or sent on several lines).
    pub traceparent: bool,
    /// `tracestate` was present but rejected, or dropped because `traceparent` was invalid.
    pub tracestate: bool,
    /// At least one `baggage` member was dropped (invalid or past the limits).
    pub baggage: bool,
    /// A B3 header (single or multi) was present but invalid.
    pub b3: bool,
    /// `uber-trace-id` was present but invalid (feature `jaeger`).
    pub jaeger: bool,
    /// Why `traceparent` was rejected.
    pub traceparent_error: Option<TraceparentError>,
    /// Why the B3 header was rejected.
    pub b3_error: Option<b3::B3Error>,
    /// How many baggage members were dropped.
    pub baggage_dropped: usize,
}

impl ExtractErrors {
    /// Returns `true` if anything was rejected.
    pub fn any(&self) -> bool {
        self.traceparent || self.tracestate || self.baggage || self.b3 || self.jaeger
    }
}

/// The result of [`Propagator::extract`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The remote parent; `None` means start a new trace.
    pub parent: Option<RemoteContext>,
    /// The received baggage, if any member was valid and baggage is enabled.
    pub baggage: Option<Baggage>,
    /// In [`public_endpoint`](PropagatorBuilder::public_endpoint) mode, the received context,
    /// to link to a new trace instead of continuing it; `parent` is then `None`.
    pub link: Option<RemoteContext>,
    /// What was present but rejected.
    pub errors: ExtractErrors,
    /// A B3 header that carried only a sampling decision (e.g. `b3: 0`, "do not sample"),
    /// when no format gave a parent.
    pub b3_sampling_only: Option<Sampling>,
}

/// What [`Propagator::inject`] writes: the span making the outgoing call.
#[derive(Clone, Copy, Debug)]
pub struct InjectContext<'a> {
    /// The trace id.
    pub trace_id: TraceId,
    /// The id of the span making the call: your new client span, never the id you received.
    /// B3 in particular expects each hop to send its own span id.
    pub span_id: SpanId,
    /// `sampled` and `random`; other bits are not written.
    pub flags: TraceFlags,
    /// The `tracestate` to send on, if any.
    pub tracestate: Option<&'a TraceState>,
    /// The baggage to send on, if any.
    pub baggage: Option<&'a Baggage>,
    /// Sends B3 debug (`d` in single, `x-b3-flags: 1` in multi); ignored by W3C.
    pub b3_debug: bool,
}

/// The configured codec a middleware uses: which formats to read and write, baggage on or off.
///
/// Built once, cheap to call. [`Propagator::new`] reads W3C Trace Context, then B3 single, then
/// B3 multi (the first format that yields a valid context wins), reads and writes baggage, and
/// writes W3C Trace Context.
///
/// ```
/// use sightline_propagation::{Format, InjectContext, Propagator, SpanId, TraceFlags};
///
/// let propagator = Propagator::new();
/// let incoming = [
///     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
///     ("tracestate", "congo=t61rcWkgMzE"),
///     ("baggage", "userId=alice"),
/// ];
/// let extracted = propagator.extract(&incoming);
/// let parent = extracted.parent.expect("valid traceparent");
/// assert_eq!(parent.format, Format::TraceContext);
/// assert!(parent.flags.is_sampled());
///
/// // a client span of our own, then the outgoing request
/// let ctx = InjectContext {
///     trace_id: parent.trace_id,
///     span_id: SpanId([0x11; 8]),
///     flags: parent.flags,
///     tracestate: parent.tracestate.as_ref(),
///     baggage: extracted.baggage.as_ref(),
///     b3_debug: false,
/// };
/// let mut outgoing: Vec<(String, String)> = Vec::new();
/// propagator.inject(&ctx, &mut outgoing);
/// assert_eq!(outgoing[0].1, "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01");
/// assert_eq!(outgoing[1], ("tracestate".into(), "congo=t61rcWkgMzE".into()));
/// assert_eq!(outgoing[2], ("baggage".into(), "userId=alice".into()));
/// ```
#[derive(Clone, Debug)]
pub struct Propagator {
    extract: Vec<Format>,
    inject: Vec<Format>,
    baggage: bool,
    max_tracestate_len: usize,
    public_endpoint: bool,
}

impl Default for Propagator {
    fn default() -> Self {
        Propagator::new()
    }
}

/// Builds a [`Propagator`]; from [`Propagator::builder`].
#[derive(Clone, Debug)]
pub struct PropagatorBuilder {
    inner: Propagator,
}

fn dedup(formats: &[Format]) -> Vec<Format> {
    let mut out: Vec<Format> = Vec::with_capacity(formats.len());
    for f in formats {
        if !out.contains(f) {
            out.push(*f);
        }
    }
    out
}

impl PropagatorBuilder {
    /// The formats read, in order of preference: the first that yields a valid context wins.
    /// An empty list reads no trace context.
    ///
    /// Defaults to `[TraceContext, B3Single, B3Multi]`.
    pub fn extract_formats(mut self, formats: &[Format]) -> Self {
        self.inner.extract = dedup(formats);
        self
    }

    /// The formats written. For B3, pass [`Format::B3Single`] or [`Format::B3Multi`].
    ///
    /// Defaults to `[TraceContext]`.
    pub fn inject_formats(mut self, formats: &[Format]) -> Self {
        self.inner.inject = dedup(formats);
        self
    }

    /// Whether to read and write the `baggage` header.
    ///
    /// Defaults to `true`.
    pub fn baggage(mut self, enabled: bool) -> Self {
        self.inner.baggage = enabled;
        self
    }

    /// The longest `tracestate` kept on extraction and sent on injection; longer values lose
    /// whole members (see [`TraceState::truncate_to`]).
    ///
    /// Defaults to [`DEFAULT_MAX_TRACESTATE_LEN`] (512).
    pub fn max_tracestate_len(mut self, max: usize) -> Self {
        self.inner.max_tracestate_len = max;
        self
    }

    /// For services facing untrusted callers: a received context becomes
    /// [`Extracted::link`] and [`Extracted::parent`] stays `None`, so every request starts a new
    /// trace linked to the caller's. Baggage is still extracted.
    ///
    /// Defaults to `false`.
    pub fn public_endpoint(mut self, enabled: bool) -> Self {
        self.inner.public_endpoint = enabled;
        self
    }

    /// Builds the propagator. Every configuration is valid, so this cannot fail.
    pub fn build(self) -> Propagator {
        self.inner
    }
}

// RFC 7230 §3.2.4: a field value excludes leading and trailing whitespace. HTTP libraries
// strip it; other carriers may not (the W3C test suite sends " 00-...").
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The first line of a header, trimmed, and how many lines it had, without allocating.
fn first_line<'a, H: HeaderSource + ?Sized>(
    headers: &'a H,
    name: &'static str,
) -> (Option<&'a [u8]>, usize) {
    let mut first = None;
    let mut count = 0;
    headers.get_all(name, &mut |v| {
        if count == 0 {
            first = Some(trim_ows(v));
        }
        count += 1;
    });
    (first, count)
}

fn all_lines<'a, H: HeaderSource + ?Sized>(headers: &'a H, name: &'static str) -> Vec<&'a [u8]> {
    let mut lines = Vec::new();
    headers.get_all(name, &mut |v| lines.push(v));
    lines
}

fn from_b3(ctx: B3Context, format: Format) -> RemoteContext {
    RemoteContext {
        trace_id: ctx.trace_id,
        span_id: ctx.span_id,
        flags: TraceFlags::default().with_sampled(ctx.sampling.is_sampled() == Some(true)),
        tracestate: None,
        format,
        b3_debug: ctx.sampling == Sampling::Debug,
    }
}

/// Every header any format or the baggage reads.
const EVERY_HEADER: [&str; 10] = [
    TRACEPARENT,
    TRACESTATE,
    BAGGAGE,
    b3::B3,
    b3::X_B3_TRACE_ID,
    b3::X_B3_SPAN_ID,
    b3::X_B3_PARENT_SPAN_ID,
    b3::X_B3_SAMPLED,
    b3::X_B3_FLAGS,
    "uber-trace-id",
];

impl Propagator {
    /// The default propagator: extracts W3C `traceparent` + `tracestate`, then B3 single, then B3
    /// multi; baggage on; injects W3C Trace Context and baggage.
    pub fn new() -> Self {
        Propagator {
            extract: vec![Format::TraceContext, Format::B3Single, Format::B3Multi],
            inject: vec![Format::TraceContext],
            baggage: true,
            max_tracestate_len: DEFAULT_MAX_TRACESTATE_LEN,
            public_endpoint: false,
        }
    }

    /// Starts from the [default](Propagator::new) configuration.
    ///
    /// ```
    /// use sightline_propagation::{Format, Propagator};
    ///
    /// let propagator = Propagator::builder()
    ///     .extract_formats(&[Format::B3Single, Format::TraceContext])
    ///     .inject_formats(&[Format::TraceContext, Format::B3Multi])
    ///     .baggage(false)
    ///     .build();
    /// let extracted = propagator.extract(&[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")]);
    /// assert!(extracted.parent.expect("valid b3").b3_debug);
    /// ```
    pub fn builder() -> PropagatorBuilder {
        PropagatorBuilder {
            inner: Propagator::new(),
        }
    }

    /// The header names this propagator may read or write, lowercase (for CORS lists or
    /// carriers that must know them in advance).
    pub fn fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        let formats = self.extract.iter().chain(&self.inject);
        let mut names: Vec<&'static str> = Vec::new();
        for f in formats {
            let add: &[&'static str] = match f {
                Format::TraceContext => &[TRACEPARENT, TRACESTATE],
                Format::B3Single => &[b3::B3],
                Format::B3Multi => &[
                    b3::X_B3_TRACE_ID,
                    b3::X_B3_SPAN_ID,
                    b3::X_B3_PARENT_SPAN_ID,
                    b3::X_B3_SAMPLED,
                    b3::X_B3_FLAGS,
                ],
                #[cfg(feature = "jaeger")]
                Format::Jaeger => &[crate::jaeger::UBER_TRACE_ID],
            };
            for n in add {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        }
        if self.baggage {
            names.push(BAGGAGE);
        }
        names.into_iter()
    }

    /// Reads the caller's context and baggage.
    ///
    /// Formats are tried in the configured order; the first valid one wins and the others are
    /// not read. A format present but invalid is recorded in [`Extracted::errors`] and the next
    /// format is tried. W3C rules: exactly one `traceparent` line (several lines are invalid and
    /// mean a new trace), and `tracestate` is read only with a valid `traceparent`.
    ///
    /// Allocates only when `tracestate` or `baggage` headers are present.
    pub fn extract<H: HeaderSource + ?Sized>(&self, headers: &H) -> Extracted {
        if headers.contains_any(&EVERY_HEADER) == Some(false) {
            // Nothing any format or the baggage reads: what the lookups would conclude.
            return Extracted::default();
        }
        let mut out = Extracted::default();
        let mut found = None;
        for format in &self.extract {
            let ctx = match format {
                Format::TraceContext => self.extract_w3c(headers, &mut out),
                Format::B3Single => Self::extract_b3_single(headers, &mut out),
                Format::B3Multi => Self::extract_b3_multi(headers, &mut out),
                #[cfg(feature = "jaeger")]
                Format::Jaeger => Self::extract_jaeger(headers, &mut out),
            };
            if ctx.is_some() {
                found = ctx;
                break;
            }
        }
        if found.is_some() {
            out.b3_sampling_only = None;
        }
        if self.public_endpoint {
            out.link = found;
        } else {
            out.parent = found;
        }
        if self.baggage {
            let lines = all_lines(headers, BAGGAGE);
            if !lines.is_empty() {
                let (baggage, dropped) = Baggage::parse(lines);
                out.errors.baggage = dropped > 0;
                out.errors.baggage_dropped = dropped;
                out.baggage = (!baggage.is_empty()).then_some(baggage);
            }
        }
        out
    }

    fn extract_w3c<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        out: &mut Extracted,
    ) -> Option<RemoteContext> {
        let (line, count) = first_line(headers, TRACEPARENT);
        let line = line?;
        let parsed = if count > 1 {
            Err(TraceparentError::MultipleHeaders)
        } else {
            Traceparent::parse(line)
        };
        let tp = match parsed {
            Ok(tp) => tp,
            Err(e) => {
                out.errors.traceparent = true;
                out.errors.traceparent_error.get_or_insert(e);
                // the tracestate belongs to the rejected traceparent: drop it too
                let (tracestate, _) = first_line(headers, TRACESTATE);
                out.errors.tracestate |= tracestate.is_some();
                return None;
            }
        };
        let lines = all_lines(headers, TRACESTATE);
        let tracestate = if lines.is_empty() {
            None
        } else {
            match TraceState::parse(lines) {
                Ok(mut ts) => {
                    ts.truncate_to(self.max_tracestate_len);
                    (!ts.is_empty()).then_some(ts)
                }
                Err(_) => {
                    out.errors.tracestate = true;
                    None
                }
            }
        };
        Some(RemoteContext {
            trace_id: tp.trace_id,
            span_id: tp.parent_id,
            flags: tp.flags.known(),
            tracestate,
            format: Format::TraceContext,
            b3_debug: false,
        })
    }

    fn b3_result(
        result: Result<B3Single, b3::B3Error>,
        format: Format,
        out: &mut Extracted,
    ) -> Option<RemoteContext> {
        match result {
            Ok(B3Single::Context(ctx)) => Some(from_b3(ctx, format)),
            Ok(B3Single::SamplingOnly(s)) => {
                out.b3_sampling_only.get_or_insert(s);
                None
            }
            Err(e) => {
                out.errors.b3 = true;
                out.errors.b3_error.get_or_insert(e);
                None
            }
        }
    }

    fn extract_b3_single<H: HeaderSource + ?Sized>(
        headers: &H,
        out: &mut Extracted,
    ) -> Option<RemoteContext> {
        let (line, count) = first_line(headers, b3::B3);
        let line = line?;
        let result = if count > 1 {
            Err(b3::B3Error::Malformed)
        } else {
            b3::parse_single(line)
        };
        Self::b3_result(result, Format::B3Single, out)
    }

    fn extract_b3_multi<H: HeaderSource + ?Sized>(
        headers: &H,
        out: &mut Extracted,
    ) -> Option<RemoteContext> {
        let trace = first_line(headers, b3::X_B3_TRACE_ID).0;
        let span = first_line(headers, b3::X_B3_SPAN_ID).0;
        let sampled = first_line(headers, b3::X_B3_SAMPLED).0;
        let flags = first_line(headers, b3::X_B3_FLAGS).0;
        let parent = first_line(headers, b3::X_B3_PARENT_SPAN_ID).0;
        if trace.is_none() && span.is_none() && sampled.is_none() && flags.is_none() {
            return None;
        }
        let result = b3::parse_multi(trace, span, sampled, flags, parent);
        Self::b3_result(result, Format::B3Multi, out)
    }

    #[cfg(feature = "jaeger")]
    fn extract_jaeger<H: HeaderSource + ?Sized>(
        headers: &H,
        out: &mut Extracted,
    ) -> Option<RemoteContext> {
        let (line, count) = first_line(headers, crate::jaeger::UBER_TRACE_ID);
        let line = line?;
        let parsed = if count > 1 {
            Err(crate::jaeger::JaegerError::FieldCount)
        } else {
            crate::jaeger::parse(line)
        };
        match parsed {
            Ok(ctx) => Some(RemoteContext {
                trace_id: ctx.trace_id,
                span_id: ctx.span_id,
                flags: if ctx.is_sampled() {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags(0)
                },
                tracestate: None,
                format: Format::Jaeger,
                b3_debug: ctx.is_debug(),
            }),
            Err(_) => {
                out.errors.jaeger = true;
                None
            }
        }
    }

    /// Writes the configured formats and baggage for an outgoing request.
    ///
    /// Nothing trace-related is written when the trace id or span id is invalid (all zeros).
    /// `tracestate` is written only when non-empty, truncated to
    /// [`max_tracestate_len`](PropagatorBuilder::max_tracestate_len); `baggage` only when it
    /// encodes to something. W3C writes version `00` with only the `sampled` and `random` flags.
    /// B3 writes [`InjectContext::span_id`] as the span id and no parent.
    pub fn inject<H: HeaderSink + ?Sized>(&self, ctx: &InjectContext<'_>, headers: &mut H) {
        if ctx.trace_id.is_valid() && ctx.span_id.is_valid() {
            for format in &self.inject {
                match format {
                    Format::TraceContext => self.inject_w3c(ctx, headers),
                    Format::B3Single | Format::B3Multi => {
                        let b3 = B3Context {
                            trace_id: ctx.trace_id,
                            span_id: ctx.span_id,
                            parent_span_id: None,
                            sampling: if ctx.b3_debug {
                                Sampling::Debug
                            } else if ctx.flags.is_sampled() {
                                Sampling::Accept
                            } else {
                                Sampling::Deny
                            },
                        };
                        if *format == Format::B3Single {
                            headers.set(b3::B3, b3::encode_single(&b3).as_str());
                        } else {
                            b3::encode_multi(&b3, &mut |name, value| headers.set(name, value));
                        }
                    }
                    #[cfg(feature = "jaeger")]
                    Format::Jaeger => {
                        let mut flags = 0;
                        if ctx.flags.is_sampled() {
                            flags |= crate::jaeger::FLAG_SAMPLED;
                        }
                        if ctx.b3_debug {
                            flags |= crate::jaeger::FLAG_DEBUG;
                        }
                        let jaeger = crate::jaeger::JaegerContext {
                            trace_id: ctx.trace_id,
                            span_id: ctx.span_id,
                            parent_span_id: None,
                            flags,
                        };
                        headers.set(
                            crate::jaeger::UBER_TRACE_ID,
                            crate::jaeger::encode(&jaeger).as_str(),
                        );
                    }
                }
            }
        }
        if let Some(baggage) = ctx.baggage.filter(|b| self.baggage && !b.is_empty()) {
            let value = baggage.header_value();
            if !value.is_empty() {
                headers.set(BAGGAGE, &value);
            }
        }
    }

    fn inject_w3c<H: HeaderSink + ?Sized>(&self, ctx: &InjectContext<'_>, headers: &mut H) {
        let tp = Traceparent::new(ctx.trace_id, ctx.span_id, ctx.flags);
        headers.set(TRACEPARENT, tp.encode().as_str());
        let Some(ts) = ctx.tracestate.filter(|ts| !ts.is_empty()) else {
            return;
        };
        if ts.header_value().len() <= self.max_tracestate_len {
            headers.set(TRACESTATE, ts.header_value());
        } else {
            let mut ts = ts.clone();
            ts.truncate_to(self.max_tracestate_len);
            if !ts.is_empty() {
                headers.set(TRACESTATE, ts.header_value());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const B3S: &str = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";

    fn extract(p: &Propagator, h: &[(&str, &str)]) -> Extracted {
        p.extract(h)
    }

    #[test]
    fn w3c_extract_table() {
        let p = Propagator::new();
        type Check = fn(&Extracted) -> bool;
        type Case<'a> = (Vec<(&'a str, &'a str)>, Check, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                vec![("traceparent", TP)],
                |e| {
                    e.parent
                        .as_ref()
                        .is_some_and(|p| p.format == Format::TraceContext)
                        && !e.errors.any()
                },
                "valid traceparent continues the trace",
            ),
            (
                vec![("traceparent", TP), ("traceparent", TP)],
                |e| {
                    e.parent.is_none()
                        && e.errors.traceparent_error == Some(TraceparentError::MultipleHeaders)
                },
                "two traceparent lines: new trace",
            ),
            (
                vec![("traceparent", &TP[..54])],
                |e| {
                    e.parent.is_none()
                        && e.errors.traceparent_error == Some(TraceparentError::Length)
                },
                "invalid traceparent: new trace, reason kept",
            ),
            (
                vec![
                    (
                        "traceparent",
                        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                    ),
                    ("tracestate", "a=1"),
                ],
                |e| e.parent.is_none() && e.errors.traceparent && e.errors.tracestate,
                "invalid traceparent drops tracestate",
            ),
            (
                vec![
                    ("traceparent", TP),
                    ("tracestate", "a=1"),
                    ("tracestate", "b=2"),
                ],
                |e| {
                    e.parent
                        .as_ref()
                        .and_then(|p| p.tracestate.as_ref())
                        .is_some_and(|t| t.header_value() == "a=1,b=2")
                },
                "tracestate lines combined",
            ),
            (
                vec![("traceparent", TP), ("tracestate", "a=1,A=2")],
                |e| {
                    e.parent.as_ref().is_some_and(|p| p.tracestate.is_none())
                        && e.errors.tracestate
                        && !e.errors.traceparent
                },
                "invalid tracestate dropped, traceparent kept",
            ),
            (
                vec![("traceparent", TP), ("tracestate", "a=1,a=2")],
                |e| {
                    e.parent
                        .as_ref()
                        .and_then(|p| p.tracestate.as_ref())
                        .is_some_and(|t| t.header_value() == "a=1")
                        && !e.errors.any()
                },
                "a duplicated key keeps its first member, not an error (Level 2)",
            ),
            (
                vec![("traceparent", TP), ("tracestate", " , ")],
                |e| e.parent.as_ref().is_some_and(|p| p.tracestate.is_none()) && !e.errors.any(),
                "empty tracestate is none, not an error",
            ),
            (
                vec![(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
                )],
                |e| {
                    e.parent
                        .as_ref()
                        .is_some_and(|p| p.flags == TraceFlags(0x03))
                },
                "random flag kept, unknown bits cleared",
            ),
            (
                vec![("TraceParent", TP)],
                |e| e.parent.is_some(),
                "header names are case-insensitive",
            ),
            (
                vec![],
                |e| *e == Extracted::default(),
                "nothing present: nothing extracted, no error",
            ),
        ];
        for (headers, check, rule) in cases {
            let e = extract(&p, &headers);
            assert!(check(&e), "{rule}: {e:?}");
        }
    }

    #[test]
    fn format_order_and_fallback() {
        let p = Propagator::new();
        let e = extract(&p, &[("b3", B3S), ("traceparent", TP)]);
        assert_eq!(
            e.parent.map(|p| p.format),
            Some(Format::TraceContext),
            "W3C first by default"
        );

        let e = extract(
            &p,
            &[
                ("b3", B3S),
                ("x-b3-traceid", "64fe8b2a57d3eff7"),
                ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ],
        );
        assert_eq!(
            e.parent.map(|p| p.format),
            Some(Format::B3Single),
            "single header wins over multi"
        );

        let e = extract(&p, &[("traceparent", "garbage"), ("b3", B3S)]);
        assert_eq!(
            e.parent.map(|p| p.format),
            Some(Format::B3Single),
            "invalid W3C falls back to B3"
        );
        assert!(e.errors.traceparent);

        let e = extract(
            &p,
            &[
                ("b3", "bad"),
                ("x-b3-traceid", "64fe8b2a57d3eff7"),
                ("x-b3-spanid", "e457b5a2e4d86bd1"),
                ("x-b3-flags", "1"),
            ],
        );
        let parent = e.parent.expect("multi");
        assert!(parent.b3_debug && parent.flags.is_sampled());
        assert_eq!(
            parent.trace_id.to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
        assert!(e.errors.b3);

        let e = extract(&p, &[("b3", "0")]);
        assert!(e.parent.is_none());
        assert_eq!(
            e.b3_sampling_only,
            Some(Sampling::Deny),
            "b3: 0 is a deny decision"
        );

        let e = extract(
            &p,
            &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1")],
        );
        assert!(
            !e.parent.expect("deferred").flags.is_sampled(),
            "deferred is not sampled"
        );

        let only_b3 = Propagator::builder()
            .extract_formats(&[Format::B3Multi])
            .build();
        assert!(extract(&only_b3, &[("traceparent", TP)]).parent.is_none());
    }

    #[test]
    fn public_endpoint_links() {
        let p = Propagator::builder().public_endpoint(true).build();
        let e = extract(&p, &[("traceparent", TP), ("baggage", "a=1")]);
        assert!(e.parent.is_none());
        assert!(e.link.is_some());
        assert!(e.baggage.is_some());
    }

    #[test]
    fn baggage_extract() {
        let p = Propagator::new();
        let e = extract(&p, &[("baggage", "a=1, bad"), ("baggage", "b=%20")]);
        let b = e.baggage.expect("baggage");
        assert_eq!(b.get("b"), Some(" "));
        assert!(e.errors.baggage);
        assert_eq!(e.errors.baggage_dropped, 1);
        let e = extract(&p, &[("baggage", "bad")]);
        assert!(e.baggage.is_none() && e.errors.baggage);
        let off = Propagator::builder().baggage(false).build();
        assert!(extract(&off, &[("baggage", "a=1")]).baggage.is_none());
    }

    fn ctx<'a>(
        ts: Option<&'a TraceState>,
        bg: Option<&'a Baggage>,
        flags: u8,
        debug: bool,
    ) -> InjectContext<'a> {
        InjectContext {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([0x01; 8]),
            flags: TraceFlags(flags),
            tracestate: ts,
            baggage: bg,
            b3_debug: debug,
        }
    }

    fn inject(p: &Propagator, c: &InjectContext<'_>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        p.inject(c, &mut out);
        out
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn inject_table() {
        let ab = "abababababababababababababababab";
        let ts = TraceState::parse([&b"a=1,b=2"[..]]).expect("valid");
        let (bg, _) = Baggage::parse([&b"k=v%20w"[..]]);
        let w3c = Propagator::new();
        let b3s = Propagator::builder()
            .inject_formats(&[Format::B3Single])
            .baggage(false)
            .build();
        let b3m = Propagator::builder()
            .inject_formats(&[Format::B3Multi])
            .baggage(false)
            .build();
        let tiny = Propagator::builder().max_tracestate_len(3).build();
        type Headers = Vec<(String, String)>;
        let cases: Vec<(Headers, Headers, &str)> = vec![
            (
                inject(&w3c, &ctx(None, None, 0x01, false)),
                pairs(&[("traceparent", &format!("00-{ab}-0101010101010101-01"))]),
                "W3C, sampled",
            ),
            (
                inject(&w3c, &ctx(None, None, 0xff, false)),
                pairs(&[("traceparent", &format!("00-{ab}-0101010101010101-03"))]),
                "unknown flag bits zeroed, random kept",
            ),
            (
                inject(&w3c, &ctx(Some(&ts), Some(&bg), 0, false)),
                pairs(&[
                    ("traceparent", &format!("00-{ab}-0101010101010101-00")),
                    ("tracestate", "a=1,b=2"),
                    ("baggage", "k=v%20w"),
                ]),
                "tracestate and baggage written",
            ),
            (
                inject(&tiny, &ctx(Some(&ts), None, 0, false)),
                pairs(&[
                    ("traceparent", &format!("00-{ab}-0101010101010101-00")),
                    ("tracestate", "a=1"),
                ]),
                "tracestate truncated to max length",
            ),
            (
                inject(&b3s, &ctx(None, None, 0x01, false)),
                pairs(&[("b3", &format!("{ab}-0101010101010101-1"))]),
                "B3 single, sampled",
            ),
            (
                inject(&b3s, &ctx(None, None, 0x00, false)),
                pairs(&[("b3", &format!("{ab}-0101010101010101-0"))]),
                "B3 single, not sampled",
            ),
            (
                inject(&b3s, &ctx(None, None, 0x00, true)),
                pairs(&[("b3", &format!("{ab}-0101010101010101-d"))]),
                "B3 debug kept as d",
            ),
            (
                inject(&b3m, &ctx(None, None, 0x01, true)),
                pairs(&[
                    ("x-b3-traceid", ab),
                    ("x-b3-spanid", "0101010101010101"),
                    ("x-b3-flags", "1"),
                ]),
                "B3 multi debug is X-B3-Flags: 1",
            ),
            (
                inject(&b3m, &ctx(None, None, 0x01, false)),
                pairs(&[
                    ("x-b3-traceid", ab),
                    ("x-b3-spanid", "0101010101010101"),
                    ("x-b3-sampled", "1"),
                ]),
                "B3 multi sampled",
            ),
        ];
        for (got, want, rule) in cases {
            assert_eq!(got, want, "{rule}");
        }
        let invalid = InjectContext {
            trace_id: TraceId::INVALID,
            ..ctx(None, Some(&bg), 1, false)
        };
        assert_eq!(
            inject(&w3c, &invalid),
            pairs(&[("baggage", "k=v%20w")]),
            "invalid ids: no trace headers"
        );
    }

    #[test]
    fn fields_lists_every_header() {
        let p = Propagator::builder()
            .inject_formats(&[Format::B3Multi])
            .build();
        let fields: Vec<_> = p.fields().collect();
        assert_eq!(fields.len(), 9);
        assert!(fields.contains(&"x-b3-flags") && fields.contains(&"baggage"));
    }

    proptest! {
        #[test]
        fn round_trip_through_headers(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), flags in 0u8..4, debug in any::<bool>()) {
            prop_assume!(trace != [0; 16] && span != [0; 8]);
            for format in [Format::TraceContext, Format::B3Single, Format::B3Multi] {
                let p = Propagator::builder().inject_formats(&[format]).extract_formats(&[format]).build();
                let c = InjectContext { trace_id: TraceId(trace), span_id: SpanId(span), flags: TraceFlags(flags), tracestate: None, baggage: None, b3_debug: debug };
                let mut headers: Vec<(String, String)> = Vec::new();
                p.inject(&c, &mut headers);
                let got = p.extract(&headers).parent.expect("round trip");
                prop_assert_eq!(got.trace_id, c.trace_id);
                prop_assert_eq!(got.span_id, c.span_id);
                if format == Format::TraceContext {
                    prop_assert_eq!(got.flags, TraceFlags(flags));
                } else {
                    prop_assert_eq!(got.flags.is_sampled(), debug || flags & 1 == 1);
                    prop_assert_eq!(got.b3_debug, debug);
                }
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(values in proptest::collection::vec(("(traceparent|tracestate|baggage|b3|x-b3-traceid|x-b3-spanid|x-b3-sampled|x-b3-flags|x-b3-parentspanid)", any::<String>()), 0..8)) {
            let e = Propagator::new().extract(&values);
            let _ = e.errors.any();
        }
    }
}
