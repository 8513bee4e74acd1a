//! Requests refused from their head before any handler runs, answered as Elasticsearch's HTTP
//! layer (Netty's decoder in front of it) answers them, with its JSON error body:
//!
//! - A request line over `http.max_initial_line_length` (4 KiB): 400
//!   `too_long_http_line_exception`, `An HTTP line is larger than 4096 bytes.`, checked in
//!   the service (`line_too_long`).
//! - What hyper refuses itself before the service sees a request (a URI over its own bound
//!   of 64 KiB, a head over `HEAD_LEN_MAX`, bytes that are not HTTP such as a raw NUL in the path):
//!   hyper writes an empty 400, 414 or 431 and closes. `EsRefusals`, around the connection's
//!   stream, replaces that answer with Elasticsearch's (`too_long_http_line_exception`,
//!   `too_long_http_header_exception`, or `illegal_argument_exception`), status 400 as
//!   Elasticsearch gives for each. The service's own answers are never empty 400s, so only
//!   hyper's are recognised.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::es::{EsError, Exception};

/// Elasticsearch's `http.max_initial_line_length`.
pub(crate) const LINE_LEN_MAX: usize = 4096;

/// The most a request's head may hold (hyper's read buffer): hyper answers 431 past it.
pub(crate) const HEAD_LEN_MAX: usize = 64 * 1024 + 8 * 1024;

/// The request line's length, as Netty measures it (without its CRLF), if over `LINE_LEN_MAX`.
pub(crate) fn line_too_long(method: &str, target_len: usize) -> Option<EsError> {
    let len = method.len() + 1 + target_len + 1 + "HTTP/1.1".len();
    (len > LINE_LEN_MAX).then(line_too_long_error)
}

fn line_too_long_error() -> EsError {
    EsError::bad_request(
        Exception::TooLongHttpLine,
        format!("An HTTP line is larger than {LINE_LEN_MAX} bytes."),
    )
}

/// Elasticsearch's answer for a status hyper wrote for a head it could not take.
fn es_answer(status: &[u8]) -> Option<EsError> {
    match status {
        b"414" => Some(line_too_long_error()),
        b"431" => Some(EsError::bad_request(
            Exception::TooLongHttpHeader,
            format!("HTTP header is larger than {HEAD_LEN_MAX} bytes."),
        )),
        b"400" => Some(EsError::illegal_argument(
            "the request is not valid HTTP/1.1: its request line or a header could not be \
             parsed (a byte not allowed there, such as a raw NUL in the path)",
        )),
        _ => None,
    }
}

/// The replacement for `head` if it is hyper's own empty 400, 414 or 431.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let status = head.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let error = es_answer(status)?;
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    if !text.ends_with("\r\n\r\n") || !text.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let body = error.body_text(false);
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    Some(response.into_bytes())
}

/// A connection's stream that puts Elasticsearch's answer in place of hyper's empty
/// refusals (module docs). Reads pass through.
pub(crate) struct EsRefusals<T> {
    inner: T,
    /// A replacement being written, how much of it is written, and the length of hyper's
    /// bytes it stands for (reported written once the replacement is).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<T> EsRefusals<T> {
    pub(crate) fn new(inner: T) -> Self {
        EsRefusals {
            inner,
            replacing: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> EsRefusals<T> {
    /// Writes the rest of the replacement; the length of hyper's bytes once done.
    fn poll_replacing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let (bytes, written, stands_for) = self.replacing.as_mut().expect("replacing");
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(*stands_for))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EsRefusals<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EsRefusals<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none()
            && let Some(bytes) = replacement(buf)
        {
            self.replacing = Some((bytes, 0, buf.len()));
        }
        if self.replacing.is_some() {
            return self.poll_replacing(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Hyper's refusal is a head alone, in the first slice.
        let first = bufs.iter().find(|b| !b.is_empty());
        if self.replacing.is_none()
            && bufs.iter().filter(|b| !b.is_empty()).count() == 1
            && let Some(bytes) = first.and_then(|b| replacement(b))
        {
            let len = first.map_or(0, |b| b.len());
            self.replacing = Some((bytes, 0, len));
        }
        if self.replacing.is_some() {
            return self.poll_replacing(cx);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_empty_refusals_are_replaced() {
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let replaced = String::from_utf8(replacement(hyper_400).unwrap()).unwrap();
        assert!(
            replaced.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{replaced}"
        );
        assert!(
            replaced.contains(r#""type":"illegal_argument_exception""#),
            "{replaced}"
        );
        let body = replaced.split("\r\n\r\n").nth(1).unwrap();
        assert!(replaced.contains(&format!("content-length: {}\r\n", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 400);
        let uri = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(
            String::from_utf8(replacement(uri).unwrap())
                .unwrap()
                .contains(r#""reason":"An HTTP line is larger than 4096 bytes.""#)
        );
        // The service's own answers: a body, or another status.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 87\r\n\r\n";
        assert!(replacement(ours).is_none());
        assert!(
            replacement(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n").is_none()
        );
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
        assert_eq!(line_too_long("GET", 4096 - 13), None);
        assert_eq!(
            line_too_long("GET", 4096 - 12).unwrap().exception,
            Exception::TooLongHttpLine
        );
    }
}
