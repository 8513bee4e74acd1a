//! A minimal HTTP/1.1 client: one request over a fresh connection (`Connection: close`),
//! the answer read to the end, with timeouts, so that a request to a server that dies or
//! stalls mid-way fails instead of hanging. It shows what came back as it came (status,
//! headers, body), and whether the answer was whole: for a harness that must tell an
//! acknowledged write from one whose outcome is unknown.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// How long `send_to` waits for a step (connect, write, each read) before it gives up.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names lower-cased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the whole body came: as long as its `Content-Length`, or chunked to its last
    /// chunk. An answer without either (a connection closed after the head) is not whole.
    pub complete: bool,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, `Null` if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, lossily.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request to `addr` (a JSON Content-Type is added to a body unless `headers`
/// has one), each step within `timeout`. The body is sent whole unless the server closes
/// first (it may answer 413 before reading it); whatever came back is parsed. An error if
/// no connection was made, the head could not be sent, or no response head came back.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request_head(method, path, headers, body).as_bytes())?;
    if let Some(body) = body {
        let _ = stream.write_all(body);
    }
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    match parse_response(&raw, method == "HEAD") {
        Some(response) => Ok(response),
        None => Err(read.err().unwrap_or_else(|| {
            let shown = String::from_utf8_lossy(&raw).into_owned();
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no response head in {shown:?}"),
            )
        })),
    }
}

/// `exchange` for a test: the response, or a panic naming the request.
pub fn send_to(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    exchange(addr, method, path, headers, body, TEST_TIMEOUT)
        .unwrap_or_else(|e| panic!("{method} {path} to {addr}: {e}"))
}

fn request_head(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_type = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if let Some(body) = body {
        if !has_type {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head
}

fn parse_response(raw: &[u8], head_only: bool) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.get(9..12)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let value = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let chunked = value("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: Option<usize> = value("content-length").and_then(|v| v.parse().ok());
    let (body, complete) = if head_only {
        (Vec::new(), true)
    } else if chunked {
        dechunk(rest)
    } else if let Some(length) = length {
        (
            rest[..rest.len().min(length)].to_vec(),
            rest.len() >= length,
        )
    } else {
        (rest.to_vec(), false)
    };
    Some(Response {
        status,
        headers,
        body,
        complete,
    })
}

/// The body of a chunked answer, and whether its last chunk came.
fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(size) = size else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let Some(chunk) = data.get(end + 2..end + 2 + size) else {
            out.extend_from_slice(&data[(end + 2).min(data.len())..]);
            return (out, false);
        };
        out.extend_from_slice(chunk);
        data = data.get(end + 2 + size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_cut_answers_are_told_apart() {
        let whole = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", false);
        let whole = whole.unwrap();
        assert!(whole.complete && whole.body == b"{}");
        let cut = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}", false);
        assert!(!cut.unwrap().complete);
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let chunked = parse_response(chunked, false).unwrap();
        assert!(chunked.complete && chunked.body == b"{}");
        let open = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n";
        assert!(!parse_response(open, false).unwrap().complete);
        assert!(parse_response(b"HTTP/1.1 20", false).is_none());
    }
}
