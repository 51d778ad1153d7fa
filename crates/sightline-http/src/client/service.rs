//! [`Client::start`](super::Client): the per-call work when a request is sent.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::Request;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanBuilder;
use opentelemetry_semantic_conventions::attribute;

use super::Client;
use super::state::CallState;
use crate::core::lifecycle::Tracked;
use crate::core::net::{Target, default_port};
use crate::core::query;
use crate::core::semconv::{self, METHODS, OTHER_METHOD};
use crate::core::span::{self, ClientSpan};

impl<S> Client<S> {
    /// Starts the client span as a child of the current context, injects its context and the
    /// caller's request ID, and makes the state that follows the call to its end.
    pub(super) fn start<B>(&self, mut req: Request<B>) -> (Request<B>, Tracked<CallState>) {
        let start = Instant::now();
        let shared = &self.shared;
        let method = semconv::method_index(req.method());
        let target = Target::of(&req);

        let span = ClientSpan::start(&shared.common, &mut req, |req| {
            let name: Cow<'static, str> = if method == OTHER_METHOD {
                "HTTP".into()
            } else {
                METHODS[method].into()
            };
            SpanBuilder::from_name(name)
                .with_attributes(self.request_attributes(req, method, &target))
        });

        let state = CallState {
            shared: Arc::clone(shared),
            start,
            method,
            server_address: target.host,
            server_port: target.port,
            span: span.otel,
            cx: span.cx,
            status: None,
        };
        (req, Tracked::new(Box::new(state)))
    }

    /// The request attributes of the client span, per the stable HTTP semantic conventions.
    fn request_attributes<B>(
        &self,
        req: &Request<B>,
        method: usize,
        target: &Target,
    ) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(6);
        span::http_method_attributes(method, req.method(), &mut attrs);
        if let Some(host) = &target.host {
            attrs.push(KeyValue::new(attribute::SERVER_ADDRESS, Arc::clone(host)));
        }
        attrs.push(KeyValue::new(
            attribute::SERVER_PORT,
            i64::from(target.port),
        ));
        attrs.push(KeyValue::new(
            attribute::URL_FULL,
            url_full(req.uri(), target, &self.shared.sensitive_query_params),
        ));
        self.shared.common.capture.request_head(req, &mut attrs);
        attrs
    }
}

/// `url.full`: scheme, authority without userinfo, path and the query with sensitive values
/// redacted. A relative URI keeps its own form, with the `Host` header as authority if any.
fn url_full(uri: &http::Uri, target: &Target, sensitive: &[Box<str>]) -> String {
    let mut out = String::with_capacity(
        uri.authority().map_or(0, |a| a.as_str().len())
            + uri.path().len()
            + uri.query().map_or(0, str::len)
            + 24,
    );
    let authority = uri
        .authority()
        .map(|a| a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, a)| a));
    match (authority, &target.host) {
        (Some(authority), _) => {
            out.push_str(uri.scheme_str().unwrap_or(target.scheme));
            out.push_str("://");
            out.push_str(authority);
        }
        (None, Some(host)) => {
            out.push_str(target.scheme);
            out.push_str("://");
            if host.contains(':') {
                out.push('[');
                out.push_str(host);
                out.push(']');
            } else {
                out.push_str(host);
            }
            if target.port != default_port(target.scheme == "https") {
                out.push(':');
                out.push_str(itoa::Buffer::new().format(target.port));
            }
        }
        (None, None) => {}
    }
    out.push_str(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        out.push_str(&query::redact(query, sensitive));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(uri: &str) -> String {
        let req = Request::builder().uri(uri).body(()).unwrap();
        let target = Target::of(&req);
        url_full(req.uri(), &target, &["token".into()])
    }

    #[test]
    fn url_full_drops_userinfo_and_redacts() {
        assert_eq!(
            full("https://user:pw@api.example.com:8443/a/b?token=s3cret&q=1"),
            "https://api.example.com:8443/a/b?token=REDACTED&q=1"
        );
        assert_eq!(full("http://[::1]:3000/"), "http://[::1]:3000/");
        assert_eq!(full("/relative?x=1"), "/relative?x=1");
    }
}
