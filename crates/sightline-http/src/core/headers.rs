//! Captured request and response headers as span attributes, per the HTTP semantic
//! conventions: `http.request.header.<name>` and `http.response.header.<name>`, each a string
//! array holding every value of the header. The values of sensitive headers are recorded as
//! `REDACTED`, never as sent; every middleware shares this code (gRPC with its metadata keys).

use http::{HeaderMap, HeaderName};
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};

/// Headers whose values are recorded as `REDACTED` whenever they are captured: credentials and
/// session cookies. They stay sensitive whatever else is configured.
///
/// ```
/// assert!(sightline_http::DEFAULT_SENSITIVE_HEADERS.contains(&"authorization"));
/// ```
pub const DEFAULT_SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
    "x-api-key",
];

/// What a sensitive header's values are recorded as.
pub(crate) const REDACTED: &str = "REDACTED";

/// Which headers become span attributes, with their attribute keys built once.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeaderCapture {
    request: Box<[Captured]>,
    response: Box<[Captured]>,
    hooks: crate::head::Hooks,
}

#[derive(Clone, Debug)]
struct Captured {
    name: HeaderName,
    key: Key,
    sensitive: bool,
}

/// Configuration of a [`HeaderCapture`], as the builders collect it.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeaderCaptureConfig {
    pub(crate) request: Vec<HeaderName>,
    pub(crate) response: Vec<HeaderName>,
    /// Sensitive in addition to [`DEFAULT_SENSITIVE_HEADERS`].
    pub(crate) sensitive: Vec<HeaderName>,
    /// The attribute hooks, which ride along with the headers they usually read.
    pub(crate) hooks: crate::head::Hooks,
}

impl HeaderCaptureConfig {
    /// The capture with its attribute keys under `request` and `response` (without the final
    /// dot): `http.request.header` and `http.response.header` for HTTP,
    /// `rpc.request.metadata` and `rpc.response.metadata` for gRPC.
    pub(crate) fn build_with_prefixes(&self, request: &str, response: &str) -> HeaderCapture {
        let sensitive = |name: &HeaderName| {
            DEFAULT_SENSITIVE_HEADERS.contains(&name.as_str()) || self.sensitive.contains(name)
        };
        let captured = |prefix: &str, names: &[HeaderName]| -> Box<[Captured]> {
            let mut out: Vec<Captured> = Vec::with_capacity(names.len());
            for name in names {
                if out.iter().any(|c| c.name == *name) {
                    continue;
                }
                out.push(Captured {
                    key: Key::from(format!("{prefix}.{}", name.as_str())),
                    sensitive: sensitive(name),
                    name: name.clone(),
                });
            }
            out.into_boxed_slice()
        };
        HeaderCapture {
            request: captured(request, &self.request),
            response: captured(response, &self.response),
            hooks: self.hooks.clone(),
        }
    }
}

impl HeaderCapture {
    /// The captured request headers of `req`, then what the request hook adds.
    pub(crate) fn request_head<B>(&self, req: &http::Request<B>, out: &mut Vec<KeyValue>) {
        self.request(req.headers(), out);
        if let Some(hook) = &self.hooks.request {
            hook(&crate::head::RequestHead::of(req), out);
        }
    }

    /// Records the captured response headers of a response head, then what the response
    /// hook adds, on `span`.
    pub(crate) fn record_response_head(
        &self,
        parts: &http::response::Parts,
        span: Option<&mut super::tracer::CallSpan>,
    ) {
        use opentelemetry::trace::Span as _;

        let Some(span) = span else {
            return;
        };
        self.record_response(&parts.headers, Some(&mut *span));
        if let Some(hook) = &self.hooks.response {
            let mut attrs = Vec::new();
            hook(&crate::head::ResponseHead::of(parts), &mut attrs);
            for attr in attrs {
                span.set_attribute(attr);
            }
        }
    }

    /// Appends an attribute for each captured request header present in `headers`.
    pub(crate) fn request(&self, headers: &HeaderMap, out: &mut Vec<KeyValue>) {
        out.extend(self.request.iter().filter_map(|c| c.attribute(headers)));
    }

    /// Whether any response header is captured.
    pub(crate) fn captures_response(&self) -> bool {
        !self.response.is_empty()
    }

    /// Records the captured response headers present in `headers` (a response head or
    /// trailers) on `span`.
    pub(crate) fn record_response(
        &self,
        headers: &HeaderMap,
        span: Option<&mut super::tracer::CallSpan>,
    ) {
        use opentelemetry::trace::Span as _;

        if let (true, Some(span)) = (self.captures_response(), span) {
            for attribute in self.response(headers) {
                span.set_attribute(attribute);
            }
        }
    }

    /// An attribute for each captured response header present in `headers`.
    pub(crate) fn response<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> impl Iterator<Item = KeyValue> + 'a {
        self.response.iter().filter_map(|c| c.attribute(headers))
    }
}

impl Captured {
    fn attribute(&self, headers: &HeaderMap) -> Option<KeyValue> {
        let all = headers.get_all(&self.name);
        let values: Vec<StringValue> = all
            .iter()
            .map(|value| {
                if self.sensitive {
                    StringValue::from(REDACTED)
                } else {
                    // Header values may hold obs-text (bytes 0x80-0xFF); an attribute is a string.
                    StringValue::from(String::from_utf8_lossy(value.as_bytes()).into_owned())
                }
            })
            .collect();
        (!values.is_empty())
            .then(|| KeyValue::new(self.key.clone(), Value::Array(Array::String(values))))
    }
}

/// A header value as text: as sent when it is visible ASCII (the common case, no copy), else
/// decoded as UTF-8 with invalid bytes replaced by U+FFFD, so a `User-Agent` with `é` is kept
/// and bytes that are not UTF-8 cannot reach a log line or an attribute raw.
pub(crate) fn header_text(value: &http::HeaderValue) -> std::borrow::Cow<'_, str> {
    match value.to_str() {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_semantic_conventions::attribute::{
        HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER,
    };

    #[test]
    fn header_text_keeps_utf8_and_replaces_invalid_bytes() {
        let ascii = http::HeaderValue::from_static("curl/8.5");
        assert!(matches!(
            header_text(&ascii),
            std::borrow::Cow::Borrowed("curl/8.5")
        ));
        let utf8 =
            http::HeaderValue::from_bytes("Navigateur/1.0 (é)".as_bytes()).expect("obs-text");
        assert_eq!(header_text(&utf8), "Navigateur/1.0 (é)");
        let invalid = http::HeaderValue::from_bytes(b"bot\xff\xfe/1").expect("obs-text");
        assert_eq!(header_text(&invalid), "bot\u{fffd}\u{fffd}/1");
    }
    use http::HeaderValue;

    fn strings(kv: &KeyValue) -> Vec<String> {
        match &kv.value {
            Value::Array(Array::String(values)) => values.iter().map(|v| v.to_string()).collect(),
            other => panic!("not a string array: {other:?}"),
        }
    }

    #[test]
    fn sensitive_values_are_redacted_and_others_kept() {
        let config = HeaderCaptureConfig {
            request: [
                "authorization",
                "cookie",
                "x-trace-note",
                "x-session",
                "accept",
                "x-trace-note",
            ]
            .map(HeaderName::from_static)
            .to_vec(),
            response: vec![http::header::SET_COOKIE, http::header::CONTENT_TYPE],
            sensitive: vec![HeaderName::from_static("x-session")],
            hooks: Default::default(),
        };
        let capture = config.build_with_prefixes(HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer s3cr3t"));
        headers.append("cookie", HeaderValue::from_static("a=1"));
        headers.append("cookie", HeaderValue::from_static("sid=s3cr3t"));
        headers.insert("x-session", HeaderValue::from_static("s3cr3t"));
        headers.append("x-trace-note", HeaderValue::from_static("one"));
        headers.append(
            "x-trace-note",
            HeaderValue::from_bytes(b"caf\xe9 \"q\"").expect("obs-text is a valid value"),
        );
        let mut out = Vec::new();
        capture.request(&headers, &mut out);
        let found: Vec<(String, Vec<String>)> = out
            .iter()
            .map(|kv| (kv.key.to_string(), strings(kv)))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "http.request.header.authorization".into(),
                    vec!["REDACTED".into()]
                ),
                (
                    "http.request.header.cookie".into(),
                    vec!["REDACTED".into(), "REDACTED".into()]
                ),
                (
                    "http.request.header.x-trace-note".into(),
                    vec!["one".into(), "caf\u{fffd} \"q\"".into()]
                ),
                (
                    "http.request.header.x-session".into(),
                    vec!["REDACTED".into()]
                ),
            ],
            "absent headers are left out, duplicates in the list captured once"
        );
        assert!(!format!("{out:?}").contains("s3cr3t"));

        let mut response = HeaderMap::new();
        response.insert(
            "set-cookie",
            HeaderValue::from_static("sid=s3cr3t; HttpOnly"),
        );
        response.insert("content-type", HeaderValue::from_static("text/plain"));
        assert!(capture.captures_response());
        let found: Vec<(String, Vec<String>)> = capture
            .response(&response)
            .map(|kv| (kv.key.to_string(), strings(&kv)))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "http.response.header.set-cookie".into(),
                    vec!["REDACTED".into()]
                ),
                (
                    "http.response.header.content-type".into(),
                    vec!["text/plain".into()]
                ),
            ]
        );
    }

    #[test]
    fn nothing_captured_by_default() {
        let capture = HeaderCaptureConfig::default()
            .build_with_prefixes(HTTP_REQUEST_HEADER, HTTP_RESPONSE_HEADER);
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let mut out = Vec::new();
        capture.request(&headers, &mut out);
        assert!(out.is_empty());
        assert!(!capture.captures_response());
    }
}
