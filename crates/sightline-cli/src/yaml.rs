//! A small YAML writer for what the generators build as JSON values: block mappings and
//! sequences, and every string double-quoted (a JSON string is a valid YAML double-quoted
//! scalar), so PromQL's braces, quotes and colons never need thought.

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_block(&mut out, value, 0);
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_owned(),
        Value::Object(o) if o.is_empty() => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// A key as written: bare when it is a plain word, quoted otherwise.
fn key(text: &str) -> String {
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !text.as_bytes()[0].is_ascii_digit()
        && !matches!(
            text,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off"
        );
    if plain {
        text.to_owned()
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

/// Keys in the order a reader expects them (a rule's name before its expression), the rest
/// alphabetically.
fn rank(key: &str) -> (usize, &str) {
    const ORDER: [&str; 14] = [
        "rule_files",
        "evaluation_interval",
        "groups",
        "tests",
        "name",
        "interval",
        "record",
        "alert",
        "expr",
        "for",
        "labels",
        "annotations",
        "rules",
        "input_series",
    ];
    (
        ORDER.iter().position(|k| *k == key).unwrap_or(ORDER.len()),
        key,
    )
}

fn is_block(value: &Value) -> bool {
    matches!(value, Value::Array(a) if !a.is_empty())
        || matches!(value, Value::Object(o) if !o.is_empty())
}

fn write_block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)));
            for (name, value) in entries {
                out.push_str(&pad);
                out.push_str(&key(name));
                out.push(':');
                if is_block(value) {
                    out.push('\n');
                    let nested = if value.is_array() { indent } else { indent + 2 };
                    write_block(out, value, nested);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(value));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                if is_block(item) && item.is_object() {
                    // The first key on the dash's line, the rest aligned under it.
                    let mut nested = String::new();
                    write_block(&mut nested, item, indent + 2);
                    out.push_str(nested.trim_start());
                } else if is_block(item) {
                    out.push('\n');
                    write_block(out, item, indent + 2);
                } else {
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_values_read_back_as_written() {
        let value = json!({
            "groups": [
                {"name": "a", "rules": [{"record": "r", "expr": "sum(rate(x{a=\"b\"}[5m]))", "labels": {"k": "v: w"}}]},
                {"name": "b", "rules": []}
            ],
            "n": 1.5,
            "flag": true,
            "list": ["x", "y"]
        });
        let yaml = to_yaml(&value);
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).expect("valid YAML");
        assert_eq!(back, value, "{yaml}");
    }
}
