//! The span field names that carry a request's ids are a contract between two crates that may
//! not depend on each other: `sightline-http` records them on its request span and
//! `sightline-logging` reads them (`SpanFieldNames::default()`), for the JSON lines and the OTLP
//! log records. Each side names them once (`sightline_http::REQUEST_SPAN_FIELDS`,
//! `SpanFieldNames::default()`); this suite is the contract's test: the two agree, and a
//! request through the server middleware makes a span that records every name the logging
//! crate reads.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::Empty;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sightline_http::ServerLayer;
use sightline_logging::SpanFieldNames;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

#[test]
fn both_sides_name_the_same_fields() {
    assert_eq!(
        sightline_http::REQUEST_SPAN_FIELDS,
        SpanFieldNames::default().names()
    );
}

/// A span's name and its field names.
type SpanShape = (String, Vec<String>);

/// Name and field names of every span the server middleware makes.
#[derive(Clone, Default)]
struct ServerSpans(Arc<Mutex<Vec<SpanShape>>>);

impl<S: Subscriber> Layer<S> for ServerSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let meta = attrs.metadata();
        if meta.target() == "sightline_http::server" {
            let fields = meta.fields().iter().map(|f| f.name().to_owned()).collect();
            self.0
                .lock()
                .expect("spans")
                .push((meta.name().to_owned(), fields));
        }
    }
}

#[tokio::test]
async fn the_request_span_records_the_fields_sightline_logging_reads() {
    let spans = ServerSpans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let tracer = SdkTracerProvider::builder().build().tracer("span-fields");
    let service = ServerLayer::builder()
        .tracer(tracer)
        .metrics(false)
        .access_log(false)
        .build()
        .layer(service_fn(
            |_req: http::Request<Empty<bytes::Bytes>>| async {
                Ok::<_, Infallible>(http::Response::new(Empty::<bytes::Bytes>::new()))
            },
        ));
    let request = http::Request::get("/orders/7")
        .body(Empty::new())
        .expect("request");
    let response = service.oneshot(request).await.expect("response");
    drop(response);

    let spans = spans.0.lock().expect("spans").clone();
    let (name, fields) = spans.first().expect("the middleware made a request span");
    for id in SpanFieldNames::default().names() {
        assert!(
            fields.iter().any(|f| f == id),
            "span {name:?} records {fields:?}, not {id:?}, which sightline-logging reads"
        );
    }
}
