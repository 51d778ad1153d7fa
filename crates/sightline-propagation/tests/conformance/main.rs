//! Conformance cases written from the specifications, run through [`Propagator`] as a server
//! (extract) and a client (inject) would: W3C Trace Context Level 2 (modelled on the
//! w3c/trace-context test suite), W3C Baggage, and B3 (openzipkin/b3-propagation).

use sightline_propagation::b3::Sampling;
use sightline_propagation::{
    Baggage, Extracted, Format, InjectContext, Propagator, SpanId, TraceFlags, TraceId,
    TraceparentError,
};

const TRACE: &str = "12345678901234567890123456789012";
const PARENT: &str = "1234567890123456";
const TP: &str = "00-12345678901234567890123456789012-1234567890123456-01";

fn extract(headers: &[(&str, &str)]) -> Extracted {
    Propagator::new().extract(headers)
}

/// The trace id continued, or `None` for "a new trace was started".
fn continued(headers: &[(&str, &str)]) -> Option<String> {
    extract(headers).parent.map(|p| p.trace_id.to_string())
}

fn tracestate(headers: &[(&str, &str)]) -> Option<String> {
    extract(headers)
        .parent
        .and_then(|p| p.tracestate)
        .map(|t| t.header_value().to_owned())
}

fn tp(version: &str, trace: &str, parent: &str, flags: &str) -> String {
    format!("{version}-{trace}-{parent}-{flags}")
}

#[test]
fn traceparent_rules() {
    let zeros32 = "0".repeat(32);
    let zeros16 = "0".repeat(16);
    let cases: Vec<(String, bool, &str)> = vec![
        (TP.into(), true, "version 00, valid"),
        (
            tp("cc", TRACE, PARENT, "01"),
            true,
            "future version 0xcc is parsed by the 00 rules",
        ),
        (
            format!(
                "{}-what-the-future-will-be-like",
                tp("cc", TRACE, PARENT, "01")
            ),
            true,
            "future version may append '-' fields",
        ),
        (
            format!("{}.what", tp("cc", TRACE, PARENT, "01")),
            false,
            "future version: 56th character must be '-'",
        ),
        (
            format!("{TP}-"),
            false,
            "version 00 is exactly 55 characters",
        ),
        (
            tp("ff", TRACE, PARENT, "01"),
            false,
            "version ff is invalid",
        ),
        (tp("0", TRACE, PARENT, "01"), false, "version too short"),
        (tp("000", TRACE, PARENT, "01"), false, "version too long"),
        (
            tp(".0", TRACE, PARENT, "01"),
            false,
            "version illegal characters",
        ),
        (tp("00", &zeros32, PARENT, "01"), false, "trace-id all zero"),
        (
            tp("00", &TRACE.replace('1', "."), PARENT, "01"),
            false,
            "trace-id illegal characters",
        ),
        (
            tp("00", &format!("{TRACE}1"), PARENT, "01"),
            false,
            "trace-id too long",
        ),
        (
            tp("00", &TRACE[1..], PARENT, "01"),
            false,
            "trace-id too short",
        ),
        (
            tp("00", "ABCDEF78901234567890123456789012", PARENT, "01"),
            false,
            "trace-id uppercase",
        ),
        (tp("00", TRACE, &zeros16, "01"), false, "parent-id all zero"),
        (
            tp("00", TRACE, &PARENT.replace('1', "."), "01"),
            false,
            "parent-id illegal characters",
        ),
        (
            tp("00", TRACE, &format!("{PARENT}1"), "01"),
            false,
            "parent-id too long",
        ),
        (
            tp("00", TRACE, &PARENT[1..], "01"),
            false,
            "parent-id too short",
        ),
        (
            tp("00", TRACE, "ABCDEF7890123456", "01"),
            false,
            "parent-id uppercase",
        ),
        (
            tp("00", TRACE, PARENT, ".0"),
            false,
            "trace-flags illegal characters",
        ),
        (
            tp("00", TRACE, PARENT, "001"),
            false,
            "trace-flags too long",
        ),
        (tp("00", TRACE, PARENT, "1"), false, "trace-flags too short"),
        (
            format!(" {TP}"),
            true,
            "leading OWS is not part of the field value (RFC 7230 §3.2.4)",
        ),
        (
            format!("{TP}\t"),
            true,
            "trailing OWS is not part of the field value",
        ),
    ];
    for (value, valid, rule) in cases {
        let got = continued(&[("traceparent", &value)]);
        assert_eq!(got.is_some(), valid, "{rule}: {value:?}");
        if valid {
            assert_eq!(got.as_deref(), Some(TRACE), "{rule}");
        }
    }
}

#[test]
fn traceparent_header_rules() {
    assert!(
        continued(&[("TraceParent", TP)]).is_some(),
        "header name is case-insensitive"
    );
    assert!(
        continued(&[("traceparent", TP), ("traceparent", TP)]).is_none(),
        "duplicated traceparent: new trace"
    );
    let e = extract(&[("traceparent", TP), ("traceparent", TP)]);
    assert_eq!(
        e.errors.traceparent_error,
        Some(TraceparentError::MultipleHeaders)
    );
    let upper = tp("00", TRACE, "ABCDEF7890123456", "01");
    let e = extract(&[("traceparent", &upper)]);
    assert_eq!(
        e.errors.traceparent_error,
        Some(TraceparentError::UppercaseHex),
        "the reason is reported"
    );
    assert!(
        tracestate(&[
            ("traceparent", &tp("ff", TRACE, PARENT, "01")),
            ("tracestate", "foo=1")
        ])
        .is_none(),
        "an invalid traceparent drops the tracestate"
    );
}

#[test]
fn trace_flags_rules() {
    let flags = |f: &str| {
        extract(&[("traceparent", &tp("00", TRACE, PARENT, f))])
            .parent
            .map(|p| p.flags)
    };
    assert_eq!(flags("00"), Some(TraceFlags(0)), "not sampled");
    assert_eq!(flags("01"), Some(TraceFlags::SAMPLED), "sampled");
    assert_eq!(
        flags("02"),
        Some(TraceFlags::RANDOM),
        "random kept on extraction (Level 2)"
    );
    assert_eq!(
        flags("fb"),
        Some(TraceFlags(0x03)),
        "unknown bits are not kept in the remote context"
    );

    let p = Propagator::new();
    let mut out: Vec<(String, String)> = Vec::new();
    let ctx = InjectContext {
        trace_id: TraceId([0x12; 16]),
        span_id: SpanId([0x34; 8]),
        flags: TraceFlags(0xff),
        tracestate: None,
        baggage: None,
        b3_debug: false,
    };
    p.inject(&ctx, &mut out);
    assert!(
        out[0].1.ends_with("-03"),
        "inject zeroes unknown bits, keeps sampled and random"
    );
    assert!(out[0].1.starts_with("00-"), "inject writes version 00");

    // Level 2 §3.2.2.5.2: the random flag of a continued trace goes out as it came in, also
    // when the trace is not sampled.
    for (flags, suffix) in [("02", "-02"), ("00", "-00"), ("03", "-03")] {
        let parent = extract(&[("traceparent", &tp("00", TRACE, PARENT, flags))])
            .parent
            .expect("valid");
        let ctx = InjectContext {
            trace_id: parent.trace_id,
            span_id: SpanId([0x34; 8]),
            flags: parent.flags,
            tracestate: None,
            baggage: None,
            b3_debug: false,
        };
        let mut out: Vec<(String, String)> = Vec::new();
        p.inject(&ctx, &mut out);
        assert!(
            out[0].1.ends_with(suffix),
            "flags {flags} in, {} out",
            out[0].1
        );
    }
}

#[test]
fn tracestate_rules() {
    let with = |ts: &[&str]| {
        let mut h = vec![("traceparent", TP)];
        h.extend(ts.iter().map(|v| ("tracestate", *v)));
        tracestate(&h)
    };
    let k256 = format!("a{}", "b".repeat(255));
    let m32: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
    let m33: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    let cases: Vec<(Vec<String>, Option<String>, &str)> = vec![
        (
            vec!["foo=1".into(), "bar=2".into()],
            Some("foo=1,bar=2".into()),
            "multiple headers with different keys are combined",
        ),
        (
            vec!["foo=1".into(), "foo=2".into()],
            Some("foo=1".into()),
            "duplicated keys across headers: the first member kept (Level 2)",
        ),
        (
            vec!["foo=1,bar=2,foo=3".into()],
            Some("foo=1,bar=2".into()),
            "duplicated keys: the first member kept, the order of the others unchanged (Level 2)",
        ),
        (vec!["".into()], None, "empty tracestate: none"),
        (
            vec!["foo=1 , \tbar=2 ".into()],
            Some("foo=1,bar=2".into()),
            "OWS around list members",
        ),
        (
            vec!["foo=1,,bar=2".into()],
            Some("foo=1,bar=2".into()),
            "empty list members",
        ),
        (vec!["foo=1,FOO=2".into()], None, "uppercase key"),
        (
            vec!["foo@@bar=1,bar=2".into()],
            Some("foo@@bar=1,bar=2".into()),
            "'@' twice is a key (Level 2 has no tenant@system format)",
        ),
        (
            vec!["foo@bar@baz=1,bar=2".into()],
            Some("foo@bar@baz=1,bar=2".into()),
            "'@' anywhere after the first character (Level 2)",
        ),
        (
            vec!["foo@=1,bar=2".into()],
            Some("foo@=1,bar=2".into()),
            "'@' may end a key (Level 2)",
        ),
        (
            vec!["@foo=1,bar=2".into()],
            None,
            "a key starts with a lowercase letter or a digit",
        ),
        (
            vec!["1foo=1".into()],
            Some("1foo=1".into()),
            "a key may start with a digit (Level 2)",
        ),
        (vec!["foo=1,bar=2=".into()], None, "'=' in a value"),
        (
            vec!["foo=\u{7f}".into()],
            None,
            "DEL is not a value character",
        ),
        (
            vec!["foo= 1".into()],
            Some("foo= 1".into()),
            "value may begin with a space",
        ),
        (
            vec![format!("{k256}=1")],
            Some(format!("{k256}=1")),
            "key of 256 characters",
        ),
        (vec![format!("a{k256}=1")], None, "key of 257 characters"),
        (
            vec![format!("{}@{}=1", "t".repeat(241), "s".repeat(14))],
            Some(format!("{}@{}=1", "t".repeat(241), "s".repeat(14))),
            "241 characters, '@', 14 characters: a key of 256",
        ),
        (
            vec!["foo=1".into(), format!("{}@v=1", "t".repeat(242))],
            Some(format!("foo=1,{}@v=1", "t".repeat(242))),
            "242 characters before '@': no tenant limit in Level 2",
        ),
        (
            vec!["foo=1".into(), format!("t@{}=1", "v".repeat(15))],
            Some(format!("foo=1,t@{}=1", "v".repeat(15))),
            "15 characters after '@': no system limit in Level 2",
        ),
        (
            vec![
                "foo=1".into(),
                format!("{}@{}=1", "t".repeat(241), "s".repeat(15)),
            ],
            None,
            "'@' counts toward the 256 characters of a key: 257 is too long",
        ),
        (vec![m32.join(",")], Some(m32.join(",")), "32 members"),
        (vec![m33.join(",")], None, "33 members: dropped"),
        (
            vec![m32[..16].join(","), m33[16..].join(",")],
            None,
            "33 members across two headers: dropped",
        ),
    ];
    for (lines, want, rule) in cases {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(with(&refs), want, "{rule}");
        assert!(
            continued(&[("traceparent", TP)]).is_some(),
            "{rule}: traceparent still used"
        );
    }
    let all = "a=!\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
    assert_eq!(
        with(&[all]).as_deref(),
        Some(all),
        "all allowed value characters"
    );
}

#[test]
fn tracestate_truncation() {
    let long = format!("big={}", "x".repeat(200));
    let members = format!("a=1,{long},b=2");
    let p = Propagator::builder().max_tracestate_len(100).build();
    let e = p.extract(&[("traceparent", TP), ("tracestate", &members)]);
    let ts = e
        .parent
        .and_then(|p| p.tracestate)
        .expect("kept after truncation");
    assert_eq!(
        ts.header_value(),
        "a=1,b=2",
        "members over 128 characters are removed first"
    );
}

#[test]
fn baggage_rules() {
    let parse = |lines: &[&str]| {
        let h: Vec<(&str, &str)> = lines.iter().map(|l| ("baggage", *l)).collect();
        let e = extract(&h);
        let got: Vec<(String, String)> = e
            .baggage
            .map(|b| {
                b.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        (got, e.errors.baggage_dropped)
    };
    let kv = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    type Case<'a> = (Vec<&'a str>, Vec<(String, String)>, usize, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec!["userId=alice,serverNode=DF%2028,isProduction=false"],
            kv(&[
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
            ]),
            0,
            "spec example, single header",
        ),
        (
            vec!["userId=alice", "serverNode=DF%2028,isProduction=false"],
            kv(&[
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
            ]),
            0,
            "spec example, split across headers",
        ),
        (
            vec![
                "userId =   alice",
                "serverNode = DF%2028, isProduction = false",
            ],
            kv(&[
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false"),
            ]),
            0,
            "spec example, whitespace",
        ),
        (
            vec![
                "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
            ],
            kv(&[("key1", "value1"), ("key2", "value2"), ("key3", "value3")]),
            0,
            "spec example with properties",
        ),
        (
            vec!["k=a+b"],
            kv(&[("k", "a+b")]),
            0,
            "'+' is a literal plus (Python encodes space as '+')",
        ),
        (
            vec!["k=%C3%A9"],
            kv(&[("k", "é")]),
            0,
            "percent-decoded UTF-8",
        ),
        (vec!["k=%C3"], kv(&[]), 1, "invalid UTF-8 drops the member"),
        (
            vec!["a=1,b c=2,d=4"],
            kv(&[("a", "1"), ("d", "4")]),
            1,
            "invalid member dropped whole",
        ),
    ];
    for (lines, want, dropped, rule) in cases {
        assert_eq!(parse(&lines), (want, dropped), "{rule}");
    }
    let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
    let (got, dropped) = parse(&[&many.join(",")]);
    assert_eq!(
        (got.len(), dropped),
        (64, 36),
        "at least 64 members, whole members beyond dropped"
    );
    let big: Vec<String> = (0..10)
        .map(|i| format!("k{i}={}", "v".repeat(1000)))
        .collect();
    let (got, dropped) = parse(&[&big.join(",")]);
    assert_eq!(
        (got.len(), dropped),
        (8, 2),
        "8192 bytes, never a partial member"
    );
}

#[test]
fn baggage_inject_encodes() {
    let mut b = Baggage::new();
    b.insert("serverNode", "DF 28");
    b.insert("plus", "a+b");
    let ctx = InjectContext {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([2; 8]),
        flags: TraceFlags::SAMPLED,
        tracestate: None,
        baggage: Some(&b),
        b3_debug: false,
    };
    let mut out: Vec<(String, String)> = Vec::new();
    Propagator::new().inject(&ctx, &mut out);
    assert_eq!(
        out[1],
        (
            "baggage".to_owned(),
            "serverNode=DF%2028,plus=a%2Bb".to_owned()
        )
    );
}

#[test]
fn b3_rules() {
    let b3 = |h: &[(&str, &str)]| {
        extract(h).parent.map(|p| {
            (
                p.trace_id.to_string(),
                p.span_id.to_string(),
                p.flags.is_sampled(),
                p.b3_debug,
                p.format,
            )
        })
    };
    let t = "80f198ee56343ba864fe8b2a57d3eff7";
    let s = "e457b5a2e4d86bd1";
    let single = format!("{t}-{s}-1-05e3ac9a4f6e3b90");
    assert_eq!(
        b3(&[("b3", &single)]),
        Some((t.into(), s.into(), true, false, Format::B3Single)),
        "single header"
    );
    assert_eq!(
        b3(&[
            ("b3", &single),
            ("x-b3-traceid", "0000000000000001"),
            ("x-b3-spanid", s)
        ]),
        Some((t.into(), s.into(), true, false, Format::B3Single)),
        "single header wins over multi"
    );
    assert_eq!(
        b3(&[
            ("X-B3-TraceId", "64fe8b2a57d3eff7"),
            ("X-B3-SpanId", s),
            ("X-B3-Sampled", "true")
        ]),
        Some((
            "000000000000000064fe8b2a57d3eff7".into(),
            s.into(),
            true,
            false,
            Format::B3Multi
        )),
        "multi header, 64-bit id left-padded, 'true' accepted"
    );
    assert_eq!(
        b3(&[("b3", &format!("{t}-{s}-d"))]).map(|c| (c.2, c.3)),
        Some((true, true)),
        "d = debug, implies sampled"
    );
    assert_eq!(
        b3(&[("X-B3-TraceId", t), ("X-B3-SpanId", s), ("X-B3-Flags", "1")]).map(|c| (c.2, c.3)),
        Some((true, true)),
        "X-B3-Flags: 1 = debug"
    );
    assert_eq!(
        b3(&[("b3", &format!("{t}-{s}-0"))]).map(|c| c.2),
        Some(false),
        "0 = deny"
    );
    assert_eq!(
        extract(&[("b3", "0")]).b3_sampling_only,
        Some(Sampling::Deny),
        "bare 0 = deny decision only"
    );
    assert!(
        b3(&[("b3", &format!("{}-{s}", t.to_uppercase()))]).is_none(),
        "uppercase rejected"
    );

    // inject: the caller's new span id, debug kept
    for (format, want) in [
        (
            Format::B3Single,
            vec![("b3", format!("{t}-1111111111111111-d"))],
        ),
        (
            Format::B3Multi,
            vec![
                ("x-b3-traceid", t.to_owned()),
                ("x-b3-spanid", "1111111111111111".to_owned()),
                ("x-b3-flags", "1".to_owned()),
            ],
        ),
    ] {
        let p = Propagator::builder().inject_formats(&[format]).build();
        let ctx = InjectContext {
            trace_id: TraceId::from_hex(t.as_bytes()).expect("valid"),
            span_id: SpanId([0x11; 8]),
            flags: TraceFlags::SAMPLED,
            tracestate: None,
            baggage: None,
            b3_debug: true,
        };
        let mut out: Vec<(String, String)> = Vec::new();
        p.inject(&ctx, &mut out);
        let want: Vec<(String, String)> =
            want.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(out, want, "{format:?}");
    }
}

#[cfg(feature = "http")]
#[test]
fn http_header_map() {
    use http::{HeaderMap, HeaderValue};

    let mut map = HeaderMap::new();
    map.insert("traceparent", HeaderValue::from_static(TP));
    map.append("tracestate", HeaderValue::from_static("foo=1"));
    map.append("tracestate", HeaderValue::from_static("bar=2"));
    map.append("baggage", HeaderValue::from_static("a=1"));
    map.append(
        "baggage",
        HeaderValue::from_bytes(b"b=\xff").expect("opaque bytes are a valid value"),
    );
    let e = Propagator::new().extract(&map);
    let parent = e.parent.expect("valid");
    assert_eq!(
        parent.tracestate.expect("combined").header_value(),
        "foo=1,bar=2"
    );
    assert_eq!(e.baggage.expect("valid member kept").len(), 1);
    assert_eq!(e.errors.baggage_dropped, 1);

    let mut out = HeaderMap::new();
    let b = Baggage::from_iter([("k", "v")]);
    let ctx = InjectContext {
        trace_id: parent.trace_id,
        span_id: SpanId([0x22; 8]),
        flags: parent.flags,
        tracestate: None,
        baggage: Some(&b),
        b3_debug: false,
    };
    Propagator::new().inject(&ctx, &mut out);
    assert_eq!(
        out["traceparent"],
        "00-12345678901234567890123456789012-2222222222222222-01"
    );
    assert_eq!(out["baggage"], "k=v");
}
