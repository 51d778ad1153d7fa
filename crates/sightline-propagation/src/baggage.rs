//! The W3C `baggage` header: application-defined `key=value` pairs that travel with a request.
//!
//! ```text
//! baggage: userId=alice,serverNode=DF%2028;region=eu, isProduction=false
//! ```
//!
//! [`Baggage::parse`] is lenient, as the specification intends: an invalid member is dropped
//! whole and the others are kept. Every header line is read (lines combine like one header with
//! `,`), optional whitespace is trimmed, values are percent-decoded and properties
//! (`;prop1;prop2=v`) are kept in their raw form. The limits are the specification's minimums,
//! [`MAX_MEMBERS`] (64) members and [`MAX_BYTES`] (8192) bytes of `baggage-string`: members beyond
//! them are dropped whole, never cut.
//!
//! Grammar (W3C Baggage, "Header Content"):
//!
//! ```text
//! baggage-string = list-member 0*179( OWS "," OWS list-member )
//! list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//! property       = key OWS "=" OWS value / key OWS
//! key            = token                  ; RFC 7230 §3.2.6
//! value          = *baggage-octet         ; percent-encoded UTF-8
//! baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
//! ```
//!
//! # Percent-encoding and `+`
//!
//! Values are UTF-8, percent-encoded. On the way in `%XX` is decoded (either case of hex); a
//! `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded, drop the
//! member. (The specification asks for U+FFFD replacement instead; we drop, so that a value is
//! never silently altered.) A `+` is a literal plus, as the specification says: the Python
//! OpenTelemetry SDK encodes a space as `+` and decodes `+` as a space, so a value with a space
//! sent by Python arrives here with a `+`. On the way out [`Baggage::header_value`] encodes
//! every byte outside `baggage-octet`, `%` itself, and also `+` (as `%2B`, allowed by the
//! specification), so that Python peers read a plus as a plus.

use crate::ids::encode_hex;

/// Members propagated at most (the specification's minimum).
pub const MAX_MEMBERS: usize = 64;
/// Bytes of `baggage-string` propagated at most (the specification's minimum).
pub const MAX_BYTES: usize = 8192;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    value: String,
    properties: String,
}

/// Parsed baggage: entries in order, each a name, a percent-decoded value and raw properties.
///
/// Duplicate names are kept as received (the specification allows them);
/// [`get`](Baggage::get) returns the first.
///
/// ```
/// use sightline_propagation::Baggage;
///
/// let lines: [&[u8]; 2] = [b"userId=alice", b"serverNode = DF%2028;zone=a, bad key=1"];
/// let (baggage, dropped) = Baggage::parse(lines);
/// assert_eq!(dropped, 1);
/// assert_eq!(baggage.get("serverNode"), Some("DF 28"));
/// assert_eq!(baggage.properties("serverNode"), Some("zone=a"));
/// assert_eq!(baggage.header_value(), "userId=alice,serverNode=DF%2028;zone=a");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baggage {
    entries: Vec<Entry>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(value: &[u8]) -> Option<String> {
    if !value.contains(&b'%') {
        return core::str::from_utf8(value).ok().map(str::to_owned);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hi = hex_val(*value.get(i + 1)?)?;
            let lo = hex_val(*value.get(i + 2)?)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn needs_encoding(b: u8) -> bool {
    !is_baggage_octet(b) || b == b'%' || b == b'+'
}

fn encoded_value_len(value: &str) -> usize {
    value
        .bytes()
        .map(|b| if needs_encoding(b) { 3 } else { 1 })
        .sum()
}

fn push_encoded(out: &mut String, value: &str) {
    for b in value.bytes() {
        if needs_encoding(b) {
            let mut hex = [0u8; 2];
            encode_hex(&[b], &mut hex);
            out.push('%');
            out.push(char::from(hex[0].to_ascii_uppercase()));
            out.push(char::from(hex[1].to_ascii_uppercase()));
        } else {
            out.push(char::from(b));
        }
    }
}

/// Validates and normalises a property list (without the leading `;`): each property trimmed,
/// `key = value` written `key=value`, empty properties skipped. `None` if one is invalid.
fn normalize_properties<'a>(props: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut out = String::new();
    for prop in props {
        let prop = trim_ows(prop);
        if prop.is_empty() {
            continue;
        }
        let (key, value) = match prop.iter().position(|&b| b == b'=') {
            Some(eq) => (trim_ows(&prop[..eq]), Some(trim_ows(&prop[eq + 1..]))),
            None => (prop, None),
        };
        if !is_token(key) || !value.is_none_or(|v| v.iter().all(|&b| is_baggage_octet(b))) {
            return None;
        }
        if !out.is_empty() {
            out.push(';');
        }
        // tokens and baggage-octets are ASCII
        out.extend(key.iter().map(|&b| char::from(b)));
        if let Some(v) = value {
            out.push('=');
            out.extend(v.iter().map(|&b| char::from(b)));
        }
    }
    Some(out)
}

fn parse_member(member: &[u8]) -> Option<Entry> {
    let mut parts = member.split(|&b| b == b';');
    let kv = parts.next()?;
    let eq = kv.iter().position(|&b| b == b'=')?;
    let name = trim_ows(&kv[..eq]);
    let value = trim_ows(&kv[eq + 1..]);
    if !is_token(name) || !value.iter().all(|&b| is_baggage_octet(b)) {
        return None;
    }
    Some(Entry {
        name: core::str::from_utf8(name).ok()?.to_owned(),
        value: percent_decode(value)?,
        properties: normalize_properties(parts)?,
    })
}

impl Entry {
    /// Length of this member in a header, as [`Baggage::header_value`] writes it.
    fn encoded_len(&self) -> usize {
        let props = if self.properties.is_empty() {
            0
        } else {
            1 + self.properties.len()
        };
        self.name.len() + 1 + encoded_value_len(&self.value) + props
    }

    fn is_encodable(&self) -> bool {
        is_token(self.name.as_bytes())
            && normalize_properties(self.properties.as_bytes().split(|&b| b == b';')).as_deref()
                == Some(self.properties.as_str())
    }
}

/// Running totals against [`MAX_MEMBERS`] and [`MAX_BYTES`].
#[derive(Default)]
struct Limits {
    members: usize,
    bytes: usize,
}

impl Limits {
    /// Counts `entry` in if it fits whole.
    fn admit(&mut self, entry: &Entry) -> bool {
        let add = entry.encoded_len() + usize::from(self.members > 0);
        if self.members == MAX_MEMBERS || self.bytes + add > MAX_BYTES {
            return false;
        }
        self.members += 1;
        self.bytes += add;
        true
    }
}

impl Baggage {
    /// An empty baggage.
    pub fn new() -> Baggage {
        Baggage::default()
    }

    /// Parses every `baggage` header line; returns the baggage and how many members were
    /// dropped (invalid, or past the limits).
    ///
    /// Never fails: an invalid member is dropped whole and parsing goes on. A member that would
    /// pass [`MAX_MEMBERS`] or [`MAX_BYTES`] (measured as [`header_value`](Self::header_value)
    /// would write it) is dropped whole too, so whatever is parsed can be sent on unchanged.
    /// Empty list members (`a=1,,b=2`) are skipped without counting.
    ///
    /// ```
    /// use sightline_propagation::Baggage;
    ///
    /// let (b, dropped) = Baggage::parse([&b"k1=v1;p1;p2=x, k2 = %E2%9C%93 , k3=a+b, =nokey"[..]]);
    /// assert_eq!(dropped, 1);
    /// assert_eq!(b.get("k2"), Some("✓"));
    /// assert_eq!(b.get("k3"), Some("a+b"), "'+' is a literal plus");
    /// assert_eq!(b.properties("k1"), Some("p1;p2=x"));
    /// ```
    pub fn parse<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> (Baggage, usize) {
        let mut baggage = Baggage::default();
        let mut limits = Limits::default();
        let mut dropped = 0;
        for line in lines {
            for member in line.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                match parse_member(member) {
                    Some(entry) if limits.admit(&entry) => baggage.entries.push(entry),
                    _ => dropped += 1,
                }
            }
        }
        (baggage, dropped)
    }

    /// The entries in order, as `(name, decoded value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
    }

    /// The entries in order, as `(name, decoded value, raw properties)`; properties are `""`
    /// when there are none, else `p1;p2=v` without the leading `;`.
    pub fn iter_with_properties(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.properties.as_str()))
    }

    /// The decoded value of the first entry named `name` (names are case-sensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }

    /// The raw properties of the first entry named `name` (`""` if it has none).
    pub fn properties(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.properties.as_str())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns `true` if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `name` to `value` (not yet encoded) without properties: replaces the first entry of
    /// that name and removes its duplicates, or appends a new entry.
    ///
    /// Nothing is checked here; [`header_value`](Self::header_value) leaves out entries whose
    /// name is not an RFC 7230 token.
    ///
    /// ```
    /// use sightline_propagation::Baggage;
    ///
    /// let mut b = Baggage::new();
    /// b.insert("user", "J. Doe+1%");
    /// assert_eq!(b.header_value(), "user=J.%20Doe%2B1%25");
    /// ```
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.insert_with_properties(name, value, String::new());
    }

    /// Like [`insert`](Self::insert), with raw properties (`p1;p2=v`, no leading `;`).
    /// [`header_value`](Self::header_value) leaves out entries whose properties do not follow
    /// the grammar.
    pub fn insert_with_properties(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        properties: impl Into<String>,
    ) {
        let entry = Entry {
            name: name.into(),
            value: value.into(),
            properties: properties.into(),
        };
        match self.entries.iter().position(|e| e.name == entry.name) {
            Some(i) => {
                let name = entry.name.clone();
                self.entries[i] = entry;
                let mut seen = 0;
                self.entries.retain(|e| {
                    if e.name != name {
                        return true;
                    }
                    seen += 1;
                    seen == 1
                });
            }
            None => self.entries.push(entry),
        }
    }

    /// Removes every entry named `name`; returns the first one's value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.entries.iter().position(|e| e.name == name)?;
        let first = self.entries.remove(i);
        self.entries.retain(|e| e.name != name);
        Some(first.value)
    }

    /// The `baggage` header value: `name=value;properties` joined with `,`, values
    /// percent-encoded (see the [module docs](self)).
    ///
    /// Entries that cannot be written (a name that is not a token, malformed properties) are
    /// left out, and so are whole entries past [`MAX_MEMBERS`] or [`MAX_BYTES`]. Returns `""` for
    /// empty baggage; do not send the header then.
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        let mut limits = Limits::default();
        for entry in &self.entries {
            if !entry.is_encodable() || !limits.admit(entry) {
                continue;
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&entry.name);
            out.push('=');
            push_encoded(&mut out, &entry.value);
            if !entry.properties.is_empty() {
                out.push(';');
                out.push_str(&entry.properties);
            }
        }
        out
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Baggage {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut b = Baggage::new();
        for (k, v) in iter {
            b.insert(k, v);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Want = (Vec<(&'static str, &'static str, &'static str)>, usize);

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Want, &str)> = vec![
            ("k=v", (vec![("k", "v", "")], 0), "single member"),
            (
                "k1=v1,k2=v2",
                (vec![("k1", "v1", ""), ("k2", "v2", "")], 0),
                "list of members",
            ),
            (
                " k1 = v1 ,\tk2=v2\t",
                (vec![("k1", "v1", ""), ("k2", "v2", "")], 0),
                "OWS around keys, values and members is trimmed",
            ),
            (
                "k=",
                (vec![("k", "", "")], 0),
                "empty value is allowed (value = *baggage-octet)",
            ),
            (
                "k=a=b",
                (vec![("k", "a=b", "")], 0),
                "values may contain '='",
            ),
            (
                "k=DF%2028",
                (vec![("k", "DF 28", "")], 0),
                "values are percent-decoded",
            ),
            (
                "k=%e2%9c%93",
                (vec![("k", "✓", "")], 0),
                "lowercase percent hex decodes UTF-8",
            ),
            (
                "k=a+b",
                (vec![("k", "a+b", "")], 0),
                "'+' is a literal plus, not a space",
            ),
            (
                "k=%ff",
                (vec![], 1),
                "invalid UTF-8 after decoding drops the member",
            ),
            ("k=50%", (vec![], 1), "a bare '%' drops the member"),
            (
                "k=%zz",
                (vec![], 1),
                "'%' must be followed by two hex digits",
            ),
            ("k=a b", (vec![], 1), "space is not a baggage-octet"),
            ("k=a\"b", (vec![], 1), "DQUOTE is not a baggage-octet"),
            ("k=a\\b", (vec![], 1), "backslash is not a baggage-octet"),
            ("k=é", (vec![], 1), "non-ASCII must be percent-encoded"),
            ("=v", (vec![], 1), "empty key"),
            ("k v=1", (vec![], 1), "key is a token"),
            ("k(=1", (vec![], 1), "'(' is not a tchar"),
            ("kv", (vec![], 1), "member without '='"),
            (
                "a=1,,b=2",
                (vec![("a", "1", ""), ("b", "2", "")], 0),
                "empty list members are skipped",
            ),
            (
                "a=1,bad,b=2",
                (vec![("a", "1", ""), ("b", "2", "")], 1),
                "an invalid member is dropped, others kept",
            ),
            (
                "k=v;p1;p2=x",
                (vec![("k", "v", "p1;p2=x")], 0),
                "properties are kept raw",
            ),
            (
                "k=v ; p1 ; p2 = x",
                (vec![("k", "v", "p1;p2=x")], 0),
                "OWS around properties is trimmed",
            ),
            (
                "k=v;p=%41",
                (vec![("k", "v", "p=%41")], 0),
                "property values are not decoded",
            ),
            (
                "k=v;",
                (vec![("k", "v", "")], 0),
                "an empty property is skipped",
            ),
            (
                "k=v;p q",
                (vec![], 1),
                "an invalid property drops the member",
            ),
            (
                "k=v;p=a b",
                (vec![], 1),
                "an invalid property value drops the member",
            ),
            (
                "a=1,a=2",
                (vec![("a", "1", ""), ("a", "2", "")], 0),
                "duplicate keys are kept in order",
            ),
            (
                "Key-With.!#$&'*+^_`|~=v",
                (vec![("Key-With.!#$&'*+^_`|~", "v", "")], 0),
                "all tchars are valid in keys",
            ),
        ];
        for (input, (want, want_dropped), rule) in cases {
            let (b, dropped) = Baggage::parse([input.as_bytes()]);
            let got: Vec<_> = b.iter_with_properties().collect();
            assert_eq!(got, want, "{rule}: {input:?}");
            assert_eq!(dropped, want_dropped, "{rule}: {input:?} dropped");
        }
    }

    #[test]
    fn lines_are_combined() {
        let lines: [&[u8]; 3] = [
            b"userId=alice",
            b"",
            b"serverNode=DF%2028,isProduction=false",
        ];
        let (b, dropped) = Baggage::parse(lines);
        assert_eq!(dropped, 0);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            [
                ("userId", "alice"),
                ("serverNode", "DF 28"),
                ("isProduction", "false")
            ]
        );
    }

    #[test]
    fn member_limit_drops_whole_members() {
        let header: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let (b, dropped) = Baggage::parse([header.join(",").as_bytes()]);
        assert_eq!(b.len(), MAX_MEMBERS, "at least 64 members are kept");
        assert_eq!(dropped, 6);
        assert_eq!(b.get("k63"), Some("v"));
        assert_eq!(b.get("k64"), None);
    }

    #[test]
    fn byte_limit_drops_whole_members() {
        // 8 members of 1002 bytes + 7 commas = 8023; a 9th would pass 8192
        let big = "v".repeat(1000);
        let header: Vec<String> = (0..9).map(|i| format!("k{i}={big}")).collect();
        let (b, dropped) = Baggage::parse([header.join(",").as_bytes()]);
        assert_eq!((b.len(), dropped), (8, 1));
        assert!(b.header_value().len() <= MAX_BYTES);
        // a later member that still fits is kept: never a partial member, as much as fits
        let (b, dropped) = Baggage::parse([format!("{},small=1", header.join(",")).as_bytes()]);
        assert_eq!((b.len(), dropped), (9, 1));
        assert_eq!(b.get("small"), Some("1"));
        // exactly 8192 bytes fit
        let exact = format!("k={}", "v".repeat(MAX_BYTES - 2));
        let (b, dropped) = Baggage::parse([exact.as_bytes()]);
        assert_eq!((b.len(), dropped), (1, 0));
        assert_eq!(b.header_value(), exact);
        let over = format!("k={}", "v".repeat(MAX_BYTES - 1));
        assert_eq!(Baggage::parse([over.as_bytes()]).1, 1);
    }

    #[test]
    fn header_value_encodes_and_skips_invalid() {
        let mut b = Baggage::new();
        b.insert("a", "hello world");
        b.insert("b", "50%+1,;\"\\é");
        b.insert("bad name", "x");
        b.insert_with_properties("c", "1", "p1;p2=x");
        b.insert_with_properties("d", "1", "bad prop");
        assert_eq!(
            b.header_value(),
            "a=hello%20world,b=50%25%2B1%2C%3B%22%5C%C3%A9,c=1;p1;p2=x"
        );
        b.insert("a", "again");
        assert_eq!(b.get("a"), Some("again"));
        assert_eq!(b.remove("a").as_deref(), Some("again"));
        assert_eq!(b.get("a"), None);
        assert!(Baggage::new().header_value().is_empty());
    }

    #[test]
    fn insert_replaces_duplicates() {
        let (mut b, _) = Baggage::parse([&b"a=1,b=2,a=3"[..]]);
        b.insert("a", "9");
        assert_eq!(b.iter().collect::<Vec<_>>(), [("a", "9"), ("b", "2")]);
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::btree_map(name(), any::<String>(), 0..20)) {
            let b: Baggage = entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let header = b.header_value();
            let (parsed, dropped) = Baggage::parse([header.as_bytes()]);
            prop_assert_eq!(dropped, 0);
            // what fits the limits comes back exactly
            let sent: Vec<(&str, &str)> = b.iter().take(parsed.len()).collect();
            prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), sent);
            prop_assert!(header.len() <= MAX_BYTES);
        }

        #[test]
        fn round_trip_with_properties(v in "[ -~]{0,30}", props in "[a-z]{1,5}(=[a-z%]{0,5})?(;[a-z]{1,5})?") {
            let mut b = Baggage::new();
            b.insert_with_properties("k", v.clone(), props.clone());
            let (parsed, dropped) = Baggage::parse([b.header_value().as_bytes()]);
            prop_assert_eq!(dropped, 0);
            prop_assert_eq!(parsed.get("k"), Some(v.as_str()));
            prop_assert_eq!(parsed.properties("k"), Some(props.as_str()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4)) {
            let (b, _) = Baggage::parse(lines.iter().map(Vec::as_slice));
            let _ = b.header_value();
        }

        #[test]
        fn near_valid_never_panic(s in "[a-z0-9%=,; \t+]{0,80}") {
            let (b, dropped) = Baggage::parse([s.as_bytes()]);
            prop_assert!(b.len() + dropped <= s.len());
            let (again, dropped_again) = Baggage::parse([b.header_value().as_bytes()]);
            prop_assert_eq!(dropped_again, 0);
            prop_assert_eq!(again, b);
        }
    }
}
