//! [`JsonLayer`]: configuration, builder and the `Layer` implementation.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::correlation::{self, Bridge, Found, Recorder, SpanFieldNames};
use crate::escape::{escape_into, quoted_into};
use crate::non_blocking::{NonBlocking, WorkerGuard};
use crate::record::{EventVisitor, REQUEST_ID, SPAN_ID, TRACE_FLAGS, TRACE_ID};
use crate::time;

/// Output key names of a line: rename them for Loki, ECS or an existing pipeline.
///
/// Defaults to the [stable schema](https://github.com/sightline-rs/sightline/blob/main/docs/logging.md):
/// `timestamp`, `level`, `target`, `message`, `service.name`, `trace_id`, `span_id`,
/// `trace_flags`, `request_id`, `fields`, `span`, `spans`. Only the keys change; values and the
/// order of keys stay as the schema says. Names are JSON-escaped once, when the layer is built.
///
/// ```
/// use sightline_logging::{FieldNames, JsonLayer};
///
/// // Elastic Common Schema style ids.
/// let names = FieldNames::default()
///     .timestamp("@timestamp")
///     .trace_id("trace.id")
///     .span_id("span.id")
///     .request_id("http.request.id");
/// let layer = JsonLayer::builder().field_names(names).writer(std::io::sink).build();
/// # drop(layer);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNames {
    timestamp: String,
    level: String,
    target: String,
    message: String,
    service_name: String,
    trace_id: String,
    span_id: String,
    trace_flags: String,
    request_id: String,
    fields: String,
    span: String,
    spans: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            timestamp: "timestamp".into(),
            level: "level".into(),
            target: "target".into(),
            message: "message".into(),
            service_name: "service.name".into(),
            trace_id: "trace_id".into(),
            span_id: "span_id".into(),
            trace_flags: "trace_flags".into(),
            request_id: "request_id".into(),
            fields: "fields".into(),
            span: "span".into(),
            spans: "spans".into(),
        }
    }
}

impl FieldNames {
    /// The [Elastic Common Schema](https://www.elastic.co/guide/en/ecs/current/index.html)
    /// names: `@timestamp`, `log.level`, `log.logger` (the target), `message`, `service.name`,
    /// `trace.id`, `span.id`, `http.request.id`; `trace_flags`, `fields`, `span` and `spans`,
    /// which ECS does not define, keep their default names. Setters adjust any of them.
    ///
    /// ```
    /// use sightline_logging::{FieldNames, JsonLayer};
    ///
    /// let layer = JsonLayer::builder()
    ///     .field_names(FieldNames::ecs())
    ///     .writer(std::io::sink)
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn ecs() -> Self {
        FieldNames::default()
            .timestamp("@timestamp")
            .level("log.level")
            .target("log.logger")
            .trace_id("trace.id")
            .span_id("span.id")
            .request_id("http.request.id")
    }

    setters! {
        /// Key of the event time. Defaults to `timestamp`.
        timestamp,
        /// Key of the level (`TRACE` .. `ERROR`). Defaults to `level`.
        level,
        /// Key of the event's target (usually its module path). Defaults to `target`.
        target,
        /// Key of the event's message. Defaults to `message`.
        message,
        /// Key of the service name set with [`JsonLayerBuilder::service_name`]. Defaults to `service.name`.
        service_name,
        /// Key of the nearest span's trace id. Defaults to `trace_id`.
        trace_id,
        /// Key of the nearest span's span id. Defaults to `span_id`.
        span_id,
        /// Key of the nearest span's trace flags. Defaults to `trace_flags`.
        trace_flags,
        /// Key of the nearest span's request id. Defaults to `request_id`.
        request_id,
        /// Key of the object holding the event's other fields. Defaults to `fields`.
        fields,
        /// Key of the innermost span's object. Defaults to `span`.
        span,
        /// Key of the list of spans, outermost first. Defaults to `spans`.
        spans,
    }
}

/// Writes one line per event; object-safe so that [`JsonLayer`] is not generic.
trait LineWriter: Send + Sync + 'static {
    fn write_line(&self, meta: &Metadata<'_>, line: &[u8]);
}

struct MakeWriterLines<W>(W);

impl<W> LineWriter for MakeWriterLines<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    #[inline]
    fn write_line(&self, meta: &Metadata<'_>, line: &[u8]) {
        // Logging must never fail the application; a failing writer loses the line.
        let _ = self.0.make_writer_for(meta).write_all(line);
    }
}

/// Builder for [`JsonLayer`], from [`JsonLayer::builder`].
#[must_use]
pub struct JsonLayerBuilder {
    service_name: Option<String>,
    writer: Option<Box<dyn LineWriter>>,
    field_names: FieldNames,
    span_field_names: SpanFieldNames,
    include_span_fields: bool,
    max_value_bytes: usize,
}

/// The most bytes of one field value (or the message) a line carries by default: a few
/// values at the cap still fit the line limits of log pipelines (Loki's default: 256 KB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 * 1024;

impl fmt::Debug for JsonLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLayerBuilder")
            .field("service_name", &self.service_name)
            .field("custom_writer", &self.writer.is_some())
            .field("field_names", &self.field_names)
            .field("span_field_names", &self.span_field_names)
            .field("include_span_fields", &self.include_span_fields)
            .field("max_value_bytes", &self.max_value_bytes)
            .finish()
    }
}

impl JsonLayerBuilder {
    /// Prints `"service.name":"<name>"` on every line.
    ///
    /// Defaults to none: the key is left out.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Where lines go: anything that is a [`MakeWriter`], such as [`NonBlocking`],
    /// `std::io::stderr` or a `Mutex<File>`.
    ///
    /// Each line is written with a single `write_all` call, so a writer that treats one call
    /// as one record (like [`NonBlocking`]) never sees half a line.
    ///
    /// Defaults to standard output through a [`NonBlocking`] with default capacity, whose
    /// [`WorkerGuard`] the layer keeps (see [`JsonLayer::take_worker_guard`]).
    ///
    /// ```
    /// use sightline_logging::{JsonLayer, NonBlocking};
    ///
    /// let (writer, _guard) = NonBlocking::new(std::io::stderr());
    /// let layer = JsonLayer::builder().writer(writer).build();
    /// # drop(layer);
    /// ```
    pub fn writer<W>(mut self, w: W) -> Self
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        self.writer = Some(Box::new(MakeWriterLines(w)));
        self
    }

    /// Output key names. Defaults to [`FieldNames::default`], the documented schema.
    pub fn field_names(mut self, names: FieldNames) -> Self {
        self.field_names = names;
        self
    }

    /// Span field names read as correlation ids. Defaults to [`SpanFieldNames::default`]:
    /// `trace_id`, `span_id`, `trace_flags`, `request_id`.
    pub fn span_field_names(mut self, names: SpanFieldNames) -> Self {
        self.span_field_names = names;
        self
    }

    /// Whether lines carry the `span` (innermost) and `spans` (outermost first) objects with
    /// each span's name and fields. Correlation ids are printed either way.
    ///
    /// Defaults to `true`. With `false`, span fields are not even serialised when a span is
    /// created, which makes spans cheaper.
    pub fn include_span_fields(mut self, yes: bool) -> Self {
        self.include_span_fields = yes;
        self
    }

    /// The most bytes (JSON-escaped) of one event field's value or of the message; a longer
    /// one is cut at a character boundary and ends with `…[truncated]`, so one client's
    /// 390 KB user agent cannot make a line that the log pipeline refuses.
    ///
    /// Defaults to [`DEFAULT_MAX_VALUE_BYTES`] (16 KiB).
    ///
    /// ```
    /// use sightline_logging::JsonLayer;
    ///
    /// let layer = JsonLayer::builder().max_value_bytes(4096).writer(std::io::stderr).build();
    /// # drop(layer);
    /// ```
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Builds the layer.
    ///
    /// If no [`writer`](Self::writer) was set this starts the background thread of a
    /// [`NonBlocking`] writing to standard output.
    pub fn build(self) -> JsonLayer {
        let (writer, guard) = match self.writer {
            Some(w) => (w, None),
            None => {
                let (nb, guard) = NonBlocking::new(std::io::stdout());
                (
                    Box::new(MakeWriterLines(nb)) as Box<dyn LineWriter>,
                    Some(guard),
                )
            }
        };
        let n = &self.field_names;
        let service = self.service_name.as_deref().map(|name| {
            let mut v = Vec::new();
            v.push(b',');
            v.extend_from_slice(&json_key(&n.service_name));
            quoted_into(&mut v, name);
            v.into_boxed_slice()
        });
        JsonLayer {
            recorder: Recorder::new(self.span_field_names, self.include_span_fields),
            writer,
            guard,
            include_span_fields: self.include_span_fields,
            max_value_bytes: self.max_value_bytes,
            keys: Keys {
                timestamp: prefixed(b"{", &n.timestamp, b"\""),
                level: prefixed(b"\",", &n.level, b"\""),
                target: prefixed(b"\",", &n.target, b""),
                message: prefixed(b",", &n.message, b"\""),
                service,
                ids: [&n.trace_id, &n.span_id, &n.trace_flags, &n.request_id]
                    .map(|k| prefixed(b",", k, b"\"")),
                fields: prefixed(b",", &n.fields, b"{"),
                span: prefixed(b",", &n.span, b""),
                spans: prefixed(b",", &n.spans, b"["),
            },
            bridge: Bridge::default(),
        }
    }
}

/// `"key":`, escaped.
fn json_key(name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 3);
    quoted_into(&mut v, name);
    v.push(b':');
    v
}

fn prefixed(before: &[u8], name: &str, after: &[u8]) -> Box<[u8]> {
    let mut v = before.to_vec();
    v.extend_from_slice(&json_key(name));
    v.extend_from_slice(after);
    v.into_boxed_slice()
}

/// Key fragments rendered once at build time, separators and quotes included.
struct Keys {
    /// `{"timestamp":"`
    timestamp: Box<[u8]>,
    /// `","level":"`
    level: Box<[u8]>,
    /// `","target":`
    target: Box<[u8]>,
    /// `,"message":"`
    message: Box<[u8]>,
    /// `,"service.name":"checkout"`
    service: Option<Box<[u8]>>,
    /// `,"trace_id":"` and so on
    ids: [Box<[u8]>; 4],
    /// `,"fields":{`
    fields: Box<[u8]>,
    /// `,"span":`
    span: Box<[u8]>,
    /// `,"spans":[`
    spans: Box<[u8]>,
}

/// A [`Layer`] that writes every event as one JSON object on one line.
///
/// Each line carries the event's time, level, target, message and fields, the service name,
/// and, as top-level keys, the `trace_id`, `span_id`, `trace_flags` and `request_id` of the
/// nearest enclosing span that recorded each, so log lines join traces in Loki, Tempo,
/// Elasticsearch or any backend that reads JSON. Works with any `tracing` application; the
/// Sightline HTTP middleware records those four fields on its request span.
///
/// The line format is a stable schema, described in
/// [docs/logging.md](https://github.com/sightline-rs/sightline/blob/main/docs/logging.md):
///
/// ```text
/// {"timestamp":"2026-11-25T11:39:19.123456Z","level":"INFO","target":"checkout::orders","message":"order placed","service.name":"checkout","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":"01","request_id":"6f1c1c1e-8d3e-4b5e-9a43-51d6f2d3a8f0","fields":{"order_id":42,"total":99.5},"span":{"name":"HTTP request","http.route":"/orders"},"spans":[{"name":"HTTP request","http.route":"/orders"}]}
/// ```
///
/// # How it stays cheap
///
/// - A span's fields are serialised to a JSON fragment once, when the span is created, and
///   `Span::record` appends to that fragment; nothing is parsed again.
/// - Correlation ids are kept in small inline slots beside the fragment, and are not repeated
///   in the span's `span`/`spans` objects.
/// - Each event is formatted into a reused per-thread buffer (numbers with `itoa` and `ryu`,
///   `Debug`/`Display` values escaped as they are formatted) and handed to the writer with a
///   single `write_all`. In steady state an event inside an existing span allocates nothing
///   (checked by the `alloc` test).
///
/// # Spans exported by `tracing-opentelemetry` (feature `opentelemetry`)
///
/// A span that a `tracing_opentelemetry` layer in the same subscriber exports gives its own
/// trace id, span id and flags, read from the bridge once per span, so a line inside an
/// `#[instrument]` span names that span without any id field; a span's recorded id fields win
/// over its bridged ids. The layer finds the bridge through the dispatcher it is registered
/// with (`Layer::on_register_dispatch`): add it to the subscriber directly, not inside an
/// `Option`, which tracing-subscriber 0.3 does not tell its dispatcher.
///
/// # Safety of the output
///
/// Every string (keys, values, message, target, span names) is JSON-escaped, including all
/// control characters, DEL, the C1 controls U+0080-U+009F and U+2028/U+2029, so one event is
/// always exactly one line ending in `\n`, whatever a client sends in a logged header.
///
/// # Span fields recorded twice
///
/// A span field recorded again with `Span::record` is appended, so the span object may hold
/// the key twice; JSON parsers keep the last value. Correlation ids are replaced instead.
///
/// # Example
///
/// ```
/// use sightline_logging::JsonLayer;
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(JsonLayer::builder().service_name("checkout").writer(std::io::stderr).build());
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("HTTP request", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
///     let _enter = span.enter();
///     tracing::info!(order_id = 42, "order placed");
/// });
/// ```
pub struct JsonLayer {
    /// Records span ids and fields, shared with our other layers in the same registry.
    recorder: Recorder,
    writer: Box<dyn LineWriter>,
    guard: Option<WorkerGuard>,
    include_span_fields: bool,
    max_value_bytes: usize,
    keys: Keys,
    bridge: Bridge,
}

impl fmt::Debug for JsonLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLayer")
            .field("include_span_fields", &self.include_span_fields)
            .field("span_field_names", self.recorder.names())
            .field("owns_worker_guard", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

impl JsonLayer {
    /// Starts configuring a layer; see [`JsonLayerBuilder`] for each option and its default.
    ///
    /// ```
    /// use sightline_logging::JsonLayer;
    ///
    /// let layer = JsonLayer::builder()
    ///     .service_name("checkout")
    ///     .include_span_fields(false)
    ///     .writer(std::io::stderr)
    ///     .build();
    /// # drop(layer);
    /// ```
    pub fn builder() -> JsonLayerBuilder {
        JsonLayerBuilder {
            service_name: None,
            writer: None,
            field_names: FieldNames::default(),
            span_field_names: SpanFieldNames::default(),
            include_span_fields: true,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }

    /// Takes the [`WorkerGuard`] of the default standard-output writer, if this layer made one.
    ///
    /// Without a [`writer`](JsonLayerBuilder::writer) the layer owns a [`NonBlocking`] to
    /// stdout and its guard. A layer installed as the global default is never dropped, so lines
    /// still buffered when `main` returns could be lost; keep the guard in `main` to flush them.
    /// Returns `None` when a writer was set or the guard was already taken.
    ///
    /// ```
    /// use sightline_logging::JsonLayer;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let mut layer = JsonLayer::builder().service_name("checkout").build();
    /// let _guard = layer.take_worker_guard(); // flushes stdout when `main` ends
    /// tracing_subscriber::registry().with(layer).init();
    /// ```
    pub fn take_worker_guard(&mut self) -> Option<WorkerGuard> {
        self.guard.take()
    }
}

/// Per-thread buffers reused by every event, so a steady-state event allocates nothing.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    message: Vec<u8>,
    fields: Vec<u8>,
    /// Span objects, innermost first, and their byte ranges in `spans`.
    spans: Vec<u8>,
    span_ranges: Vec<(usize, usize)>,
    /// Nearest recorded trace_id, span_id, trace_flags, request_id.
    ids: Found,
}

impl Scratch {
    /// A buffer that grew for one huge event is not kept at that size forever.
    const KEEP_BYTES: usize = 64 * 1024;

    fn trim(&mut self) {
        for v in [
            &mut self.line,
            &mut self.message,
            &mut self.fields,
            &mut self.spans,
        ] {
            if v.capacity() > Self::KEEP_BYTES {
                v.clear();
                v.shrink_to(Self::KEEP_BYTES / 16);
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers, or fresh ones if they are in use (a writer that
/// logs while writing) or already destroyed (an event during thread exit).
fn with_scratch(f: impl FnOnce(&mut Scratch)) {
    let mut f = Some(f);
    let _ = SCRATCH.try_with(|cell| {
        if let Ok(mut s) = cell.try_borrow_mut() {
            if let Some(f) = f.take() {
                f(&mut s);
            }
            s.trim();
        }
    });
    if let Some(f) = f {
        f(&mut Scratch::default());
    }
}

fn level_str(level: &Level) -> &'static [u8] {
    match *level {
        Level::TRACE => b"TRACE",
        Level::DEBUG => b"DEBUG",
        Level::INFO => b"INFO",
        Level::WARN => b"WARN",
        Level::ERROR => b"ERROR",
    }
}

impl JsonLayer {
    fn format_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, s: &mut Scratch)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        s.message.clear();
        s.fields.clear();
        let mut visitor = EventVisitor {
            message: &mut s.message,
            has_message: false,
            fields: &mut s.fields,
            max_value_bytes: self.max_value_bytes,
        };
        event.record(&mut visitor);
        let has_message = visitor.has_message;

        // One walk from the innermost span outwards (the correlation module's): the first
        // span holding an id wins, and span objects are collected innermost first, to be
        // printed outermost first.
        s.spans.clear();
        s.span_ranges.clear();
        let (spans, ranges) = (&mut s.spans, &mut s.span_ranges);
        correlation::walk(event, ctx, &self.bridge, &mut s.ids, |span, data| {
            if self.include_span_fields {
                let start = spans.len();
                spans.extend_from_slice(b"{\"name\":\"");
                escape_into(spans, span.name());
                spans.push(b'"');
                if let Some(data) = data.filter(|d| !d.fields.is_empty()) {
                    spans.push(b',');
                    spans.extend_from_slice(&data.fields);
                }
                spans.push(b'}');
                ranges.push((start, spans.len()));
            }
            self.include_span_fields
        });

        let k = &self.keys;
        let line = &mut s.line;
        line.clear();
        line.extend_from_slice(&k.timestamp);
        time::write_now(line);
        line.extend_from_slice(&k.level);
        line.extend_from_slice(level_str(meta.level()));
        line.extend_from_slice(&k.target);
        quoted_into(line, meta.target());
        if has_message {
            line.extend_from_slice(&k.message);
            line.extend_from_slice(&s.message);
            line.push(b'"');
        }
        if let Some(service) = &k.service {
            line.extend_from_slice(service);
        }
        for i in [TRACE_ID, SPAN_ID, TRACE_FLAGS, REQUEST_ID] {
            if s.ids.text(i).is_some() {
                line.extend_from_slice(&k.ids[i]);
                s.ids.write_json(i, line);
                line.push(b'"');
            }
        }
        if !s.fields.is_empty() {
            line.extend_from_slice(&k.fields);
            line.extend_from_slice(&s.fields);
            line.push(b'}');
        }
        if let Some(&(start, end)) = s.span_ranges.first() {
            line.extend_from_slice(&k.span);
            line.extend_from_slice(&s.spans[start..end]);
            line.extend_from_slice(&k.spans);
            for (n, &(start, end)) in s.span_ranges.iter().rev().enumerate() {
                if n > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(&s.spans[start..end]);
            }
            line.push(b']');
        }
        line.extend_from_slice(b"}\n");
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing_core::Dispatch) {
        self.bridge.register(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.recorder.new_span(attrs, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.recorder.record(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        with_scratch(|s| {
            self.format_event(event, &ctx, s);
            self.writer.write_line(event.metadata(), &s.line);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing::field::Empty;
    use tracing_subscriber::prelude::*;

    use super::*;

    /// Captures everything written, for parsing line by line.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("capture lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        /// Every line, parsed; fails unless the output is whole `\n`-terminated JSON lines.
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().expect("capture lock").clone();
            let text = String::from_utf8(bytes).expect("UTF-8 output");
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "unterminated: {text:?}"
            );
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
                .collect()
        }
    }

    fn capture(builder: JsonLayerBuilder, f: impl FnOnce()) -> Vec<Value> {
        let out = Capture::default();
        let subscriber = tracing_subscriber::registry().with(builder.writer(out.clone()).build());
        tracing::subscriber::with_default(subscriber, f);
        out.lines()
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn ids_from_nearest_span_at_top_level() {
        let lines = capture(JsonLayer::builder().service_name("checkout"), || {
            tracing::info!("before");
            let outer = tracing::info_span!(
                target: "sightline_http::server",
                "HTTP request",
                trace_id = %TRACE,
                span_id = %"00f067aa0ba902b7",
                trace_flags = %"01",
                request_id = %"req-1",
                http.route = "/orders",
            );
            let _o = outer.enter();
            tracing::info!(n = 1, "in outer");
            let inner = tracing::debug_span!("db", span_id = "1111111111111111", table = "orders");
            let _i = inner.enter();
            tracing::warn!("in inner");
        });
        assert_eq!(lines.len(), 3);

        let before = lines[0].as_object().expect("object");
        assert_eq!(before["message"], "before");
        assert_eq!(before["service.name"], "checkout");
        for absent in [
            "trace_id",
            "span_id",
            "trace_flags",
            "request_id",
            "fields",
            "span",
            "spans",
        ] {
            assert!(!before.contains_key(absent), "{absent} outside spans");
        }

        assert_eq!(lines[1]["trace_id"], TRACE);
        assert_eq!(lines[1]["span_id"], "00f067aa0ba902b7");
        assert_eq!(lines[1]["trace_flags"], "01");
        assert_eq!(lines[1]["request_id"], "req-1");
        assert_eq!(lines[1]["fields"], json!({"n": 1}));
        // Ids are top-level only, not repeated in the span object.
        assert_eq!(
            lines[1]["span"],
            json!({"name": "HTTP request", "http.route": "/orders"})
        );

        let inner = &lines[2];
        assert_eq!(inner["level"], "WARN");
        assert_eq!(inner["trace_id"], TRACE, "from the outer span");
        assert_eq!(
            inner["span_id"], "1111111111111111",
            "the nearest span wins"
        );
        assert_eq!(inner["request_id"], "req-1");
        assert_eq!(inner["span"], json!({"name": "db", "table": "orders"}));
        assert_eq!(
            inner["spans"],
            json!([{"name": "HTTP request", "http.route": "/orders"}, {"name": "db", "table": "orders"}])
        );
        let keys: Vec<&str> = inner
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert!(keys.contains(&"timestamp") && keys.contains(&"target"));
    }

    #[test]
    fn key_order_follows_the_schema() {
        let out = Capture::default();
        let subscriber = tracing_subscriber::registry().with(
            JsonLayer::builder()
                .service_name("s")
                .writer(out.clone())
                .build(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "req",
                trace_id = "t",
                span_id = "s",
                trace_flags = "01",
                request_id = "r",
                a = 1
            );
            span.in_scope(|| tracing::info!(b = 2, "m"));
        });
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("UTF-8");
        let rest = text.split_once(".").expect("fraction").1;
        assert!(text.starts_with("{\"timestamp\":\""), "{text}");
        assert_eq!(
            &rest[6..],
            concat!(
                "Z\",\"level\":\"INFO\",\"target\":\"sightline_logging::layer::tests\",\"message\":\"m\",",
                "\"service.name\":\"s\",\"trace_id\":\"t\",\"span_id\":\"s\",\"trace_flags\":\"01\",\"request_id\":\"r\",",
                "\"fields\":{\"b\":2},\"span\":{\"name\":\"req\",\"a\":1},\"spans\":[{\"name\":\"req\",\"a\":1}]}\n"
            )
        );
        let ts = lines_timestamp(&text);
        assert_eq!(ts.len(), "2026-11-25T11:39:19.123456Z".len());
    }

    fn lines_timestamp(text: &str) -> String {
        let v: Value = serde_json::from_str(text.trim_end()).expect("JSON");
        v["timestamp"].as_str().expect("string").to_owned()
    }

    #[test]
    fn on_record_after_creation() {
        let lines = capture(JsonLayer::builder(), || {
            let span = tracing::info_span!(
                "req",
                trace_id = Empty,
                request_id = Empty,
                user = Empty,
                status = Empty
            );
            let _e = span.enter();
            tracing::info!("unrecorded");
            span.record("trace_id", "aaaa");
            span.record("user", "ann");
            tracing::info!("some");
            span.record("trace_id", TRACE);
            span.record("request_id", "r-9");
            span.record("status", 200);
            tracing::info!("all");
        });
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[0]["span"], json!({"name": "req"}));
        assert_eq!(lines[1]["trace_id"], "aaaa");
        assert_eq!(lines[1]["span"], json!({"name": "req", "user": "ann"}));
        assert_eq!(
            lines[2]["trace_id"], TRACE,
            "a re-recorded id replaces the old one"
        );
        assert_eq!(lines[2]["request_id"], "r-9");
        assert_eq!(
            lines[2]["span"],
            json!({"name": "req", "user": "ann", "status": 200})
        );
    }

    #[derive(Debug)]
    #[allow(dead_code)] // read through Debug
    struct Point {
        x: i32,
    }

    #[derive(Debug)]
    struct Failure;

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk \"full\"")
        }
    }

    impl std::error::Error for Failure {}

    #[test]
    fn field_types() {
        let out = Capture::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::builder().writer(out.clone()).build());
        tracing::subscriber::with_default(subscriber, || {
            let err = Failure;
            tracing::info!(
                i = -5i64,
                u = u64::MAX,
                big = i128::MIN,
                ubig = u128::MAX,
                f = 1.5f64,
                whole = 2.0f64,
                nan = f64::NAN,
                inf = f64::INFINITY,
                ninf = f64::NEG_INFINITY,
                yes = true,
                s = "text",
                dbg = ?Point { x: 3 },
                disp = %"shown",
                err = &err as &(dyn std::error::Error + 'static),
                "value {}", 7
            );
            tracing::info!(answer = 42);
            let span =
                tracing::info_span!("typed", n = 3u8, f = 0.25, ok = false, trace_id = 12u64);
            span.in_scope(|| tracing::info!("x"));
        });
        let lines = out.lines();
        let raw = String::from_utf8(out.0.lock().expect("lock").clone()).expect("UTF-8");
        let f = &lines[0]["fields"];
        assert_eq!(lines[0]["message"], "value 7");
        assert_eq!(f["i"], json!(-5));
        assert_eq!(f["u"], json!(u64::MAX));
        // serde_json reads numbers past 64 bits as f64, so check the text.
        assert!(raw.contains(&format!("\"big\":{},", i128::MIN)), "{raw}");
        assert!(raw.contains(&format!("\"ubig\":{},", u128::MAX)), "{raw}");
        assert_eq!(f["f"], json!(1.5));
        assert_eq!(f["whole"], json!(2.0));
        assert_eq!(f["nan"], "NaN");
        assert_eq!(f["inf"], "inf");
        assert_eq!(f["ninf"], "-inf");
        assert_eq!(f["yes"], json!(true));
        assert_eq!(f["s"], "text");
        assert_eq!(f["dbg"], "Point { x: 3 }");
        assert_eq!(f["disp"], "shown");
        assert_eq!(f["err"], "disk \"full\"");
        assert!(lines[1].get("message").is_none(), "no message, no key");
        assert_eq!(lines[1]["fields"], json!({"answer": 42}));
        assert_eq!(
            lines[2]["span"],
            json!({"name": "typed", "n": 3, "f": 0.25, "ok": false})
        );
        assert_eq!(lines[2]["trace_id"], "12", "ids are always strings");
    }

    #[test]
    fn hostile_values_stay_on_one_line() {
        let evil = "x\r\n{\"level\":\"ERROR\",\"forged\":true}\n\u{1b}[2J\u{1b}[31mred\u{7f}\u{85}\u{9b}\u{2028}\u{2029}\t\u{0}\\\"";
        let lines = capture(JsonLayer::builder().service_name(evil), || {
            let span = tracing::info_span!("evil span", trace_id = %evil, request_id = evil, header = evil);
            let _e = span.enter();
            tracing::error!(user_agent = evil, path = %evil, dbg = ?evil, "msg {evil}");
            tracing::info!(target: "t\n\u{1b}", ok = 1, "evil key" = 1, "k\"\n" = evil);
        });
        assert_eq!(lines.len(), 2, "exactly one line per event");
        let l = &lines[0];
        assert_eq!(l["service.name"], evil);
        assert_eq!(l["message"], format!("msg {evil}"));
        assert_eq!(l["trace_id"], evil);
        assert_eq!(l["request_id"], evil);
        assert_eq!(l["fields"]["user_agent"], evil);
        assert_eq!(l["fields"]["path"], evil);
        assert_eq!(l["fields"]["dbg"], format!("{evil:?}"));
        assert_eq!(l["span"]["header"], evil);
        assert!(l.get("forged").is_none());
        assert_eq!(lines[1]["target"], "t\n\u{1b}");
        assert_eq!(lines[1]["fields"]["k\"\n"], evil);
    }

    #[test]
    fn hostile_output_has_no_raw_controls() {
        let out = Capture::default();
        // Above the default cap: this checks escaping, not the cap.
        let subscriber = tracing_subscriber::registry().with(
            JsonLayer::builder()
                .max_value_bytes(1 << 20)
                .writer(out.clone())
                .build(),
        );
        let all: String = (0u32..0x2100).filter_map(char::from_u32).collect();
        tracing::subscriber::with_default(subscriber, || tracing::info!(v = %all, "{all}"));
        let bytes = out.0.lock().expect("lock").clone();
        let (last, body) = bytes.split_last().expect("output");
        assert_eq!(*last, b'\n');
        assert!(!body.iter().any(|&b| b < 0x20 || b == 0x7f));
        let text = std::str::from_utf8(body).expect("UTF-8");
        assert!(!text.contains(['\u{85}', '\u{9b}', '\u{2028}', '\u{2029}']));
        let v: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(v["fields"]["v"], all.as_str());
    }

    #[test]
    fn long_values_and_messages_are_cut_and_marked() {
        let huge = "u".repeat(390 * 1024);
        let lines = capture(JsonLayer::builder().max_value_bytes(64), || {
            tracing::info!(user_agent = %huge, short = "ok", "{huge}");
        });
        let ua = lines[0]["fields"]["user_agent"].as_str().expect("a string");
        assert_eq!(ua, format!("{}…[truncated]", "u".repeat(64)));
        assert_eq!(lines[0]["fields"]["short"], "ok");
        let message = lines[0]["message"].as_str().expect("a string");
        assert_eq!(message, format!("{}…[truncated]", "u".repeat(64)));
    }

    #[test]
    fn without_span_fields() {
        let lines = capture(JsonLayer::builder().include_span_fields(false), || {
            let span = tracing::info_span!("req", trace_id = TRACE, user = "ann");
            let _e = span.enter();
            tracing::info!("x");
        });
        assert_eq!(lines[0]["trace_id"], TRACE);
        assert!(lines[0].get("span").is_none() && lines[0].get("spans").is_none());
    }

    #[test]
    fn renamed_keys_and_span_fields() {
        let names = FieldNames::default()
            .timestamp("@timestamp")
            .level("log.level")
            .trace_id("trace.id")
            .span_id("span.id")
            .request_id("http.request.id")
            .service_name("service")
            .fields("attrs");
        let read = SpanFieldNames::default()
            .trace_id("otel.trace_id")
            .request_id("req_id");
        let lines = capture(
            JsonLayer::builder()
                .service_name("svc")
                .field_names(names)
                .span_field_names(read),
            || {
                let span = tracing::info_span!(
                    "req",
                    otel.trace_id = TRACE,
                    req_id = 7,
                    span_id = "abc",
                    trace_id = "ignored"
                );
                span.in_scope(|| tracing::info!(a = 1, "x"));
            },
        );
        let l = &lines[0];
        assert!(l.get("@timestamp").is_some() && l.get("timestamp").is_none());
        assert_eq!(l["log.level"], "INFO");
        assert_eq!(l["trace.id"], TRACE);
        assert_eq!(l["span.id"], "abc");
        assert_eq!(l["http.request.id"], "7");
        assert_eq!(l["service"], "svc");
        assert_eq!(l["attrs"], json!({"a": 1}));
        assert_eq!(l["span"], json!({"name": "req", "trace_id": "ignored"}));
    }

    #[test]
    fn ecs_preset() {
        let out = Capture::default();
        let subscriber = tracing_subscriber::registry().with(
            JsonLayer::builder()
                .service_name("svc")
                .field_names(FieldNames::ecs())
                .writer(out.clone())
                .build(),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "req",
                trace_id = TRACE,
                span_id = "00f067aa0ba902b7",
                trace_flags = "01",
                request_id = "r"
            );
            span.in_scope(|| tracing::warn!(a = 1, "x"));
        });
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("UTF-8");
        let keys = [
            "@timestamp",
            "log.level",
            "log.logger",
            "message",
            "service.name",
            "trace.id",
            "span.id",
            "trace_flags",
            "http.request.id",
            "fields",
            "span",
            "spans",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| {
                text.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("{k}: {text}"))
            })
            .collect();
        assert!(positions.is_sorted(), "schema order: {text}");
        let line: Value = serde_json::from_str(text.trim_end()).expect("JSON");
        assert_eq!(line["log.level"], "WARN");
        assert_eq!(line["trace.id"], TRACE);
        assert_eq!(line["log.logger"], "sightline_logging::layer::tests");
    }

    #[test]
    fn explicit_parent_is_used() {
        let lines = capture(JsonLayer::builder(), || {
            let parent = tracing::info_span!("job", trace_id = TRACE);
            let other = tracing::info_span!("other", trace_id = "other");
            let _e = other.enter();
            tracing::info!(parent: &parent, "from job");
        });
        assert_eq!(lines[0]["trace_id"], TRACE);
        assert_eq!(lines[0]["spans"], json!([{"name": "job"}]));
    }

    #[test]
    fn two_layers_share_span_data() {
        let (a, b) = (Capture::default(), Capture::default());
        let subscriber = tracing_subscriber::registry()
            .with(JsonLayer::builder().writer(a.clone()).build())
            .with(JsonLayer::builder().writer(b.clone()).build());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("req", trace_id = TRACE, user = Empty);
            span.record("user", "ann");
            span.in_scope(|| tracing::info!("x"));
        });
        for lines in [a.lines(), b.lines()] {
            assert_eq!(lines[0]["trace_id"], TRACE);
            assert_eq!(
                lines[0]["span"],
                json!({"name": "req", "user": "ann"}),
                "recorded once"
            );
        }
    }

    #[test]
    fn instrumented_tasks_on_a_multi_thread_runtime() {
        use tracing::Instrument as _;

        let out = Capture::default();
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry().with(JsonLayer::builder().writer(out.clone()).build()),
        );
        let for_workers = dispatch.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .on_thread_start(move || {
                // The runtime's threads live as long as the runtime; so may their default.
                std::mem::forget(tracing::dispatcher::set_default(&for_workers));
            })
            .build()
            .expect("runtime");
        tracing::dispatcher::with_default(&dispatch, || {
            rt.block_on(async {
                let tasks: Vec<_> = (0..8u32)
                    .map(|n| {
                        let trace_id = format!("{n:032x}");
                        let span = tracing::info_span!("HTTP request", trace_id = %trace_id, request_id = n);
                        tokio::spawn(
                            async move {
                                for step in 0..5u32 {
                                    tracing::info!(task = n, step, "step");
                                    if step % 2 == 0 {
                                        tokio::task::yield_now().await;
                                    } else {
                                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                                    }
                                }
                            }
                            .instrument(span),
                        )
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
            });
        });
        drop(rt);
        let lines = out.lines();
        assert_eq!(lines.len(), 40);
        for l in &lines {
            let n = l["fields"]["task"].as_u64().expect("task");
            assert_eq!(l["trace_id"], format!("{n:032x}"), "{l}");
            assert_eq!(l["request_id"], n.to_string());
            assert_eq!(l["spans"].as_array().map(Vec::len), Some(1));
        }
    }

    #[test]
    fn builder_debug_and_guard() {
        let mut layer = JsonLayer::builder().build();
        assert!(format!("{layer:?}").contains("owns_worker_guard: true"));
        assert!(layer.take_worker_guard().is_some());
        assert!(layer.take_worker_guard().is_none());
        let with_writer = JsonLayer::builder().writer(io::sink).build();
        assert!(format!("{:?}", JsonLayer::builder()).contains("JsonLayerBuilder"));
        assert!(format!("{with_writer:?}").contains("owns_worker_guard: false"));
    }

    /// Lines inside spans that `tracing-opentelemetry` exports: the ids of the exported span
    /// the event sits in, with no id fields recorded anywhere.
    #[cfg(feature = "opentelemetry")]
    mod opentelemetry_bridge {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

        use super::*;

        fn bridged(
            builder: JsonLayerBuilder,
            f: impl FnOnce(),
        ) -> (Vec<Value>, Vec<opentelemetry_sdk::trace::SpanData>) {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let out = Capture::default();
            let subscriber = tracing_subscriber::registry()
                .with(builder.writer(out.clone()).build())
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
            tracing::subscriber::with_default(subscriber, f);
            let _ = provider.force_flush();
            (out.lines(), exporter.get_finished_spans().expect("spans"))
        }

        fn hex_ids(span: &opentelemetry_sdk::trace::SpanData) -> (String, String) {
            (
                span.span_context.trace_id().to_string(),
                span.span_context.span_id().to_string(),
            )
        }

        #[test]
        fn lines_carry_the_ids_of_the_current_exported_span() {
            let (lines, spans) = bridged(JsonLayer::builder(), || {
                tracing::info!("outside");
                let outer = tracing::info_span!("checkout", order = 7);
                let _o = outer.enter();
                tracing::info!("in outer");
                let inner = tracing::info_span!("charge card");
                let _i = inner.enter();
                tracing::info!("in inner");
            });
            assert_eq!(lines.len(), 3);
            assert!(lines[0].get("trace_id").is_none(), "no span, no ids");
            let find = |name: &str| {
                spans
                    .iter()
                    .find(|s| s.name == name)
                    .map(hex_ids)
                    .unwrap_or_else(|| panic!("span {name} exported"))
            };
            let (outer_trace, outer_span) = find("checkout");
            let (inner_trace, inner_span) = find("charge card");
            assert_eq!(outer_trace, inner_trace, "one trace");
            assert_ne!(outer_span, inner_span);
            assert_eq!(lines[1]["trace_id"], outer_trace.as_str());
            assert_eq!(lines[1]["span_id"], outer_span.as_str());
            assert_eq!(lines[1]["trace_flags"], "01");
            assert_eq!(lines[2]["trace_id"], inner_trace.as_str());
            assert_eq!(lines[2]["span_id"], inner_span.as_str(), "the current span");
        }

        #[test]
        fn an_inner_exported_span_wins_over_outer_id_fields() {
            // The Sightline middleware records ids as fields on its request span; a handler's
            // own span inside it is exported as a child and its lines name that child.
            let (lines, spans) = bridged(JsonLayer::builder(), || {
                let request = tracing::info_span!(
                    "HTTP request",
                    trace_id = %TRACE,
                    span_id = %"00f067aa0ba902b7",
                    trace_flags = %"01",
                    request_id = %"req-9",
                );
                let _r = request.enter();
                tracing::info!("in request");
                let handler = tracing::info_span!("handler");
                let _h = handler.enter();
                tracing::info!("in handler");
            });
            assert_eq!(lines[0]["trace_id"], TRACE, "fields win on their own span");
            assert_eq!(lines[0]["span_id"], "00f067aa0ba902b7");
            let handler = spans
                .iter()
                .find(|s| s.name == "handler")
                .expect("exported");
            let (_, handler_span) = hex_ids(handler);
            assert_eq!(lines[1]["span_id"], handler_span.as_str());
            assert_eq!(
                lines[1]["request_id"], "req-9",
                "still from the request span"
            );
        }

        #[test]
        fn explicit_parent_and_instrumented_future() {
            let (lines, spans) = bridged(JsonLayer::builder().include_span_fields(false), || {
                let job = tracing::info_span!("job");
                tracing::info!(parent: &job, "explicit parent, never entered");
                let task = async {
                    tracing::info!("in the instrumented future");
                };
                let mut task = std::pin::pin!(tracing::Instrument::instrument(task, job.clone()));
                let waker = std::task::Waker::noop();
                let mut cx = std::task::Context::from_waker(waker);
                assert!(task.as_mut().poll(&mut cx).is_ready());
            });
            let (trace, span) = hex_ids(spans.iter().find(|s| s.name == "job").expect("job"));
            for line in &lines {
                assert_eq!(line["trace_id"], trace.as_str(), "{line}");
                assert_eq!(line["span_id"], span.as_str(), "{line}");
            }
            assert_eq!(lines.len(), 2);
        }

        #[test]
        fn spans_with_no_tracer_behind_them_print_no_ids() {
            let out = Capture::default();
            let subscriber = tracing_subscriber::registry()
                .with(JsonLayer::builder().writer(out.clone()).build())
                .with(tracing_opentelemetry::layer());
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("noop");
                let _e = span.enter();
                tracing::info!("no tracer");
            });
            let lines = out.lines();
            assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
            assert!(lines[0].get("span_id").is_none(), "{}", lines[0]);
        }
    }
}
