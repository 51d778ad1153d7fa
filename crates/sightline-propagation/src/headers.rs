//! Header access without depending on `http`.

/// Read access to request or message headers.
///
/// Implemented for `http::HeaderMap` (feature `http`), and for lists of `(name, value)` pairs:
/// slices, arrays and `Vec`s of `(&str, &str)` or `(String, String)`, which suit tests and
/// non-HTTP transports.
pub trait HeaderSource {
    /// Calls `f` with every value of the header `name`, in order.
    ///
    /// `name` is lowercase; implementations match it ASCII case-insensitively. A header that
    /// appears on several lines yields each line separately (a line is not split on `,`).
    fn get_all<'a>(&'a self, name: &'static str, f: &mut dyn FnMut(&'a [u8]));

    /// Whether a header named one of `names` (lowercase) is present, when the carrier can
    /// tell in one pass cheaper than looking each name up; `None` otherwise (the default).
    ///
    /// ```
    /// use sightline_propagation::HeaderSource;
    ///
    /// // Pairs cannot tell cheaply: look each name up.
    /// assert_eq!([("traceparent", "00-…")].contains_any(&["traceparent"]), None);
    /// # #[cfg(feature = "http")]
    /// # {
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("accept", http::HeaderValue::from_static("*/*"));
    /// assert_eq!(headers.contains_any(&["traceparent"]), Some(false));
    /// # }
    /// ```
    fn contains_any(&self, names: &[&'static str]) -> Option<bool> {
        let _ = names;
        None
    }
}

/// Write access to request or message headers.
pub trait HeaderSink {
    /// Sets the header `name` (lowercase) to `value`, replacing any existing value.
    ///
    /// Must not panic: an implementation skips a value its transport cannot carry.
    fn set(&mut self, name: &'static str, value: &str);
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn get_all<'a>(&'a self, name: &'static str, f: &mut dyn FnMut(&'a [u8])) {
        for (k, v) in self {
            if k.as_ref().eq_ignore_ascii_case(name) {
                f(v.as_ref().as_bytes());
            }
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderSource for [(K, V); N] {
    fn get_all<'a>(&'a self, name: &'static str, f: &mut dyn FnMut(&'a [u8])) {
        self.as_slice().get_all(name, f);
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn get_all<'a>(&'a self, name: &'static str, f: &mut dyn FnMut(&'a [u8])) {
        self.as_slice().get_all(name, f);
    }
}

impl HeaderSink for Vec<(String, String)> {
    fn set(&mut self, name: &'static str, value: &str) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value.to_owned()));
    }
}

/// The headers the propagators read and write, as ready-made `HeaderName`s: looking a header
/// up by `&str` parses the name again on every request (measured: a fifth of `extract`).
#[cfg(feature = "http")]
fn known_name(name: &str) -> Option<&'static http::HeaderName> {
    use http::HeaderName;
    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
    static BAGGAGE: HeaderName = HeaderName::from_static("baggage");
    static B3: HeaderName = HeaderName::from_static("b3");
    static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
    static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
    static B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
    static B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
    static B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
    static JAEGER: HeaderName = HeaderName::from_static("uber-trace-id");
    Some(match name {
        "traceparent" => &TRACEPARENT,
        "tracestate" => &TRACESTATE,
        "baggage" => &BAGGAGE,
        "b3" => &B3,
        "x-b3-traceid" => &B3_TRACE_ID,
        "x-b3-spanid" => &B3_SPAN_ID,
        "x-b3-parentspanid" => &B3_PARENT_SPAN_ID,
        "x-b3-sampled" => &B3_SAMPLED,
        "x-b3-flags" => &B3_FLAGS,
        "uber-trace-id" => &JAEGER,
        _ => return None,
    })
}

#[cfg(feature = "http")]
impl HeaderSource for http::HeaderMap {
    fn get_all<'a>(&'a self, name: &'static str, f: &mut dyn FnMut(&'a [u8])) {
        let values = match known_name(name) {
            Some(known) => http::HeaderMap::get_all(self, known),
            None => http::HeaderMap::get_all(self, name),
        };
        for v in values {
            f(v.as_bytes());
        }
    }

    /// One pass over the names of a request's few headers: most requests carry no trace
    /// context, and hashing every propagation header's name to learn it cost more.
    fn contains_any(&self, names: &[&'static str]) -> Option<bool> {
        (self.keys_len() <= 32).then(|| self.keys().any(|key| names.contains(&key.as_str())))
    }
}

#[cfg(feature = "http")]
impl HeaderSink for http::HeaderMap {
    fn set(&mut self, name: &'static str, value: &str) {
        let Ok(value) = http::HeaderValue::from_str(value) else {
            return;
        };
        if let Some(known) = known_name(name) {
            self.insert(known.clone(), value);
        } else if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
            self.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<H: HeaderSource + ?Sized>(h: &H, name: &'static str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        h.get_all(name, &mut |v| out.push(v.to_vec()));
        out
    }

    #[test]
    fn pairs_are_case_insensitive_and_keep_every_line() {
        let h = [("Baggage", "a=1"), ("x", "y"), ("BAGGAGE", "b=2")];
        assert_eq!(collect(&h, "baggage"), [b"a=1".to_vec(), b"b=2".to_vec()]);
        assert_eq!(collect(&h[..], "missing"), Vec::<Vec<u8>>::new());
        let owned: Vec<(String, String)> = vec![("B3".into(), "0".into())];
        assert_eq!(collect(&owned, "b3"), [b"0".to_vec()]);
    }

    #[cfg(feature = "http")]
    #[test]
    fn a_header_map_tells_whether_it_holds_any_of_the_names() {
        let mut map = http::HeaderMap::new();
        map.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static("x"),
        );
        assert_eq!(map.contains_any(&["traceparent", "b3"]), Some(false));
        map.insert("b3", http::HeaderValue::from_static("0"));
        assert_eq!(map.contains_any(&["traceparent", "b3"]), Some(true));
        assert_eq!([("b3", "0")].contains_any(&["b3"]), None);
    }

    #[test]
    fn vec_sink_replaces() {
        let mut h: Vec<(String, String)> = vec![("Traceparent".into(), "old".into())];
        h.set("traceparent", "new");
        assert_eq!(h, [("traceparent".to_owned(), "new".to_owned())]);
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map() {
        let mut map = http::HeaderMap::new();
        map.append("baggage", http::HeaderValue::from_static("a=1"));
        map.append("baggage", http::HeaderValue::from_static("b=2"));
        assert_eq!(collect(&map, "baggage").len(), 2);
        map.set("tracestate", "a=1");
        map.set("tracestate", "bad\nvalue");
        map.set("bad name", "x");
        map.set("X-B3-Flags", "1");
        assert_eq!(
            map.get("tracestate").map(|v| v.as_bytes()),
            Some(&b"a=1"[..])
        );
        assert_eq!(map.get("x-b3-flags").map(|v| v.as_bytes()), Some(&b"1"[..]));
        assert_eq!(map.len(), 4);
    }
}
