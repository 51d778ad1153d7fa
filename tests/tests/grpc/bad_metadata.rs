//! Metadata the layer cannot use never fails a call: malformed trace context, binary `-bin`
//! values, huge values, bad request IDs. Each case runs first against a bare tonic server (to
//! show the call itself is fine) and then against the Sightline-wrapped one.

use opentelemetry::trace::{SpanId, SpanKind};
use sightline_http::grpc::GrpcServerLayer;
use sightline_tests::grpc::EchoService;
use sightline_tests::grpc::GrpcServer;
use sightline_tests::grpc::echo::EchoRequest;
use sightline_tests::grpc::echo::echo_client::EchoClient;
use sightline_tests::grpc::echo::echo_server::EchoServer;
use tonic::Request;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataMap};

use crate::support::{Telemetry, assert_call_span, echo_method};

/// Big enough for the 16 KiB values below plus everything else (tonic's default is 16 KiB for
/// the whole header list, which would refuse these calls before any layer runs).
const MAX_HEADER_LIST: u32 = 256 * 1024;
const SIXTEEN_KIB: usize = 16 * 1024;

enum Value {
    Ascii(String),
    Binary(Vec<u8>),
}

struct Case {
    name: &'static str,
    entries: Vec<(&'static str, Value)>,
}

fn ascii(key: &'static str, value: impl Into<String>) -> (&'static str, Value) {
    (key, Value::Ascii(value.into()))
}

fn binary(key: &'static str, value: Vec<u8>) -> (&'static str, Value) {
    (key, Value::Binary(value))
}

fn cases() -> Vec<Case> {
    let all_bytes: Vec<u8> = (0..=255).collect();
    vec![
        Case {
            name: "traceparent not hex",
            entries: vec![ascii("traceparent", "00-zzzz-xyz-01")],
        },
        Case {
            name: "traceparent all-zero ids",
            entries: vec![ascii(
                "traceparent",
                "00-00000000000000000000000000000000-0000000000000000-01",
            )],
        },
        Case {
            name: "traceparent uppercase, version ff",
            entries: vec![ascii(
                "traceparent",
                "ff-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            )],
        },
        Case {
            name: "two traceparents",
            entries: vec![
                ascii(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ascii(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
        },
        Case {
            name: "tracestate and baggage garbage",
            entries: vec![
                ascii("tracestate", ",,=,a=,=b,\t,"),
                ascii("baggage", "=;;=,%%%zz,k=%ff%fe"),
            ],
        },
        Case {
            name: "b3 garbage",
            entries: vec![
                ascii("b3", "not-a-b3-value"),
                ascii("x-b3-traceid", "xyz"),
                ascii("x-b3-spanid", ""),
            ],
        },
        Case {
            name: "binary -bin values",
            entries: vec![
                binary("grpc-trace-bin", all_bytes.clone()),
                binary("x-blob-bin", all_bytes),
                binary("traceparent-bin", vec![0xff; 64]),
            ],
        },
        Case {
            name: "16 KiB value",
            entries: vec![ascii("x-big", "a".repeat(SIXTEEN_KIB))],
        },
        Case {
            name: "16 KiB traceparent and baggage",
            entries: vec![
                ascii("traceparent", "0".repeat(SIXTEEN_KIB)),
                ascii("baggage", format!("k={}", "v".repeat(SIXTEEN_KIB))),
            ],
        },
        Case {
            name: "request id too long",
            entries: vec![ascii("x-request-id", "r".repeat(200))],
        },
        Case {
            name: "request id with spaces and quotes",
            entries: vec![ascii("x-request-id", "a b \"c\" {d}")],
        },
    ]
}

fn metadata(case: &Case) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (key, value) in &case.entries {
        match value {
            Value::Ascii(text) => {
                let value = AsciiMetadataValue::try_from(text.as_str())
                    .unwrap_or_else(|e| panic!("{}: {key}: {e}", case.name));
                map.append(*key, value);
            }
            Value::Binary(bytes) => {
                map.append_bin(*key, BinaryMetadataValue::from_bytes(bytes));
            }
        }
    }
    map
}

async fn serve(layer: Option<GrpcServerLayer>) -> GrpcServer {
    let mut builder =
        tonic::transport::Server::builder().http2_max_header_list_size(MAX_HEADER_LIST);
    match layer {
        Some(layer) => {
            let router = builder
                .layer(layer)
                .add_service(EchoServer::new(EchoService::default()));
            GrpcServer::start(router).await
        }
        None => {
            let router = builder.add_service(EchoServer::new(EchoService::default()));
            GrpcServer::start(router).await
        }
    }
}

async fn call(server: &GrpcServer, case: &Case) -> Result<MetadataMap, tonic::Status> {
    let mut client = EchoClient::new(server.channel().await);
    let mut request = Request::new(EchoRequest {
        message: case.name.to_owned(),
        ..EchoRequest::default()
    });
    *request.metadata_mut() = metadata(case);
    client.unary(request).await.map(|r| r.metadata().clone())
}

#[tokio::test]
async fn bad_metadata_never_fails_a_call() {
    let t = Telemetry::new();
    let bare = serve(None).await;
    let wrapped = serve(Some(t.server_builder().build())).await;
    let method = echo_method("Unary");

    for (i, case) in cases().iter().enumerate() {
        if let Err(status) = call(&bare, case).await {
            panic!(
                "{}: a bare tonic server refuses the call, so the case is wrong: {status:?}",
                case.name
            );
        }
        let answer = call(&wrapped, case)
            .await
            .unwrap_or_else(|s| panic!("{}: the wrapped call failed: {s:?}", case.name));

        let request_id = answer
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{}: no x-request-id answered: {answer:?}", case.name));
        assert!(
            (1..=128).contains(&request_id.len())
                && request_id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{}: answered request id {request_id:?}",
            case.name
        );

        let spans = t.wait_spans(SpanKind::Server, i + 1).await;
        assert_eq!(
            spans.len(),
            i + 1,
            "{}: one span per call: {spans:#?}",
            case.name
        );
        let span = &spans[i];
        assert_call_span(span, &method, "OK", false);
        // Which of two traceparents wins (or neither) is not this test's business.
        if case.name != "two traceparents" {
            assert_eq!(
                span.parent_span_id,
                SpanId::INVALID,
                "{}: unusable context starts a new trace: {span:#?}",
                case.name
            );
        }
    }

    let rejected: f64 = t
        .samples()
        .iter()
        .filter(|s| s.name.starts_with("sightline_propagation_rejected"))
        .map(|s| s.value)
        .sum();
    assert!(
        rejected >= 1.0,
        "malformed trace context is counted\n{}",
        t.metrics_text()
    );
}
