//! W3C Trace Context (Level 2) cases, written from the spec, run through the test service:
//! what it receives in `traceparent`/`tracestate` and what it must send on.
//!
//! - §4.3 (processing model): a valid `traceparent` is continued: same trace id, a new
//!   parent id (the service's own span); an invalid one (bad version, uppercase hex, all-zero
//!   ids, wrong length, more than one value) restarts the trace with a new trace id, and then
//!   the received `tracestate` must not be sent on (§3.3, "if the vendor failed to parse
//!   traceparent, it MUST NOT attempt to parse tracestate").
//! - §3.2.2.1/§4.3: a version higher than 00 is parsed as 00 when it is at least 55 characters
//!   and the 56th is `-` (extra fields ignored); version `ff` is invalid.
//! - §3.2.2.5: only the flags this version defines (sampled 0x01, random 0x02) are sent on;
//!   §3.2.2.5.2: the `random` flag of a continued trace goes on as it came in, set or unset,
//!   also when the caller did not sample.
//! - §3.3: `tracestate` members are kept in order; whitespace around members and empty members
//!   are allowed; several header lines are one list; at most 32 members; an invalid member
//!   makes the whole header invalid. Keys follow Level 2's grammar (a lowercase letter or digit,
//!   then up to 255 of `a-z 0-9 _ - * / @`; no `tenant@system` limits). A repeated key keeps its
//!   first member (§3.5 lets a vendor discard duplicate keys).

use sightline_tests::process::ExampleProcess;

use crate::support::{
    EchoServer, Recorded, Traceparent, calls_body, post_test, test_service, tracestate_members,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// What the service must send on.
#[derive(Clone, Debug)]
enum Expect {
    /// The received trace continues with these flags; `tracestate` members (`None`: absent).
    Continue {
        flags: u8,
        tracestate: Option<Vec<String>>,
    },
    /// A new trace, and no `tracestate`.
    Restart,
}

struct Case {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    expect: Expect,
}

fn traceparent(version: &str, trace_id: &str, parent_id: &str, flags: &str) -> String {
    format!("{version}-{trace_id}-{parent_id}-{flags}")
}

fn valid(flags: &str) -> (&'static str, String) {
    ("traceparent", traceparent("00", TRACE_ID, PARENT_ID, flags))
}

fn continues(flags: u8) -> Expect {
    Expect::Continue {
        flags,
        tracestate: None,
    }
}

fn keeps(members: &[&str]) -> Expect {
    Expect::Continue {
        flags: 0x01,
        tracestate: Some(members.iter().map(|m| (*m).to_owned()).collect()),
    }
}

/// Sends each case through the service to the echo server (one path per case) and returns a
/// description of every case that did not get what the spec requires.
async fn run(service: &ExampleProcess, echo: &EchoServer, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let path = format!("/case-{i}");
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = post_test(
            service,
            &headers,
            &calls_body(&[echo.url(&path)], &serde_json::json!([])),
        )
        .await;
        if response.status != 200 {
            failures.push(format!(
                "{}: POST /test answered {}",
                case.name, response.status
            ));
            continue;
        }
        let received = echo.wait_for(&path, 1).await;
        let [call] = received.as_slice() else {
            failures.push(format!("{}: echo got {} calls", case.name, received.len()));
            continue;
        };
        if let Err(why) = check(case, call) {
            failures.push(format!(
                "{}: {why}\n  sent {:?}\n  got {:?}",
                case.name, case.headers, call.headers
            ));
        }
    }
    failures
}

fn check(case: &Case, call: &Recorded) -> Result<(), String> {
    let value = call.header("traceparent").ok_or("no traceparent sent on")?;
    let sent = Traceparent::parse(value).ok_or_else(|| format!("invalid traceparent {value:?}"))?;
    let tracestate = call.header("tracestate").map(tracestate_members);
    match &case.expect {
        Expect::Continue {
            flags,
            tracestate: expected,
        } => {
            if sent.trace_id != TRACE_ID {
                return Err(format!("trace id {} is not the caller's", sent.trace_id));
            }
            if sent.parent_id == PARENT_ID {
                return Err("parent id is the caller's, not the service's span".into());
            }
            if sent.flags != *flags {
                return Err(format!("flags {:02x}, want {flags:02x}", sent.flags));
            }
            if tracestate != *expected {
                return Err(format!("tracestate {tracestate:?}, want {expected:?}"));
            }
        }
        Expect::Restart => {
            let inbound_ids: Vec<String> = case
                .headers
                .iter()
                .filter(|(n, _)| *n == "traceparent")
                .filter_map(|(_, v)| v.split('-').nth(1).map(str::to_ascii_lowercase))
                .collect();
            if inbound_ids.contains(&sent.trace_id) {
                return Err(format!("trace id {} was not restarted", sent.trace_id));
            }
            if tracestate.is_some() {
                return Err(format!("tracestate {tracestate:?} sent after a restart"));
            }
            // Level 2 §3.2.2.5.2: a trace started with a random trace id says so.
            if sent.flags & 0x02 == 0 {
                return Err(format!(
                    "restarted trace lacks the random flag: {:02x}",
                    sent.flags
                ));
            }
        }
    }
    Ok(())
}

fn assert_all_pass(failures: &[String], service: &ExampleProcess) {
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        service.output_report()
    );
}

#[tokio::test]
async fn traceparent_cases_follow_the_spec() {
    let upper_trace = TRACE_ID.to_ascii_uppercase();
    let upper_parent = PARENT_ID.to_ascii_uppercase();
    let zero_trace = "0".repeat(32);
    let zero_parent = "0".repeat(16);
    let with_state = |tp: String| vec![("traceparent", tp), ("tracestate", "foo=1".to_owned())];
    let cases = vec![
        Case {
            name: "valid, sampled",
            headers: vec![valid("01")],
            expect: continues(0x01),
        },
        Case {
            name: "valid, not sampled",
            headers: vec![valid("00")],
            expect: continues(0x00),
        },
        Case {
            name: "valid, sampled and random",
            headers: vec![valid("03")],
            expect: continues(0x03),
        },
        Case {
            name: "valid, random, not sampled: random sent on (Level 2)",
            headers: vec![valid("02")],
            expect: continues(0x02),
        },
        Case {
            name: "unknown flags with random, not sampled",
            headers: vec![valid("fe")],
            expect: continues(0x02),
        },
        Case {
            name: "unknown flags are not sent on",
            headers: vec![valid("ff")],
            expect: continues(0x03),
        },
        Case {
            name: "version 01 with extra fields is parsed as 00",
            headers: vec![(
                "traceparent",
                format!("01-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like"),
            )],
            expect: continues(0x01),
        },
        Case {
            name: "version 01 without extra fields",
            headers: vec![("traceparent", traceparent("01", TRACE_ID, PARENT_ID, "01"))],
            expect: continues(0x01),
        },
        Case {
            name: "version ff is invalid",
            headers: with_state(traceparent("ff", TRACE_ID, PARENT_ID, "01")),
            expect: Expect::Restart,
        },
        Case {
            name: "version 00 with extra fields is invalid",
            headers: with_state(format!("00-{TRACE_ID}-{PARENT_ID}-01-extra")),
            expect: Expect::Restart,
        },
        Case {
            name: "uppercase trace id",
            headers: with_state(traceparent("00", &upper_trace, PARENT_ID, "01")),
            expect: Expect::Restart,
        },
        Case {
            name: "uppercase parent id",
            headers: with_state(traceparent("00", TRACE_ID, &upper_parent, "01")),
            expect: Expect::Restart,
        },
        Case {
            name: "all-zero trace id",
            headers: with_state(traceparent("00", &zero_trace, PARENT_ID, "01")),
            expect: Expect::Restart,
        },
        Case {
            name: "all-zero parent id",
            headers: with_state(traceparent("00", TRACE_ID, &zero_parent, "01")),
            expect: Expect::Restart,
        },
        Case {
            name: "short trace id",
            headers: with_state(traceparent("00", &TRACE_ID[1..], PARENT_ID, "01")),
            expect: Expect::Restart,
        },
        Case {
            name: "duplicated traceparent lines",
            headers: vec![
                (
                    "traceparent",
                    traceparent("00", "12345678901234567890123456789011", PARENT_ID, "01"),
                ),
                (
                    "traceparent",
                    traceparent("00", "12345678901234567890123456789012", PARENT_ID, "01"),
                ),
                ("tracestate", "foo=1".to_owned()),
            ],
            expect: Expect::Restart,
        },
    ];
    let echo = EchoServer::start().await;
    let service = test_service(&[]).await;
    let failures = run(&service, &echo, &cases).await;
    assert_all_pass(&failures, &service);
}

#[tokio::test]
async fn tracestate_cases_follow_the_spec() {
    let members = |n: usize| -> Vec<String> { (0..n).map(|i| format!("k{i}=v{i}")).collect() };
    let m32 = members(32);
    let m33 = members(33);
    let m32_refs: Vec<&str> = m32.iter().map(String::as_str).collect();
    let state = |v: &str| vec![valid("01"), ("tracestate", v.to_owned())];
    let long_tenant = format!("{}@v", "t".repeat(242));
    let cases = vec![
        Case {
            name: "kept in order",
            headers: state("foo=1,bar=2"),
            expect: keeps(&["foo=1", "bar=2"]),
        },
        Case {
            name: "whitespace around members",
            headers: state(" foo=1 ,\tbar=2\t, baz=3"),
            expect: keeps(&["foo=1", "bar=2", "baz=3"]),
        },
        Case {
            name: "empty members",
            headers: state("foo=1,,bar=2,"),
            expect: keeps(&["foo=1", "bar=2"]),
        },
        Case {
            name: "two header lines are one list",
            headers: vec![
                valid("01"),
                ("tracestate", "foo=1".to_owned()),
                ("tracestate", "bar=2".to_owned()),
            ],
            expect: keeps(&["foo=1", "bar=2"]),
        },
        Case {
            name: "tenant@system keys",
            headers: state("tenant1@vendor=abc,fw529a3039@dt=FzjRZk-0,simple=x"),
            expect: keeps(&["tenant1@vendor=abc", "fw529a3039@dt=FzjRZk-0", "simple=x"]),
        },
        Case {
            name: "Level 2 keys: a digit first, no tenant limit, '@' last",
            headers: state(&format!("1vendor=a,{long_tenant}=b,foo@=c")),
            expect: keeps(&["1vendor=a", &format!("{long_tenant}=b"), "foo@=c"]),
        },
        Case {
            name: "Level 2 keys OpenTelemetry's own type refuses: two '@', a long system",
            headers: state("a@b@c=1,t@abcdefghijklmnopq=2,plain=3"),
            expect: keeps(&["a@b@c=1", "t@abcdefghijklmnopq=2", "plain=3"]),
        },
        Case {
            name: "32 members are kept",
            headers: state(&m32.join(",")),
            expect: keeps(&m32_refs),
        },
        Case {
            name: "33 members are dropped",
            headers: state(&m33.join(",")),
            expect: continues(0x01),
        },
        Case {
            name: "uppercase key",
            headers: state("Foo=1,bar=2"),
            expect: continues(0x01),
        },
        Case {
            name: "member without =",
            headers: state("foo,bar=2"),
            expect: continues(0x01),
        },
        Case {
            name: "duplicate key: the first member kept (Level 2)",
            headers: state("foo=1,bar=2,foo=3"),
            expect: keeps(&["foo=1", "bar=2"]),
        },
        Case {
            name: "duplicate key across header lines: the first member kept (Level 2)",
            headers: vec![
                valid("01"),
                ("tracestate", "foo=1".to_owned()),
                ("tracestate", "foo=2".to_owned()),
            ],
            expect: keeps(&["foo=1"]),
        },
        Case {
            name: "a key starting with '@'",
            headers: state("@foo=1,bar=2"),
            expect: continues(0x01),
        },
        Case {
            name: "a key of 257 characters",
            headers: state(&format!("foo=1,{}=1", "k".repeat(257))),
            expect: continues(0x01),
        },
    ];
    let echo = EchoServer::start().await;
    let service = test_service(&[]).await;
    let failures = run(&service, &echo, &cases).await;
    assert_all_pass(&failures, &service);
}
