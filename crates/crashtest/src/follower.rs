//! A consumer of the changes feed beside the writers of `crashtest kill` and `power`: a named
//! consumer made from the beginning, reading through every round (pages from its own last
//! position, each acknowledged), cut with the server. After each restart it reads on from
//! where it was, and once caught up, what it built from the feed alone must be each
//! document as the store holds it:
//!
//! - an operation it was shown that the crash then lost leaves it ahead of the store (or
//!   its next position names a seq_no of another term: a 409), so the feed showed a write
//!   that was never durable;
//! - an acknowledged write it was never shown leaves it behind.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::request;

const CONSUMER: &str = "follower";

/// What the follower built, and where it is.
#[derive(Debug)]
pub(crate) struct Follower {
    index: String,
    /// The position after the last operation it was shown.
    since: String,
    /// Each document's latest operation it was shown: seq_no and token (`None`: a delete).
    latest: HashMap<String, (u64, Option<String>)>,
    /// Operations it was shown, re-deliveries included.
    pub(crate) read: u64,
}

impl Follower {
    /// Makes the consumer on `index`, from the beginning.
    pub(crate) fn create(addr: SocketAddr, index: &str) -> Result<Follower, String> {
        let body = json!({"since": "-1", "source": "crashtest follower"}).to_string();
        let path = format!("/{index}/_changes/consumer/{CONSUMER}");
        match request(addr, "PUT", &path, Some(&body)) {
            Some((201, _)) => Ok(Follower {
                index: index.to_owned(),
                since: "-1".into(),
                latest: HashMap::new(),
                read: 0,
            }),
            other => Err(format!("creating the consumer: {other:?}")),
        }
    }

    /// One page from where it is; `Ok(None)` when the server did not answer (it is being
    /// cut); an error when the feed refused the position (a history it showed was lost).
    fn page(&mut self, addr: SocketAddr) -> Result<Option<usize>, String> {
        let path = format!(
            "/{}/_changes?consumer={CONSUMER}&since={}&limit=500",
            self.index, self.since
        );
        let body = match request(addr, "GET", &path, None) {
            None => return Ok(None),
            Some((200, body)) => body,
            Some((status, body)) if status < 500 => {
                return Err(format!(
                    "the feed refused its position [{}]: {status} {body}",
                    self.since
                ));
            }
            Some(_) => return Ok(None),
        };
        let results = body["results"].as_array().cloned().unwrap_or_default();
        for entry in &results {
            self.apply(entry);
        }
        self.since = body["last_seq"].as_str().unwrap_or("-1").to_owned();
        let ack = json!({"position": self.since}).to_string();
        let path = format!("/{}/_changes/consumer/{CONSUMER}/_ack", self.index);
        let _ = request(addr, "POST", &path, Some(&ack));
        Ok(Some(results.len()))
    }

    fn apply(&mut self, entry: &Value) {
        let id = entry["_id"].as_str().unwrap_or("").to_owned();
        let seq_no = entry["_seq_no"].as_u64().unwrap_or(0);
        let token = (entry["op"] == "index")
            .then(|| entry["_source"]["token"].as_str().unwrap_or("").to_owned());
        self.read += 1;
        if self.latest.get(&id).is_none_or(|(seen, _)| seq_no > *seen) {
            self.latest.insert(id, (seq_no, token));
        }
    }

    /// Reads until `stop`, or until the server stops answering.
    pub(crate) fn follow(this: &Mutex<Follower>, addr: SocketAddr, stop: &AtomicBool) {
        let mut follower = this.lock().unwrap_or_else(|e| e.into_inner());
        while !stop.load(Ordering::Relaxed) {
            match follower.page(addr) {
                Ok(Some(0)) => std::thread::sleep(Duration::from_millis(5)),
                Ok(Some(_)) => {}
                // Cut, or refused: the check after the restart says which.
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// After a restart: reads on to the end, then holds every document as `found` says the
    /// store does (`id` to token and seq_no, `None` for none).
    pub(crate) fn check(
        &mut self,
        addr: SocketAddr,
        found: &HashMap<String, Option<(String, u64)>>,
    ) -> Result<(), String> {
        loop {
            match self.page(addr)? {
                Some(0) => break,
                Some(_) => {}
                None => return Err("the feed did not answer after the restart".into()),
            }
        }
        for (id, found) in found {
            let shown = self.latest.get(id);
            let agrees = match (found, shown) {
                (None, None | Some((_, None))) => true,
                (Some((token, seq_no)), Some((shown_seq, Some(shown_token)))) => {
                    shown_seq == seq_no && shown_token == token
                }
                _ => false,
            };
            if !agrees {
                return Err(format!(
                    "the feed showed [{id}] as {shown:?}, the store holds {found:?}"
                ));
            }
        }
        Ok(())
    }
}
