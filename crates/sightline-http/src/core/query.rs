//! `url.query` with the values of sensitive parameters replaced by `REDACTED`, as the HTTP
//! semantic conventions ask.

/// The query with every value of a parameter named in `sensitive` (case-insensitively)
/// replaced by `REDACTED`; other bytes are kept as they were sent.
pub(crate) fn redact(query: &str, sensitive: &[Box<str>]) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_sensitive(name, sensitive) => {
                out.push_str(name);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

/// Whether `name`, percent-decoded, is one of `sensitive` (ASCII case-insensitively): a
/// server decodes `pass%77ord` to `password`, so the redaction must too.
fn is_sensitive(name: &str, sensitive: &[Box<str>]) -> bool {
    sensitive.iter().any(|s| {
        let mut wanted = s.bytes();
        let mut decoded = PercentDecoded(name.as_bytes());
        loop {
            match (wanted.next(), decoded.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
                _ => return false,
            }
        }
    })
}

/// The bytes of a query component with `%XX` escapes decoded (a malformed escape is kept as
/// it is), without allocating.
struct PercentDecoded<'a>(&'a [u8]);

impl Iterator for PercentDecoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let hex = |b: u8| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        match *self.0 {
            [b'%', hi, lo, ref rest @ ..] if hex(hi).is_some() && hex(lo).is_some() => {
                self.0 = rest;
                Some(hex(hi)? << 4 | hex(lo)?)
            }
            [b, ref rest @ ..] => {
                self.0 = rest;
                Some(b)
            }
            [] => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_only_sensitive_values() {
        let sensitive: Vec<Box<str>> = vec!["sig".into(), "token".into()];
        assert_eq!(
            redact("a=1&sig=abc&b=2", &sensitive),
            "a=1&sig=REDACTED&b=2"
        );
        assert_eq!(redact("TOKEN=x&token", &sensitive), "TOKEN=REDACTED&token");
        assert_eq!(redact("", &sensitive), "");
        assert_eq!(redact("q=%20&&x", &sensitive), "q=%20&&x");
    }

    #[test]
    fn percent_encoded_names_are_decoded_before_comparing() {
        let sensitive: Vec<Box<str>> = vec!["password".into(), "sig".into()];
        assert_eq!(
            redact("pass%77ord=hunter2&%73%69%67=abc&q=1", &sensitive),
            "pass%77ord=REDACTED&%73%69%67=REDACTED&q=1"
        );
        assert_eq!(redact("PASS%57ORD=x", &sensitive), "PASS%57ORD=REDACTED");
        // Malformed escapes are compared as sent and match nothing here.
        assert_eq!(
            redact("sig%=x&si%g=y&sig%2=z", &sensitive),
            "sig%=x&si%g=y&sig%2=z"
        );
    }
}
