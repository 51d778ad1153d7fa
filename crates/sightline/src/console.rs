//! `OTEL_TRACES_EXPORTER=console`: each finished span as one JSON object on a line of stderr,
//! for a developer's terminal. Stdout stays the JSON log lines, one object per line, so a log
//! pipeline reading it never meets a span.

use std::io::Write as _;

use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Map, json};

/// The console span exporter; behind the same counting batch processor as OTLP, so printing
/// happens off the request path.
#[derive(Debug, Default)]
pub(crate) struct ConsoleSpanExporter {
    service_name: String,
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(v) => json!(v),
        Value::I64(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::String(v) => json!(v.as_str()),
        Value::Array(Array::Bool(v)) => json!(v),
        Value::Array(Array::I64(v)) => json!(v),
        Value::Array(Array::F64(v)) => json!(v),
        Value::Array(Array::String(v)) => {
            json!(v.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        }
        other => json!(other.to_string()),
    }
}

fn attributes<'a>(
    attributes: impl IntoIterator<Item = &'a KeyValue>,
) -> Map<String, serde_json::Value> {
    attributes
        .into_iter()
        .map(|kv| (kv.key.as_str().to_owned(), json_value(&kv.value)))
        .collect()
}

fn nanos(time: std::time::SystemTime) -> u128 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl ConsoleSpanExporter {
    /// One span as a JSON object (serde escapes every control character: one line each).
    fn line(&self, span: &SpanData) -> serde_json::Value {
        let (status, message) = match &span.status {
            Status::Unset => ("unset", None),
            Status::Ok => ("ok", None),
            Status::Error { description } => ("error", Some(description.as_ref())),
        };
        let parent = (span.parent_span_id != opentelemetry::trace::SpanId::INVALID)
            .then(|| span.parent_span_id.to_string());
        let events: Vec<serde_json::Value> = span
            .events
            .iter()
            .map(|e| {
                json!({
                    "name": e.name.as_ref(),
                    "time_unix_nano": nanos(e.timestamp),
                    "attributes": attributes(&e.attributes),
                })
            })
            .collect();
        json!({
            "service.name": self.service_name,
            "name": span.name.as_ref(),
            "kind": format!("{:?}", span.span_kind).to_ascii_lowercase(),
            "trace_id": span.span_context.trace_id().to_string(),
            "span_id": span.span_context.span_id().to_string(),
            "parent_span_id": parent,
            "start_time_unix_nano": nanos(span.start_time),
            "end_time_unix_nano": nanos(span.end_time),
            "duration_ms": span
                .end_time
                .duration_since(span.start_time)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            "status": status,
            "status_message": message,
            "attributes": attributes(&span.attributes),
            "events": events,
            "scope": span.instrumentation_scope.name(),
        })
    }
}

impl opentelemetry_sdk::trace::SpanExporter for ConsoleSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut out = Vec::with_capacity(batch.len() * 512);
        for span in &batch {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &self.line(span));
            out.push(b'\n');
        }
        // One write per batch: lines of concurrent writers do not interleave.
        std::io::stderr()
            .lock()
            .write_all(&out)
            .map_err(|e| OTelSdkError::InternalFailure(format!("stderr: {e}")))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.service_name = resource
            .get(&opentelemetry::Key::from_static_str(
                opentelemetry_semantic_conventions::resource::SERVICE_NAME,
            ))
            .map(|v| v.to_string())
            .unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    use super::*;

    #[test]
    fn a_span_is_one_line_of_json_with_its_ids_and_attributes() {
        let memory = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(memory.clone())
            .build();
        let mut span = provider.tracer("t").start("GET /users/{id}");
        span.set_attribute(KeyValue::new("http.route", "/users/{id}\n\u{1b}[31m"));
        span.set_attribute(KeyValue::new("http.response.status_code", 200_i64));
        span.add_event("retry", vec![KeyValue::new("attempt", 2_i64)]);
        span.end();
        let spans = memory.get_finished_spans().expect("spans");
        let exporter = ConsoleSpanExporter {
            service_name: "checkout".into(),
        };
        let line = serde_json::to_string(&exporter.line(&spans[0])).expect("json");
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed["name"], "GET /users/{id}");
        assert_eq!(parsed["service.name"], "checkout");
        assert_eq!(
            parsed["trace_id"],
            spans[0].span_context.trace_id().to_string()
        );
        assert_eq!(parsed["parent_span_id"], serde_json::Value::Null);
        assert_eq!(parsed["attributes"]["http.response.status_code"], 200);
        assert_eq!(
            parsed["attributes"]["http.route"],
            "/users/{id}\n\u{1b}[31m"
        );
        assert_eq!(parsed["events"][0]["attributes"]["attempt"], 2);
        assert_eq!(parsed["kind"], "internal");
    }
}
