//! HTTP/1.1 clients for tests: [`HttpClient`] (reqwest) for well-formed requests, and
//! [`raw_request`] writing bytes to a TCP socket for the hostile ones that `http` refuses to
//! build (control characters, bare CR/LF, header lines in any order or number).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Per-request time limit of both clients.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response [`raw_request`] reads.
const MAX_RAW_RESPONSE: usize = 8 * 1024 * 1024;

/// A response: status, headers in arrival order (duplicates kept) and body.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Every value of header `name` (case-insensitive), as lossy strings.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The first value of header `name`, if any.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("{e}: {:?}", self.text()))
    }
}

/// A keep-alive client without proxies.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with [`REQUEST_TIMEOUT`] and no proxy.
    pub fn new() -> Self {
        let inner = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a plain HTTP reqwest client always builds");
        Self { inner }
    }

    /// `GET url` with `headers` (raw values; names may repeat, each becomes its own line).
    pub async fn get(&self, url: &str, headers: &[(&str, &[u8])]) -> Result<HttpResponse, String> {
        self.request("GET", url, headers).await
    }

    /// `<method> url` with `headers` and no body; `method` may be any token (`PURGE`, `X1`).
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &[u8])],
    ) -> Result<HttpResponse, String> {
        self.send(method, url, headers, None).await
    }

    /// `POST url` with `headers` and `body` (set `content-type` yourself).
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &[u8])],
        body: impl Into<Vec<u8>>,
    ) -> Result<HttpResponse, String> {
        self.send("POST", url, headers, Some(body.into())).await
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &[u8])],
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| format!("method {method:?}: {e}"))?;
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("header name {name:?}: {e}"))?;
            let value = reqwest::header::HeaderValue::from_bytes(value)
                .map_err(|e| format!("header value {value:?}: {e}"))?;
            map.append(name, value);
        }
        let mut builder = self.inner.request(method.clone(), url).headers(map);
        // Only when given: an empty body would still add `content-length: 0`.
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e:?}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{method} {url} body: {e:?}"))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// `GET url` with string headers.
    pub async fn get_with(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        let raw: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        self.get(url, &raw).await
    }

    /// `GET url` and the body as text; panics unless the status is 200.
    pub async fn get_text(&self, url: &str) -> String {
        let response = self.get(url, &[]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status, 200, "GET {url}: {}", response.text());
        response.text()
    }
}

/// Builds `GET <target> HTTP/1.1` with `Host`, `Connection: close` and `extra` header lines
/// written verbatim (each without its CRLF).
pub fn raw_get(addr: SocketAddr, target: &str, extra: &[&[u8]]) -> Vec<u8> {
    let mut req =
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for line in extra {
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// Writes `request` verbatim to a new connection, reads until the server closes it (the
/// request should say `Connection: close`, see [`raw_get`]) and parses the response.
pub async fn raw_request(addr: SocketAddr, request: &[u8]) -> Result<HttpResponse, String> {
    let io = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > MAX_RAW_RESPONSE {
                        return Err(format!("response larger than {MAX_RAW_RESPONSE} bytes"));
                    }
                    if response_complete(&buf) {
                        break;
                    }
                }
                // A reset after the full response (server closed with unread input) is fine.
                Err(e) if !buf.is_empty() => {
                    let _ = e;
                    break;
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(buf)
    };
    let buf = tokio::time::timeout(REQUEST_TIMEOUT, io)
        .await
        .map_err(|_| format!("no complete response from {addr} within {REQUEST_TIMEOUT:?}"))??;
    parse_response(&buf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `buf` holds a whole response with a Content-Length or chunked body.
fn response_complete(buf: &[u8]) -> bool {
    match parse_response(buf) {
        Ok(_) => {
            let Some(head_end) = find(buf, b"\r\n\r\n") else {
                return false;
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            head.contains("content-length:") || head.contains("transfer-encoding: chunked")
        }
        Err(_) => false,
    }
}

/// Parses an HTTP/1.1 response (Content-Length, chunked, or read-to-close body).
pub fn parse_response(buf: &[u8]) -> Result<HttpResponse, String> {
    let head_end = find(buf, b"\r\n\r\n").ok_or("incomplete response head")?;
    let head = &buf[..head_end];
    let rest = &buf[head_end + 4..];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = String::from_utf8_lossy(lines.next().ok_or("empty response")?).into_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| format!("bad header line {:?}", String::from_utf8_lossy(line)))?;
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((name, value));
    }
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| format!("bad content-length {len:?}"))?;
        if rest.len() < len {
            return Err(format!("body has {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    // Each iteration consumes one chunk, so this ends within data.len() steps.
    loop {
        let line_end = find(data, b"\r\n").ok_or("incomplete chunk size line")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("incomplete chunk".to_owned());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nhi")
                .expect("valid");
        assert_eq!((r.status, r.text().as_str()), (200, "hi"));
        assert_eq!(r.header_all("x-a"), ["1", "2"]);
        let r = parse_response(
            b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n",
        )
        .expect("valid");
        assert_eq!((r.status, r.text().as_str()), (500, "abcd"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi").is_err());
    }
}
