//! JSON string escaping that keeps every record on one line.
//!
//! Beyond what JSON requires (`"`, `\` and 0x00-0x1F), DEL (0x7F), the C1 controls
//! (U+0080-U+009F, which some terminals treat as ESC-sequences) and U+2028/U+2029 (line
//! separators to JavaScript and to some log viewers) are written as `\uXXXX`, so no value can
//! start a new line, move a terminal cursor or forge a field.

use std::fmt;

/// Something escaped bytes can be appended to: the line buffer or a span's inline id.
pub(crate) trait Sink {
    fn push_bytes(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn push_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// What [`escape_into`] does with a byte: 0 copy, 1 escape, 2 look at the UTF-8 sequence.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t[0x7f] = 1;
    // 0xC2 leads U+0080-U+00BF (C1 controls are U+0080-U+009F);
    // 0xE2 leads U+2000-U+2FFF (U+2028 and U+2029 are E2 80 A8 / E2 80 A9).
    t[0xc2] = 2;
    t[0xe2] = 2;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn push_u00(out: &mut impl Sink, b: u8) {
    out.push_bytes(&[
        b'\\',
        b'u',
        b'0',
        b'0',
        HEX[(b >> 4) as usize],
        HEX[(b & 0xf) as usize],
    ]);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero is set (and only then).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Whether eight bytes are all printable ASCII other than `"` and `\`: nothing to escape.
#[inline]
fn plain_ascii(word: u64) -> bool {
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS; // a byte below 0x20
    let special = zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | zero_bytes(word ^ (ONES * 0x7f));
    (control | special | (word & HIGHS)) == 0
}

/// Whether `bytes` need no escaping at all, checked eight at a time (ids: 16 to 36 bytes).
#[inline]
pub(crate) fn is_plain(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let words_plain = chunks.by_ref().all(|chunk| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        plain_ascii(u64::from_le_bytes(word))
    });
    words_plain
        && chunks
            .remainder()
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// What ends a value cut to the line's limit: readable in the line, and searchable.
pub(crate) const TRUNCATED: &[u8] = "…[truncated]".as_bytes();

/// Cuts the escaped text written at `out[start..]` (a quoted JSON string when `quoted`) to at
/// most `max` bytes of content, at a character and escape boundary, marked with
/// [`TRUNCATED`]. Does nothing to text within the limit (one compare).
pub(crate) fn cap_escaped(out: &mut Vec<u8>, start: usize, max: usize, quoted: bool) {
    let quotes = if quoted { 2 } else { 0 };
    if out.len() - start <= max + quotes {
        return;
    }
    let content_start = start + usize::from(quoted);
    let content = &out[content_start..out.len() - usize::from(quoted)];
    let mut cut = 0;
    while cut < content.len() {
        let step = match content[cut] {
            b'\\' if content.get(cut + 1) == Some(&b'u') => 6,
            b'\\' => 2,
            b if b < 0x80 => 1,
            b if b >= 0xf0 => 4,
            b if b >= 0xe0 => 3,
            _ => 2,
        };
        if cut + step > max {
            break;
        }
        cut += step;
    }
    out.truncate(content_start + cut);
    out.extend_from_slice(TRUNCATED);
    if quoted {
        out.push(b'"');
    }
}

/// Appends `s` JSON-escaped, without the surrounding quotes.
pub(crate) fn escape_into(out: &mut impl Sink, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    // Below this index the bytes go one by one: their 8-byte chunk had something to look at.
    let mut bytewise_until = 0;
    while i < bytes.len() {
        if i >= bytewise_until {
            // Eight bytes at a time while they are plain ASCII, the usual log text.
            match bytes.get(i..i + 8) {
                Some(chunk) => {
                    let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                    if plain_ascii(word) {
                        i += 8;
                        continue;
                    }
                    bytewise_until = i + 8;
                }
                None => bytewise_until = bytes.len(),
            }
        }
        let b = bytes[i];
        match CLASS[b as usize] {
            0 => {
                i += 1;
                continue;
            }
            1 => {
                out.push_bytes(&bytes[start..i]);
                match b {
                    b'"' => out.push_bytes(b"\\\""),
                    b'\\' => out.push_bytes(b"\\\\"),
                    b'\n' => out.push_bytes(b"\\n"),
                    b'\r' => out.push_bytes(b"\\r"),
                    b'\t' => out.push_bytes(b"\\t"),
                    0x08 => out.push_bytes(b"\\b"),
                    0x0c => out.push_bytes(b"\\f"),
                    _ => push_u00(out, b),
                }
                i += 1;
                start = i;
            }
            _ => {
                // `s` is valid UTF-8, so a lead byte is followed by its continuation bytes.
                if b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)) {
                    out.push_bytes(&bytes[start..i]);
                    push_u00(out, bytes[i + 1]);
                    i += 2;
                    start = i;
                } else if b == 0xe2
                    && bytes.get(i + 1) == Some(&0x80)
                    && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9))
                {
                    out.push_bytes(&bytes[start..i]);
                    out.push_bytes(if bytes[i + 2] == 0xa8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    start = i;
                } else {
                    i += 1;
                }
            }
        }
    }
    out.push_bytes(&bytes[start..]);
}

/// Appends `"s"`, escaped.
#[inline]
pub(crate) fn quoted_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

/// A `fmt::Write` that escapes what `Debug`/`Display` implementations write, so values are
/// formatted straight into the output without an intermediate `String`.
pub(crate) struct EscapeWriter<'a, S: Sink>(pub(crate) &'a mut S);

impl<S: Sink> fmt::Write for EscapeWriter<'_, S> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut v = Vec::new();
        quoted_into(&mut v, s);
        String::from_utf8(v).expect("escaping keeps UTF-8")
    }

    #[test]
    fn is_plain_agrees_with_the_bytewise_rule_at_every_length_and_position() {
        for len in 0..24 {
            for at in 0..len.max(1) {
                for special in [b'"', b'\\', b'\n', 0x7f, 0x1f, 0xc3, b'a'] {
                    let mut bytes = vec![b'x'; len];
                    if len > 0 {
                        bytes[at] = special;
                    }
                    let bytewise = bytes
                        .iter()
                        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
                    assert_eq!(is_plain(&bytes), bytewise, "{bytes:?}");
                    if bytewise {
                        let text = std::str::from_utf8(&bytes).expect("ASCII");
                        assert_eq!(esc(text), format!("\"{text}\""), "plain needs no escaping");
                    }
                }
            }
        }
    }

    #[test]
    fn capped_values_stay_valid_json_and_are_marked() {
        for text in [
            "plain text that goes on",
            "é\n\"\u{1}ü long enough",
            "🙂🙂🙂🙂🙂🙂",
        ] {
            for max in 0..20 {
                let mut out = b"{\"k\":".to_vec();
                let start = out.len();
                quoted_into(&mut out, text);
                cap_escaped(&mut out, start, max, true);
                out.push(b'}');
                let parsed: serde_json::Value =
                    serde_json::from_slice(&out).expect("still one JSON object");
                let value = parsed["k"].as_str().expect("a string");
                if value != text {
                    assert!(value.ends_with("…[truncated]"), "{value:?}");
                    let kept = value.trim_end_matches("…[truncated]");
                    assert!(text.starts_with(kept), "{kept:?} of {text:?}");
                    assert!(out.len() - start - 1 <= max + 2 + TRUNCATED.len(), "{max}");
                }
            }
        }
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(esc("hello wörld ✓"), "\"hello wörld ✓\"");
        assert_eq!(esc(""), "\"\"");
    }

    #[test]
    fn json_specials_and_controls() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"", "\\\"", "quote ends the string"),
            ("\\", "\\\\", "backslash starts an escape"),
            ("\n", "\\n", "LF starts a new line"),
            ("\r", "\\r", "CR returns to column 0"),
            ("\t", "\\t", "tab"),
            ("\u{8}", "\\b", "backspace"),
            ("\u{c}", "\\f", "form feed"),
            ("\u{0}", "\\u0000", "NUL"),
            ("\u{1b}[31m", "\\u001b[31m", "ANSI escape"),
            ("\u{1f}", "\\u001f", "last C0 control"),
            ("\u{7f}", "\\u007f", "DEL"),
            ("\u{85}", "\\u0085", "NEL, a C1 line break"),
            ("\u{9b}31m", "\\u009b31m", "CSI, a C1 ANSI escape"),
            ("\u{80}\u{9f}", "\\u0080\\u009f", "C1 range bounds"),
            (
                "\u{a0}\u{bf}",
                "\u{a0}\u{bf}",
                "printable Latin-1 after C1 is kept",
            ),
            ("\u{2028}", "\\u2028", "line separator"),
            ("\u{2029}", "\\u2029", "paragraph separator"),
            (
                "\u{2027}\u{202a}→",
                "\u{2027}\u{202a}→",
                "neighbours are kept",
            ),
        ];
        for (input, want, why) in cases {
            assert_eq!(esc(input), format!("\"{want}\""), "{why}");
        }
    }

    /// The 8-byte fast path against the byte-by-byte one: every special character at every
    /// offset of every length around the chunk size.
    #[test]
    fn chunk_boundaries() {
        let specials = [
            "\"", "\\", "\n", "\u{1}", "\u{7f}", "\u{85}", "\u{2028}", "é", "✓",
        ];
        for len in 0..20 {
            for at in 0..=len {
                for special in specials {
                    let input = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at));
                    let out = esc(&input);
                    let back: String = serde_json::from_str(&out).expect("valid JSON string");
                    assert_eq!(back, input);
                    assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f), "{out:?}");
                    assert!(!out.contains(['\u{85}', '\u{2028}']), "{out:?}");
                }
            }
        }
        for b in 0u8..=0x7f {
            let word = u64::from_le_bytes([b'a', b'a', b'a', b, b'a', b'a', b'a', b'a']);
            let plain = (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
            assert_eq!(plain_ascii(word), plain, "byte {b:#x}");
        }
    }

    #[test]
    fn every_char_round_trips_and_no_raw_control_survives() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = esc(&all);
        assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f));
        assert!(!out.contains(['\u{85}', '\u{2028}', '\u{2029}']));
        let back: String = serde_json::from_str(&out).expect("valid JSON string");
        assert_eq!(back, all);
    }
}
