//! Hostile and malformed propagation headers and request ids: every request is still served,
//! the process survives, ids are replaced rather than trusted, and stdout stays one JSON
//! object per line with nothing injected.

use sightline_tests::http::{HttpResponse, raw_get, raw_request};
use sightline_tests::logs::LogLine;
use sightline_tests::process::ExampleProcess;
use sightline_tests::prometheus::parse_exposition;
use sightline_tests::util::{is_valid_hex_id, random_span_id, random_trace_id};

use crate::support::{
    access_line, is_uuid, is_valid_request_id, json_lines, quickstart, traceparent,
};

/// What the answer may be.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reaches {
    /// Well-formed HTTP: the request reaches the service and must be answered 200.
    Service,
    /// Bytes HTTP/1.1 forbids in a header (control characters, bare CR): hyper may answer
    /// 400 before any middleware runs; if it lets the request through, it must be a 200.
    MaybeRejectedByHttpParser,
}

/// What the trace id of the request must be.
#[derive(Clone, Debug)]
enum Trace {
    /// The incoming trace is continued.
    Continues(String),
    /// A new trace starts: the id is none of these.
    New(Vec<String>),
}

/// What the answered `x-request-id` must be.
#[derive(Clone, Debug)]
enum RequestId {
    /// The one we sent, kept.
    Kept(String),
    /// A generated UUID (the one we sent was invalid).
    Generated,
    /// Any valid id (duplicates: either value or a fresh one).
    AnyValid,
}

#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    target: String,
    headers: Vec<Vec<u8>>,
    reaches: Reaches,
    trace: Trace,
    request_id: RequestId,
}

fn line(name: &str, value: impl AsRef<[u8]>) -> Vec<u8> {
    let mut l = format!("{name}: ").into_bytes();
    l.extend_from_slice(value.as_ref());
    l
}

/// A case with a known valid request id (so its log lines can be found) plus `headers`.
fn case(name: &'static str, headers: Vec<Vec<u8>>, reaches: Reaches, trace: Trace) -> Case {
    let id = format!("e2e-bad-{name}-{}", &random_span_id()[..8]);
    let mut all = vec![line("x-request-id", &id)];
    all.extend(headers);
    Case {
        name,
        target: "/users/1".to_owned(),
        headers: all,
        reaches,
        trace,
        request_id: RequestId::Kept(id),
    }
}

/// A case about the request id itself.
fn id_case(
    name: &'static str,
    headers: Vec<Vec<u8>>,
    reaches: Reaches,
    request_id: RequestId,
) -> Case {
    Case {
        name,
        target: "/users/1".to_owned(),
        headers,
        reaches,
        trace: Trace::New(Vec::new()),
        request_id,
    }
}

fn cases() -> Vec<Case> {
    use Reaches::{MaybeRejectedByHttpParser as Parser, Service};
    let (t, p) = (random_trace_id(), random_span_id());
    let tp = traceparent(&t, &p);
    let new = |ids: &[&str]| Trace::New(ids.iter().map(|s| (*s).to_owned()).collect());
    let mut cases = vec![
        // Control: a valid traceparent is continued (the other cases are then meaningful).
        case(
            "valid-traceparent",
            vec![line("traceparent", &tp)],
            Service,
            Trace::Continues(t.clone()),
        ),
    ];

    let (t1, p1) = (random_trace_id(), random_span_id());
    cases.extend([
        case(
            "tp-short-flags",
            vec![line("traceparent", format!("00-{t1}-{p1}-1"))],
            Service,
            new(&[&t1]),
        ),
        case(
            "tp-short-trace",
            vec![line("traceparent", format!("00-{}-{p1}-01", &t1[1..]))],
            Service,
            new(&[&t1[1..]]),
        ),
        case(
            "tp-uppercase",
            vec![line(
                "traceparent",
                format!("00-{}-{p1}-01", t1.to_uppercase()),
            )],
            Service,
            new(&[&t1]),
        ),
        case(
            "tp-version-ff",
            vec![line("traceparent", format!("ff-{t1}-{p1}-01"))],
            Service,
            new(&[&t1]),
        ),
        case(
            "tp-zero-trace",
            vec![line(
                "traceparent",
                format!("00-{}-{p1}-01", "0".repeat(32)),
            )],
            Service,
            new(&[&"0".repeat(32)]),
        ),
        case(
            "tp-zero-parent",
            vec![line(
                "traceparent",
                format!("00-{t1}-{}-01", "0".repeat(16)),
            )],
            Service,
            new(&[&t1]),
        ),
        case(
            "tp-control-chars",
            vec![line("traceparent", format!("00-{t1}-{p1}-01\x01\x1b[31m"))],
            Parser,
            new(&[&t1]),
        ),
        case(
            "tp-10kb",
            vec![line(
                "traceparent",
                format!("00-{t1}-{p1}-01-{}", "a".repeat(10 * 1024)),
            )],
            Service,
            new(&[&t1]),
        ),
    ]);
    let (t2, p2) = (random_trace_id(), random_span_id());
    cases.push(case(
        "tp-two-header-lines",
        vec![
            line("traceparent", traceparent(&t1, &p1)),
            line("traceparent", traceparent(&t2, &p2)),
        ],
        Service,
        new(&[&t1, &t2]),
    ));

    // An invalid tracestate is dropped; the traceparent beside it still counts.
    let members: Vec<String> = (0..33).map(|i| format!("k{i}=v{i}")).collect();
    for (name, value) in [
        ("ts-invalid-keys", "UPPER=1,@bad=2,=x,k=,,k==v".to_owned()),
        ("ts-33-members", members.join(",")),
        ("ts-10kb", format!("k={}", "v".repeat(10 * 1024))),
    ] {
        let (t, p) = (random_trace_id(), random_span_id());
        cases.push(case(
            name,
            vec![
                line("traceparent", traceparent(&t, &p)),
                line("tracestate", value),
            ],
            Service,
            Trace::Continues(t),
        ));
    }
    for (name, value) in [
        ("baggage-garbage", "%%%;;;===,,,a=b=c;;;%zz;\"\\".to_owned()),
        ("baggage-10kb", format!("k={}", "v".repeat(10 * 1024))),
    ] {
        let (t, p) = (random_trace_id(), random_span_id());
        cases.push(case(
            name,
            vec![
                line("traceparent", traceparent(&t, &p)),
                line("baggage", value),
            ],
            Service,
            Trace::Continues(t),
        ));
    }
    cases.push(case(
        "b3-garbage",
        vec![
            line("b3", "garbage-not-b3-at-all"),
            line("x-b3-traceid", "zzzz"),
            line("x-b3-spanid", "123"),
            line("x-b3-sampled", "maybe"),
        ],
        Service,
        new(&[]),
    ));
    cases.push(case(
        "b3-zero-ids",
        vec![line(
            "b3",
            format!("{}-{}-1", "0".repeat(32), "0".repeat(16)),
        )],
        Service,
        new(&[&"0".repeat(32)]),
    ));

    let kept128 = format!("k{}", "x".repeat(127));
    cases.extend([
        id_case(
            "rid-empty",
            vec![b"x-request-id: ".to_vec()],
            Service,
            RequestId::Generated,
        ),
        id_case(
            "rid-129",
            vec![line("x-request-id", "y".repeat(129))],
            Service,
            RequestId::Generated,
        ),
        id_case(
            "rid-128",
            vec![line("x-request-id", &kept128)],
            Service,
            RequestId::Kept(kept128.clone()),
        ),
        id_case(
            "rid-space",
            vec![line("x-request-id", "abc def")],
            Service,
            RequestId::Generated,
        ),
        id_case(
            "rid-control",
            vec![line("x-request-id", "abc\x01def")],
            Parser,
            RequestId::Generated,
        ),
        id_case(
            "rid-escape",
            vec![line("x-request-id", "\x1b[31mred")],
            Parser,
            RequestId::Generated,
        ),
        id_case(
            "rid-bare-cr",
            vec![line("x-request-id", "abc\rFORGED")],
            Parser,
            RequestId::Generated,
        ),
        id_case(
            "rid-non-ascii",
            vec![line("x-request-id", "r\u{e9}q-\u{fc}")],
            Service,
            RequestId::Generated,
        ),
        id_case(
            "rid-latin1",
            vec![line("x-request-id", b"req-\xff\xfe")],
            Service,
            RequestId::Generated,
        ),
        id_case(
            "rid-duplicates",
            vec![line("x-request-id", "dup-a"), line("x-request-id", "dup-b")],
            Service,
            RequestId::AnyValid,
        ),
        // Visible ASCII, so valid and kept: it must come back verbatim and be escaped in logs.
        id_case(
            "rid-json-injection",
            vec![line(
                "x-request-id",
                r#"x","trace_id":"forged","level":"ERROR"#,
            )],
            Service,
            RequestId::Kept(r#"x","trace_id":"forged","level":"ERROR"#.to_owned()),
        ),
    ]);
    cases.push(Case {
        name: "user-agent-10kb-obs-text",
        target: "/users/1".to_owned(),
        headers: vec![line(
            "user-agent",
            [b"ua-\xc3\xa9-".as_slice(), "u".repeat(10 * 1024).as_bytes()].concat(),
        )],
        reaches: Service,
        trace: Trace::New(Vec::new()),
        request_id: RequestId::Generated,
    });
    cases
}

fn check_answer(case: &Case, response: &HttpResponse) -> Result<String, String> {
    let ids = response.header_all("x-request-id");
    let [id] = ids.as_slice() else {
        return Err(format!("expected one x-request-id, got {ids:?}"));
    };
    if !is_valid_request_id(id.as_bytes()) {
        return Err(format!("answered an invalid request id {id:?}"));
    }
    match &case.request_id {
        RequestId::Kept(sent) if id != sent => {
            return Err(format!("request id {sent:?} not kept: {id:?}"));
        }
        RequestId::Generated if !is_uuid(id) => {
            return Err(format!("invalid request id not replaced by a UUID: {id:?}"));
        }
        _ => {}
    }
    let body = response.json()?;
    if body["request_id"] != id.as_str() {
        return Err(format!(
            "body request_id {} differs from header {id:?}",
            body["request_id"]
        ));
    }
    Ok(id.clone())
}

fn check_trace(case: &Case, access: &LogLine) -> Result<(), String> {
    let trace_id = access.trace_id().ok_or("access line without trace_id")?;
    if !is_valid_hex_id(trace_id, 32) {
        return Err(format!("invalid trace_id {trace_id:?}"));
    }
    if !access.span_id().is_some_and(|s| is_valid_hex_id(s, 16)) {
        return Err(format!("invalid span_id {:?}", access.span_id()));
    }
    match &case.trace {
        Trace::Continues(t) if trace_id != t => {
            Err(format!("trace {t} not continued, got {trace_id}"))
        }
        Trace::New(forbidden) if forbidden.iter().any(|f| f.eq_ignore_ascii_case(trace_id)) => Err(
            format!("a malformed header was trusted: trace_id {trace_id}"),
        ),
        _ => Ok(()),
    }
}

/// Runs one case; `Ok` describes what happened (shown with `--no-capture`).
async fn run_case(app: &ExampleProcess, case: &Case) -> Result<String, String> {
    let headers: Vec<&[u8]> = case.headers.iter().map(Vec::as_slice).collect();
    let request = raw_get(app.addr(), &case.target, &headers);
    let response = raw_request(app.addr(), &request).await?;
    match (case.reaches, response.status) {
        (_, 200) => {}
        (Reaches::MaybeRejectedByHttpParser, 400) => {
            return Ok("400 from the HTTP parser, before the service".to_owned());
        }
        (_, status) => return Err(format!("status {status}: {}", response.text())),
    }
    let id = check_answer(case, &response)?;
    let access = access_line(app, &id)
        .await
        .ok_or_else(|| format!("no access-log line with request_id {id:?}"))?;
    check_trace(case, &access)?;
    Ok(format!(
        "200, request_id {:.40}, trace_id {}",
        id,
        access.trace_id().unwrap_or_default()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_are_survived_and_never_trusted() {
    let mut app = quickstart(&[]).await;
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        match run_case(&app, case).await {
            Ok(outcome) => eprintln!("{:<26} ok: {outcome}", case.name),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
        assert!(
            app.is_running(),
            "the process died on case {}\n{}",
            case.name,
            app.output_report()
        );
    }

    // Log injection through a path parameter the handler logs: percent-decoded, it holds an
    // escape sequence, CR LF and a quote.
    let injected = "\u{1b}[31m\r\nFORGED\"}";
    let request = raw_get(app.addr(), "/users/%1B%5B31m%0D%0AFORGED%22%7D", &[]);
    match raw_request(app.addr(), &request).await {
        Ok(r) if r.status == 200 => {
            let body = r.json().unwrap_or_default();
            if body["id"] != injected {
                failures.push(format!("path-injection: body id {}", body["id"]));
            }
        }
        Ok(r) => failures.push(format!("path-injection: status {}", r.status)),
        Err(e) => failures.push(format!("path-injection: {e}")),
    }
    let health = raw_request(app.addr(), &raw_get(app.addr(), "/healthz", &[])).await;
    assert!(
        health.as_ref().is_ok_and(|r| r.status == 200),
        "still healthy after all cases: {health:?}"
    );
    assert!(
        app.is_running(),
        "the process survived\n{}",
        app.output_report()
    );

    // Let the last lines arrive, then read stdout as a log pipeline would.
    let _ = app
        .wait_for_stdout(|l| l.contains("FORGED"), crate::support::LOG_TIMEOUT)
        .await;
    let lines = json_lines(&app);
    let handler_line = lines
        .iter()
        .find(|l| l.field_text("user.id").as_deref() == Some(injected));
    if handler_line.is_none() {
        failures.push(
            "path-injection: no handler line whose user.id round-trips the injected value"
                .to_owned(),
        );
    }
    for (i, raw) in app.stdout_raw().iter().enumerate() {
        if let Some(b) = raw.iter().find(|b| **b < 0x20 || **b == 0x7f) {
            failures.push(format!(
                "stdout line {} holds raw control byte {b:#04x}: {}",
                i + 1,
                String::from_utf8_lossy(raw)
            ));
        }
        if raw.starts_with(b"FORGED") {
            failures.push(format!("stdout line {} is forged", i + 1));
        }
    }
    for l in &lines {
        if l.trace_id() == Some("forged") {
            failures.push(format!("a request id overrode log keys: {}", l.raw));
        }
        // Malformed input is logged at debug at most, and no request here fails.
        if matches!(l.top_str("level"), Some("ERROR" | "WARN")) {
            failures.push(format!("bad input logged above INFO: {}", l.raw));
        }
    }

    // docs/metrics.md: malformed trace-context headers are counted by header.
    let metrics = raw_request(app.addr(), &raw_get(app.addr(), "/metrics", &[]))
        .await
        .map(|r| r.text())
        .unwrap_or_default();
    let samples = parse_exposition(&metrics).unwrap_or_default();
    let rejected = |header: &str| -> f64 {
        samples
            .iter()
            .filter(|s| {
                s.name == "sightline_propagation_rejected_total"
                    && s.label("header") == Some(header)
            })
            .map(|s| s.value)
            .sum()
    };
    // One per case above that reached the service with that header malformed: 8 traceparent
    // cases, 3 tracestate, 2 baggage, 2 B3 (garbage single and multi headers, zero ids).
    for (header, expected) in [
        ("traceparent", 8.0),
        ("tracestate", 3.0),
        ("baggage", 2.0),
        ("b3", 2.0),
    ] {
        let counted = rejected(header);
        if (counted - expected).abs() > f64::EPSILON {
            failures.push(format!(
                "sightline_propagation_rejected_total{{header={header:?}}} is {counted}, expected {expected}"
            ));
        }
    }
    let injected_id = r#"x","trace_id":"forged","level":"ERROR"#;
    if !lines.iter().any(|l| l.request_id() == Some(injected_id)) {
        failures.push(
            "rid-json-injection: no line whose request_id round-trips the sent value".to_owned(),
        );
    }

    let (status, _) = app.terminate().await;
    assert!(
        failures.is_empty(),
        "{} of {} bad-input checks failed (exit after SIGTERM: {status}):\n{}\n{}",
        failures.len(),
        cases.len() + 3,
        failures.join("\n"),
        app.stderr_lines().join("\n")
    );
}

/// User agents that are not plain ASCII, sent as raw bytes: UTF-8 is kept, bytes that are not
/// UTF-8 become U+FFFD, and a value that tries to close the JSON object and forge fields stays
/// inside its own string, on the request's one access line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_agents_that_are_not_ascii_are_logged_on_one_line_and_forge_nothing() {
    let app = quickstart(&[]).await;
    let forged = br#"bot","level":"ERROR","forged":true,"x":"#;
    let cases: [(&str, Vec<u8>, String); 3] = [
        (
            "ua-utf8",
            "Navigateur/1.0 (\u{e9}t\u{e9})".as_bytes().to_vec(),
            "Navigateur/1.0 (\u{e9}t\u{e9})".to_owned(),
        ),
        (
            "ua-latin1",
            b"Bot/\xe9\xff".to_vec(),
            "Bot/\u{fffd}\u{fffd}".to_owned(),
        ),
        (
            "ua-forge",
            [forged.as_slice(), b"\xc3\x28"].concat(),
            format!("{}\u{fffd}(", std::str::from_utf8(forged).expect("ASCII")),
        ),
    ];
    for (request_id, agent, expected) in &cases {
        let lines: Vec<Vec<u8>> = vec![
            [b"user-agent: ".as_slice(), agent].concat(),
            format!("x-request-id: {request_id}").into_bytes(),
        ];
        let raw: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let response = raw_request(app.addr(), &raw_get(app.addr(), "/users/5", &raw))
            .await
            .unwrap_or_else(|e| panic!("{request_id}: {e}"));
        assert_eq!(response.status, 200, "{request_id}");
        let line = access_line(&app, request_id)
            .await
            .unwrap_or_else(|| panic!("{request_id}: no access line\n{}", app.output_report()));
        assert_eq!(
            line.field_text("user_agent.original").as_deref(),
            Some(expected.as_str()),
            "{request_id}: {}",
            line.raw
        );
        assert_eq!(line.top_str("level"), Some("INFO"), "{}", line.raw);
        assert!(line.json.get("forged").is_none(), "{}", line.raw);
    }
    // Every byte on stdout is still whole JSON lines with nothing forged at the top level.
    for line in json_lines(&app) {
        assert!(line.json.get("forged").is_none(), "{}", line.raw);
    }
}
