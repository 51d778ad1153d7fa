//! Reading JSON log lines (one object per line) as a log pipeline would.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// A parsed log line.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// The line as printed.
    pub raw: String,
    /// The parsed object.
    pub json: Value,
}

impl LogLine {
    /// Parses one line; `Err` says why it is not exactly one JSON object.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(raw)
            .map_err(|e| format!("not UTF-8 ({e}): {}", String::from_utf8_lossy(raw)))?;
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("not one JSON value ({e}): {text}"))?;
        if !json.is_object() {
            return Err(format!("not a JSON object: {text}"));
        }
        Ok(Self {
            raw: text.to_owned(),
            json,
        })
    }

    /// A top-level key as a string.
    pub fn top_str(&self, key: &str) -> Option<&str> {
        self.json.get(key)?.as_str()
    }

    /// `trace_id`, at the top level.
    pub fn trace_id(&self) -> Option<&str> {
        self.top_str("trace_id")
    }

    /// `span_id`, at the top level.
    pub fn span_id(&self) -> Option<&str> {
        self.top_str("span_id")
    }

    /// `request_id`, at the top level.
    pub fn request_id(&self) -> Option<&str> {
        self.top_str("request_id")
    }

    /// `message`, at the top level or inside `fields`.
    pub fn message(&self) -> Option<&str> {
        self.field("message")?.as_str()
    }

    /// `target`, at the top level.
    pub fn target(&self) -> Option<&str> {
        self.top_str("target")
    }

    /// An event field: looked up in `fields` (as a flat dotted key, then as a nested path),
    /// then at the top level the same way.
    pub fn field(&self, key: &str) -> Option<&Value> {
        [self.json.get("fields"), Some(&self.json)]
            .into_iter()
            .flatten()
            .find_map(|obj| lookup(obj, key))
    }

    /// An event field as text: strings as they are, numbers and booleans formatted.
    pub fn field_text(&self, key: &str) -> Option<String> {
        match self.field(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

fn lookup<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    key.split('.').try_fold(obj, |v, part| v.get(part))
}

/// Parses every line, returning the parsed ones and a description of each bad one.
pub fn parse_lines(raw: &[Vec<u8>]) -> (Vec<LogLine>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in raw.iter().enumerate() {
        match LogLine::parse(line) {
            Ok(l) => good.push(l),
            Err(e) => bad.push(format!("line {}: {e}", i + 1)),
        }
    }
    (good, bad)
}

/// An in-memory log output: an `io::Write`, and a `MakeWriter` to hand a subscriber (as
/// `Sightline::builder().log_writer(..)`); clones share what was written.
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every line written so far, parsed; panics on a line that is not one JSON object, since
    /// that is a broken log line.
    pub fn lines(&self) -> Vec<LogLine> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| LogLine::parse(l).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_flat_nested_or_top_level() {
        let line = LogLine::parse(
            br#"{"message":"m","trace_id":"t","fields":{"http.route":"/a","http":{"response":{"status_code":200}}}}"#,
        )
        .expect("valid line");
        assert_eq!(line.field_text("http.route").as_deref(), Some("/a"));
        assert_eq!(
            line.field_text("http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(line.message(), Some("m"));
        assert_eq!(line.trace_id(), Some("t"));
        assert!(LogLine::parse(b"[1]").is_err());
        assert!(LogLine::parse(b"{} {}").is_err());
    }
}
