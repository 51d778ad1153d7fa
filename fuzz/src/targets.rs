//! The fuzz targets: each takes arbitrary bytes and panics if an invariant breaks.
//!
//! Header-list inputs (`tracestate`, `baggage`) treat `\n` as a line break, so one input can
//! carry several header lines. [`b3_multi`] and [`propagator_extract`] read their inputs as
//! text headers (see each target).

use sightline_propagation::b3::{self, B3Context, B3Single, Sampling};
use sightline_propagation::{
    Baggage, Extracted, Format, InjectContext, Propagator, SpanId, TraceFlags, TraceId, TraceState,
    Traceparent,
};

use crate::grammar;

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    data.split(|&b| b == b'\n')
}

/// `traceparent`: [`Traceparent::parse`] agrees with a parser written from §3.2; what parses
/// encodes to a grammatical version-00 value that parses back to the same ids and known flags;
/// a version-00 input with known flags is its own encoding.
pub fn traceparent(data: &[u8]) {
    let parsed = Traceparent::parse(data);
    assert_eq!(
        parsed.is_ok(),
        grammar::traceparent_acceptable(data),
        "parser and specification disagree: {parsed:?}"
    );
    let tp = match parsed {
        Ok(tp) => tp,
        Err(e) => {
            assert!(!e.as_str().is_empty() && !e.to_string().is_empty());
            return;
        }
    };
    let enc = tp.encode();
    if let Err(why) = grammar::check_traceparent_v00(enc.as_bytes()) {
        panic!("encoded {enc:?}: {why}");
    }
    assert_eq!(tp.to_string(), enc.as_str());
    let back = Traceparent::parse(enc.as_bytes()).expect("an encoded traceparent parses");
    assert_eq!(back.version, 0);
    assert_eq!(back.trace_id, tp.trace_id);
    assert_eq!(back.parent_id, tp.parent_id);
    assert_eq!(back.flags, tp.flags.known());
    if tp.version == 0 && tp.flags == tp.flags.known() {
        assert_eq!(
            enc.as_bytes(),
            data,
            "a canonical value re-encodes to itself"
        );
    }
}

/// `tracestate` (lines split at `\n`): accepted exactly when a Level 2 reader written from
/// §3.3 accepts, keeping the same members in the same order (the first of a repeated key);
/// what parses has at most 32 grammatical members, its canonical header parses back to an
/// equal state, truncation keeps whole members in order within the limit, and an insert moves
/// the member to the front.
pub fn tracestate(data: &[u8]) {
    let input: Vec<&[u8]> = lines(data).collect();
    let parsed = TraceState::parse(input.iter().copied());
    let kept = grammar::tracestate_kept(&input);
    assert_eq!(
        parsed.is_ok(),
        kept.is_some(),
        "accepted exactly when a Level 2 reader accepts: {parsed:?}"
    );
    let (Ok(ts), Some(kept)) = (parsed, kept) else {
        return;
    };
    let members: Vec<(&[u8], &[u8])> = ts
        .members()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    assert_eq!(
        members, kept,
        "the members kept, in order, the first of a repeated key"
    );
    let header = ts.header_value();
    match grammar::check_tracestate(header.as_bytes()) {
        Ok(n) => assert_eq!(n, ts.len(), "member count of {header:?}"),
        Err(why) => panic!("header {header:?}: {why}"),
    }
    assert_eq!(ts.to_string(), header);
    assert_eq!(ts.is_empty(), header.is_empty());
    let back = TraceState::parse([header.as_bytes()]).expect("a canonical tracestate parses");
    assert_eq!(back, ts);

    let limit = usize::from(data.first().copied().unwrap_or(0)) * 4;
    let mut cut = ts.clone();
    cut.truncate_to(limit);
    assert!(cut.header_value().len() <= limit);
    let mut kept = ts.members();
    for member in cut.members() {
        assert!(
            kept.any(|m| m == member),
            "truncation kept {member:?} out of order or changed it"
        );
    }

    let mut ins = ts.clone();
    ins.insert("fuzz@sys", "v").expect("a valid member inserts");
    assert_eq!(ins.members().next(), Some(("fuzz@sys", "v")));
    assert!(ins.len() <= 32);
    assert!(grammar::check_tracestate(ins.header_value().as_bytes()).is_ok());
}

/// `baggage` (lines split at `\n`): parsing never fails; the header it writes is grammatical,
/// within 64 members and 8192 bytes, and parses back, with nothing dropped, to equal baggage.
pub fn baggage(data: &[u8]) {
    let (bag, _dropped) = Baggage::parse(lines(data));
    assert!(bag.len() <= 64);
    let header = bag.header_value();
    match grammar::check_baggage(header.as_bytes()) {
        Ok(n) => assert_eq!(n, bag.len(), "every parsed member is written: {header:?}"),
        Err(why) => panic!("header {header:?}: {why}"),
    }
    let (back, dropped) = Baggage::parse([header.as_bytes()]);
    assert_eq!(dropped, 0, "{header:?}");
    assert_eq!(back, bag, "{header:?}");
    assert_eq!(back.header_value(), header);
}

fn expect_single_roundtrip(ctx: &B3Context) {
    let enc = b3::encode_single(ctx);
    if let Err(why) = grammar::check_b3_single(enc.as_bytes()) {
        panic!("encoded {enc:?}: {why}");
    }
    let back = b3::parse_single(enc.as_bytes()).expect("an encoded b3 value parses");
    // the format is positional: without a sampling state there is no place for the parent
    let mut want = *ctx;
    if want.sampling == Sampling::Defer {
        want.parent_span_id = None;
    }
    assert_eq!(back, B3Single::Context(want), "via {enc:?}");
}

fn expect_multi_roundtrip(ctx: &B3Context) {
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    b3::encode_multi(ctx, &mut |name, value| {
        headers.push((name, value.to_owned()));
    });
    let get = |name: &str| {
        let mut values = headers.iter().filter(|(n, _)| *n == name);
        let first = values.next().map(|(_, v)| v.as_bytes());
        assert!(values.next().is_none(), "{name} written twice");
        first
    };
    grammar::check_b3_trace_id(get(b3::X_B3_TRACE_ID).unwrap_or_default()).expect("trace id");
    grammar::check_b3_span_id(get(b3::X_B3_SPAN_ID).unwrap_or_default()).expect("span id");
    if let Some(parent) = get(b3::X_B3_PARENT_SPAN_ID) {
        grammar::check_b3_span_id(parent).expect("parent span id");
    }
    let back = b3::parse_multi(
        get(b3::X_B3_TRACE_ID),
        get(b3::X_B3_SPAN_ID),
        get(b3::X_B3_SAMPLED),
        get(b3::X_B3_FLAGS),
        get(b3::X_B3_PARENT_SPAN_ID),
    );
    assert_eq!(back, Ok(B3Single::Context(*ctx)), "via {headers:?}");
}

/// B3 single header: a context re-encodes (single and multi) grammatically and parses back the
/// same; a sampling-only value is one character and never "defer".
pub fn b3_single(data: &[u8]) {
    match b3::parse_single(data) {
        Ok(B3Single::Context(ctx)) => {
            assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid());
            assert!(ctx.parent_span_id.is_none_or(|p| p.is_valid()));
            expect_single_roundtrip(&ctx);
            expect_multi_roundtrip(&ctx);
        }
        Ok(B3Single::SamplingOnly(s)) => {
            assert_eq!(data.len(), 1);
            assert_ne!(s, Sampling::Defer);
        }
        Err(e) => assert!(!e.as_str().is_empty() && !e.to_string().is_empty()),
    }
}

/// B3 multi-header. The first byte's low five bits say which of `X-B3-TraceId`,
/// `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`, `X-B3-ParentSpanId` are present; the rest,
/// split at `\n`, gives their values in that order. A context re-encodes and parses back the
/// same, in both forms.
pub fn b3_multi(data: &[u8]) {
    let Some((&mask, rest)) = data.split_first() else {
        return;
    };
    let mut values = rest.split(|&b| b == b'\n');
    let mut field = |bit: u8| {
        let v = values.next();
        if mask & (1 << bit) == 0 {
            None
        } else {
            Some(v.unwrap_or_default())
        }
    };
    let (trace, span, sampled, flags, parent) = (field(0), field(1), field(2), field(3), field(4));
    match b3::parse_multi(trace, span, sampled, flags, parent) {
        Ok(B3Single::Context(ctx)) => {
            assert!(trace.is_some() && span.is_some());
            expect_single_roundtrip(&ctx);
            expect_multi_roundtrip(&ctx);
        }
        Ok(B3Single::SamplingOnly(s)) => {
            assert!(trace.is_none() && span.is_none());
            assert!(sampled.is_some() || flags.is_some());
            assert_ne!(s, Sampling::Defer);
        }
        Err(e) => assert!(!e.as_str().is_empty()),
    }
}

/// Reads text headers: lines split at `\n`, each `name: value` (split at the first `:`, one
/// leading space of the value dropped; a line without `:` is a name with an empty value).
fn header_list(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    text.split('\n')
        .map(|line| match line.split_once(':') {
            Some((name, value)) => (
                name.to_owned(),
                value.strip_prefix(' ').unwrap_or(value).to_owned(),
            ),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}

fn propagators() -> [Propagator; 4] {
    [
        Propagator::new(),
        Propagator::builder()
            .extract_formats(&[Format::B3Multi, Format::B3Single, Format::TraceContext])
            .inject_formats(&[Format::TraceContext, Format::B3Single, Format::B3Multi])
            .max_tracestate_len(64)
            .build(),
        Propagator::builder().public_endpoint(true).build(),
        Propagator::builder()
            .extract_formats(&[Format::TraceContext])
            .inject_formats(&[Format::B3Multi])
            .baggage(false)
            .max_tracestate_len(0)
            .build(),
    ]
}

fn check_extracted(headers: &[(String, String)], ex: &Extracted, max_ts: usize) {
    let e = &ex.errors;
    assert_eq!(e.traceparent, e.traceparent_error.is_some(), "{e:?}");
    assert_eq!(e.b3, e.b3_error.is_some(), "{e:?}");
    assert_eq!(e.baggage, e.baggage_dropped > 0, "{e:?}");
    assert!(ex.baggage.as_ref().is_none_or(|b| !b.is_empty()));
    assert!(ex.parent.is_none() || ex.link.is_none());
    if let Some(ctx) = ex.parent.as_ref().or(ex.link.as_ref()) {
        assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid());
        assert_eq!(ctx.flags, ctx.flags.known());
        assert!(ex.b3_sampling_only.is_none());
        if let Some(ts) = &ctx.tracestate {
            assert!(!ts.is_empty() && ts.header_value().len() <= max_ts);
            assert_eq!(ctx.format, Format::TraceContext);
        }
        if ctx.format == Format::TraceContext {
            let lines: Vec<&str> = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("traceparent"))
                .map(|(_, v)| v.trim_matches([' ', '\t']))
                .collect();
            assert_eq!(lines.len(), 1, "one traceparent line");
            assert!(grammar::traceparent_acceptable(lines[0].as_bytes()));
            assert!(!e.traceparent);
        }
    }
}

/// `Propagator::extract` over arbitrary header sets (see `header_list` for the text format),
/// under four configurations; what it extracts satisfies the documented guarantees and
/// survives an inject → extract round trip.
pub fn propagator_extract(data: &[u8]) {
    let headers = header_list(data);
    let configs = propagators();
    let max_ts = [512, 64, 512, 0];
    for (p, max_ts) in configs.iter().zip(max_ts) {
        let ex = p.extract(&headers);
        check_extracted(&headers, &ex, max_ts);
        if let Some(ctx) = ex.parent.as_ref().or(ex.link.as_ref()) {
            let inject = InjectContext {
                trace_id: ctx.trace_id,
                span_id: SpanId([0x5a; 8]),
                flags: ctx.flags,
                tracestate: ctx.tracestate.as_ref(),
                baggage: ex.baggage.as_ref(),
                b3_debug: ctx.b3_debug,
            };
            roundtrip_with(p, &inject);
        }
    }
    // the public-endpoint configuration links what the default one continues
    let plain = configs[0].extract(&headers);
    let public = configs[2].extract(&headers);
    assert_eq!(public.link, plain.parent);
    assert_eq!(public.baggage, plain.baggage);
}

/// Injects `ctx` with `p`, extracts it back with a propagator reading exactly what `p`
/// writes, and checks that everything sent arrives unchanged.
fn roundtrip_with(p: &Propagator, ctx: &InjectContext<'_>) {
    let mut out: Vec<(String, String)> = Vec::new();
    p.inject(ctx, &mut out);
    for (name, value) in &out {
        let checked = match name.as_str() {
            "traceparent" => grammar::check_traceparent_v00(value.as_bytes()),
            "tracestate" => grammar::check_tracestate(value.as_bytes()).map(drop),
            "baggage" => grammar::check_baggage(value.as_bytes()).map(drop),
            "b3" => grammar::check_b3_single(value.as_bytes()),
            "x-b3-traceid" => grammar::check_b3_trace_id(value.as_bytes()),
            "x-b3-spanid" | "x-b3-parentspanid" => grammar::check_b3_span_id(value.as_bytes()),
            "x-b3-sampled" | "x-b3-flags" => Ok(()),
            _ => Err("unexpected header written"),
        };
        if let Err(why) = checked {
            panic!("injected {name}: {value:?}: {why}");
        }
    }
    let written: Vec<Format> = [Format::TraceContext, Format::B3Single, Format::B3Multi]
        .into_iter()
        .filter(|f| {
            let name = match f {
                Format::TraceContext => "traceparent",
                Format::B3Single => "b3",
                _ => "x-b3-traceid",
            };
            out.iter().any(|(n, _)| n == name)
        })
        .collect();
    let ids_valid = ctx.trace_id.is_valid() && ctx.span_id.is_valid();
    // every configuration here writes at least one trace-context format
    assert_eq!(written.is_empty(), !ids_valid, "{out:?}");
    for format in written {
        let reader = Propagator::builder().extract_formats(&[format]).build();
        let back = reader.extract(&out);
        assert!(!back.errors.any(), "{out:?}: {:?}", back.errors);
        let got = back.parent.expect("an injected context extracts");
        assert_eq!(got.trace_id, ctx.trace_id);
        assert_eq!(got.span_id, ctx.span_id);
        match format {
            Format::TraceContext => {
                assert_eq!(got.flags, ctx.flags.known());
                let sent = out.iter().find(|(n, _)| n == "tracestate");
                assert_eq!(
                    got.tracestate.as_ref().map(TraceState::header_value),
                    sent.map(|(_, v)| v.as_str())
                );
            }
            _ => {
                let sampled = ctx.flags.is_sampled() || ctx.b3_debug;
                assert_eq!(got.flags.is_sampled(), sampled, "{out:?}");
                assert_eq!(got.b3_debug, ctx.b3_debug, "{out:?}");
            }
        }
        match ctx
            .baggage
            .map(Baggage::header_value)
            .filter(|h| !h.is_empty())
        {
            Some(sent) if p.fields().any(|f| f == "baggage") => {
                let got = back.baggage.expect("injected baggage extracts");
                assert_eq!(got.header_value(), sent);
                for (k, v) in got.iter() {
                    assert!(
                        ctx.baggage.is_some_and(|b| b.iter().any(|m| m == (k, v))),
                        "baggage member {k:?}={v:?} changed on the way"
                    );
                }
            }
            _ => assert!(back.baggage.is_none()),
        }
    }
}

/// Takes up to `n` bytes from the front of `data`, zero-padded.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

/// Inject → extract round trips from an arbitrary context: bytes 0..16 the trace id, 16..24
/// the span id, 24 the flags, 25 the configuration and B3 debug bit; the rest, split at `\n`,
/// gives a `tracestate` line and then baggage `name=value` pairs inserted as given (names and
/// values need not be valid: [`Baggage::header_value`] must leave out what it cannot write).
pub fn roundtrip(data: &[u8]) {
    let mut rest = data;
    let trace_id = TraceId(take::<16>(&mut rest));
    let span_id = SpanId(take::<8>(&mut rest));
    let [flags, config] = take::<2>(&mut rest);
    let mut parts = rest.split(|&b| b == b'\n');
    let tracestate = parts
        .next()
        .and_then(|line| TraceState::parse([line]).ok())
        .filter(|ts| !ts.is_empty());
    let mut baggage = Baggage::new();
    for pair in parts {
        let pair = String::from_utf8_lossy(pair);
        let (name, value) = pair.split_once('=').unwrap_or((&pair, ""));
        if let Some((value, props)) = value.split_once(';').filter(|_| config & 0x10 != 0) {
            baggage.insert_with_properties(name, value, props);
        } else {
            baggage.insert(name, value);
        }
    }
    let formats: &[Format] = match config & 0x3 {
        0 => &[Format::TraceContext],
        1 => &[Format::B3Single],
        2 => &[Format::B3Multi],
        _ => &[Format::TraceContext, Format::B3Single, Format::B3Multi],
    };
    let p = Propagator::builder()
        .inject_formats(formats)
        .max_tracestate_len(if config & 0x4 != 0 { 64 } else { 512 })
        .baggage(config & 0x20 == 0)
        .build();
    let ctx = InjectContext {
        trace_id,
        span_id,
        flags: TraceFlags(flags),
        tracestate: tracestate.as_ref(),
        baggage: Some(&baggage),
        b3_debug: config & 0x8 != 0,
    };
    roundtrip_with(&p, &ctx);
}
