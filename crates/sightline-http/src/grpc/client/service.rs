//! [`GrpcClient::start`](super::GrpcClient): the per-call work when a call leaves.

use std::sync::Arc;
use std::time::Instant;

use http::Request;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanBuilder;
use opentelemetry_semantic_conventions::attribute;

use super::GrpcClient;
use super::state::{ClientCall, ClientSide};
use crate::core::lifecycle::Tracked;
use crate::core::net;
use crate::core::span::ClientSpan;
use crate::grpc::call::{self, CallCore};
use crate::grpc::method::Resolved;

impl<S> GrpcClient<S> {
    /// Starts the client span as a child of the current context, injects its context and the
    /// caller's request ID, and makes the state that follows the call to its end.
    pub(super) fn start<B>(&self, mut req: Request<B>) -> (Request<B>, Tracked<ClientCall>) {
        let start = Instant::now();
        let shared = &self.shared;
        // A client knows the methods it calls: they are recognised at once.
        let method = shared.grpc.methods.resolve(req.uri().path(), true);

        let span = ClientSpan::start(&shared.common, &mut req, |req| {
            SpanBuilder::from_name(call::span_name(&method))
                .with_attributes(self.attributes(req, &method))
        });

        let state = ClientCall {
            core: CallCore::new(start, method, req.headers(), span.otel, true),
            side: ClientSide {
                shared: Arc::clone(shared),
                cx: span.cx,
            },
        };
        (req, Tracked::new(Box::new(state)))
    }

    /// The span's attributes at the start of the call.
    fn attributes<B>(&self, req: &Request<B>, method: &Resolved) -> Vec<KeyValue> {
        let grpc = &self.shared.grpc;
        let info = match method {
            Resolved::Known(info) => info,
            _ => grpc.methods.other(),
        };
        let mut attrs = Vec::with_capacity(6);
        call::method_attributes(grpc, info, method, &mut attrs);
        attrs.push(call::system_attribute(grpc));
        match &self.shared.target {
            Some((host, port)) => {
                attrs.push(KeyValue::new(attribute::SERVER_ADDRESS, Arc::clone(host)));
                attrs.push(KeyValue::new(attribute::SERVER_PORT, i64::from(*port)));
            }
            None => net::address_attributes(net::uri_authority(req), &mut attrs),
        }
        self.shared.common.capture.request_head(req, &mut attrs);
        attrs
    }
}
