//! Independent checks of encoded outputs against the specifications' grammars.
//!
//! Written from the specifications, not from the codecs, so that a codec bug is not mirrored by
//! its own checker.

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn all_lower_hex(s: &[u8]) -> bool {
    s.iter().all(|&b| is_lower_hex(b))
}

fn not_all_zero(s: &[u8]) -> bool {
    s.iter().any(|&b| b != b'0')
}

/// A version-00 `traceparent` as a writer must emit it: 55 characters, lowercase hex, non-zero
/// ids, only the `sampled` and `random` flag bits.
pub(crate) fn check_traceparent_v00(s: &[u8]) -> Result<(), &'static str> {
    if s.len() != 55 {
        return Err("not 55 characters");
    }
    if &s[..3] != b"00-" || s[35] != b'-' || s[52] != b'-' {
        return Err("wrong version or delimiters");
    }
    let (trace, span, flags) = (&s[3..35], &s[36..52], &s[53..55]);
    if !all_lower_hex(trace) || !all_lower_hex(span) || !all_lower_hex(flags) {
        return Err("not lowercase hex");
    }
    if !not_all_zero(trace) || !not_all_zero(span) {
        return Err("all-zero id");
    }
    if flags[0] != b'0' || !matches!(flags[1], b'0'..=b'3') {
        return Err("unknown flag bits written");
    }
    Ok(())
}

/// What a W3C Trace Context Level 2 parser must accept for one `traceparent` line, written
/// from §3.2 (no whitespace trimming; the caller trims).
pub(crate) fn traceparent_acceptable(s: &[u8]) -> bool {
    if s.len() < 55 || !all_lower_hex(&s[..2]) || &s[..2] == b"ff" {
        return false;
    }
    let v00 = &s[..2] == b"00";
    if v00 && s.len() != 55 {
        return false;
    }
    if !v00 && s.len() > 55 && s[55] != b'-' {
        return false;
    }
    s[2] == b'-'
        && s[35] == b'-'
        && s[52] == b'-'
        && all_lower_hex(&s[3..35])
        && all_lower_hex(&s[36..52])
        && all_lower_hex(&s[53..55])
        && not_all_zero(&s[3..35])
        && not_all_zero(&s[36..52])
}

fn is_ts_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// `key` of Trace Context Level 2 §3.3.2.2.1: `( lcalpha / DIGIT ) 0*255( keychar )`, where
/// `keychar` includes `@` (Level 1's `tenant@system` form and its limits are gone).
pub(crate) fn is_tracestate_key(k: &[u8]) -> bool {
    (1..=256).contains(&k.len())
        && (k[0].is_ascii_lowercase() || k[0].is_ascii_digit())
        && k.iter().all(|&b| is_ts_key_char(b))
}

/// `value` of Trace Context Level 2 §3.3.2.2.2.
pub(crate) fn is_tracestate_value(v: &[u8]) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    (1..=256).contains(&v.len())
        && v.iter().all(|&b| b == b' ' || nblk(b))
        && v.last().is_some_and(|&b| nblk(b))
}

/// A `tracestate` as a writer should emit it: `key=value` members joined by `,`, no
/// whitespace around them, at most 32, unique keys.
pub(crate) fn check_tracestate(s: &[u8]) -> Result<usize, &'static str> {
    if s.is_empty() {
        return Ok(0);
    }
    let mut keys: Vec<&[u8]> = Vec::new();
    for member in s.split(|&b| b == b',') {
        let mut kv = member.splitn(2, |&b| b == b'=');
        let key = kv.next().unwrap_or_default();
        let Some(value) = kv.next() else {
            return Err("member without '='");
        };
        if !is_tracestate_key(key) {
            return Err("invalid key written");
        }
        if !is_tracestate_value(value) {
            return Err("invalid value written");
        }
        if keys.contains(&key) {
            return Err("duplicate key written");
        }
        keys.push(key);
    }
    if keys.len() > 32 {
        return Err("more than 32 members written");
    }
    Ok(keys.len())
}

/// What a Level 2 reader keeps of `tracestate` header lines, written from §3.3: the lines
/// combined with `,`; spaces and tabs around members ignored; empty members skipped; every
/// other member `key=value` by the grammar and at most 32 of them, else `None` (the header is
/// dropped); of a repeated key only the first member (§3.5 lets a vendor discard duplicates).
pub(crate) fn tracestate_kept<'a>(lines: &[&'a [u8]]) -> Option<Vec<(&'a [u8], &'a [u8])>> {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let mut kept: Vec<(&[u8], &[u8])> = Vec::new();
    let mut received = 0;
    for line in lines {
        for member in line.split(|&b| b == b',') {
            let start = member.iter().position(|b| !ows(b)).unwrap_or(member.len());
            let end = member
                .iter()
                .rposition(|b| !ows(b))
                .map_or(start, |i| i + 1);
            let member = &member[start..end];
            if member.is_empty() {
                continue;
            }
            let eq = member.iter().position(|&b| b == b'=')?;
            let (key, value) = (&member[..eq], &member[eq + 1..]);
            if !is_tracestate_key(key) || !is_tracestate_value(value) {
                return None;
            }
            received += 1;
            if received > 32 {
                return None;
            }
            if !kept.iter().any(|(k, _)| *k == key) {
                kept.push((key, value));
            }
        }
    }
    Some(kept)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// A `baggage` header as a writer should emit it (W3C Baggage, "Header Content"), with every
/// `%` starting a `%XX` escape; returns the number of members.
pub(crate) fn check_baggage(s: &[u8]) -> Result<usize, &'static str> {
    if s.is_empty() {
        return Ok(0);
    }
    if s.len() > 8192 {
        return Err("more than 8192 bytes written");
    }
    let mut members = 0;
    for member in s.split(|&b| b == b',') {
        members += 1;
        let mut parts = member.split(|&b| b == b';');
        let kv = parts.next().unwrap_or_default();
        let Some(eq) = kv.iter().position(|&b| b == b'=') else {
            return Err("member without '='");
        };
        let (key, value) = (&kv[..eq], &kv[eq + 1..]);
        if key.is_empty() || !key.iter().all(|&b| is_tchar(b)) {
            return Err("key is not a token");
        }
        if !value.iter().all(|&b| is_baggage_octet(b)) {
            return Err("value byte outside baggage-octet");
        }
        let mut i = 0;
        while i < value.len() {
            if value[i] == b'%' {
                let hex = value.get(i + 1..i + 3).unwrap_or_default();
                if hex.len() != 2 || !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err("'%' not followed by two hex digits");
                }
                i += 3;
            } else {
                i += 1;
            }
        }
        for prop in parts {
            let (pk, pv) = match prop.iter().position(|&b| b == b'=') {
                Some(eq) => (&prop[..eq], Some(&prop[eq + 1..])),
                None => (prop, None),
            };
            if pk.is_empty() || !pk.iter().all(|&b| is_tchar(b)) {
                return Err("property key is not a token");
            }
            if !pv.is_none_or(|v| v.iter().all(|&b| is_baggage_octet(b))) {
                return Err("property value byte outside baggage-octet");
            }
        }
    }
    if members > 64 {
        return Err("more than 64 members written");
    }
    Ok(members)
}

/// A `b3` single-header value with ids: `{trace}-{span}[-{sampling}[-{parent}]]`.
pub(crate) fn check_b3_single(s: &[u8]) -> Result<(), &'static str> {
    let fields: Vec<&[u8]> = s.split(|&b| b == b'-').collect();
    if !(2..=4).contains(&fields.len()) {
        return Err("wrong number of fields");
    }
    check_b3_trace_id(fields[0])?;
    check_b3_span_id(fields[1])?;
    if let Some(sampling) = fields.get(2)
        && !matches!(*sampling, b"0" | b"1" | b"d")
    {
        return Err("sampling state not 0, 1 or d");
    }
    if let Some(parent) = fields.get(3) {
        check_b3_span_id(parent)?;
    }
    Ok(())
}

pub(crate) fn check_b3_trace_id(s: &[u8]) -> Result<(), &'static str> {
    if !(s.len() == 16 || s.len() == 32) || !all_lower_hex(s) || !not_all_zero(s) {
        return Err("trace id not 16 or 32 lowercase hex digits, or zero");
    }
    if s.len() == 32 && s[..16].iter().all(|&b| b == b'0') {
        return Err("64-bit trace id written in 128-bit form");
    }
    Ok(())
}

pub(crate) fn check_b3_span_id(s: &[u8]) -> Result<(), &'static str> {
    if s.len() != 16 || !all_lower_hex(s) || !not_all_zero(s) {
        return Err("span id not 16 lowercase hex digits, or zero");
    }
    Ok(())
}
