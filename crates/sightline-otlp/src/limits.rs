//! The attribute value length limit of the specification (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`,
//! `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`), which the SDK's span limits do not cover: string
//! values (and the strings of string arrays) longer than the limit are cut to that many
//! characters when the span ends, before any exporter sees them.

use std::time::Duration;

use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// A span processor that cuts long string attribute values (span, event and link attributes)
/// to `limit` characters, then hands the span to `inner`.
///
/// A span with no value over the limit is passed on untouched; only a value that is cut is
/// copied.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
/// use sightline_otlp::TruncatingSpanProcessor;
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(TruncatingSpanProcessor::new(
///         SimpleSpanProcessor::new(exporter.clone()),
///         4,
///     ))
///     .build();
/// let mut span = provider.tracer("t").start("s");
/// span.set_attribute(KeyValue::new("user_agent.original", "curl/8.5.0"));
/// span.end();
/// let spans = exporter.get_finished_spans().unwrap();
/// assert_eq!(spans[0].attributes[0].value.as_str(), "curl");
/// ```
#[derive(Debug)]
pub struct TruncatingSpanProcessor<P> {
    inner: P,
    limit: usize,
    marker: Option<&'static str>,
}

impl<P> TruncatingSpanProcessor<P> {
    /// Cuts string values to `limit` characters before `inner` sees the span, as the
    /// specification's limit does (no mark).
    pub fn new(inner: P, limit: usize) -> Self {
        Self {
            inner,
            limit,
            marker: None,
        }
    }

    /// Ends every cut value with `marker`, within the limit (a default limit of one's own,
    /// say, where a reader should see that the value is not whole).
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
    /// use sightline_otlp::TruncatingSpanProcessor;
    ///
    /// let processor = TruncatingSpanProcessor::new(
    ///     SimpleSpanProcessor::new(InMemorySpanExporter::default()),
    ///     8192,
    /// )
    /// .marked("…[truncated]");
    /// # drop(processor);
    /// ```
    pub fn marked(mut self, marker: &'static str) -> Self {
        self.marker = Some(marker);
        self
    }
}

/// `text` cut to `limit` characters, or `None` when it is not longer.
fn cut(text: &str, limit: usize) -> Option<&str> {
    // At most `limit` bytes is at most `limit` characters: the common case costs one compare.
    if text.len() <= limit {
        return None;
    }
    text.char_indices().nth(limit).map(|(end, _)| &text[..end])
}

/// `text` cut to `limit` characters in all, the marker included; `None` when it fits.
pub(crate) fn shortened(text: &str, limit: usize, marker: Option<&str>) -> Option<StringValue> {
    cut(text, limit)?;
    Some(StringValue::from(match marker {
        None => cut(text, limit).unwrap_or(text).to_owned(),
        Some(marker) => {
            let room = limit.saturating_sub(marker.chars().count());
            let mut short = cut(text, room).unwrap_or(text).to_owned();
            short.push_str(marker);
            short
        }
    }))
}

#[inline]
fn truncate_value(value: &mut Value, limit: usize, marker: Option<&str>) {
    match value {
        // The length compared here first: a value within the limit, nearly all of them, costs
        // no call.
        Value::String(s) if s.as_str().len() > limit => {
            if let Some(short) = shortened(s.as_str(), limit, marker) {
                *s = short;
            }
        }
        Value::Array(Array::String(values)) => {
            for s in values {
                if let Some(short) = shortened(s.as_str(), limit, marker) {
                    *s = short;
                }
            }
        }
        _ => {}
    }
}

fn truncate_all(attributes: &mut [KeyValue], limit: usize, marker: Option<&str>) {
    for kv in attributes {
        truncate_value(&mut kv.value, limit, marker);
    }
}

impl<P: SpanProcessor> SpanProcessor for TruncatingSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        truncate_all(&mut span.attributes, self.limit, self.marker);
        for event in span.events.events.iter_mut() {
            truncate_all(&mut event.attributes, self.limit, self.marker);
        }
        for link in span.links.links.iter_mut() {
            truncate_all(&mut link.attributes, self.limit, self.marker);
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_characters_not_bytes() {
        // (text, limit, expected; None: untouched)
        let cases: &[(&str, usize, Option<&str>)] = &[
            ("short", 16, None),
            ("exactly16chars!!", 16, None),
            ("seventeen chars!!", 16, Some("seventeen chars!")),
            ("ééééé", 3, Some("ééé")),
            ("ééé", 3, None),
            ("anything", 0, Some("")),
        ];
        for (text, limit, expected) in cases {
            assert_eq!(cut(text, *limit), *expected, "{text:?} at {limit}");
        }
    }

    #[test]
    fn a_marker_fits_within_the_limit() {
        assert_eq!(
            shortened("abcdefghijklmnop", 8, Some("…")).map(|s| s.to_string()),
            Some("abcdefg…".to_owned())
        );
        assert_eq!(shortened("abcdefgh", 8, Some("…")), None, "fits: untouched");
    }

    #[test]
    fn string_arrays_are_cut_too_and_other_values_kept() {
        let mut values = [
            KeyValue::new(
                "a",
                Value::Array(Array::String(vec!["abcdef".into(), "ab".into()])),
            ),
            KeyValue::new("n", 1_234_567_i64),
        ];
        truncate_all(&mut values, 3, None);
        assert_eq!(
            values[0].value,
            Value::Array(Array::String(vec!["abc".into(), "ab".into()]))
        );
        assert_eq!(values[1].value, Value::I64(1_234_567));
    }
}
