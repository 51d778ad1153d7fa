//! The protobuf wire format, written by hand for the few OTLP messages Sightline sends.
//!
//! Every message is sized first and written second: a length-delimited field needs its length
//! before its content, and sizing is arithmetic on borrowed data, so nothing is encoded twice
//! and nothing is allocated.

use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;

// Field numbers from opentelemetry-proto v1 (trace.proto, common.proto, resource.proto,
// trace_service.proto). Proto3 leaves out scalar fields at their default; members of a
// `oneof` and present sub-messages are always written, as prost does.

pub(super) const VARINT: u32 = 0;
pub(super) const FIXED64: u32 = 1;
pub(super) const LEN: u32 = 2;
pub(super) const FIXED32: u32 = 5;

pub(super) fn varint_len(value: u64) -> usize {
    // 1 byte per started group of 7 bits.
    ((64 - (value | 1).leading_zeros()) as usize).div_ceil(7)
}

pub(super) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub(super) fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

pub(super) fn put_key(buf: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(buf, u64::from(field << 3 | wire_type));
}

/// Length of a length-delimited field whose content is `len` bytes.
pub(super) fn len_field(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

pub(super) fn put_len_prefix(buf: &mut Vec<u8>, field: u32, len: usize) {
    put_key(buf, field, LEN);
    put_varint(buf, len as u64);
}

pub(super) fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_len_prefix(buf, field, bytes.len());
    buf.extend_from_slice(bytes);
}

/// A string or bytes field, left out when empty.
pub(super) fn opt_bytes_len(field: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        len_field(field, bytes.len())
    }
}

pub(super) fn put_opt_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(buf, field, bytes);
    }
}

pub(super) fn opt_varint_len(field: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(field) + varint_len(value)
    }
}

pub(super) fn put_opt_varint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(buf, field, VARINT);
        put_varint(buf, value);
    }
}

pub(super) fn opt_fixed64_len(field: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(field) + 8 }
}

pub(super) fn put_opt_fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_key(buf, field, FIXED64);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

pub(super) fn opt_fixed32_len(field: u32, value: u32) -> usize {
    if value == 0 { 0 } else { key_len(field) + 4 }
}

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

pub(super) fn scalar_len(value: Scalar<'_>) -> usize {
    match value {
        Scalar::Str(s) => len_field(1, s.len()),
        Scalar::Bool(_) => key_len(2) + 1,
        Scalar::I64(v) => key_len(3) + varint_len(v as u64),
        Scalar::F64(_) => key_len(4) + 8,
    }
}

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

pub(super) fn array_len(array: &Array) -> usize {
    let mut len = 0;
    for_each_element(array, |v| len += len_field(1, scalar_len(v)));
    len
}

pub(super) fn put_array(buf: &mut Vec<u8>, array: &Array) {
    for_each_element(array, |v| {
        put_len_prefix(buf, 1, scalar_len(v));
        put_scalar(buf, v);
    });
}

pub(super) fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(v) => scalar_len(Scalar::Bool(*v)),
        Value::I64(v) => scalar_len(Scalar::I64(*v)),
        Value::F64(v) => scalar_len(Scalar::F64(*v)),
        Value::String(s) => scalar_len(Scalar::Str(s.as_str())),
        Value::Array(array) => len_field(5, array_len(array)),
        // A value type added after this was written: its text form.
        other => scalar_len(Scalar::Str(&other.as_str())),
    }
}

pub(super) fn put_any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(v) => put_scalar(buf, Scalar::Bool(*v)),
        Value::I64(v) => put_scalar(buf, Scalar::I64(*v)),
        Value::F64(v) => put_scalar(buf, Scalar::F64(*v)),
        Value::String(s) => put_scalar(buf, Scalar::Str(s.as_str())),
        Value::Array(array) => {
            put_len_prefix(buf, 5, array_len(array));
            put_array(buf, array);
        }
        other => put_scalar(buf, Scalar::Str(&other.as_str())),
    }
}

// KeyValue: key = 1, value = 2.

pub(super) fn key_value_len(key: &str, value: &Value) -> usize {
    opt_bytes_len(1, key.as_bytes()) + len_field(2, any_value_len(value))
}

pub(super) fn put_key_value(buf: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    put_len_prefix(buf, field, key_value_len(key, value));
    put_opt_bytes(buf, 1, key.as_bytes());
    put_len_prefix(buf, 2, any_value_len(value));
    put_any_value(buf, value);
}

pub(super) fn attributes_len(field: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| len_field(field, key_value_len(kv.key.as_str(), &kv.value)))
        .sum()
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

pub(super) fn scope_len(scope: &InstrumentationScope) -> usize {
    let attributes: usize = scope
        .attributes()
        .map(|kv| len_field(3, key_value_len(kv.key.as_str(), &kv.value)))
        .sum();
    opt_bytes_len(1, scope.name().as_bytes())
        + opt_bytes_len(2, scope.version().unwrap_or_default().as_bytes())
        + attributes
}

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
