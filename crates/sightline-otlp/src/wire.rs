//! The protobuf wire format, written by hand for the few OTLP messages Sightline sends.
//!
//! A length-delimited field needs its length before its content. Each is written in one pass
//! ([`put_message`]): a one-byte length is reserved, the content written, and the length filled
//! in, moving the content up in the rare case it is 128 bytes or more. Nothing is encoded
//! twice, and nothing is allocated beyond the output buffer.

use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;

// Field numbers from opentelemetry-proto v1 (trace.proto, common.proto, resource.proto,
// trace_service.proto). Proto3 leaves out scalar fields at their default; members of a
// `oneof` and present sub-messages are always written, as prost does.

pub(super) const VARINT: u32 = 0;
pub(super) const FIXED64: u32 = 1;
pub(super) const LEN: u32 = 2;
pub(super) const FIXED32: u32 = 5;

/// `value` as a varint: its bytes, and how many of them are used (1 to 10).
#[inline]
fn varint(mut value: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while value >= 0x80 {
        bytes[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    bytes[n] = value as u8;
    (bytes, n + 1)
}

#[inline]
pub(super) fn put_varint(buf: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        // Keys, kinds, flags and most lengths.
        buf.push(value as u8);
        return;
    }
    let (bytes, n) = varint(value);
    buf.extend_from_slice(&bytes[..n]);
}

#[inline]
pub(super) fn put_key(buf: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(buf, u64::from(field << 3 | wire_type));
}

#[inline]
pub(super) fn put_len_prefix(buf: &mut Vec<u8>, field: u32, len: usize) {
    if field < 16 && len < 0x80 {
        // Both fit in a byte: every key of these messages, and most strings.
        buf.extend_from_slice(&[(field << 3 | LEN) as u8, len as u8]);
        return;
    }
    put_key(buf, field, LEN);
    put_varint(buf, len as u64);
}

/// Writes a length-delimited field whose content `write` appends, in one pass: a one-byte
/// length is reserved and filled in afterwards, and the content moves up in the rare case its
/// length takes more bytes (128 and over). The bytes are those of sizing first: lengths are
/// minimal varints either way.
///
/// Sizing first walks every attribute twice more than writing does; for a span of a dozen
/// attributes that was a third of its encoding.
#[inline]
pub(super) fn put_message(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    put_key(buf, field, LEN);
    let at = buf.len();
    buf.push(0);
    write(buf);
    let end = buf.len();
    let len = end - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
        return;
    }
    let (prefix, n) = varint(len as u64);
    buf.resize(end + n - 1, 0);
    buf.copy_within(at + 1..end, at + n);
    buf[at..at + n].copy_from_slice(&prefix[..n]);
}

#[inline]
pub(super) fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_len_prefix(buf, field, bytes.len());
    buf.extend_from_slice(bytes);
}

#[inline]
pub(super) fn put_opt_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(buf, field, bytes);
    }
}

#[inline]
pub(super) fn put_opt_varint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(buf, field, VARINT);
        put_varint(buf, value);
    }
}

#[inline]
pub(super) fn put_opt_fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(buf, field, FIXED64);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

#[inline]
pub(super) fn put_opt_fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        put_key(buf, field, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

// AnyValue: string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
// array_value = 5 (ArrayValue: values = 1).

/// One scalar `AnyValue`, borrowed (array elements are typed, not `Value`s).
#[derive(Clone, Copy)]
pub(super) enum Scalar<'a> {
    Str(&'a str),
    Bool(bool),
    I64(i64),
    F64(f64),
}

#[inline]
pub(super) fn put_scalar(buf: &mut Vec<u8>, value: Scalar<'_>) {
    match value {
        Scalar::Str(s) => put_bytes(buf, 1, s.as_bytes()),
        Scalar::Bool(v) => {
            put_key(buf, 2, VARINT);
            buf.push(u8::from(v));
        }
        Scalar::I64(v) => {
            put_key(buf, 3, VARINT);
            put_varint(buf, v as u64);
        }
        Scalar::F64(v) => {
            put_key(buf, 4, FIXED64);
            buf.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
}

/// Calls `f` with each element of an array as a scalar.
pub(super) fn for_each_element(array: &Array, mut f: impl FnMut(Scalar<'_>)) {
    match array {
        Array::Bool(values) => values.iter().for_each(|v| f(Scalar::Bool(*v))),
        Array::I64(values) => values.iter().for_each(|v| f(Scalar::I64(*v))),
        Array::F64(values) => values.iter().for_each(|v| f(Scalar::F64(*v))),
        Array::String(values) => values.iter().for_each(|v| f(Scalar::Str(v.as_str()))),
        // An element type added after this was written: its text form, as one string.
        other => f(Scalar::Str(&other.to_string())),
    }
}

pub(super) fn put_array(buf: &mut Vec<u8>, array: &Array) {
    for_each_element(array, |v| put_message(buf, 1, |buf| put_scalar(buf, v)));
}

#[inline]
pub(super) fn put_any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(v) => put_scalar(buf, Scalar::Bool(*v)),
        Value::I64(v) => put_scalar(buf, Scalar::I64(*v)),
        Value::F64(v) => put_scalar(buf, Scalar::F64(*v)),
        Value::String(s) => put_scalar(buf, Scalar::Str(s.as_str())),
        Value::Array(array) => put_message(buf, 5, |buf| put_array(buf, array)),
        other => put_scalar(buf, Scalar::Str(&other.as_str())),
    }
}

// KeyValue: key = 1, value = 2.

pub(super) fn put_key_value(buf: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    put_message(buf, field, |buf| {
        put_opt_bytes(buf, 1, key.as_bytes());
        put_message(buf, 2, |buf| put_any_value(buf, value));
    });
}

pub(super) fn put_attributes(buf: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        put_key_value(buf, field, kv.key.as_str(), &kv.value);
    }
}

/// The `Resource` message (attributes = 1).
pub(super) fn encode_resource(resource: &Resource, buf: &mut Vec<u8>) {
    for (key, value) in resource.iter() {
        put_key_value(buf, 1, key.as_str(), value);
    }
}

// InstrumentationScope: name = 1, version = 2, attributes = 3.

pub(super) fn put_scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_opt_bytes(buf, 1, scope.name().as_bytes());
    put_opt_bytes(buf, 2, scope.version().unwrap_or_default().as_bytes());
    for kv in scope.attributes() {
        put_key_value(buf, 3, kv.key.as_str(), &kv.value);
    }
}

pub(super) fn nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
