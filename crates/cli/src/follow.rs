//! `optimist follow`: keeps an index of another Elasticsearch-compatible cluster (a real
//! Elasticsearch or OpenSearch, or another optimist) in sync with an index of a running
//! optimist, through its changes feed. A named consumer on the source (made from the
//! beginning the first time: the compacted view, then the history) is read page by page;
//! each page goes to the target's `_bulk` with the documents' own versions
//! (`version_type: external`, as `optimist export` writes them), and is acknowledged once
//! the target took it. A page sent twice (after a crash of either side) is refused by the
//! target as a version conflict and changes nothing, so a restart resumes where the last
//! acknowledgement left off.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::info;

use crate::import::{self, Action, Imported, Target};

/// Follow an index of a running optimist into another cluster, as its changes come.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The optimist to read from, e.g. http://127.0.0.1:9200.
    #[arg(long)]
    from: String,
    /// The index to follow.
    #[arg(long)]
    index: String,
    /// Where to write, e.g. https://es.example:9200.
    #[arg(long)]
    to: String,
    /// The target's index (default: the same name).
    #[arg(long)]
    to_index: Option<String>,
    /// NAME:PASSWORD for the target's basic authentication.
    #[arg(long)]
    to_user: Option<String>,
    /// The consumer's id on the source (its retention lease keeps what is not yet copied).
    #[arg(long, default_value = "optimist-follow")]
    consumer: String,
    /// Stop once caught up, instead of waiting for more.
    #[arg(long)]
    once: bool,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        let from = self.from.trim_end_matches('/').to_owned();
        let target = Target {
            url: self.to.trim_end_matches('/').to_owned(),
            index: None,
            user: self.to_user.clone(),
            batch: 1_000,
            retries: 8,
        };
        let to_index = self.to_index.clone().unwrap_or_else(|| self.index.clone());
        let follow = Follow {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            from,
            index: self.index,
            consumer: self.consumer,
            to_index,
        };
        follow.ensure_consumer()?;
        follow.ensure_target_index(&target)?;
        let copied = follow.run(&target, self.once)?;
        info!(
            copied = copied.succeeded,
            already_there = copied.conflicts,
            "caught up"
        );
        Ok(())
    }
}

struct Follow {
    agent: ureq::Agent,
    from: String,
    index: String,
    consumer: String,
    to_index: String,
}

impl Follow {
    /// A request to the source: status and JSON body.
    fn source(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.from);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .map_err(|e| format!("{url}: {e}"))?;
        let mut response = self.agent.run(request).map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// The consumer, made from the beginning if it is not there.
    fn ensure_consumer(&self) -> Result<(), String> {
        let path = format!("/{}/_changes/consumer/{}", self.index, self.consumer);
        match self.source("GET", &path, None)? {
            (200, _) => return Ok(()),
            (404, body) if body["error"]["type"] == "retention_lease_not_found_exception" => {}
            (status, body) => return Err(format!("{path}: {status} {body}")),
        }
        let made =
            json!({"since": "-1", "source": format!("optimist follow to {}", self.to_index)});
        match self.source("PUT", &path, Some(made))? {
            (201, _) => Ok(()),
            (status, body) => Err(format!("{path}: {status} {body}")),
        }
    }

    /// The target's index, made if it is not there: a delete (the compacted view starts with
    /// some) does not make one.
    fn ensure_target_index(&self, target: &Target) -> Result<(), String> {
        let url = format!("{}/{}", target.url, self.to_index);
        let request = self
            .agent
            .put(&url)
            .header("Content-Type", "application/json");
        let request = target.authorized(request);
        let mut response = request.send("{}").map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 => Ok(()),
            400 if text.contains("resource_already_exists_exception") => Ok(()),
            _ => Err(format!("{url}: {status} {text}")),
        }
    }

    /// Pages to the target until caught up (`once`) or for ever.
    fn run(&self, target: &Target, once: bool) -> Result<Imported, String> {
        let mut done = Imported::default();
        loop {
            let feed = if once { "normal" } else { "longpoll" };
            let path = format!(
                "/{}/_changes?consumer={}&limit=1000&feed={feed}&timeout=30s",
                self.index, self.consumer
            );
            let (status, page) = self.source("GET", &path, None)?;
            if status != 200 {
                return Err(format!("{path}: {status} {page}"));
            }
            let results = page["results"].as_array().cloned().unwrap_or_default();
            if results.is_empty() && once {
                return Ok(done);
            }
            if !results.is_empty() {
                let actions = results.iter().map(|e| self.action(e)).collect();
                let failed = (done.failed, done.conflicts);
                import::send(&self.agent, target, actions, &mut done)?;
                let refused = (done.failed - failed.0) - (done.conflicts - failed.1);
                if refused > 0 {
                    return Err(format!(
                        "the target refused {refused} of the page's writes: {:?}",
                        done.failures
                    ));
                }
            }
            let ack = json!({"position": page["last_seq"]});
            let path = format!("/{}/_changes/consumer/{}/_ack", self.index, self.consumer);
            match self.source("POST", &path, Some(ack))? {
                (200, _) => {}
                (status, body) => return Err(format!("{path}: {status} {body}")),
            }
            if results.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// A change as a `_bulk` action with its version, external.
    fn action(&self, entry: &Value) -> Action {
        let meta = json!({
            "_index": self.to_index,
            "_id": entry["_id"],
            "version": entry["_version"],
            "version_type": "external",
        });
        let lines = match entry["op"].as_str() {
            Some("delete") => format!("{}\n", json!({ "delete": meta })),
            _ => format!("{}\n{}\n", json!({ "index": meta }), entry["_source"]),
        };
        Action { lines }
    }
}
