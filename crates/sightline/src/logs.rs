//! The OTLP log bridge: `tracing` events as OpenTelemetry log records, carrying the trace and
//! span ids that the JSON line of the same event prints.
//!
//! `opentelemetry-appender-tracing` makes the records; the SDK fills a record's trace context
//! from the current OpenTelemetry context. That context is not what the JSON lines read: they
//! take the `trace_id`, `span_id` and `trace_flags` fields of the nearest `tracing` span that
//! recorded each, and the access-log event is emitted when the response body ends, outside the
//! context the middleware attaches. So [`Correlated`] reads the same span fields, and makes
//! them the current context while the appender handles the event
//! (docs/adr/0004-otlp-log-bridge.md).

use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing_core::dispatcher::WeakDispatch;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Targets whose events never reach the bridge: the libraries the OTLP exporters themselves
/// run on (and every `opentelemetry*` crate). Their events, exported, would make more of them
/// (a feedback loop); the SDK suppresses only what runs on its own export thread, not the
/// tasks tonic spawns.
pub(crate) const EXCLUDED_TARGETS: &[&str] = &[
    "tonic",
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "reqwest",
    sightline_otlp::TRACING_TARGET,
];

/// Whether `target` is one of [`EXCLUDED_TARGETS`] or a module of one.
pub(crate) fn excluded(target: &str) -> bool {
    target.starts_with("opentelemetry")
        || EXCLUDED_TARGETS.iter().any(|t| {
            target
                .strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// The logger provider: the OTLP exporter behind a batch processor on its own thread, with
/// counted drops, and the request ID added to each record.
pub(crate) fn logger_provider(
    exporter: sightline_otlp::LogExporter,
    resource: Resource,
    queue_size: usize,
    export_interval: Duration,
) -> SdkLoggerProvider {
    // The batch processor's queue is bounded: `emit` only enqueues, and a record the queue
    // cannot take, or the collector does not accept, is dropped and counted, so a slow or
    // dead collector never blocks the caller.
    SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(WithRequestId {
            inner: sightline_otlp::counting_batch_log_processor(
                exporter,
                queue_size,
                export_interval,
            ),
        })
        .build()
}

/// The log bridge for `provider`, filtered as the JSON lines are (`hint`) and without the
/// exporters' own targets; and the slot for the dispatcher it must find spans through.
pub(crate) fn layer<S>(
    provider: &SdkLoggerProvider,
    hint: tracing_subscriber::filter::LevelFilter,
) -> (
    impl Layer<S> + Send + Sync + 'static,
    Arc<OnceLock<WeakDispatch>>,
)
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let layer = bridge(provider);
    let slot = layer.dispatch_slot();
    let filter = tracing_subscriber::filter::filter_fn(|meta| !excluded(meta.target()))
        .with_max_level_hint(hint);
    (layer.with_filter(filter), slot)
}

/// The bridge layer for `provider`, correlated with the JSON lines.
fn bridge(provider: &SdkLoggerProvider) -> Correlated {
    Correlated {
        inner: OpenTelemetryTracingBridge::new(provider),
        dispatch: Arc::default(),
    }
}

/// `opentelemetry-appender-tracing`'s layer, with the trace context taken from the span fields
/// the JSON lines print.
pub(crate) struct Correlated {
    inner: OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>,
    /// The subscriber this layer is in, to find the spans `tracing-opentelemetry` exports.
    /// Filled by `on_register_dispatch`, or through [`Correlated::dispatch_slot`] by whoever
    /// installs the subscriber (a layer inside an `Option` is not told its dispatcher).
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl Correlated {
    /// Where the dispatcher goes once the subscriber is installed.
    pub(crate) fn dispatch_slot(&self) -> Arc<OnceLock<WeakDispatch>> {
        Arc::clone(&self.dispatch)
    }
}

/// The ids a span recorded as `trace_id`, `span_id`, `trace_flags` and `request_id` fields
/// (the names `sightline-logging` reads by default), parsed. Stored in the span's extensions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SpanIds {
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
    trace_flags: Option<u8>,
    request_id: Option<RequestIdText>,
}

/// A request ID as the middleware records it (1 to 128 visible ASCII characters), kept on the
/// stack. While the appender handles an event, it is a value of the current OpenTelemetry
/// context, where [`WithRequestId`] finds it and adds it to the record as `request_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestIdText {
    buf: [u8; sightline_http::request_id::MAX_REQUEST_ID_LEN],
    len: u8,
}

impl RequestIdText {
    fn parse(text: &[u8]) -> Option<Self> {
        if !sightline_http::request_id::is_valid(text) {
            return None;
        }
        let mut buf = [0; sightline_http::request_id::MAX_REQUEST_ID_LEN];
        buf[..text.len()].copy_from_slice(text);
        Some(Self {
            buf,
            len: u8::try_from(text.len()).ok()?,
        })
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// Adds the request ID of the event's span to each record, as the JSON lines carry it.
#[derive(Debug)]
pub(crate) struct WithRequestId<P> {
    inner: P,
}

impl<P: opentelemetry_sdk::logs::LogProcessor> opentelemetry_sdk::logs::LogProcessor
    for WithRequestId<P>
{
    fn emit(
        &self,
        record: &mut opentelemetry_sdk::logs::SdkLogRecord,
        scope: &opentelemetry::InstrumentationScope,
    ) {
        use opentelemetry::logs::LogRecord as _;
        if let Some(id) = Context::map_current(|cx| cx.get::<RequestIdText>().copied()) {
            record.add_attribute("request_id", id.as_str().to_owned());
        }
        self.inner.emit(record, scope);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl SpanIds {
    fn is_empty(&self) -> bool {
        *self == SpanIds::default()
    }

    /// Fills what `self` lacks from `outer`: each id comes from the nearest span that has it,
    /// as in the JSON lines.
    fn fill_from(&mut self, outer: &SpanIds) {
        self.trace_id = self.trace_id.or(outer.trace_id);
        self.span_id = self.span_id.or(outer.span_id);
        self.trace_flags = self.trace_flags.or(outer.trace_flags);
        self.request_id = self.request_id.or(outer.request_id);
    }

    /// Takes what `self` lacks of the trace and span ids and flags from a span exported by
    /// `tracing-opentelemetry`, as `sightline-logging` does for the JSON line.
    fn fill_from_span_context(&mut self, cx: &SpanContext) {
        if !cx.is_valid() {
            return;
        }
        self.trace_id = self.trace_id.or(Some(cx.trace_id().to_bytes()));
        self.span_id = self.span_id.or(Some(cx.span_id().to_bytes()));
        self.trace_flags = self.trace_flags.or(Some(cx.trace_flags().to_u8()));
    }

    fn has_span_context(&self) -> bool {
        self.trace_id.is_some() && self.span_id.is_some() && self.trace_flags.is_some()
    }

    fn is_complete(&self) -> bool {
        self.trace_id.is_some()
            && self.span_id.is_some()
            && self.trace_flags.is_some()
            && self.request_id.is_some()
    }

    fn span_context(&self) -> Option<SpanContext> {
        Some(SpanContext::new(
            TraceId::from_bytes(self.trace_id?),
            SpanId::from_bytes(self.span_id?),
            TraceFlags::new(self.trace_flags.unwrap_or(0)),
            true,
            Default::default(),
        ))
    }
}

/// The text of one id field, formatted on the stack: a valid id is at most 128 characters
/// (a request ID), and a longer value is not an id.
struct IdText {
    buf: [u8; sightline_http::request_id::MAX_REQUEST_ID_LEN],
    len: usize,
}

impl Default for IdText {
    fn default() -> Self {
        Self {
            buf: [0; sightline_http::request_id::MAX_REQUEST_ID_LEN],
            len: 0,
        }
    }
}

impl fmt::Write for IdText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Reads the id fields into `ids`; `touched` tells whether there was one.
struct IdVisitor<'a> {
    ids: &'a mut SpanIds,
    touched: bool,
}

impl IdVisitor<'_> {
    fn text(&mut self, field: &Field, text: &[u8]) {
        use sightline_propagation::{SpanId, TraceId};
        self.touched |= is_id_field(field);
        match field.name() {
            "trace_id" => self.ids.trace_id = TraceId::from_hex(text).map(|id| id.0),
            "span_id" => self.ids.span_id = SpanId::from_hex(text).map(|id| id.0),
            "trace_flags" => self.ids.trace_flags = parse_flags(text),
            "request_id" => self.ids.request_id = RequestIdText::parse(text),
            _ => {}
        }
    }
}

fn is_id_field(field: &Field) -> bool {
    matches!(
        field.name(),
        "trace_id" | "span_id" | "trace_flags" | "request_id"
    )
}

/// Two lowercase hex digits, as the middleware records them.
fn parse_flags(text: &[u8]) -> Option<u8> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    match text {
        [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
        _ => None,
    }
}

impl Visit for IdVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.as_bytes());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !is_id_field(field) {
            return;
        }
        // `%value` fields arrive here, formatted through `Display`.
        let mut text = IdText::default();
        let parsed = write!(text, "{value:?}").is_ok();
        self.text(field, if parsed { &text.buf[..text.len] } else { b"" });
    }
}

impl<S> Layer<S> for Correlated
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if !attrs.fields().iter().any(|f| is_id_field(&f)) {
            return;
        }
        let mut ids = SpanIds::default();
        attrs.record(&mut IdVisitor {
            ids: &mut ids,
            touched: false,
        });
        if let (false, Some(span)) = (ids.is_empty(), ctx.span(id)) {
            span.extensions_mut().insert(ids);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let mut ids = ext.get_mut::<SpanIds>().copied().unwrap_or_default();
        let mut visitor = IdVisitor {
            ids: &mut ids,
            touched: false,
        };
        values.record(&mut visitor);
        if visitor.touched {
            ext.replace(ids);
        }
    }

    fn on_register_dispatch(&self, subscriber: &tracing_core::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
        Layer::<S>::on_register_dispatch(&self.inner, subscriber);
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let mut ids = SpanIds::default();
        let dispatch = self.dispatch.get().and_then(|d| d.upgrade());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(found) = span.extensions().get::<SpanIds>() {
                    ids.fill_from(found);
                }
                // A handler's own span, exported by the bridge, names the record as it names
                // the JSON line (no extension may be borrowed while the bridge looks).
                if let (false, Some(dispatch)) = (ids.has_span_context(), &dispatch)
                    && let Some(cx) = tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
                {
                    ids.fill_from_span_context(cx.span().span_context());
                }
                if ids.is_complete() {
                    break;
                }
            }
        }
        if ids.is_empty() {
            return self.inner.on_event(event, ctx);
        }
        // Built on the current context, so that the SDK's "telemetry suppressed" flag (set
        // while it exports) is kept.
        let mut cx = Context::current();
        if let Some(span_context) = ids.span_context() {
            cx = cx.with_remote_span_context(span_context);
        }
        if let Some(request_id) = ids.request_id {
            cx = cx.with_value(request_id);
        }
        let _attached = cx.attach();
        self.inner.on_event(event, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::AnyValue;
    use opentelemetry_sdk::logs::InMemoryLogExporter;
    use tracing::field::Empty;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn excluded_targets() {
        for t in [
            "hyper",
            "hyper::proto::h1",
            "h2::codec",
            "tonic",
            "opentelemetry_sdk",
            "opentelemetry-otlp",
        ] {
            assert!(excluded(t), "{t}");
        }
        assert!(excluded("sightline_otlp::transport"));
        assert!(!excluded("hyperion"));
        assert!(!excluded("sightline_http::access"));
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flags(b"01"), Some(1));
        assert_eq!(parse_flags(b"ff"), Some(255));
        assert_eq!(parse_flags(b"FF"), None);
        assert_eq!(parse_flags(b"1"), None);
        assert_eq!(parse_flags(b"001"), None);
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    /// `(body, trace id, span id, flags)` of every record, in order.
    fn emitted(run: impl FnOnce()) -> Vec<(String, String, String, u8)> {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(super::bridge(&provider));
        tracing::subscriber::with_default(subscriber, run);
        exporter
            .get_emitted_logs()
            .expect("records")
            .into_iter()
            .map(|log| {
                let body = match log.record.body() {
                    Some(AnyValue::String(s)) => s.as_str().to_owned(),
                    other => format!("{other:?}"),
                };
                let (trace, span, flags) = log.record.trace_context().map_or_else(
                    || (String::new(), String::new(), 0),
                    |cx| {
                        (
                            cx.trace_id.to_string(),
                            cx.span_id.to_string(),
                            cx.trace_flags.map_or(0, |f| f.to_u8()),
                        )
                    },
                );
                (body, trace, span, flags)
            })
            .collect()
    }

    #[test]
    fn records_carry_the_ids_of_the_nearest_spans() {
        let logs = emitted(|| {
            let request = tracing::info_span!(
                "HTTP request",
                trace_id = %TRACE,
                span_id = %SPAN,
                trace_flags = %"03",
                request_id = "r-1",
            );
            let inner = tracing::info_span!(parent: &request, "db", span_id = Empty);
            request.in_scope(|| tracing::info!("in request"));
            inner.in_scope(|| tracing::warn!("in child"));
            inner.record("span_id", "1111111111111111");
            inner.in_scope(|| tracing::info!("child recorded"));
            // Outside any entered span, as the access log is emitted at the end of the body.
            tracing::info!(parent: &request, "explicit parent");
            tracing::info!("outside");
            let bad = tracing::info_span!("bad", trace_id = "4BF92F", span_id = 12);
            bad.in_scope(|| tracing::info!("not ids"));
        });
        let expect = |body: &str, trace: &str, span: &str, flags: u8| {
            (body.to_owned(), trace.to_owned(), span.to_owned(), flags)
        };
        assert_eq!(
            logs,
            vec![
                expect("in request", TRACE, SPAN, 3),
                expect("in child", TRACE, SPAN, 3),
                expect("child recorded", TRACE, "1111111111111111", 3),
                expect("explicit parent", TRACE, SPAN, 3),
                expect("outside", "", "", 0),
                expect("not ids", "", "", 0),
            ]
        );
    }

    #[test]
    fn the_current_context_is_kept_without_span_ids() {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        };
        let logs = emitted(|| {
            let cx = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes([7; 16]),
                SpanId::from_bytes([8; 8]),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ));
            let _attached = cx.attach();
            tracing::info!("from the OpenTelemetry context");
        });
        assert_eq!(logs[0].1, "07".repeat(16));
        assert_eq!(logs[0].2, "08".repeat(8));
    }
}
