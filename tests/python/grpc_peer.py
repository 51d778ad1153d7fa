"""A foreign gRPC peer (grpcio) for the interop suite (tests/tests/interop/grpc_peer.rs).

No generated code: calls and the server use grpcio's generic API with raw bytes, and an empty
message (b"") is a valid request or answer for every method of the Greeter (proto3).

Two modes, each printing one JSON object per line on stdout:

client --target 127.0.0.1:PORT
    Starts a CLIENT span with the OpenTelemetry SDK and injects its W3C context as gRPC
    metadata (`traceparent`), plus an `x-request-id`; then calls
    /sightline.example.v1.Greeter/SayHello and the unknown /sightline.example.v1.Greeter/Nope.
      {"event": "sent", "trace_id", "span_id", "metadata": {...}}
      {"event": "call", "path", "code", "details", "initial_metadata", "trailing_metadata"}
      {"event": "done"}

server
    Serves every method on 127.0.0.1:0 with a generic handler that answers b"" and reports
    the metadata it got and the W3C context the SDK extracts from it. Ends when stdin closes
    or after --max-seconds.
      {"event": "listening", "port": N}
      {"event": "received", "method", "metadata", "valid", "trace_id", "parent_span_id", "sampled"}
"""

import argparse
import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# Every wait is bounded: each call, and the server's whole life (the Rust test kills us after).
CALL_TIMEOUT_SECONDS = 10

SAY_HELLO = "/sightline.example.v1.Greeter/SayHello"
UNKNOWN = "/sightline.example.v1.Greeter/Nope"

_print_lock = threading.Lock()


def emit(event):
    with _print_lock:
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()


def metadata_dict(metadata):
    """Metadata as a dict of lists; binary (-bin) values as hex."""
    out = {}
    for key, value in metadata or ():
        text = value.hex() if isinstance(value, bytes) else value
        out.setdefault(key, []).append(text)
    return out


def identity(b):
    return b


def call(channel, path, metadata):
    stub = channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)
    try:
        response, rpc = stub.with_call(b"", metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
        return {
            "event": "call",
            "path": path,
            "code": rpc.code().name,
            "details": rpc.details(),
            "response_len": len(response),
            "initial_metadata": metadata_dict(rpc.initial_metadata()),
            "trailing_metadata": metadata_dict(rpc.trailing_metadata()),
        }
    except grpc.RpcError as err:
        return {
            "event": "call",
            "path": path,
            "code": err.code().name,
            "details": err.details(),
            "initial_metadata": metadata_dict(err.initial_metadata()),
            "trailing_metadata": metadata_dict(err.trailing_metadata()),
        }


def run_client(target, request_id):
    tracer = TracerProvider().get_tracer("sightline-grpc-interop-peer")
    with tracer.start_as_current_span("grpc-peer-client", kind=trace.SpanKind.CLIENT) as span:
        carrier = {}
        TraceContextTextMapPropagator().inject(carrier)
        metadata = [(key, value) for key, value in carrier.items()]
        metadata.append(("x-request-id", request_id))
        ctx = span.get_span_context()
        emit(
            {
                "event": "sent",
                "trace_id": trace.format_trace_id(ctx.trace_id),
                "span_id": trace.format_span_id(ctx.span_id),
                "metadata": dict(metadata),
            }
        )
        # Plaintext HTTP/2 to 127.0.0.1 only; no proxy, whatever the environment says.
        options = [("grpc.enable_http_proxy", 0)]
        with grpc.insecure_channel(target, options=options) as channel:
            emit(call(channel, SAY_HELLO, metadata))
            emit(call(channel, UNKNOWN, metadata))
    emit({"event": "done"})


class Recorder(grpc.GenericRpcHandler):
    """Answers every unary method with b"" and reports what arrived."""

    def service(self, handler_call_details):
        method = handler_call_details.method
        metadata = handler_call_details.invocation_metadata

        def handle(_request, _context):
            carrier = {key: value for key, value in metadata if isinstance(value, str)}
            ctx = TraceContextTextMapPropagator().extract(carrier)
            span_context = trace.get_current_span(ctx).get_span_context()
            emit(
                {
                    "event": "received",
                    "method": method,
                    "metadata": metadata_dict(metadata),
                    "valid": span_context.is_valid,
                    "trace_id": trace.format_trace_id(span_context.trace_id),
                    "parent_span_id": trace.format_span_id(span_context.span_id),
                    "sampled": span_context.trace_flags.sampled,
                }
            )
            return b""

        return grpc.unary_unary_rpc_method_handler(handle)


def run_server(max_seconds):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((Recorder(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    emit({"event": "listening", "port": port})
    # Until the test closes our stdin (or the time is up).
    done = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    done.wait(max_seconds)
    server.stop(grace=1).wait(5)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    client = sub.add_parser("client")
    client.add_argument("--target", required=True, help="host:port of the Sightline gRPC server")
    client.add_argument("--request-id", default="grpc-peer-request-1")
    server = sub.add_parser("server")
    server.add_argument("--max-seconds", type=float, default=60)
    args = parser.parse_args()
    if args.mode == "client":
        run_client(args.target, args.request_id)
    else:
        run_server(args.max_seconds)


if __name__ == "__main__":
    main()
