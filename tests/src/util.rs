//! Small helpers every suite needs: free ports, temporary directories, random W3C ids and
//! bounded polling.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
///
/// The port is found by binding `127.0.0.1:0` and closing the listener again, so another
/// process could take it in between; for the few processes a test starts that is good enough,
/// and every user of the port fails loudly if it is taken.
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0 must work");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// A free `127.0.0.1:<port>` address (see [`free_port`]).
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// A directory under the system temporary directory, removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/sightline-<prefix>-<uuid>`.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "sightline-{prefix}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temporary directory {path:?}: {e}"));
        Self { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in /tmp is not worth a panic while unwinding.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A random, valid (not all-zero) W3C trace id: 32 lowercase hex digits.
pub fn random_trace_id() -> String {
    loop {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if id.bytes().any(|b| b != b'0') {
            return id;
        }
    }
}

/// A random, valid (not all-zero) W3C parent/span id: 16 lowercase hex digits.
pub fn random_span_id() -> String {
    random_trace_id()[..16].to_owned()
}

/// Whether `s` is `len` lowercase hex digits, not all zero (a valid W3C trace or span id).
pub fn is_valid_hex_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for query parameters).
pub fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Polls `check` every `every` until it returns `Some`, or returns `None` once `timeout` has
/// passed (the check runs at least once, and once more at the deadline).
pub async fn poll_until<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(every.min(deadline - now)).await;
    }
}

/// Blocking version of [`poll_until`] for code that runs outside a runtime.
pub fn poll_until_blocking<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid() {
        for _ in 0..100 {
            assert!(is_valid_hex_id(&random_trace_id(), 32));
            assert!(is_valid_hex_id(&random_span_id(), 16));
        }
        assert!(!is_valid_hex_id(&"0".repeat(32), 32));
        assert!(!is_valid_hex_id(&"A".repeat(32), 32));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(
            percent_encode(r#"sum(x{a="/u/{id}"})"#),
            "sum%28x%7Ba%3D%22%2Fu%2F%7Bid%7D%22%7D%29"
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");
    }
}
