//! Requests to the server under test, over `testkit`'s client: a fresh connection per
//! request, with timeouts, so a request to a server that dies mid-way fails instead of
//! hanging, and its outcome is then unknown.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// (status, JSON body), or `None` when no whole answer came back.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Option<(u16, Value)> {
    let timeout = Duration::from_secs(10);
    let answer =
        testkit::exchange(addr, method, path, &[], body.map(str::as_bytes), timeout).ok()?;
    if !answer.complete {
        return None;
    }
    let value = if answer.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&answer.body).ok()?
    };
    Some((answer.status, value))
}
