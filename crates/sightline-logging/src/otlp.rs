//! The OTLP log bridge (feature `otlp`): `tracing` events as OpenTelemetry log records that
//! carry the trace id, span id, flags and request ID their JSON lines print.
//!
//! [`OtlpLogLayer`] hands each event to `opentelemetry-appender-tracing`, which makes the
//! record (severity, body, target, event fields as attributes). The ids come from the
//! [`correlation`] walk that [`JsonLayer`](crate::JsonLayer) prints from,
//! so they agree by construction, whichever thread or task the event runs on:
//!
//! - the record's trace context is the trace id, span id and flags of the nearest span that
//!   recorded them (or that `tracing-opentelemetry` exports); without any, the SDK takes the
//!   current OpenTelemetry context, as it does for any record;
//! - the record gets the attribute `request_id`, the request ID of the nearest span that
//!   recorded one.
//!
//! The exporter's own libraries must not reach the bridge: exported, their events would make
//! more of them. Filter them out with [`excluded`] (see [`OtlpLogLayer`]'s example).
//!
//! Why the ids do not come from the current OpenTelemetry context alone:
//! `docs/adr/0004-otlp-log-bridge.md`.

use std::cell::{Cell, RefCell};
use std::fmt;

use opentelemetry::logs::{LogRecord as _, Logger, LoggerProvider, Severity};
use opentelemetry::{InstrumentationScope, SpanId, TraceFlags, TraceId};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{SdkLogRecord, SdkLogger, SdkLoggerProvider};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::correlation::{self, Bridge, Found, Recorder, SpanFieldNames};
use crate::record::{SPAN_ID, TRACE_FLAGS, TRACE_ID};

/// Targets whose events should never reach the bridge: the libraries OTLP exporters run on.
///
/// Their events, exported, would make more of them (a feedback loop); the SDK suppresses only
/// what runs on its own export thread, not the tasks tonic spawns. Crate names, so that moving
/// a module inside a crate cannot turn the loop back on (Sightline's exporters are the crate
/// `sightline_otlp`). Every `opentelemetry*` crate is excluded too (see [`excluded`]).
///
/// ```
/// use sightline_logging::otlp::EXCLUDED_TARGETS;
///
/// assert!(EXCLUDED_TARGETS.contains(&"tonic"));
/// assert!(EXCLUDED_TARGETS.contains(&"sightline_otlp"));
/// ```
pub const EXCLUDED_TARGETS: &[&str] = &[
    "tonic",
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "reqwest",
    "sightline_otlp",
];

/// Whether events of `target` must be kept from the bridge: `target` is one of
/// [`EXCLUDED_TARGETS`] or a module of one, or starts with `opentelemetry`.
///
/// ```
/// use sightline_logging::otlp::excluded;
///
/// assert!(excluded("hyper::proto::h1"));
/// assert!(excluded("opentelemetry_sdk"));
/// assert!(!excluded("hyperion"));
/// assert!(!excluded("sightline_http::access"));
/// ```
pub fn excluded(target: &str) -> bool {
    target.starts_with("opentelemetry")
        || EXCLUDED_TARGETS.iter().any(|t| {
            target
                .strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// A [`Layer`] that exports `tracing` events as OpenTelemetry log records through `provider`,
/// each with the trace id, span id, flags and `request_id` its JSON line prints.
///
/// Reads the span fields named by [`SpanFieldNames`] (by default `trace_id`, `span_id`,
/// `trace_flags` and `request_id`, as [`JsonLayer`](crate::JsonLayer) does). In a registry
/// with a `JsonLayer`, the two keep one extension per span; give them the same
/// [`SpanFieldNames`].
///
/// Spans exported by `tracing-opentelemetry` (an `#[instrument]` span) give their own ids,
/// found through the dispatcher this layer is registered with: add it to the subscriber
/// directly, not inside an `Option`, which tracing-subscriber 0.3 does not tell its
/// dispatcher.
///
/// ```
/// use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
/// use sightline_logging::otlp::{OtlpLogLayer, excluded};
/// use tracing_subscriber::filter::filter_fn;
/// use tracing_subscriber::prelude::*;
///
/// let exporter = InMemoryLogExporter::default();
/// let provider = SdkLoggerProvider::builder().with_simple_exporter(exporter.clone()).build();
/// let logs = OtlpLogLayer::new(&provider).with_filter(filter_fn(|meta| !excluded(meta.target())));
/// let subscriber = tracing_subscriber::registry().with(logs);
///
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!(
///         "HTTP request",
///         trace_id = %"4bf92f3577b34da6a3ce929d0e0e4736",
///         span_id = %"00f067aa0ba902b7",
///         trace_flags = %"01",
///         request_id = %"req-1",
///     );
///     span.in_scope(|| tracing::info!("order placed"));
/// });
/// let logs = exporter.get_emitted_logs().expect("records");
/// let ids = logs[0].record.trace_context().expect("trace context");
/// assert_eq!(ids.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(ids.span_id.to_string(), "00f067aa0ba902b7");
/// ```
pub struct OtlpLogLayer {
    recorder: Recorder,
    bridge: Bridge,
    inner: OpenTelemetryTracingBridge<Provider, CorrelatedLogger>,
}

impl fmt::Debug for OtlpLogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpLogLayer")
            .field("span_field_names", self.recorder.names())
            .finish_non_exhaustive()
    }
}

impl OtlpLogLayer {
    /// A layer emitting records through `provider`'s logger (the appender's default scope,
    /// named `""`), reading the default [`SpanFieldNames`].
    ///
    /// ```
    /// use opentelemetry_sdk::logs::SdkLoggerProvider;
    /// use sightline_logging::otlp::OtlpLogLayer;
    ///
    /// let provider = SdkLoggerProvider::builder().build();
    /// let layer = OtlpLogLayer::new(&provider);
    /// # drop(layer);
    /// ```
    pub fn new(provider: &SdkLoggerProvider) -> Self {
        OtlpLogLayer {
            recorder: Recorder::new(SpanFieldNames::default(), false),
            bridge: Bridge::default(),
            inner: OpenTelemetryTracingBridge::new(&Provider(provider.clone())),
        }
    }

    /// Span field names read as correlation ids. Defaults to [`SpanFieldNames::default`]:
    /// `trace_id`, `span_id`, `trace_flags`, `request_id`.
    ///
    /// ```
    /// use opentelemetry_sdk::logs::SdkLoggerProvider;
    /// use sightline_logging::SpanFieldNames;
    /// use sightline_logging::otlp::OtlpLogLayer;
    ///
    /// let provider = SdkLoggerProvider::builder().build();
    /// let names = SpanFieldNames::default().request_id("req_id");
    /// let layer = OtlpLogLayer::new(&provider).span_field_names(names);
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn span_field_names(mut self, names: SpanFieldNames) -> Self {
        self.recorder = Recorder::new(names, false);
        self
    }
}

/// The ids [`OtlpLogLayer::on_event`] found, for [`CorrelatedLogger::emit`] on the same thread
/// (the appender makes and emits the record inside its `on_event`, with no way to pass them).
struct Pending {
    span_context: Option<(TraceId, SpanId, TraceFlags)>,
    request_id: Option<String>,
}

thread_local! {
    static PENDING: Cell<Option<Pending>> = const { Cell::new(None) };
    static FOUND: RefCell<Found> = RefCell::new(Found::default());
}

impl Pending {
    fn from_found(found: &Found) -> Option<Self> {
        let trace_id = found
            .text(TRACE_ID)
            .and_then(hex::<16>)
            .filter(|id| *id != [0; 16]);
        let span_id = found
            .text(SPAN_ID)
            .and_then(hex::<8>)
            .filter(|id| *id != [0; 8]);
        let flags = found.text(TRACE_FLAGS).and_then(hex::<1>).map(|[f]| f);
        let span_context = match (trace_id, span_id) {
            (Some(trace_id), Some(span_id)) => Some((
                TraceId::from_bytes(trace_id),
                SpanId::from_bytes(span_id),
                TraceFlags::new(flags.unwrap_or(0)),
            )),
            _ => None,
        };
        let request_id = found
            .request_id()
            .map(|text| String::from_utf8_lossy(text).into_owned());
        (span_context.is_some() || request_id.is_some()).then_some(Pending {
            span_context,
            request_id,
        })
    }
}

/// `N` bytes from exactly `2 * N` lowercase hex digits, as the middleware records ids.
fn hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The SDK provider, giving out [`CorrelatedLogger`]s to the appender.
struct Provider(SdkLoggerProvider);

impl LoggerProvider for Provider {
    type Logger = CorrelatedLogger;

    fn logger_with_scope(&self, scope: InstrumentationScope) -> CorrelatedLogger {
        CorrelatedLogger(self.0.logger_with_scope(scope))
    }
}

/// The SDK logger, adding the ids [`OtlpLogLayer`] found to each record it emits.
struct CorrelatedLogger(SdkLogger);

impl Logger for CorrelatedLogger {
    type LogRecord = SdkLogRecord;

    fn create_log_record(&self) -> SdkLogRecord {
        self.0.create_log_record()
    }

    fn emit(&self, mut record: SdkLogRecord) {
        if let Some(pending) = PENDING.try_with(Cell::take).ok().flatten() {
            // Set here, the SDK does not replace it with the current context's.
            if let Some((trace_id, span_id, flags)) = pending.span_context {
                record.set_trace_context(trace_id, span_id, Some(flags));
            }
            if let Some(request_id) = pending.request_id {
                record.add_attribute("request_id", request_id);
            }
        }
        self.0.emit(record);
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.0.event_enabled(level, target, name)
    }
}

impl<S> Layer<S> for OtlpLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.bridge.register(subscriber);
        Layer::<S>::on_register_dispatch(&self.inner, subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.recorder.new_span(attrs, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.recorder.record(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let find = |found: &mut Found| {
            correlation::walk(event, &ctx, &self.bridge, found, |_, _| false);
            Pending::from_found(found)
        };
        // A fresh `Found` only if this thread's is in use (an event emitted while exporting).
        let pending = FOUND
            .try_with(|cell| cell.try_borrow_mut().ok().map(|mut found| find(&mut found)))
            .ok()
            .flatten()
            .unwrap_or_else(|| find(&mut Found::default()));
        let previous = PENDING.try_with(|p| p.replace(pending)).ok().flatten();
        self.inner.on_event(event, ctx);
        let _ = PENDING.try_with(|p| p.set(previous));
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
            "sightline_otlp",
            "sightline_otlp::logs",
        ] {
            assert!(excluded(t), "{t}");
        }
        assert!(!excluded("hyperion"));
        assert!(!excluded("sightline_otlpx"));
        assert!(!excluded("sightline_http::access"));
    }

    #[test]
    fn hex_ids() {
        let cases: &[(&[u8], Option<u8>, &str)] = &[
            (b"01", Some(1), "sampled"),
            (b"ff", Some(255), "every bit"),
            (b"FF", None, "uppercase"),
            (b"1", None, "one digit"),
            (b"001", None, "three digits"),
            (b"0g", None, "not hex"),
        ];
        for (text, want, why) in cases {
            assert_eq!(hex::<1>(text).map(|[b]| b), *want, "{why}");
        }
        assert_eq!(
            hex::<8>(b"00f067aa0ba902b7"),
            Some([0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    /// One emitted record: body, trace id, span id, flags, `request_id` attribute.
    #[derive(Debug, PartialEq)]
    struct Emitted {
        body: String,
        trace: String,
        span: String,
        flags: u8,
        request_id: Option<String>,
    }

    fn expect(body: &str, trace: &str, span: &str, flags: u8, request_id: Option<&str>) -> Emitted {
        Emitted {
            body: body.to_owned(),
            trace: trace.to_owned(),
            span: span.to_owned(),
            flags,
            request_id: request_id.map(str::to_owned),
        }
    }

    fn records(exporter: &InMemoryLogExporter) -> Vec<Emitted> {
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
                let request_id = log.record.attributes_iter().find_map(|(k, v)| {
                    (k.as_str() == "request_id").then(|| match v {
                        AnyValue::String(s) => s.as_str().to_owned(),
                        other => format!("{other:?}"),
                    })
                });
                Emitted {
                    body,
                    trace,
                    span,
                    flags,
                    request_id,
                }
            })
            .collect()
    }

    fn provider() -> (SdkLoggerProvider, InMemoryLogExporter) {
        let exporter = InMemoryLogExporter::default();
        let provider = SdkLoggerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        (provider, exporter)
    }

    fn emitted(run: impl FnOnce()) -> Vec<Emitted> {
        let (provider, exporter) = provider();
        let subscriber = tracing_subscriber::registry().with(OtlpLogLayer::new(&provider));
        tracing::subscriber::with_default(subscriber, run);
        records(&exporter)
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
            let zero = tracing::info_span!("zero", trace_id = %"0".repeat(32), span_id = %SPAN);
            zero.in_scope(|| tracing::info!("all-zero trace id"));
        });
        let r = Some("r-1");
        assert_eq!(
            logs,
            vec![
                expect("in request", TRACE, SPAN, 3, r),
                expect("in child", TRACE, SPAN, 3, r),
                expect("child recorded", TRACE, "1111111111111111", 3, r),
                expect("explicit parent", TRACE, SPAN, 3, r),
                expect("outside", "", "", 0, None),
                expect("not ids", "", "", 0, None),
                expect("all-zero trace id", "", "", 0, None),
            ]
        );
    }

    #[test]
    fn renamed_span_fields_are_read() {
        let (provider, exporter) = provider();
        let names = SpanFieldNames::default()
            .trace_id("otel.trace_id")
            .request_id("req_id");
        let subscriber = tracing_subscriber::registry()
            .with(OtlpLogLayer::new(&provider).span_field_names(names));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "req",
                otel.trace_id = TRACE,
                span_id = SPAN,
                req_id = 7,
                request_id = "ignored"
            );
            span.in_scope(|| tracing::info!("x"));
        });
        assert_eq!(
            records(&exporter),
            vec![expect("x", TRACE, SPAN, 0, Some("7"))]
        );
    }

    #[test]
    fn the_current_context_is_kept_without_span_ids() {
        use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceState};
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
            let span = tracing::info_span!("request", request_id = "r-2");
            span.in_scope(|| tracing::info!("request id only"));
        });
        assert_eq!(
            logs,
            vec![
                expect(
                    "from the OpenTelemetry context",
                    &"07".repeat(16),
                    &"08".repeat(8),
                    1,
                    None
                ),
                expect(
                    "request id only",
                    &"07".repeat(16),
                    &"08".repeat(8),
                    1,
                    Some("r-2")
                ),
            ]
        );
    }

    /// Records and JSON lines in one registry read one extension per span and print the same
    /// ids, including those of a span `tracing-opentelemetry` exports.
    #[test]
    fn records_and_json_lines_agree() {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_sdk::trace::SdkTracerProvider;

        let (provider, exporter) = provider();
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = {
            let lines = std::sync::Arc::clone(&lines);
            move || LineSink(std::sync::Arc::clone(&lines))
        };
        let subscriber = tracing_subscriber::registry()
            .with(crate::JsonLayer::builder().writer(writer).build())
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                        m.target() != "sightline_http::server"
                    })),
            )
            .with(OtlpLogLayer::new(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!(
                target: "sightline_http::server",
                "HTTP request",
                trace_id = %TRACE,
                span_id = %SPAN,
                trace_flags = %"03",
                request_id = %"req \"9\"",
            );
            let _r = request.enter();
            tracing::info!("in request");
            let handler = tracing::info_span!("handler");
            let _h = handler.enter();
            tracing::info!("in handler");
        });
        let text = String::from_utf8(lines.lock().expect("lines").clone()).expect("UTF-8");
        let json: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        let records = records(&exporter);
        assert_eq!(json.len(), 2);
        assert_eq!(records.len(), 2);
        for (line, record) in json.iter().zip(&records) {
            assert_eq!(line["trace_id"], record.trace.as_str(), "{line}");
            assert_eq!(line["span_id"], record.span.as_str(), "{line}");
            assert_eq!(
                line["trace_flags"],
                format!("{:02x}", record.flags),
                "{line}"
            );
            assert_eq!(line["request_id"], "req \"9\"", "{line}");
            assert_eq!(record.request_id.as_deref(), Some("req \"9\""));
        }
        assert_eq!(records[0].span, SPAN);
        assert_ne!(records[1].span, SPAN, "the handler's exported span");
    }

    struct LineSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for LineSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
