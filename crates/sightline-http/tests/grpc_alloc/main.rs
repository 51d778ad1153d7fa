//! Counts the heap allocations the gRPC server layer adds to a call, against the same service
//! without it (a deterministic complement to the `grpc_unary` bench, whose timings are noisy
//! on a shared machine). Last result: bare 7, wrappers +1, metrics +0.02, request ID and
//! metrics +5.02 allocations per call.
//!
//! The counting allocator comes from `stats_alloc` (a `GlobalAlloc` impl needs `unsafe impl`,
//! which the workspace forbids); its counters are process-wide, so this binary has no test
//! harness and runs on the main thread, with a current-thread runtime.

use std::alloc::System;
use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{Full, StreamBody};
use sightline_http::grpc::GrpcServerLayer;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tower::{Layer as _, Service};

#[path = "../alloc_support/mod.rs"]
mod alloc_support;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type Frames = StreamBody<
    futures_lite_iter::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, Infallible>>>,
>;

mod futures_lite_iter {
    //! A `Stream` over an iterator, without another dependency.
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub(crate) struct Iter<I>(pub(crate) I);

    impl<I: Iterator + Unpin> tokio_stream::Stream for Iter<I> {
        type Item = I::Item;

        fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
            Poll::Ready(self.0.next())
        }
    }
}

/// A unary answer as tonic sends it: one message, then `grpc-status: 0` in the trailers.
fn answer() -> Response<Frames> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = vec![
        Ok(http_body::Frame::data(Bytes::from_static(&[
            0, 0, 0, 0, 3, b'a', b'b', b'c',
        ]))),
        Ok(http_body::Frame::trailers(trailers)),
    ];
    let mut response = Response::new(StreamBody::new(futures_lite_iter::Iter(frames.into_iter())));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

fn request() -> Request<Full<Bytes>> {
    Request::post("http://127.0.0.1:50051/test.alloc.Greeter/SayHello")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-request-id", "alloc-test-1")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("request")
}

/// Average allocations per call through `svc` (see `alloc_support::per_call`).
fn per_call<S, B>(runtime: &tokio::runtime::Runtime, svc: S) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    alloc_support::per_call(GLOBAL, runtime, svc, request, |collected| {
        assert!(collected.trailers().is_some())
    })
}

fn bare() -> impl Service<Request<Full<Bytes>>, Response = Response<Frames>, Error = Infallible> {
    tower::service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(answer()) })
}

fn layered(
    layer: &GrpcServerLayer,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<sightline_http::grpc::ResponseBody<Frames>>,
    Error = Infallible,
> {
    layer.layer(tower::service_fn(
        |_req: Request<sightline_http::grpc::RequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(answer())
        },
    ))
}

fn layer_allocations_per_call() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _ = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder();
    let base = per_call(&runtime, bare());
    let wrapper = per_call(
        &runtime,
        layered(
            &GrpcServerLayer::builder()
                .metrics(false)
                .access_log(false)
                .without_request_id()
                .build(),
        ),
    );
    let metrics = per_call(
        &runtime,
        layered(
            &GrpcServerLayer::builder()
                .access_log(false)
                .without_request_id()
                .build(),
        ),
    );
    let metrics_id = per_call(
        &runtime,
        layered(&GrpcServerLayer::builder().access_log(false).build()),
    );
    eprintln!(
        "allocations per call: bare {base:.2}, wrapper {:+.2}, metrics {:+.2}, request ID + metrics {:+.2}",
        wrapper - base,
        metrics - base,
        metrics_id - base
    );
    // The wrappers: one box, the call state.
    assert!(
        wrapper - base <= 1.01,
        "the wrappers add one allocation: {}",
        wrapper - base
    );
    // Metrics on a known method: cached handles, atomic updates (the recorder's histogram
    // takes a new block of samples now and then).
    assert!(
        metrics - wrapper <= 0.05,
        "metrics add no allocation per call: {}",
        metrics - wrapper
    );
    // Request IDs: the `RequestId` request extension (the extension map and its box), the
    // ID's bytes shared on first clone (this test builds the header from a string; a header
    // hyper parsed is already shared), and room for the header in the response map.
    assert!(
        metrics_id - metrics <= 4.05,
        "request IDs add at most four allocations: {}",
        metrics_id - metrics
    );
}

fn main() {
    let tests: [(&str, fn()); 1] = [("layer_allocations_per_call", layer_allocations_per_call)];
    sightline_tests::libtest::run(&tests);
}
