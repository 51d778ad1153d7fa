//! The layer's tracer, and the span of a call: owned by the call, or kept in the context the
//! inner service runs in so that handlers reach it.
//!
//! A server span that handlers may edit must live in the OpenTelemetry context (as the span of
//! a `SynchronizedSpan`), and the context's span must report the span's *identity* (with the
//! Level 2 `random` flag right, see `span::identity`). Through `BoxedTracer` that would box
//! the span twice; keeping the tracer's concrete type behind one trait object boxes it once,
//! so the context costs the allocations it cost when it held the identity alone.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{Span, SpanBuilder, SpanContext, Status, TraceContextExt as _, Tracer};
use opentelemetry::{Context, KeyValue};

/// A tracer, shared by the boxed path (client spans, and server spans outside any context)
/// and the typed path (server spans in the context).
pub(crate) struct LayerTracer {
    boxed: BoxedTracer,
    typed: Arc<dyn StartInContext + Send + Sync>,
}

impl LayerTracer {
    pub(crate) fn new<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
        T::Span: Send + Sync + 'static,
    {
        let tracer = Arc::new(tracer);
        Self {
            boxed: BoxedTracer::new(Box::new(SharedTracer(Arc::clone(&tracer)))),
            typed: Arc::new(SharedTracer(tracer)),
        }
    }

    /// A span the caller owns.
    pub(crate) fn start_owned(&self, builder: SpanBuilder, parent: &Context) -> BoxedSpan {
        self.boxed.build_with_context(builder, parent)
    }

    /// A span kept in a new context, whose span is `identity(span's own context, parent's)`;
    /// returns the context and that identity.
    pub(crate) fn start_in_context(
        &self,
        builder: SpanBuilder,
        parent: &Context,
        identity: &dyn Fn(&SpanContext) -> SpanContext,
    ) -> (Context, SpanContext) {
        self.typed.start_in_context(builder, parent, identity)
    }
}

/// A tracer shared between the two paths.
struct SharedTracer<T>(Arc<T>);

impl<T: Tracer> Tracer for SharedTracer<T> {
    type Span = T::Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Self::Span {
        self.0.build_with_context(builder, parent_cx)
    }
}

trait StartInContext {
    fn start_in_context(
        &self,
        builder: SpanBuilder,
        parent: &Context,
        identity: &dyn Fn(&SpanContext) -> SpanContext,
    ) -> (Context, SpanContext);
}

impl<T> StartInContext for SharedTracer<T>
where
    T: Tracer,
    T::Span: Send + Sync + 'static,
{
    fn start_in_context(
        &self,
        builder: SpanBuilder,
        parent: &Context,
        identity: &dyn Fn(&SpanContext) -> SpanContext,
    ) -> (Context, SpanContext) {
        let span = self.0.build_with_context(builder, parent);
        let identity = identity(span.span_context());
        let cx = Context::new().with_span(IdentifiedSpan {
            inner: span,
            identity: identity.clone(),
        });
        (cx, identity)
    }
}

/// A span that reports `identity` as its context (what children inherit and propagation
/// writes) and forwards everything else.
struct IdentifiedSpan<S> {
    inner: S,
    identity: SpanContext,
}

impl<S: Span> Span for IdentifiedSpan<S> {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        self.inner
            .add_event_with_timestamp(name, timestamp, attributes);
    }

    fn span_context(&self) -> &SpanContext {
        &self.identity
    }

    fn is_recording(&self) -> bool {
        self.inner.is_recording()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.inner.set_attribute(attribute);
    }

    fn set_status(&mut self, status: Status) {
        self.inner.set_status(status);
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        self.inner.update_name(new_name);
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.inner.add_link(span_context, attributes);
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.inner.end_with_timestamp(timestamp);
    }
}

/// The span of a call, as the middleware ends it.
pub(crate) enum CallSpan {
    /// The call owns it (client spans; server spans when the context is not attached).
    Owned(BoxedSpan),
    /// It lives in the context the inner service runs in, where handlers reach it.
    InContext { cx: Context, identity: SpanContext },
}

impl Span for CallSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        match self {
            Self::Owned(span) => span.add_event_with_timestamp(name, timestamp, attributes),
            Self::InContext { cx, .. } => {
                cx.span()
                    .add_event_with_timestamp(name, timestamp, attributes);
            }
        }
    }

    fn span_context(&self) -> &SpanContext {
        match self {
            Self::Owned(span) => span.span_context(),
            Self::InContext { identity, .. } => identity,
        }
    }

    fn is_recording(&self) -> bool {
        match self {
            Self::Owned(span) => span.is_recording(),
            Self::InContext { cx, .. } => cx.span().is_recording(),
        }
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        match self {
            Self::Owned(span) => span.set_attribute(attribute),
            Self::InContext { cx, .. } => cx.span().set_attribute(attribute),
        }
    }

    fn set_attributes(&mut self, attributes: impl IntoIterator<Item = KeyValue>) {
        match self {
            Self::Owned(span) => span.set_attributes(attributes),
            // One lock for them all.
            Self::InContext { cx, .. } => cx.span().set_attributes(attributes),
        }
    }

    fn set_status(&mut self, status: Status) {
        match self {
            Self::Owned(span) => span.set_status(status),
            Self::InContext { cx, .. } => cx.span().set_status(status),
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        match self {
            Self::Owned(span) => span.update_name(new_name),
            Self::InContext { cx, .. } => cx.span().update_name(new_name),
        }
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        match self {
            Self::Owned(span) => span.add_link(span_context, attributes),
            Self::InContext { cx, .. } => cx.span().add_link(span_context, attributes),
        }
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        match self {
            Self::Owned(span) => span.end_with_timestamp(timestamp),
            Self::InContext { cx, .. } => cx.span().end_with_timestamp(timestamp),
        }
    }
}
