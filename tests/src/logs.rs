//! Reading JSON log lines (one object per line) as a log pipeline would.

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
