//! The one place that finds an event's `trace_id`, `span_id`, `trace_flags` and `request_id`.
//!
//! [`JsonLayer`](crate::JsonLayer) and, with the `otlp` feature,
//! `otlp::OtlpLogLayer` print the same ids for the same event because
//! they read them the same way, with the code in this module:
//!
//! - **When a span is created or recorded**, the span fields named by [`SpanFieldNames`]
//!   (by default `trace_id`, `span_id`, `trace_flags` and `request_id`, the fields the Sightline
//!   HTTP middleware records on its request span) are kept, as recorded, in one extension of the
//!   span. Several of our layers in one registry share that extension: the first layer to see
//!   a span reads its id fields, with its own [`SpanFieldNames`]; give layers that share a
//!   registry the same names.
//! - **For each event**, the event's scope is walked from the innermost span outwards, and each
//!   id comes from the nearest span that recorded it. With the `opentelemetry` feature, a span
//!   that `tracing-opentelemetry` exports (an `#[instrument]` span) gives its own trace id,
//!   span id and flags where it has no such fields; they are read from the bridge once per span
//!   and kept in the same extension. A span's recorded fields win over its bridged ids; both
//!   win over any outer span's.
//!
//! The JSON line prints each id's text as recorded. An OTLP record takes the trace id, span id
//! and flags when they are lowercase hex of the right length (32, 16 and 2 digits; the ids not
//! all zero), and the request ID's text as is.
//!
//! ```
//! use sightline_logging::correlation::SpanFieldNames;
//!
//! // The names read by default: what `sightline-http` records on its request span.
//! assert_eq!(
//!     SpanFieldNames::default().names(),
//!     ["trace_id", "span_id", "trace_flags", "request_id"],
//! );
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::escape::escape_into;
use crate::record::{REQUEST_ID, SPAN_ID, SpanIds, SpanVisitor, TRACE_FLAGS, TRACE_ID};

/// Names of the span fields read as correlation ids.
///
/// Defaults to `trace_id`, `span_id`, `trace_flags` and `request_id`, the fields the Sightline
/// HTTP middleware records on its request span (a test in the workspace's `tests/` crate checks
/// that the two agree). A field with one of these names is kept in a small inline slot instead
/// of the span's field list, and printed at the top level of every event inside the span (see
/// [`JsonLayer`](crate::JsonLayer)); the OTLP log bridge reads the same fields.
///
/// ```
/// use sightline_logging::{JsonLayer, SpanFieldNames};
///
/// // Spans made by another library record `otel.trace_id` and `req_id`.
/// let names = SpanFieldNames::default().trace_id("otel.trace_id").request_id("req_id");
/// let layer = JsonLayer::builder().span_field_names(names).writer(std::io::sink).build();
/// # drop(layer);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanFieldNames {
    trace_id: String,
    span_id: String,
    trace_flags: String,
    request_id: String,
}

impl Default for SpanFieldNames {
    fn default() -> Self {
        SpanFieldNames {
            trace_id: "trace_id".into(),
            span_id: "span_id".into(),
            trace_flags: "trace_flags".into(),
            request_id: "request_id".into(),
        }
    }
}

impl SpanFieldNames {
    setters! {
        /// Span field read as the trace id. Defaults to `trace_id`.
        trace_id,
        /// Span field read as the span id. Defaults to `span_id`.
        span_id,
        /// Span field read as the trace flags. Defaults to `trace_flags`.
        trace_flags,
        /// Span field read as the request id. Defaults to `request_id`.
        request_id,
    }

    /// The four names, in the order trace id, span id, trace flags, request id.
    ///
    /// ```
    /// use sightline_logging::SpanFieldNames;
    ///
    /// let names = SpanFieldNames::default().request_id("req_id");
    /// assert_eq!(names.names(), ["trace_id", "span_id", "trace_flags", "req_id"]);
    /// ```
    pub fn names(&self) -> [&str; 4] {
        [
            &self.trace_id,
            &self.span_id,
            &self.trace_flags,
            &self.request_id,
        ]
    }

    fn into_boxed(self) -> [Box<str>; 4] {
        [
            self.trace_id,
            self.span_id,
            self.trace_flags,
            self.request_id,
        ]
        .map(String::into_boxed_str)
    }
}

/// The one extension our layers keep in a span: its ids and, for a JSON layer, its fields.
pub(crate) struct SpanData {
    /// The layer that reads this span's id fields: the first of ours to see the span.
    ids_owner: u64,
    pub(crate) ids: SpanIds,
    /// The span's bridged OpenTelemetry ids, looked up once, when an event first needs them.
    #[cfg(feature = "opentelemetry")]
    bridged: std::sync::OnceLock<Option<crate::otel::OtelIds>>,
    /// The JSON layer that writes `fields` (0: none does).
    fields_owner: u64,
    /// The span's fields as a JSON object body: `"k":v,"k2":v2`, appended to by `on_record`.
    pub(crate) fields: Vec<u8>,
}

/// What one of our layers records of each span: the ids, and a JSON fragment of the other
/// fields if it prints them.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Tells this layer's records from another layer's in the same registry.
    id: u64,
    names: [Box<str>; 4],
    /// Whether this layer writes the span's other fields as a JSON fragment.
    fields: bool,
}

impl Recorder {
    pub(crate) fn new(names: SpanFieldNames, fields: bool) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Recorder {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            names: names.into_boxed(),
            fields,
        }
    }

    pub(crate) fn names(&self) -> &[Box<str>; 4] {
        &self.names
    }

    /// `Layer::on_new_span`: the first of our layers to see the span records its ids; the
    /// first JSON layer that prints span fields records them.
    pub(crate) fn new_span<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(data) = ext.get_mut::<SpanData>() {
            if self.fields && data.fields_owner == 0 {
                data.fields_owner = self.id;
                attrs.record(&mut SpanVisitor {
                    ids: None,
                    id_names: &self.names,
                    fields: Some(&mut data.fields),
                });
            }
            return;
        }
        let mut data = SpanData {
            ids_owner: self.id,
            ids: SpanIds::default(),
            #[cfg(feature = "opentelemetry")]
            bridged: std::sync::OnceLock::new(),
            fields_owner: if self.fields { self.id } else { 0 },
            fields: Vec::new(),
        };
        attrs.record(&mut SpanVisitor {
            ids: Some(&mut data.ids),
            id_names: &self.names,
            fields: self.fields.then_some(&mut data.fields),
        });
        ext.insert(data);
    }

    /// `Layer::on_record`: what this layer recorded at creation, it records again.
    pub(crate) fn record<S>(&self, id: &Id, values: &Record<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(data) = ext.get_mut::<SpanData>() else {
            return;
        };
        let ids = (data.ids_owner == self.id).then_some(&mut data.ids);
        let fields = (self.fields && data.fields_owner == self.id).then_some(&mut data.fields);
        if ids.is_none() && fields.is_none() {
            return;
        }
        values.record(&mut SpanVisitor {
            ids,
            id_names: &self.names,
            fields,
        });
    }
}

/// Finds the spans that `tracing-opentelemetry` exports, through the dispatcher a layer is
/// registered with (feature `opentelemetry`; without it, there are none).
#[derive(Debug, Default)]
pub(crate) struct Bridge {
    #[cfg(feature = "opentelemetry")]
    lookup: crate::otel::OtelLookup,
}

impl Bridge {
    /// `Layer::on_register_dispatch`.
    pub(crate) fn register(&self, dispatch: &tracing_core::Dispatch) {
        #[cfg(feature = "opentelemetry")]
        self.lookup.register(dispatch);
        #[cfg(not(feature = "opentelemetry"))]
        let _ = dispatch;
    }

    /// The bridged ids of `span`, looked up once per span and kept in its data.
    #[cfg(feature = "opentelemetry")]
    fn ids<S>(&self, span: &SpanRef<'_, S>) -> Option<crate::otel::OtelIds>
    where
        S: for<'a> LookupSpan<'a>,
    {
        if let Some(known) = span
            .extensions()
            .get::<SpanData>()
            .and_then(|data| data.bridged.get().copied())
        {
            return known;
        }
        // No extension may be borrowed here: the bridge locks them. A layer that was not told
        // its dispatcher cannot look, and leaves the cache to one that can.
        let ids = self.lookup.ids(&span.id())?;
        if let Some(data) = span.extensions().get::<SpanData>() {
            let _ = data.bridged.set(ids);
        }
        ids
    }
}

/// An event's ids as found by [`walk`]: each slot's text from the nearest span that has it.
/// Reused across events (per thread), so finding ids allocates nothing in steady state.
#[derive(Debug, Default)]
pub(crate) struct Found {
    text: [Vec<u8>; 4],
    plain: [bool; 4],
    found: [bool; 4],
}

impl Found {
    fn take(&mut self, i: usize, text: &[u8], plain: bool) {
        if !self.found[i] {
            self.found[i] = true;
            self.plain[i] = plain;
            self.text[i].clear();
            self.text[i].extend_from_slice(text);
        }
    }

    fn fill(&mut self, ids: &SpanIds) {
        for (i, text) in ids.text.iter().enumerate() {
            if let Some(text) = text {
                self.take(i, text.as_bytes(), ids.plain[i]);
            }
        }
    }

    fn has_span_context(&self) -> bool {
        self.found[TRACE_ID] && self.found[SPAN_ID] && self.found[TRACE_FLAGS]
    }

    fn is_complete(&self) -> bool {
        self.found == [true; 4]
    }

    /// The raw text of slot `i`, if a span had it.
    pub(crate) fn text(&self, i: usize) -> Option<&[u8]> {
        self.found[i].then(|| &self.text[i][..])
    }

    /// Appends slot `i`'s text JSON-escaped (without quotes); `false` if no span had it.
    pub(crate) fn write_json(&self, i: usize, out: &mut Vec<u8>) -> bool {
        if !self.found[i] {
            return false;
        }
        let text = &self.text[i];
        if self.plain[i] {
            out.extend_from_slice(text);
        } else {
            // Recorded from `&str` and `fmt` output, so always UTF-8.
            escape_into(out, &String::from_utf8_lossy(text));
        }
        true
    }

    /// The request ID, if a span had one.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn request_id(&self) -> Option<&[u8]> {
        self.text(REQUEST_ID)
    }
}

/// The one walk: fills `found` with the ids of `event`, and calls `each` with every span of
/// its scope, innermost first, while its extensions are borrowed (the JSON layer collects the
/// span objects in the same pass). The walk stops early when `each` returns `false` and every
/// id has been found.
pub(crate) fn walk<S>(
    event: &Event<'_>,
    ctx: &Context<'_, S>,
    bridge: &Bridge,
    found: &mut Found,
    mut each: impl FnMut(&SpanRef<'_, S>, Option<&SpanData>) -> bool,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    found.found = [false; 4];
    let Some(scope) = ctx.event_scope(event) else {
        return;
    };
    for span in scope {
        let more = {
            let ext = span.extensions();
            let data = ext.get::<SpanData>();
            if let Some(data) = data {
                found.fill(&data.ids);
            }
            each(&span, data)
        };
        #[cfg(feature = "opentelemetry")]
        if !found.has_span_context()
            && let Some(otel) = bridge.ids(&span)
        {
            found.take(TRACE_ID, &otel.trace_id, true);
            found.take(SPAN_ID, &otel.span_id, true);
            found.take(TRACE_FLAGS, &otel.trace_flags, true);
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = (bridge, Found::has_span_context);
        if !more && found.is_complete() {
            break;
        }
    }
}
