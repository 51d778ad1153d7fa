//! Trace and span identifiers, trace flags and the lowercase-hex helpers every codec shares.

use core::fmt;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why a hex field was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HexError {
    /// An `A`-`F` digit: the W3C and B3 formats are lowercase only.
    Uppercase,
    /// Not a hex digit at all.
    Invalid,
}

/// Decodes exactly `N * 2` lowercase hex digits.
pub(crate) fn decode_hex<const N: usize>(src: &[u8]) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    if src.len() != N * 2 {
        return Err(HexError::Invalid);
    }
    for (i, pair) in src.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

fn nibble(b: u8) -> Result<u8, HexError> {
    match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Err(HexError::Uppercase),
        _ => Err(HexError::Invalid),
    }
}

/// Writes `src` as lowercase hex into `dst`, which must be twice as long.
pub(crate) fn encode_hex(src: &[u8], dst: &mut [u8]) {
    for (i, b) in src.iter().enumerate() {
        dst[2 * i] = HEX[usize::from(b >> 4)];
        dst[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
}

fn hex_str(hex: &[u8]) -> &str {
    core::str::from_utf8(hex).expect("hex digits are ASCII")
}

/// A 128-bit trace id, as carried by `traceparent` and B3.
///
/// Displays as 32 lowercase hex digits. The all-zero value, [`TraceId::INVALID`], is never a valid
/// trace id.
///
/// ```
/// use sightline_propagation::TraceId;
///
/// let id = TraceId([0x4b; 16]);
/// assert_eq!(id.to_string(), "4b".repeat(16));
/// assert_eq!(&id.to_hex(), "4b".repeat(16).as_bytes());
/// assert!(!TraceId::INVALID.is_valid());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

impl TraceId {
    /// The all-zero trace id, which the specifications forbid on the wire.
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// Returns `true` unless every byte is zero.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// The id as 32 lowercase hex digits, without allocating.
    pub fn to_hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        encode_hex(&self.0, &mut out);
        out
    }

    /// Parses exactly 32 lowercase hex digits; returns `None` for anything else (the all-zero
    /// id included, since it is not a valid id).
    ///
    /// ```
    /// use sightline_propagation::TraceId;
    ///
    /// let id = TraceId::from_hex(b"4bf92f3577b34da6a3ce929d0e0e4736").expect("valid");
    /// assert_eq!(id.0[0], 0x4b);
    /// assert_eq!(TraceId::from_hex(b"4BF92F3577B34DA6A3CE929D0E0E4736"), None);
    /// ```
    pub fn from_hex(hex: &[u8]) -> Option<TraceId> {
        decode_hex(hex).ok().map(TraceId).filter(TraceId::is_valid)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(hex_str(&self.to_hex()))
    }
}

/// A 64-bit span id (the W3C `parent-id`, the B3 span id).
///
/// Displays as 16 lowercase hex digits. The all-zero value, [`SpanId::INVALID`], is never a valid
/// span id.
///
/// ```
/// use sightline_propagation::SpanId;
///
/// let id = SpanId([0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
/// assert_eq!(id.to_string(), "00f067aa0ba902b7");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

impl SpanId {
    /// The all-zero span id, which the specifications forbid on the wire.
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// Returns `true` unless every byte is zero.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }

    /// The id as 16 lowercase hex digits, without allocating.
    pub fn to_hex(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        encode_hex(&self.0, &mut out);
        out
    }

    /// Parses exactly 16 lowercase hex digits; returns `None` for anything else (the all-zero
    /// id included).
    ///
    /// ```
    /// use sightline_propagation::SpanId;
    ///
    /// assert!(SpanId::from_hex(b"00f067aa0ba902b7").is_some());
    /// assert_eq!(SpanId::from_hex(b"0000000000000000"), None);
    /// ```
    pub fn from_hex(hex: &[u8]) -> Option<SpanId> {
        decode_hex(hex).ok().map(SpanId).filter(SpanId::is_valid)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(hex_str(&self.to_hex()))
    }
}

/// The `trace-flags` byte of `traceparent`.
///
/// Trace Context Level 2 defines two bits: [`SAMPLED`](TraceFlags::SAMPLED) (0x01) and
/// [`RANDOM`](TraceFlags::RANDOM) (0x02, "the trace id's rightmost 7 bytes are random").
/// Other bits are kept as received by [`Traceparent::parse`](crate::Traceparent::parse) and
/// cleared by every encoder.
///
/// ```
/// use sightline_propagation::TraceFlags;
///
/// let flags = TraceFlags(TraceFlags::SAMPLED.0 | TraceFlags::RANDOM.0);
/// assert!(flags.is_sampled() && flags.is_random());
/// assert_eq!(TraceFlags(0xff).known(), flags);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceFlags(pub u8);

impl TraceFlags {
    /// The `sampled` bit (0x01): the caller may have recorded its span.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// The `random` bit (0x02, Trace Context Level 2): the trace id was generated randomly.
    pub const RANDOM: TraceFlags = TraceFlags(0x02);

    /// Returns `true` if the sampled bit is set.
    pub fn is_sampled(&self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// Returns `true` if the random bit is set.
    pub fn is_random(&self) -> bool {
        self.0 & Self::RANDOM.0 != 0
    }

    /// Only the bits this crate knows (sampled and random); the others cleared.
    pub fn known(self) -> TraceFlags {
        TraceFlags(self.0 & (Self::SAMPLED.0 | Self::RANDOM.0))
    }

    /// These flags with the sampled bit set or cleared.
    pub fn with_sampled(self, sampled: bool) -> TraceFlags {
        if sampled {
            TraceFlags(self.0 | Self::SAMPLED.0)
        } else {
            TraceFlags(self.0 & !Self::SAMPLED.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hex_table() {
        type Case = (&'static [u8], Result<[u8; 2], HexError>, &'static str);
        let cases: &[Case] = &[
            (b"00ff", Ok([0, 255]), "lowercase digits decode"),
            (
                b"00FF",
                Err(HexError::Uppercase),
                "uppercase is its own error",
            ),
            (b"00fg", Err(HexError::Invalid), "non-hex digit"),
            (b"00f", Err(HexError::Invalid), "wrong length"),
            (b"", Err(HexError::Invalid), "empty"),
        ];
        for (input, want, rule) in cases {
            assert_eq!(decode_hex::<2>(input), *want, "{rule}");
        }
    }

    #[test]
    fn invalid_ids() {
        assert!(!TraceId::INVALID.is_valid());
        assert!(!SpanId::INVALID.is_valid());
        assert!(TraceId([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_valid());
    }

    proptest! {
        #[test]
        fn trace_id_hex_round_trip(bytes in any::<[u8; 16]>()) {
            let id = TraceId(bytes);
            let hex = id.to_hex();
            prop_assert_eq!(decode_hex::<16>(&hex), Ok(bytes));
            prop_assert_eq!(id.to_string(), String::from_utf8_lossy(&hex));
        }

        #[test]
        fn span_id_hex_round_trip(bytes in any::<[u8; 8]>()) {
            let id = SpanId(bytes);
            prop_assert_eq!(decode_hex::<8>(&id.to_hex()), Ok(bytes));
        }

        #[test]
        fn decode_hex_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_hex::<16>(&bytes);
            let _ = TraceId::from_hex(&bytes);
            let _ = SpanId::from_hex(&bytes);
        }
    }
}
