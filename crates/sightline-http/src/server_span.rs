//! The request's server span, from inside the handler.

use std::borrow::Cow;

use opentelemetry::trace::{SpanContext, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

use crate::core::span::ServerScope;

/// The server span of the request being handled: the one a Sightline server layer (HTTP or
/// gRPC) started for it, wherever the call is in the handler (inside a child span of its own,
/// after an `.await`, or in a task spawned with the context, see below).
///
/// Costs nothing until called: the span is in the context the layer attaches anyway. Outside
/// a request (no server layer, no tracer, or `attach_context(false)`) every method does
/// nothing, so a handler never needs to check.
///
/// ```
/// use opentelemetry::KeyValue;
///
/// async fn user(id: String) -> String {
///     sightline_http::server_span().set_attribute(KeyValue::new("enduser.id", id.clone()));
///     format!("user {id}")
/// }
/// # drop(user(String::new()));
/// ```
///
/// A task spawned by the handler carries the context when told to, as any OpenTelemetry
/// context: `tokio::spawn(work.with_current_context())` with
/// `opentelemetry::context::FutureExt`.
pub fn server_span() -> ServerSpan {
    let current = Context::current();
    let cx = current
        .get::<ServerScope>()
        .map(|scope| scope.span_cx.clone())
        .unwrap_or_default();
    ServerSpan { cx }
}

/// A handle on a request's server span; see [`server_span`]. Cheap to clone and to keep.
#[derive(Clone, Debug)]
pub struct ServerSpan {
    cx: Context,
}

impl ServerSpan {
    /// Sets an attribute (`enduser.id`, a tenant, an order id).
    pub fn set_attribute(&self, attribute: KeyValue) {
        self.cx.span().set_attribute(attribute);
    }

    /// Sets several attributes.
    pub fn set_attributes(&self, attributes: impl IntoIterator<Item = KeyValue>) {
        self.cx.span().set_attributes(attributes);
    }

    /// Adds an event.
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        self.cx.span().add_event(name, attributes);
    }

    /// Records `error` as an `exception` event (`exception.message`) and sets the span's
    /// status to Error with its message: a failure the answer's status code does not show.
    pub fn record_error(&self, error: &dyn std::error::Error) {
        let span = self.cx.span();
        span.record_error(error);
        span.set_status(Status::error(error.to_string()));
    }

    /// Sets the span's status. The layer still sets Error when the answer is one.
    pub fn set_status(&self, status: Status) {
        self.cx.span().set_status(status);
    }

    /// Renames the span (a route the layer could not know, say).
    pub fn update_name(&self, name: impl Into<Cow<'static, str>>) {
        self.cx.span().update_name(name);
    }

    /// Whether the span is recorded (sampled): worth computing an expensive attribute for.
    pub fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    /// The span's identity (trace id, span id, flags); invalid outside a request.
    pub fn span_context(&self) -> SpanContext {
        self.cx.span().span_context().clone()
    }

    /// The context holding the server span, to make spans of your own its children.
    pub fn context(&self) -> &Context {
        &self.cx
    }
}
