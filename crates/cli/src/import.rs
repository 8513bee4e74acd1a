//! `optimist import`: sends a `_bulk` NDJSON file to any Elasticsearch-compatible endpoint
//! (optimist, Elasticsearch, OpenSearch) in batches. Items refused with 429 (the cluster is
//! busy) are sent again after a pause, doubling up to a limit; every other per-item failure is
//! reported with its id, type and reason and counted.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tracing::{error, info};

/// Where to send and how.
pub(crate) struct Target {
    /// `http(s)://host:port`, without a trailing slash.
    pub(crate) url: String,
    /// Sets `_index` on every action (the URL's default index).
    pub(crate) index: Option<String>,
    /// `NAME:PASSWORD` for basic authentication.
    pub(crate) user: Option<String>,
    /// Actions per `_bulk` request.
    pub(crate) batch: usize,
    /// How many times a 429 is retried before the item counts as failed.
    pub(crate) retries: u32,
}

impl Target {
    /// `request` with the target's basic authentication, if it has a user.
    pub(crate) fn authorized<B>(
        &self,
        request: ureq::RequestBuilder<B>,
    ) -> ureq::RequestBuilder<B> {
        let Some(user) = &self.user else {
            return request;
        };
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(user);
        request.header("Authorization", &format!("Basic {token}"))
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Imported {
    pub(crate) sent: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) retried: u64,
    /// Of the failures, version conflicts: the target holds that version or a newer one.
    pub(crate) conflicts: u64,
    /// `id: type: reason` of the first failures (at most 100).
    pub(crate) failures: Vec<String>,
}

/// One action: its lines as they were in the file.
pub(crate) struct Action {
    pub(crate) lines: String,
}

/// Reads `input` action by action and sends it in batches; `progress` after each batch.
pub(crate) fn import(
    target: &Target,
    input: impl BufRead,
    mut progress: impl FnMut(&Imported),
) -> Result<Imported, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut done = Imported::default();
    let mut batch = Vec::with_capacity(target.batch);
    let mut lines = input.lines();
    let mut line_no = 0;
    while let Some(line) = lines.next() {
        let line = line.map_err(|e| format!("cannot read the input: {e}"))?;
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        let action: Value = serde_json::from_str(&line)
            .map_err(|e| format!("line {line_no}: not an action: {e}"))?;
        let op = action
            .as_object()
            .and_then(|a| a.keys().next())
            .ok_or(format!("line {line_no}: not an action"))?
            .clone();
        let mut text = match &target.index {
            Some(index) => {
                let mut action = action;
                action[&op]["_index"] = Value::String(index.clone());
                action.to_string()
            }
            None => line,
        };
        text.push('\n');
        if op != "delete" {
            let doc = lines
                .next()
                .ok_or(format!("line {line_no}: an action without its document"))?
                .map_err(|e| format!("cannot read the input: {e}"))?;
            line_no += 1;
            text.push_str(&doc);
            text.push('\n');
        }
        batch.push(Action { lines: text });
        if batch.len() == target.batch {
            send(&agent, target, std::mem::take(&mut batch), &mut done)?;
            progress(&done);
        }
    }
    if !batch.is_empty() {
        send(&agent, target, batch, &mut done)?;
        progress(&done);
    }
    Ok(done)
}

pub(crate) fn send(
    agent: &ureq::Agent,
    target: &Target,
    mut actions: Vec<Action>,
    done: &mut Imported,
) -> Result<(), String> {
    done.sent += actions.len() as u64;
    let mut pause = Duration::from_millis(100);
    for attempt in 0..=target.retries {
        let body: String = actions.iter().map(|a| a.lines.as_str()).collect();
        let request = agent
            .post(&format!("{}/_bulk", target.url))
            .header("Content-Type", "application/x-ndjson");
        let request = target.authorized(request);
        let mut response = request
            .send(body.as_bytes())
            .map_err(|e| format!("{}: {e}", target.url))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{}: {e}", target.url))?;
        if status == 429 && attempt < target.retries {
            done.retried += actions.len() as u64;
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(10));
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(format!("{}/_bulk answered {status}: {text}", target.url));
        }
        let answer: Value =
            serde_json::from_str(&text).map_err(|e| format!("not a bulk answer: {e}"))?;
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        let again = account(actions, &items, attempt < target.retries, done);
        if again.is_empty() {
            return Ok(());
        }
        done.retried += again.len() as u64;
        actions = again;
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(10));
    }
    Ok(())
}

/// Counts each item's outcome; returns the actions refused with 429, to send again if
/// `retry`.
fn account(actions: Vec<Action>, items: &[Value], retry: bool, done: &mut Imported) -> Vec<Action> {
    let mut again = Vec::new();
    for (action, item) in actions.into_iter().zip(items) {
        let result = item.as_object().and_then(|o| o.values().next()).cloned();
        let result = result.unwrap_or(Value::Null);
        let status = result["status"].as_u64().unwrap_or(0);
        if status == 429 && retry {
            again.push(action);
        } else if result.get("error").is_some() {
            done.failed += 1;
            if result["error"]["type"] == "version_conflict_engine_exception" {
                done.conflicts += 1;
            }
            if done.failures.len() < 100 {
                done.failures.push(format!(
                    "{}: {}: {}",
                    result["_id"].as_str().unwrap_or("?"),
                    result["error"]["type"].as_str().unwrap_or("?"),
                    result["error"]["reason"].as_str().unwrap_or("?"),
                ));
            }
        } else {
            done.succeeded += 1;
        }
    }
    again
}

/// Send a _bulk NDJSON file to an Elasticsearch-compatible endpoint, in batches.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where to send it, e.g. http://127.0.0.1:9200.
    #[arg(long)]
    url: String,
    /// Put every document in this index (else each action's own `_index`).
    #[arg(long)]
    index: Option<String>,
    /// NAME:PASSWORD for basic authentication.
    #[arg(long)]
    user: Option<String>,
    /// Actions per _bulk request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// The NDJSON file.
    file: PathBuf,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        let target = Target {
            url: self.url.trim_end_matches('/').to_owned(),
            index: self.index,
            user: self.user,
            batch: self.batch.max(1),
            retries: 8,
        };
        run(&target, &self.file)
    }
}

// The file to import is input, not storage: it is read, never written.
#[allow(clippy::disallowed_types)]
fn run(target: &Target, file: &std::path::Path) -> Result<(), String> {
    let input = std::fs::File::open(file)
        .map(std::io::BufReader::new)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut progress = crate::progress::Progress::new("import", None);
    let done = import(target, input, |d| progress.update(d.sent))?;
    progress.finish(done.sent);
    for failure in &done.failures {
        error!("failed: {failure}");
    }
    info!(
        sent = done.sent,
        succeeded = done.succeeded,
        failed = done.failed,
        retried = done.retried,
        "imported"
    );
    if done.failed > 0 {
        return Err(format!("{} of {} documents failed", done.failed, done.sent));
    }
    Ok(())
}
