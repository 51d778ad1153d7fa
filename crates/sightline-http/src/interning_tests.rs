//! A client layer made per connection: names and handles come from the process, so the
//! thousandth layer interns and registers nothing the first did not.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::{Layer as _, ServiceExt as _};

use crate::client::ClientLayer;
use crate::core::intern::{handle_count, name_count, test_lock};
use crate::grpc::GrpcClientLayer;

/// Counts the handles it is asked to register.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Recorder for Counting {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        self.0.fetch_add(1, Ordering::Relaxed);
        Counter::noop()
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        self.0.fetch_add(1, Ordering::Relaxed);
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        self.0.fetch_add(1, Ordering::Relaxed);
        Histogram::noop()
    }
}

fn answer(req: &http::Request<String>) -> http::Response<String> {
    let mut response = http::Response::new(String::new());
    if req.uri().path().starts_with("/test.intern") {
        // A trailers-only gRPC answer: the call ends at its head.
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("0"));
    }
    response
}

#[test]
fn a_thousand_client_layers_intern_and_register_nothing_twice() {
    let _lock = test_lock();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let recorder = Counting::default();
    let inner = tower::service_fn(|req| async move { Ok::<_, Infallible>(answer(&req)) });
    let call = |http: bool| {
        // Trailers-only or empty answers: each call ends at its response head.
        let ended = if http {
            let req = http::Request::get("http://inventory.internal/items/1")
                .body(String::new())
                .expect("request");
            let layer = ClientLayer::builder().build();
            let response = runtime.block_on(layer.layer(inner).oneshot(req));
            http_body::Body::is_end_stream(response.expect("infallible").body())
        } else {
            let req = http::Request::post("/test.intern.v1.Stock/Get")
                .body(String::new())
                .expect("request");
            let layer = GrpcClientLayer::builder()
                .target("http://inventory.internal:50051")
                .build();
            let response = runtime.block_on(layer.layer(inner).oneshot(req));
            http_body::Body::is_end_stream(response.expect("infallible").body())
        };
        assert!(ended);
    };
    metrics::with_local_recorder(&recorder, || {
        call(true);
        call(false);
        let counts = (
            name_count(),
            handle_count(),
            recorder.0.load(Ordering::Relaxed),
        );
        assert!(
            counts.2 >= 2,
            "the first layers registered their histograms"
        );
        for _ in 0..1_000 {
            call(true);
            call(false);
        }
        assert_eq!(
            (
                name_count(),
                handle_count(),
                recorder.0.load(Ordering::Relaxed)
            ),
            counts,
            "(interned names, kept handles, registrations) after 1,000 more layers of each"
        );
    });
}
