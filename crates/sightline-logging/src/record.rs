//! Turning `tracing` field values into JSON: span fragments, correlation ids, event fields.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};

use crate::escape::{EscapeWriter, Sink, cap_escaped, escape_into, quoted_into};

/// Bytes an id keeps inline: a W3C trace id is 32, a UUID request id 36.
const INLINE: usize = 46;

/// One correlation id as recorded (raw text, not escaped), stored inline when short so
/// reading it for an event is a copy, never a re-derivation or a heap access.
#[derive(Clone)]
pub(crate) enum IdValue {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl IdValue {
    pub(crate) const EMPTY: IdValue = IdValue::Inline {
        len: 0,
        buf: [0; INLINE],
    };

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            IdValue::Inline { len, buf } => &buf[..*len as usize],
            IdValue::Heap(v) => v,
        }
    }

    fn clear(&mut self) {
        match self {
            IdValue::Inline { len, .. } => *len = 0,
            IdValue::Heap(v) => v.clear(),
        }
    }
}

impl Sink for IdValue {
    fn push_bytes(&mut self, bytes: &[u8]) {
        match self {
            IdValue::Inline { len, buf } => {
                let at = *len as usize;
                if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
                    dst.copy_from_slice(bytes);
                    *len += bytes.len() as u8;
                } else {
                    let mut v = Vec::with_capacity(at + bytes.len());
                    v.extend_from_slice(&buf[..at]);
                    v.extend_from_slice(bytes);
                    *self = IdValue::Heap(v);
                }
            }
            IdValue::Heap(v) => v.extend_from_slice(bytes),
        }
    }
}

/// Formats into a [`Sink`] as is, without escaping.
struct RawWriter<'a, S: Sink>(&'a mut S);

impl<S: Sink> fmt::Write for RawWriter<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_bytes(s.as_bytes());
        Ok(())
    }
}

/// Whether `bytes` print in JSON as they are: printable ASCII other than `"` and `\`.
pub(crate) fn is_plain(bytes: &[u8]) -> bool {
    crate::escape::is_plain(bytes)
}

/// Slot order of the correlation ids, in the order they are printed.
pub(crate) const TRACE_ID: usize = 0;
pub(crate) const SPAN_ID: usize = 1;
pub(crate) const TRACE_FLAGS: usize = 2;
pub(crate) const REQUEST_ID: usize = 3;

/// The id fields one span recorded: trace_id, span_id, trace_flags, request_id, as raw text.
#[derive(Clone, Default)]
pub(crate) struct SpanIds {
    pub(crate) text: [Option<IdValue>; 4],
    /// Whether each text prints in JSON as it is (checked once, when recorded).
    pub(crate) plain: [bool; 4],
}

/// Appends `,"key":` (no comma when `out` is empty).
#[inline]
fn key(out: &mut Vec<u8>, name: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    quoted_into(out, name);
    out.push(b':');
}

/// Writes `v` when it is a whole number of thousandths in `[0.001, 1e9)` (or zero), as ryu
/// would, and says whether it did. Durations in milliseconds are logged in whole
/// microseconds, and ryu's shortest-digit search costs about five times this.
///
/// The digits are the same: `k / 1000.0` is the double nearest to the decimal `k/1000`, and
/// below 1e9 a double's spacing is under 1.2e-7, so no other decimal of at most three
/// fractional digits, and none shorter, reads back as the same double.
#[inline]
fn thousandths(out: &mut Vec<u8>, v: f64) -> bool {
    if !((0.001..1e9).contains(&v) || v.to_bits() == 0) {
        return false;
    }
    let k = (v * 1000.0).round();
    if k / 1000.0 != v {
        return false;
    }
    let k = k as u64;
    let (whole, frac) = (k / 1000, k % 1000);
    out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
    if frac == 0 {
        out.extend_from_slice(b".0");
    } else {
        let digits = [
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let keep = if frac % 10 != 0 {
            4
        } else if frac % 100 != 0 {
            3
        } else {
            2
        };
        out.extend_from_slice(&digits[..keep]);
    }
    true
}

#[inline]
fn json_f64(out: &mut Vec<u8>, v: f64) {
    if thousandths(out, v) {
        return;
    }
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        out.extend_from_slice(b"\"inf\"");
    } else {
        out.extend_from_slice(b"\"-inf\"");
    }
}

#[inline]
fn json_debug(out: &mut Vec<u8>, v: &dyn fmt::Debug) {
    out.push(b'"');
    // Our writer never fails; a `Debug` impl that errs just leaves a shorter string.
    let _ = write!(EscapeWriter(out), "{v:?}");
    out.push(b'"');
}

/// Writes a value as (escaped) text, for ids and the message.
fn text_debug(out: &mut impl Sink, v: &dyn fmt::Debug) {
    let _ = write!(EscapeWriter(out), "{v:?}");
}

fn text_f64(out: &mut impl Sink, v: f64) {
    if v.is_finite() {
        out.push_bytes(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        text_debug(out, &v);
    }
}

/// Records a span's fields: correlation ids into their slots, the rest into the JSON fragment.
pub(crate) struct SpanVisitor<'a> {
    /// Where id fields go; `None` when another layer records this span's ids.
    pub(crate) ids: Option<&'a mut SpanIds>,
    /// Span field names read as trace_id, span_id, trace_flags, request_id.
    pub(crate) id_names: &'a [Box<str>; 4],
    /// The span's fields as a JSON object body (`"k":v,"k2":v2`); `None` when this layer
    /// writes no fragment. Id fields never go here.
    pub(crate) fields: Option<&'a mut Vec<u8>>,
}

impl SpanVisitor<'_> {
    /// Writes `field`: its raw text with `id` if it is an id field (replacing the old value),
    /// else its JSON value with `json` after its key.
    #[inline]
    fn record(
        &mut self,
        field: &Field,
        id: impl FnOnce(&mut IdValue),
        json: impl FnOnce(&mut Vec<u8>),
    ) {
        let name = field.name();
        if let Some(i) = self.id_names.iter().position(|n| **n == *name) {
            if let Some(ids) = self.ids.as_deref_mut() {
                let slot = ids.text[i].get_or_insert(IdValue::EMPTY);
                slot.clear();
                id(slot);
                ids.plain[i] = is_plain(slot.as_bytes());
            }
        } else if let Some(out) = self.fields.as_deref_mut() {
            if out.capacity() == 0 {
                // One allocation sized for a typical request span instead of growing 8, 16, 32..
                out.reserve(128);
            }
            key(out, name);
            json(out);
        }
    }
}

macro_rules! int_methods {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(&mut self, field: &Field, value: $ty) {
            let mut buf = itoa::Buffer::new();
            let text = buf.format(value).as_bytes();
            self.record(field, |slot| slot.push_bytes(text), |out| out.extend_from_slice(text));
        }
    )*};
}

impl Visit for SpanVisitor<'_> {
    int_methods!(record_i64: i64, record_u64: u64, record_i128: i128, record_u128: u128);

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(
            field,
            |slot| text_f64(slot, value),
            |out| json_f64(out, value),
        );
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.record(
            field,
            |slot| slot.push_bytes(text),
            |out| out.extend_from_slice(text),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(
            field,
            |slot| slot.push_bytes(value.as_bytes()),
            |out| quoted_into(out, value),
        );
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(
            field,
            |slot| {
                let _ = write!(RawWriter(slot), "{value:?}");
            },
            |out| json_debug(out, value),
        );
    }
}

/// Records an event's fields: `message` as escaped text, the rest as a JSON object body.
pub(crate) struct EventVisitor<'a> {
    pub(crate) message: &'a mut Vec<u8>,
    pub(crate) has_message: bool,
    pub(crate) fields: &'a mut Vec<u8>,
    /// The most bytes of one value (escaped); longer ones are cut and marked.
    pub(crate) max_value_bytes: usize,
}

impl EventVisitor<'_> {
    /// The message buffer, emptied, if `field` is the message.
    #[inline]
    fn message(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        if field.name() == "message" {
            self.has_message = true;
            self.message.clear();
            Some(self.message)
        } else {
            None
        }
    }

    #[inline]
    fn field_out(&mut self, field: &Field) -> &mut Vec<u8> {
        key(self.fields, field.name());
        self.fields
    }
}

macro_rules! event_int_methods {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(&mut self, field: &Field, value: $ty) {
            let mut buf = itoa::Buffer::new();
            let text = buf.format(value).as_bytes();
            match self.message(field) {
                Some(m) => m.extend_from_slice(text),
                None => self.field_out(field).extend_from_slice(text),
            }
        }
    )*};
}

impl Visit for EventVisitor<'_> {
    event_int_methods!(record_i64: i64, record_u64: u64, record_i128: i128, record_u128: u128);

    fn record_f64(&mut self, field: &Field, value: f64) {
        match self.message(field) {
            Some(m) => text_f64(m, value),
            None => json_f64(self.field_out(field), value),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        match self.message(field) {
            Some(m) => m.extend_from_slice(text),
            None => self.field_out(field).extend_from_slice(text),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let max = self.max_value_bytes;
        match self.message(field) {
            Some(m) => {
                escape_into(m, value);
                cap_escaped(m, 0, max, false);
            }
            None => {
                let out = self.field_out(field);
                let start = out.len();
                quoted_into(out, value);
                cap_escaped(out, start, max, true);
            }
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let max = self.max_value_bytes;
        match self.message(field) {
            Some(m) => {
                text_debug(m, value);
                cap_escaped(m, 0, max, false);
            }
            None => {
                let out = self.field_out(field);
                let start = out.len();
                json_debug(out, value);
                cap_escaped(out, start, max, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ryu(v: f64) -> Vec<u8> {
        ryu::Buffer::new().format_finite(v).as_bytes().to_vec()
    }

    #[test]
    fn thousandths_print_as_ryu_does() {
        let mut checked = 0;
        let mut check = |k: u64| {
            let v = k as f64 / 1e3;
            let mut out = Vec::new();
            json_f64(&mut out, v);
            assert_eq!(out, ryu(v), "{k} thousandths");
            checked += 1;
        };
        (0..2_000_000).for_each(&mut check);
        // Larger values, up to the fast path's limit, by a fixed-seed xorshift.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(x % 1_000_000_000_000);
        }
        assert_eq!(checked, 4_000_000);
    }

    #[test]
    fn other_values_go_through_ryu() {
        for v in [
            0.0001,
            0.123_456,
            1e9,
            1.5e300,
            -0.0,
            -2.5,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
        ] {
            let mut fast = Vec::new();
            assert!(!thousandths(&mut fast, v) || fast == ryu(v), "{v}");
            let mut out = Vec::new();
            json_f64(&mut out, v);
            assert_eq!(out, ryu(v), "{v}");
        }
        let mut out = Vec::new();
        json_f64(&mut out, f64::NAN);
        assert_eq!(out, b"\"NaN\"");
    }
}
