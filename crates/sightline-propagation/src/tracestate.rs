//! The W3C `tracestate` header (Trace Context Level 2, §3.3): vendor-specific `key=value`
//! members that travel beside `traceparent`.
//!
//! [`TraceState::parse`] is strict about the grammar: every header line is combined with `,`,
//! and any invalid member or more than 32 members rejects the whole header (the caller then
//! propagates no `tracestate`). Optional whitespace around members and empty list members are
//! tolerated. A key that appears again keeps its first (left-most) member and the later ones
//! are dropped: Level 2 lets a vendor discard duplicate keys (§3.5, "Delete a key/value pair")
//! instead of losing the whole header, and the left-most member is the latest position in the
//! trace.
//!
//! Grammar (Level 2, §3.3.2.2). Level 1's `tenant@system` split, with its 241- and
//! 14-character limits, is gone: `@` is a key character like the others.
//!
//! ```text
//! key      = ( lcalpha / DIGIT ) 0*255( keychar )   ; 1 to 256 characters
//! keychar  = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
//! value    = 0*255(chr) nblk-chr       ; 1 to 256 characters
//! nblk-chr = %x21-2B / %x2D-3C / %x3E-7E ; printable, except ',' and '='
//! chr      = %x20 / nblk-chr            ; so a value may not end with a space
//! ```

use core::fmt;
use core::ops::Range;

/// The most members a `tracestate` may hold (§3.3.2.1).
pub const MAX_MEMBERS: usize = 32;

/// A validated `tracestate`: members in order, with the canonical header value kept ready.
///
/// ```
/// use sightline_propagation::TraceState;
///
/// let lines: [&[u8]; 2] = [b"congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", b" ,vendor@tenant=x ,congo=old"];
/// let mut ts = TraceState::parse(lines)?;
/// // the second `congo` member is a duplicate: the first one is kept
/// assert_eq!(ts.header_value(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,vendor@tenant=x");
///
/// ts.insert("rojo", "00f067aa0ba902b8")?; // an updated key moves to the front
/// assert_eq!(ts.members().next(), Some(("rojo", "00f067aa0ba902b8")));
/// # Ok::<(), sightline_propagation::TracestateError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TraceState {
    header: String,
    // (key, value) byte ranges into `header`
    spans: Vec<(Range<usize>, Range<usize>)>,
}

/// Why a `tracestate` was rejected (the whole header is dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TracestateError {
    /// More than 32 members.
    TooManyMembers,
    /// A key breaks the key grammar (see the [module docs](self)).
    InvalidKey,
    /// A value breaks the value grammar (see the [module docs](self)).
    InvalidValue,
    /// A member has no `=` (or more than one).
    MissingEquals,
}

impl TracestateError {
    /// A short lowercase `snake_case` name, stable and suitable as a metric label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            TracestateError::TooManyMembers => "too_many_members",
            TracestateError::InvalidKey => "invalid_key",
            TracestateError::InvalidValue => "invalid_value",
            TracestateError::MissingEquals => "missing_equals",
        }
    }
}

impl fmt::Display for TracestateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TracestateError::TooManyMembers => "tracestate has more than 32 members",
            TracestateError::InvalidKey => "tracestate member has an invalid key",
            TracestateError::InvalidValue => "tracestate member has an invalid value",
            TracestateError::MissingEquals => "tracestate member is not a single key=value pair",
        })
    }
}

impl std::error::Error for TracestateError {}

fn is_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@')
}

/// Checks the Level 2 key grammar (§3.3.2.2.1): a lowercase letter or digit, then up to 255
/// key characters (`@` among them).
pub(crate) fn is_valid_key(key: &[u8]) -> bool {
    key.len() <= 256
        && key
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && key.iter().all(|&b| is_key_char(b))
}

/// Checks the value grammar of §3.3.2.2.2: 1 to 256 printable characters, no `,` or `=`, not
/// ending in a space.
pub(crate) fn is_valid_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && value.last() != Some(&b' ')
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

impl TraceState {
    /// Parses every `tracestate` header line, combined with `,` as the specification says.
    ///
    /// Any invalid member or more than 32 members is an error: the caller drops the whole
    /// `tracestate` and keeps the `traceparent`. Whitespace around members and empty members
    /// (`a=1,,b=2`) are tolerated. No lines, or only empty ones, give an empty `TraceState`.
    ///
    /// A key seen again keeps its first member; the later ones are dropped (Level 2 lets a
    /// vendor discard duplicate keys). Each of them must still be a valid member, and each
    /// counts toward the 32-member limit of the list as received. Allocates the header string
    /// and member index.
    ///
    /// ```
    /// use sightline_propagation::{TraceState, TracestateError};
    ///
    /// let dup: [&[u8]; 2] = [b"a=1,b=2", b"a=3"];
    /// assert_eq!(TraceState::parse(dup)?.header_value(), "a=1,b=2");
    /// assert_eq!(TraceState::parse([&b"A=1"[..]]), Err(TracestateError::InvalidKey));
    /// # Ok::<(), TracestateError>(())
    /// ```
    pub fn parse<'a, I: IntoIterator<Item = &'a [u8]>>(
        lines: I,
    ) -> Result<TraceState, TracestateError> {
        let mut ts = TraceState::default();
        // members received, duplicates included: the list's limit is on what was sent
        let mut received = 0;
        for line in lines {
            for member in line.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                let mut parts = member.splitn(2, |&b| b == b'=');
                let key = parts.next().unwrap_or_default();
                let Some(value) = parts.next() else {
                    return Err(TracestateError::MissingEquals);
                };
                if !is_valid_key(key) {
                    return Err(TracestateError::InvalidKey);
                }
                if value.contains(&b'=') {
                    return Err(TracestateError::MissingEquals);
                }
                if !is_valid_value(value) {
                    return Err(TracestateError::InvalidValue);
                }
                if received == MAX_MEMBERS {
                    return Err(TracestateError::TooManyMembers);
                }
                received += 1;
                let key = core::str::from_utf8(key).expect("validated keys are ASCII");
                let value = core::str::from_utf8(value).expect("validated values are ASCII");
                // The left-most member of a key is its latest position in the trace.
                if ts.get(key).is_none() {
                    ts.push(key, value);
                }
            }
        }
        Ok(ts)
    }

    fn push(&mut self, key: &str, value: &str) {
        if !self.header.is_empty() {
            self.header.push(',');
        }
        let k = self.header.len();
        self.header.push_str(key);
        self.header.push('=');
        let v = self.header.len();
        self.header.push_str(value);
        self.spans.push((k..k + key.len(), v..self.header.len()));
    }

    fn member(&self, i: usize) -> (&str, &str) {
        let (k, v) = &self.spans[i];
        (&self.header[k.clone()], &self.header[v.clone()])
    }

    /// The members in order, as `(key, value)`.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.spans.len()).map(|i| self.member(i))
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The canonical header value, `k=v,k2=v2`, without whitespace.
    pub fn header_value(&self) -> &str {
        &self.header
    }

    /// Returns `true` if there are no members.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    fn rebuild<'a>(members: impl Iterator<Item = (&'a str, &'a str)>) -> TraceState {
        let mut ts = TraceState::default();
        for (k, v) in members {
            ts.push(k, v);
        }
        ts
    }

    /// Drops whole members until [`header_value`](Self::header_value) is at most `max_len`
    /// bytes; never cuts a member.
    ///
    /// Follows the specification's order (§3.3.3.1): members longer than 128 characters go
    /// first, the longest of them first; then members from the end (the oldest, since mutated
    /// members move to the front).
    ///
    /// ```
    /// use sightline_propagation::TraceState;
    ///
    /// let long = format!("big={}", "x".repeat(200));
    /// let header = format!("a=1,{long},b=2,c=3");
    /// let mut ts = TraceState::parse([header.as_bytes()])?;
    /// ts.truncate_to(7);
    /// assert_eq!(ts.header_value(), "a=1,b=2");
    /// # Ok::<(), sightline_propagation::TracestateError>(())
    /// ```
    pub fn truncate_to(&mut self, max_len: usize) {
        if self.header.len() <= max_len {
            return;
        }
        let mut keep: Vec<bool> = vec![true; self.spans.len()];
        let member_len = |i: usize| self.spans[i].1.end - self.spans[i].0.start;
        // kept members plus the commas between them
        let len = |keep: &[bool]| {
            let kept = (0..keep.len()).filter(|&i| keep[i]);
            kept.clone().map(member_len).sum::<usize>() + kept.count().saturating_sub(1)
        };
        while len(&keep) > max_len {
            let victim = (0..keep.len())
                .filter(|&i| keep[i] && member_len(i) > 128)
                .max_by_key(|&i| member_len(i))
                .or_else(|| (0..keep.len()).rev().find(|&i| keep[i]));
            let Some(i) = victim else { break };
            keep[i] = false;
        }
        let rebuilt = Self::rebuild((0..keep.len()).filter(|&i| keep[i]).map(|i| self.member(i)));
        *self = rebuilt;
    }

    /// Adds or updates `key`; the member moves to the front, as the specification's mutation
    /// rules say. If that makes 33 members, the last one is dropped.
    ///
    /// Errors if the key or value breaks the grammar; the state is then unchanged.
    ///
    /// ```
    /// use sightline_propagation::{TraceState, TracestateError};
    ///
    /// let mut ts = TraceState::default();
    /// ts.insert("a", "1")?;
    /// ts.insert("b", "2")?;
    /// assert_eq!(ts.header_value(), "b=2,a=1");
    /// assert_eq!(ts.insert("b", "no,commas"), Err(TracestateError::InvalidValue));
    /// # Ok::<(), TracestateError>(())
    /// ```
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TracestateError> {
        if !is_valid_key(key.as_bytes()) {
            return Err(TracestateError::InvalidKey);
        }
        if !is_valid_value(value.as_bytes()) {
            return Err(TracestateError::InvalidValue);
        }
        let rest = self.members().filter(|(k, _)| *k != key);
        let rebuilt = Self::rebuild(core::iter::once((key, value)).chain(rest).take(MAX_MEMBERS));
        *self = rebuilt;
        Ok(())
    }

    /// Removes `key`; returns `true` if it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        if self.get(key).is_none() {
            return false;
        }
        let rebuilt = Self::rebuild(self.members().filter(|(k, _)| *k != key));
        *self = rebuilt;
        true
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceState").field(&self.header).finish()
    }
}

impl fmt::Display for TraceState {
    /// Writes [`header_value`](TraceState::header_value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_one(s: &str) -> Result<String, TracestateError> {
        TraceState::parse([s.as_bytes()]).map(|ts| ts.header_value().to_owned())
    }

    #[test]
    fn parse_table() {
        use TracestateError::*;
        let k256 = format!("a{}", "b".repeat(255));
        let k257 = format!("a{}", "b".repeat(256));
        let t242 = format!("{}@sys", "1".repeat(242));
        let v256 = "v".repeat(256);
        let v257 = "v".repeat(257);
        let m32: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let m33: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let cases: Vec<(String, Result<String, TracestateError>, &str)> = vec![
            (
                "congo=t61rcWkgMzE".into(),
                Ok("congo=t61rcWkgMzE".into()),
                "simple member",
            ),
            (
                "a=1 , b=2\t,c=3".into(),
                Ok("a=1,b=2,c=3".into()),
                "OWS around members is tolerated",
            ),
            (
                "a=1,,b=2,".into(),
                Ok("a=1,b=2".into()),
                "empty list members are tolerated",
            ),
            (
                "".into(),
                Ok(String::new()),
                "empty header is an empty tracestate",
            ),
            (" , ".into(), Ok(String::new()), "only empty members"),
            (
                "fw529a3039@dt=x".into(),
                Ok("fw529a3039@dt=x".into()),
                "a Level 1 tenant@system key is still a key",
            ),
            (
                "1abc=x".into(),
                Ok("1abc=x".into()),
                "a key may start with a digit (Level 2)",
            ),
            (
                "a_-*/@0=x".into(),
                Ok("a_-*/@0=x".into()),
                "key characters _ - * / @ and digits",
            ),
            (
                format!("{k256}=x"),
                Ok(format!("{k256}=x")),
                "key up to 256 characters",
            ),
            (
                format!("{k257}=x"),
                Err(InvalidKey),
                "key over 256 characters",
            ),
            (
                format!("{t242}=x"),
                Ok(format!("{t242}=x")),
                "no 241-character limit before '@' (Level 2)",
            ),
            (
                "t@abcdefghijklmno=x".into(),
                Ok("t@abcdefghijklmno=x".into()),
                "no 14-character limit after '@' (Level 2)",
            ),
            (
                "t@1sys=x".into(),
                Ok("t@1sys=x".into()),
                "a digit may follow '@' (Level 2)",
            ),
            (
                "t@=x".into(),
                Ok("t@=x".into()),
                "'@' may end a key (Level 2)",
            ),
            (
                "a@b@c=x".into(),
                Ok("a@b@c=x".into()),
                "'@' may appear more than once (Level 2)",
            ),
            ("@sys=x".into(), Err(InvalidKey), "'@' may not start a key"),
            ("_a=x".into(), Err(InvalidKey), "'_' may not start a key"),
            ("Abc=x".into(), Err(InvalidKey), "keys are lowercase"),
            (
                "a.b=x".into(),
                Err(InvalidKey),
                "'.' is not a key character",
            ),
            ("=x".into(), Err(InvalidKey), "empty key"),
            ("a b=x".into(), Err(InvalidKey), "space inside the key"),
            (
                "a=".into(),
                Err(InvalidValue),
                "value has at least one character",
            ),
            ("a=x y".into(), Ok("a=x y".into()), "space inside a value"),
            (
                "a= x".into(),
                Ok("a= x".into()),
                "value may start with a space",
            ),
            (
                "a=x\ty".into(),
                Err(InvalidValue),
                "tab is not a value character",
            ),
            ("a=é".into(), Err(InvalidValue), "values are ASCII"),
            (
                "a=x=y".into(),
                Err(MissingEquals),
                "'=' is not a value character",
            ),
            ("abc".into(), Err(MissingEquals), "member without '='"),
            (
                format!("a={v256}"),
                Ok(format!("a={v256}")),
                "value up to 256 characters",
            ),
            (
                format!("a={v257}"),
                Err(InvalidValue),
                "value over 256 characters",
            ),
            (
                "a=1,a=2".into(),
                Ok("a=1".into()),
                "a duplicated key keeps its first member (Level 2 §3.5)",
            ),
            (
                "a=1,a=1".into(),
                Ok("a=1".into()),
                "an exact duplicate is dropped too",
            ),
            (
                "a=1,b=2,c=3,b=4".into(),
                Ok("a=1,b=2,c=3".into()),
                "a later duplicate is dropped wherever it is",
            ),
            (
                "a=1,a=x=y".into(),
                Err(MissingEquals),
                "a duplicate must still be a valid member",
            ),
            (
                "a=1,a=".into(),
                Err(InvalidValue),
                "a duplicate with an invalid value rejects the header",
            ),
            (m32.join(","), Ok(m32.join(",")), "32 members are allowed"),
            (
                m33.join(","),
                Err(TooManyMembers),
                "more than 32 members discard the header (§3.3.2.1)",
            ),
            (
                format!("{},k0=again", m32.join(",")),
                Err(TooManyMembers),
                "a dropped duplicate still counts: the list received has 33 members",
            ),
            (
                "a=1,bad key=2".into(),
                Err(InvalidKey),
                "one invalid member discards the header",
            ),
        ];
        for (input, want, rule) in cases {
            assert_eq!(parse_one(&input), want, "{rule}: {input:?}");
        }
    }

    #[test]
    fn lines_are_combined() {
        let lines: [&[u8]; 3] = [b"a=1", b"", b"b=2, c=3"];
        let ts = TraceState::parse(lines).expect("valid");
        assert_eq!(ts.header_value(), "a=1,b=2,c=3");
        assert_eq!(ts.len(), 3);
        let dup: [&[u8]; 2] = [b"a=1", b"a=2"];
        let ts = TraceState::parse(dup).expect("valid");
        assert_eq!(
            ts.header_value(),
            "a=1",
            "a key repeated on a later line keeps its first member"
        );
        assert_eq!(ts.len(), 1);
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let lines: Vec<&[u8]> = many.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(
            TraceState::parse(lines),
            Err(TracestateError::TooManyMembers),
            "the 32-member limit counts all lines together"
        );
    }

    #[test]
    fn insert_moves_to_front_and_caps() {
        let mut ts = TraceState::parse([&b"a=1,b=2,c=3"[..]]).expect("valid");
        ts.insert("b", "9").expect("valid");
        assert_eq!(ts.header_value(), "b=9,a=1,c=3");
        ts.insert("d", "4").expect("valid");
        assert_eq!(ts.header_value(), "d=4,b=9,a=1,c=3");
        assert_eq!(ts.insert("D", "4"), Err(TracestateError::InvalidKey));
        assert_eq!(ts.insert("d", "x "), Err(TracestateError::InvalidValue));
        assert_eq!(
            ts.header_value(),
            "d=4,b=9,a=1,c=3",
            "unchanged after an error"
        );

        let full: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let mut ts = TraceState::parse([full.join(",").as_bytes()]).expect("valid");
        ts.insert("new", "1").expect("valid");
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.members().next(), Some(("new", "1")));
        assert_eq!(ts.get("k31"), None, "the right-most member is dropped");
        assert!(ts.remove("new"));
        assert!(!ts.remove("new"));
        assert_eq!(ts.len(), 31);
    }

    #[test]
    fn truncate_table() {
        let big = "x".repeat(130);
        let bigger = "y".repeat(140);
        let cases: Vec<(String, usize, String, &str)> = vec![
            ("a=1,b=2".into(), 7, "a=1,b=2".into(), "fits: unchanged"),
            (
                "a=1,b=2,c=3".into(),
                8,
                "a=1,b=2".into(),
                "drop from the end",
            ),
            ("a=1,b=2,c=3".into(), 3, "a=1".into(), "down to one member"),
            ("a=1,b=2,c=3".into(), 2, String::new(), "nothing fits"),
            (
                format!("a=1,k={big},b=2"),
                7,
                "a=1,b=2".into(),
                "members over 128 characters go first",
            ),
            (
                format!("k={big},a=1,j={bigger},b=2"),
                140,
                format!("k={big},a=1,b=2"),
                "the longest of them first",
            ),
            (
                format!("k={},a=1", "x".repeat(126)),
                128,
                format!("k={}", "x".repeat(126)),
                "a 128-character member is not long",
            ),
        ];
        for (input, max, want, rule) in cases {
            let mut ts = TraceState::parse([input.as_bytes()]).expect("valid");
            ts.truncate_to(max);
            assert_eq!(ts.header_value(), want, "{rule}");
            assert!(ts.header_value().len() <= max, "{rule}");
            assert_eq!(
                ts,
                TraceState::parse([want.as_bytes()]).expect("valid"),
                "{rule}: index rebuilt"
            );
        }
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9][a-z0-9_*/@-]{0,20}",
            "[a-z0-9][a-z0-9_*/-]{0,10}@[a-z][a-z0-9_*/-]{0,13}",
        ]
    }

    proptest! {
        #[test]
        fn round_trip(members in proptest::collection::btree_map(key(), "[!-+\\--<>-~][ -+\\--<>-~]{0,20}[!-+\\--<>-~]", 0..32)) {
            let mut ts = TraceState::default();
            for (k, v) in members.iter().rev() {
                ts.insert(k, v).expect("generated members are valid");
            }
            let reparsed = TraceState::parse([ts.header_value().as_bytes()]).expect("encodes valid");
            prop_assert_eq!(&reparsed, &ts);
            let got: Vec<(&str, &str)> = reparsed.members().collect();
            let want: Vec<(&str, &str)> = members.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn truncate_always_fits(n in 0usize..32, max in 0usize..200) {
            let members: Vec<String> = (0..n).map(|i| format!("k{i}={}", "v".repeat(i * 7 % 150 + 1))).collect();
            let mut ts = TraceState::parse([members.join(",").as_bytes()]).expect("valid");
            ts.truncate_to(max);
            prop_assert!(ts.header_value().len() <= max);
            prop_assert_eq!(TraceState::parse([ts.header_value().as_bytes()]).expect("valid"), ts);
        }

        #[test]
        fn arbitrary_bytes_never_panic(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4)) {
            let _ = TraceState::parse(lines.iter().map(Vec::as_slice));
        }

        #[test]
        fn near_valid_never_panic(s in "[a-z0-9@=, \t_*/-]{0,80}") {
            if let Ok(mut ts) = TraceState::parse([s.as_bytes()]) {
                ts.truncate_to(s.len() / 2);
            }
        }
    }
}
