//! [`GrpcServer::start`](super::GrpcServer): the per-call work when a call arrives.

use std::sync::Arc;
use std::time::Instant;

use http::Request;
use opentelemetry::KeyValue;

use super::GrpcServer;
use super::state::{ServerCall, ServerSide};
use crate::core::access::Peer;
use crate::core::lifecycle::Tracked;
use crate::core::span::{RequestKind, ServerSpans, server_builder};
use crate::core::{net, propagate};
use crate::grpc::body::RequestBody;
use crate::grpc::call::{self, CallCore};
use crate::grpc::method::{self, Resolved};

impl<S> GrpcServer<S> {
    /// Resolves the method, reads the request ID, starts the spans and the in-flight gauge,
    /// and makes the state that follows the call to the end of its response stream.
    pub(super) fn start<B>(
        &self,
        mut req: Request<B>,
    ) -> (Request<RequestBody<B>>, Tracked<ServerCall>) {
        let start = Instant::now();
        let shared = &self.shared;
        let grpc = &shared.grpc;
        let path = req.uri().path();
        let health_check = method::is_health_check(path);
        let method = grpc.methods.resolve(path, false);
        let request_id =
            propagate::accept_request_id(shared.common.request_id_header.as_ref(), &mut req);

        let active_at_start = match &method {
            Resolved::Known(info) => Some(Arc::clone(info)),
            _ => None,
        };
        #[cfg(feature = "metrics")]
        if let Some(labels) = &grpc.metrics {
            let info = active_at_start
                .as_deref()
                .unwrap_or_else(|| grpc.methods.other());
            labels.active(info).increment(1.0);
        }

        let counters =
            call::request_counters((shared.access.enabled && !health_check) || grpc.message_counts);
        // As for HTTP: only the span and the access line print who called.
        let peer = if shared.access.enabled || shared.common.tracer.is_some() {
            Peer::of(&req, &crate::core::forwarded::TrustedProxies::NONE)
        } else {
            Peer::NONE
        };
        let method_recorded = matches!(method, Resolved::Known(_));
        let mut spans = if !health_check || shared.trace_health_checks {
            ServerSpans::start(
                &shared.common,
                RequestKind::Grpc,
                request_id.as_ref(),
                &mut req,
                |req| {
                    server_builder(
                        call::span_name(&method),
                        self.attributes(req, &method, &peer),
                    )
                },
            )
        } else {
            ServerSpans::none()
        };
        let state = ServerCall {
            core: CallCore::new(
                start,
                method,
                req.headers(),
                spans.otel.take(),
                method_recorded,
            ),
            side: ServerSide {
                shared: Arc::clone(shared),
                spans,
                health_check,
                request_id,
                peer,
                request: counters.clone(),
                active_at_start,
            },
        };
        let req = req.map(|body| RequestBody::new(body, counters, grpc.message_counts));
        (req, Tracked::new(Box::new(state)))
    }

    /// The span's attributes at the start of the call.
    fn attributes<B>(&self, req: &Request<B>, method: &Resolved, peer: &Peer) -> Vec<KeyValue> {
        let grpc = &self.shared.grpc;
        let mut attrs = Vec::with_capacity(8);
        attrs.push(call::system_attribute(grpc));
        if let Resolved::Known(info) = method {
            call::method_attributes(grpc, info, method, &mut attrs);
        }
        net::address_attributes(net::uri_authority(req), &mut attrs);
        peer.attributes(&mut attrs);
        self.shared.common.capture.request_head(req, &mut attrs);
        attrs
    }
}
