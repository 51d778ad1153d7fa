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

fn is_sensitive(name: &str, sensitive: &[Box<str>]) -> bool {
    sensitive.iter().any(|s| s.eq_ignore_ascii_case(name))
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
}
