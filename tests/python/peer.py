"""A foreign OpenTelemetry peer for the interop suite (tests/tests/interop/python_peer.rs).

It plays both ends around a Sightline service that serves the W3C test-harness contract
(`POST /test` with `[{"url", "arguments"}]`, see examples/w3c-test-service):

1. a SERVER (http.server on 127.0.0.1:0) that extracts the W3C trace context and baggage
   from each request with the SDK's propagators and reports what it extracted;
2. a CLIENT that starts a span with the SDK, injects its context in the requested format
   (W3C `traceparent`, B3 single `b3` or B3 multi `x-b3-*`) plus W3C baggage with the SDK's
   propagators, and POSTs to the Sightline service a call back to the server above.

Everything it learns is printed to stdout as one JSON object per line:
  {"event": "listening", "port": N}
  {"event": "sent", ...}      the client's span and the headers it injected
  {"event": "received", ...}  what the server extracted from Sightline's outgoing call
  {"event": "done", "status": N}

Usage: peer.py --service http://127.0.0.1:PORT/test --format w3c|b3-single|b3-multi
       peer.py --serve N     the SERVER alone, for N requests (GET or POST), then exit
"""

import argparse
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# Every wait is bounded: an HTTP call, and the whole run (the Rust test kills us after that).
TIMEOUT_SECONDS = 10

# The SDK propagator that writes the context in each format the client may send.
INJECTORS = {
    "w3c": TraceContextTextMapPropagator(),
    "b3-single": B3SingleFormat(),
    "b3-multi": B3MultiFormat(),
}

# Values without spaces on purpose: the SDK encodes a space in a baggage value as `+`
# (urllib.parse.quote_plus), which a decoder following the W3C Baggage spec (percent-decoding
# only) reads as a literal plus. See the Rust side for the note.
BAGGAGE = {"tenant": "acme-42", "region": "eu-west-1"}

_print_lock = threading.Lock()


def emit(event):
    with _print_lock:
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()


def span_fields(span_context):
    return {
        "valid": span_context.is_valid,
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
        "flags": int(span_context.trace_flags),
        "sampled": span_context.trace_flags.sampled,
        "random": bool(int(span_context.trace_flags) & 0x02),
    }


class Handler(BaseHTTPRequestHandler):
    # Sightline's client speaks HTTP/1.1 with keep-alive; answer in kind.
    protocol_version = "HTTP/1.1"
    served = threading.Semaphore(0)
    extractor = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        carrier = {name.lower(): value for name, value in self.headers.items()}
        ctx = self.extractor.extract(carrier)
        extracted = span_fields(trace.get_current_span(ctx).get_span_context())
        emit(
            {
                "event": "received",
                "path": self.path,
                "parent_span_id": extracted.pop("span_id"),
                **extracted,
                "baggage": {k: str(v) for k, v in baggage.get_all(ctx).items()},
                "headers": carrier,
                "body": body.decode("utf-8", "replace"),
            }
        )
        answer = b"python-upstream"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        Handler.served.release()

    def log_message(self, format, *args):  # noqa: A002 - keep stdout for JSON lines only
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", help="the Sightline service's /test url")
    parser.add_argument("--format", choices=sorted(INJECTORS))
    parser.add_argument("--serve", type=int, help="serve this many requests, then exit")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = TIMEOUT_SECONDS
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    emit({"event": "listening", "port": port})
    if args.serve is not None:
        for _ in range(args.serve):
            if not Handler.served.acquire(timeout=TIMEOUT_SECONDS):
                break
        server.shutdown()
        emit({"event": "done", "status": 0})
        return
    if not args.service or not args.format:
        parser.error("--service and --format are required without --serve")

    tracer = TracerProvider().get_tracer("sightline-interop-peer")
    injector = CompositePropagator([INJECTORS[args.format], W3CBaggagePropagator()])
    ctx = None
    for key, value in BAGGAGE.items():
        ctx = baggage.set_baggage(key, value, ctx)
    with tracer.start_as_current_span("peer-client", context=ctx, kind=trace.SpanKind.CLIENT) as span:
        headers = {}
        # The span is current, and the baggage is in the context it was started from.
        injector.inject(headers, context=trace.set_span_in_context(span, ctx))
        emit({"event": "sent", "format": args.format, **span_fields(span.get_span_context()), "headers": headers})

        calls = [{"url": f"http://127.0.0.1:{port}/{args.format}", "arguments": [1, "two"]}]
        request = urllib.request.Request(
            args.service,
            data=json.dumps(calls).encode(),
            headers={"content-type": "application/json", **headers},
            method="POST",
        )
        # No proxy, whatever the environment says: everything here is on 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    server.shutdown()
    emit({"event": "done", "status": status})


if __name__ == "__main__":
    main()
