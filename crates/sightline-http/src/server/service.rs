//! [`Server::start`](super::Server): the per-request work when a request arrives.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::Request;
use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute;

use super::Server;
use super::state::{RequestState, RouteRef};
use crate::core::access::Peer;
use crate::core::lifecycle::Tracked;
use crate::core::semconv::{self, METHODS};
use crate::core::span::{self, RequestKind, ServerSpans, server_builder};
use crate::core::{net, propagate, query, text_cache};

impl<S> Server<S> {
    /// Reads the request ID, starts the spans and the in-flight gauge, and makes the state
    /// that follows the request to the end of its response.
    pub(super) fn start<B>(&self, mut req: Request<B>) -> (Request<B>, Tracked<RequestState>) {
        let start = Instant::now();
        let shared = &self.shared;
        let method = semconv::method_index(req.method());
        let scheme = semconv::scheme(req.uri(), shared.options.default_scheme);
        let route = self.resolve_route(&req);
        let request_id =
            propagate::accept_request_id(shared.common.request_id_header.as_ref(), &mut req);

        #[cfg(feature = "metrics")]
        if let Some(active) = &shared.active_requests {
            active.gauge(method, scheme).increment(1.0);
        }

        // Only the span and the access line print who asked: without either, not even the
        // header lookup and the connection info are paid for.
        let peer = if shared.access.enabled || shared.common.tracer.is_some() {
            Peer::of(&req, &shared.options.trusted_proxies)
        } else {
            Peer::NONE
        };
        let probe = match &route {
            // Decided once per route, not compared on every request.
            RouteRef::Cached(slot) => slot
                .get()
                .is_some_and(|info| *info.probe.get_or_init(|| shared.is_probe(info.template()))),
            RouteRef::Uncached(route) => shared.is_probe(route),
            RouteRef::Unmatched => shared.is_probe(req.uri().path()),
        };
        let spans = if probe {
            ServerSpans::none()
        } else {
            ServerSpans::start(
                &shared.common,
                RequestKind::Http,
                request_id.as_ref(),
                &mut req,
                |req| {
                    let name = match &route {
                        RouteRef::Uncached(route) => [METHODS[method], " ", route].concat().into(),
                        RouteRef::Cached(slot) => slot
                            .get()
                            .map_or(METHODS[method].into(), |info| info.span_name(method)),
                        RouteRef::Unmatched => Cow::Borrowed(METHODS[method]),
                    };
                    server_builder(
                        name,
                        self.request_attributes(req, method, scheme, &route, &peer),
                    )
                },
            )
        };
        let state = RequestState {
            shared: Arc::clone(shared),
            start,
            method,
            scheme,
            route,
            spans,
            request_id,
            peer,
            request_bytes: content_length(&req),
            status: None,
            response_bytes: 0,
            probe,
            #[cfg(feature = "metrics")]
            tenant: shared
                .options
                .tenant
                .as_ref()
                .and_then(|tenant| tenant.value(req.headers())),
            panicked: None,
        };
        (req, Tracked::new(Box::new(state)))
    }

    fn resolve_route<B>(&self, req: &Request<B>) -> RouteRef {
        #[cfg(feature = "axum")]
        if let Some(matched) = req.extensions().get::<axum::extract::MatchedPath>() {
            let template = matched.as_str();
            return match self.route.resolve(template, &self.shared.routes) {
                Some(_) => RouteRef::Cached(Arc::clone(&self.route)),
                None => RouteRef::Uncached(Arc::from(template)),
            };
        }
        if let Some(extractor) = &self.shared.options.route_extractor
            && let Some(template) = extractor(&crate::head::RequestHead::of(req))
        {
            return match self.route.resolve(&template, &self.shared.routes) {
                Some(_) => RouteRef::Cached(Arc::clone(&self.route)),
                None => RouteRef::Uncached(Arc::from(&*template)),
            };
        }
        RouteRef::Unmatched
    }

    /// The request attributes of the server span, per the stable HTTP semantic conventions.
    fn request_attributes<B>(
        &self,
        req: &Request<B>,
        method: usize,
        scheme: &'static str,
        route: &RouteRef,
        peer: &Peer,
    ) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(13);
        span::http_method_attributes(method, req.method(), &mut attrs);
        attrs.push(KeyValue::new(
            attribute::URL_PATH,
            req.uri().path().to_owned(),
        ));
        attrs.push(KeyValue::new(attribute::URL_SCHEME, scheme));
        if let Some(query) = req.uri().query() {
            attrs.push(KeyValue::new(
                attribute::URL_QUERY,
                query::redact(query, &self.shared.options.sensitive_query_params),
            ));
        }
        if let Some(route) = route.http_route() {
            attrs.push(KeyValue::new(attribute::HTTP_ROUTE, Arc::clone(route)));
        }
        attrs.push(KeyValue::new(
            attribute::NETWORK_PROTOCOL_VERSION,
            semconv::protocol_version(req.version()),
        ));
        net::address_attributes(net::server_authority(req), &mut attrs);
        peer.attributes(&mut attrs);
        if let Some(ua) = peer
            .user_agent
            .as_ref()
            .map(crate::core::headers::header_text)
        {
            attrs.push(KeyValue::new(
                attribute::USER_AGENT_ORIGINAL,
                text_cache::user_agent(&ua),
            ));
        }
        self.shared.common.capture.request_head(req, &mut attrs);
        attrs
    }
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
