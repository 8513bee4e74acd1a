//! `crashtest kill`: rounds of concurrent clients against the real server, each round ended
//! by SIGKILL at a random moment, then a restart on the same data directory and a check of
//! every acknowledged write (see the crate's documentation for the invariants).
//!
//! Every write carries a unique token in its source, so the document found after a restart
//! names the write it came from: an acknowledged one (its stamp must match), or one sent
//! whose answer never came (allowed: it may or may not have landed).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wal::sim::Rng;

use crate::follower::Follower;
use crate::http::request;
use crate::process::Server;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub binary: PathBuf,
    pub rounds: u64,
    pub seed: u64,
    pub clients: u64,
    /// `index.translog.durability: async`: acknowledged writes may be lost in a crash.
    pub async_durability: bool,
    /// Where the data directory and the server's log go.
    pub work_dir: PathBuf,
}

/// What a run checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub rounds: u64,
    /// Acknowledged writes whose outcome was checked after a crash.
    pub acknowledged: u64,
    /// Acknowledged writes not found after the crash (allowed only with async durability).
    pub lost: u64,
    /// Conditional writes on surviving stamps that succeeded once and then got 409.
    pub surviving_stamps: u64,
    /// Conditional writes on stamps lost in the crash that got 409.
    pub lost_stamps: u64,
    /// Compactions the servers logged: a crash during one is among the cuts only if some ran.
    pub compactions: u64,
    /// Operations the changes feed's follower was shown (`follower.rs`), re-deliveries
    /// included; after every restart it held each document as the store did.
    pub followed: u64,
}

const IDS: u64 = 16;
const INDEX: &str = "crash";

/// The stamp of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    seq_no: u64,
    term: u64,
}

/// What is known of one id since the last check: what the check found, the writes
/// acknowledged (the check's own write first), and the writes sent whose answer never came.
#[derive(Clone, Debug, Default)]
struct Known {
    /// The token and stamp the last check found, durable since that recovery. With `async`
    /// durability every later write may be lost at the next cut, the check's own included,
    /// and the document is then back at exactly this.
    found: Option<(String, Stamp)>,
    /// `(token, stamp)`; `token` is `None` for a delete.
    acked: Vec<(Option<String>, Stamp)>,
    /// Tokens of unanswered index and update writes.
    unanswered: Vec<String>,
    /// Whether an unanswered delete was sent.
    unanswered_delete: bool,
}

#[derive(Default)]
struct History {
    ids: HashMap<String, Known>,
    max_term: u64,
}

/// Runs the rounds, each ended by SIGKILL; `Err` names the first violation, with the seed.
pub fn run(options: &Options) -> Result<Figures, String> {
    with_kills(options, |data, cut| run_with(options, data, cut))
}

/// Runs `rounds` (this file's or lifecycle.rs's) on a data directory in the work directory,
/// each round's cut a SIGKILL.
pub(crate) fn with_kills<T>(
    options: &Options,
    rounds: impl FnOnce(
        &std::path::Path,
        &mut dyn FnMut(&mut Server) -> Result<(), String>,
    ) -> Result<T, String>,
) -> Result<T, String> {
    std::fs::create_dir_all(&options.work_dir).map_err(|e| e.to_string())?;
    let data = options.work_dir.join("data");
    rounds(&data, &mut |server: &mut Server| {
        server.kill();
        Ok(())
    })
}

/// Runs the rounds on `data`, each ended by `cut`, which must leave the server dead (and may
/// do more to the storage beneath it: `crashtest power` cuts the power).
pub(crate) fn run_with(
    options: &Options,
    data: &std::path::Path,
    mut cut: impl FnMut(&mut Server) -> Result<(), String>,
) -> Result<Figures, String> {
    let log = options.work_dir.join("server.log");
    let log_from = std::fs::metadata(&log).map_or(0, |m| m.len());
    let mut rng = Rng::new(options.seed);
    let history = Arc::new(Mutex::new(History::default()));
    let mut figures = Figures::default();
    let mut server = Server::start(&options.binary, data, &log)?;
    let settings = if options.async_durability {
        json!({"settings": {"index.translog.durability": "async", "index.translog.sync_interval": "100ms"}})
    } else {
        json!({})
    };
    match request(
        server.addr,
        "PUT",
        &format!("/{INDEX}"),
        Some(&settings.to_string()),
    ) {
        Some((200, _)) => {}
        other => return Err(format!("creating the index: {other:?}")),
    }
    let follower = Arc::new(Mutex::new(Follower::create(server.addr, INDEX)?));
    for round in 0..options.rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let following = {
            let (follower, stop, addr) = (follower.clone(), stop.clone(), server.addr);
            std::thread::spawn(move || Follower::follow(&follower, addr, &stop))
        };
        let workers: Vec<_> = (0..options.clients)
            .map(|c| {
                let (history, stop, addr) = (history.clone(), stop.clone(), server.addr);
                let seed = rng.next_u64();
                std::thread::spawn(move || client(addr, round, c, seed, &history, &stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + rng.below(250)));
        cut(&mut server).map_err(|e| format!("round {round}: the cut failed: {e}"))?;
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            let _ = worker.join();
        }
        let _ = following.join();
        server = Server::start(&options.binary, data, &log)
            .map_err(|e| format!("round {round} (seed {}): {e}", options.seed))?;
        let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
        check(&server, &mut h, options, &mut figures)
            .map_err(|v| format!("round {round} (seed {}): {v}", options.seed))?;
        let mut follower = follower.lock().unwrap_or_else(|e| e.into_inner());
        check_follower(&server, &h, &mut follower)
            .map_err(|v| format!("round {round} (seed {}): {v}", options.seed))?;
        figures.followed = follower.read;
        figures.rounds += 1;
        // A long run shows where it is, so a run cut short still tells what it checked.
        if figures.rounds % (options.rounds / 100).max(10) == 0 {
            println!(
                "  {} rounds: {} acknowledged writes checked, {} lost",
                figures.rounds, figures.acknowledged, figures.lost
            );
        }
    }
    figures.compactions = crate::process::log_lines_since(&log, log_from, " compacted ")?;
    Ok(figures)
}

/// One client of a round: random writes (index, a conditional write on the stamp just read,
/// an update with `retry_on_conflict`, a delete), each recorded as unanswered before it is
/// sent and filed by its answer after.
///
/// Over 70 lines: the choice, the record before and the filing after share the history's
/// lock discipline; split, each piece would restate it.
fn client(
    addr: std::net::SocketAddr,
    round: u64,
    c: u64,
    seed: u64,
    history: &Mutex<History>,
    stop: &AtomicBool,
) {
    let mut rng = Rng::new(seed);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("d{}", rng.below(IDS));
        let token = format!("r{round}c{c}n{n}");
        let body = json!({"token": token}).to_string();
        let kind = rng.below(10);
        let (method, path, body, delete) = match kind {
            0..=3 => ("PUT", format!("/{INDEX}/_doc/{id}"), Some(body), false),
            4..=6 => {
                // A conditional write on the stamp just read.
                let Some((200, doc)) = request(addr, "GET", &format!("/{INDEX}/_doc/{id}"), None)
                else {
                    continue;
                };
                let path = format!(
                    "/{INDEX}/_doc/{id}?if_seq_no={}&if_primary_term={}",
                    doc["_seq_no"], doc["_primary_term"]
                );
                ("PUT", path, Some(body), false)
            }
            7..=8 => {
                let update = json!({"doc": {"token": token}, "doc_as_upsert": true}).to_string();
                (
                    "POST",
                    format!("/{INDEX}/_update/{id}?retry_on_conflict=10"),
                    Some(update),
                    false,
                )
            }
            _ => ("DELETE", format!("/{INDEX}/_doc/{id}"), None, true),
        };
        {
            let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
            let known = h.ids.entry(id.clone()).or_default();
            if delete {
                known.unanswered_delete = true;
            } else {
                known.unanswered.push(token.clone());
            }
        }
        let answer = request(addr, method, &path, body.as_deref());
        let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
        let known = h.ids.entry(id.clone()).or_default();
        let acked = match &answer {
            Some((200 | 201, v)) => Some(v.clone()),
            // A delete of a missing document is a write too: it has a seq_no.
            Some((404, v)) if delete && v.get("_seq_no").is_some() => Some(v.clone()),
            _ => None,
        };
        let Some(v) = acked else {
            // No answer, or a failure (5xx, the storage failed under it): unknown. Refused
            // (409, 404, 4xx): it did not happen.
            let refused = matches!(&answer, Some((status, _)) if (400..500).contains(status));
            if refused && !delete {
                known.unanswered.retain(|t| *t != token);
            }
            continue;
        };
        let stamp = stamp_of(&v);
        let noop = v["result"] == "noop";
        let token = (!delete).then_some(token);
        if !delete {
            known.unanswered.retain(|t| Some(t) != token.as_ref());
        }
        if noop {
            continue;
        }
        known.acked.push((token, stamp));
        h.max_term = h.max_term.max(stamp.term);
    }
}

/// After a restart: every id against what was acknowledged; the new term; stamps.
///
/// The document found is the last operation applied to its id, so every acknowledged write
/// with a higher seq_no was lost. A missing document is the work of a delete: acknowledged
/// (then only writes after it count as lost) or unanswered (then nothing can be called lost).
fn check(
    server: &Server,
    h: &mut History,
    options: &Options,
    figures: &mut Figures,
) -> Result<(), String> {
    let addr = server.addr;
    let term = stats_term(addr)?;
    if term <= h.max_term {
        return Err(format!(
            "primary term {term} after the restart, not above {}",
            h.max_term
        ));
    }
    let ids: Vec<String> = h.ids.keys().cloned().collect();
    let mut prefix = Prefix::default();
    for id in ids {
        let found = fetch(addr, &id)?;
        let known = h.ids.get_mut(&id).expect("listed");
        figures.acknowledged += known.acked.len() as u64;
        let lost = lost_writes(&id, known, &found)?;
        prefix.note(&id, &found, &lost, h.max_term);
        if !lost.is_empty() {
            if !options.async_durability {
                return Err(format!(
                    "{id}: acknowledged writes lost: {lost:?}; found {found:?}"
                ));
            }
            figures.lost += lost.len() as u64;
            refuse_lost_stamp(addr, &id, &lost)?;
            figures.lost_stamps += 1;
        }
        // The surviving stamp still works, once; that write starts the next round's record.
        let mut next = Known {
            found: found.clone(),
            ..Known::default()
        };
        if let Some((_, stamp)) = &found {
            let token = format!("check-{}-{id}", figures.rounds);
            let written = write_once_on(addr, &id, *stamp, &token, term)?;
            figures.surviving_stamps += 1;
            next.acked.push((Some(token), written));
        }
        *known = next;
    }
    prefix.check()?;
    h.max_term = term;
    Ok(())
}

/// The follower, caught up, against every document as the store holds it now.
fn check_follower(server: &Server, h: &History, follower: &mut Follower) -> Result<(), String> {
    // With async durability the check's own writes are not durable yet, so not shown yet.
    match request(server.addr, "POST", &format!("/{INDEX}/_flush"), None) {
        Some((200, _)) => {}
        other => return Err(format!("flush before the follower's check: {other:?}")),
    }
    let mut found = HashMap::new();
    for id in h.ids.keys() {
        let now = fetch(server.addr, id)?.map(|(token, stamp)| (token, stamp.seq_no));
        found.insert(id.clone(), now);
    }
    follower.check(server.addr, &found)
}

/// The document of `id` now: its token and stamp, or `None` if there is none.
fn fetch(addr: SocketAddr, id: &str) -> Result<Option<(String, Stamp)>, String> {
    match request(addr, "GET", &format!("/{INDEX}/_doc/{id}"), None) {
        Some((200, d)) => Ok(Some((
            d["_source"]["token"].as_str().unwrap_or("").to_owned(),
            stamp_of(&d),
        ))),
        Some((404, _)) => Ok(None),
        other => Err(format!("GET {id}: {other:?}")),
    }
}

/// The acknowledged writes of `id` that are lost, given what was found: every one above the
/// found document's seq_no; for a missing document, every one after the last acknowledged
/// delete. An error if what was found was never sent, or vanished without a delete.
fn lost_writes(
    id: &str,
    known: &Known,
    found: &Option<(String, Stamp)>,
) -> Result<Vec<Stamp>, String> {
    let Some((token, stamp)) = found else {
        if known.unanswered_delete {
            return Ok(Vec::new());
        }
        if known.found.is_some() && !known.acked.iter().any(|(t, _)| t.is_none()) {
            return Err(format!(
                "{id}: found as {:?} at the last check, gone now without a delete",
                known.found
            ));
        }
        let last_delete = known
            .acked
            .iter()
            .filter(|(t, _)| t.is_none())
            .map(|(_, s)| s.seq_no)
            .max();
        return Ok(known
            .acked
            .iter()
            .filter(|(t, s)| t.is_some() && last_delete.is_none_or(|d| s.seq_no > d))
            .map(|(_, s)| *s)
            .collect());
    };
    let sent = known
        .acked
        .iter()
        .find(|(t, _)| t.as_deref() == Some(token.as_str()));
    match sent {
        Some((_, acked)) if acked != stamp => {
            return Err(format!(
                "{id}: [{token}] was acknowledged as {acked:?} and is found as {stamp:?}"
            ));
        }
        Some(_) => {}
        None if known.unanswered.contains(token) => {}
        None if known.found.as_ref() == Some(&(token.clone(), *stamp)) => {}
        None => {
            return Err(format!(
                "{id} holds [{token}] at {stamp:?}: no write sent it, or it was refused"
            ));
        }
    }
    Ok(known
        .acked
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| s.seq_no > stamp.seq_no)
        .collect())
}

/// A stamp that did not survive matches nothing now: a write on the newest lost one is 409.
fn refuse_lost_stamp(addr: SocketAddr, id: &str, lost: &[Stamp]) -> Result<(), String> {
    let stale = lost
        .iter()
        .max_by_key(|s| s.seq_no)
        .expect("some were lost");
    let path = format!(
        "/{INDEX}/_doc/{id}?if_seq_no={}&if_primary_term={}",
        stale.seq_no, stale.term
    );
    match request(addr, "PUT", &path, Some(r#"{"token":"stale"}"#)) {
        Some((409, _)) => Ok(()),
        other => Err(format!(
            "{id}: a write on the lost stamp {stale:?} answered {other:?}"
        )),
    }
}

/// A write on the surviving `stamp` succeeds once, under the new `term`, and a second on the
/// same stamp is refused: the stamp it left.
fn write_once_on(
    addr: SocketAddr,
    id: &str,
    stamp: Stamp,
    token: &str,
    term: u64,
) -> Result<Stamp, String> {
    let path = format!(
        "/{INDEX}/_doc/{id}?if_seq_no={}&if_primary_term={}",
        stamp.seq_no, stamp.term
    );
    let body = json!({"token": token}).to_string();
    let first = request(addr, "PUT", &path, Some(&body));
    let second = request(addr, "PUT", &path, Some(&body));
    let written = match (&first, &second) {
        (Some((200, v)), Some((409, _))) => stamp_of(v),
        _ => {
            return Err(format!(
                "{id}: writes on the surviving stamp {stamp:?} answered {first:?}, then {second:?}"
            ));
        }
    };
    if written.term != term {
        return Err(format!(
            "{id}: a new write carries term {}, not {term}",
            written.term
        ));
    }
    Ok(written)
}

/// Recovery keeps a prefix of the log: no write the last server acknowledged may be lost
/// while a later one (by seq_no, any id) survived.
#[derive(Default)]
struct Prefix {
    newest_survivor: Option<(String, Stamp)>,
    oldest_lost: Option<(String, Stamp)>,
}

impl Prefix {
    fn note(&mut self, id: &str, found: &Option<(String, Stamp)>, lost: &[Stamp], max_term: u64) {
        if let Some((_, stamp)) = found
            && stamp.term == max_term
            && self
                .newest_survivor
                .as_ref()
                .is_none_or(|(_, s)| s.seq_no < stamp.seq_no)
        {
            self.newest_survivor = Some((id.to_owned(), *stamp));
        }
        if let Some(first) = lost.iter().min_by_key(|s| s.seq_no)
            && self
                .oldest_lost
                .as_ref()
                .is_none_or(|(_, s)| first.seq_no < s.seq_no)
        {
            self.oldest_lost = Some((id.to_owned(), *first));
        }
    }

    fn check(&self) -> Result<(), String> {
        if let (Some((kept_id, kept)), Some((lost_id, lost))) =
            (&self.newest_survivor, &self.oldest_lost)
            && lost.seq_no < kept.seq_no
        {
            return Err(format!(
                "a hole in the log: {lost_id}'s acknowledged {lost:?} is lost while {kept_id}'s \
                 later {kept:?} survived"
            ));
        }
        Ok(())
    }
}

fn stamp_of(v: &Value) -> Stamp {
    Stamp {
        seq_no: v["_seq_no"].as_u64().unwrap_or(0),
        term: v["_primary_term"].as_u64().unwrap_or(0),
    }
}

fn stats_term(addr: std::net::SocketAddr) -> Result<u64, String> {
    match request(addr, "GET", &format!("/{INDEX}/_stats?level=shards"), None) {
        Some((200, v)) => v["indices"][INDEX]["shards"]["0"][0]["primary_term"]
            .as_u64()
            .ok_or_else(|| format!("no primary term in {v}")),
        other => Err(format!("_stats: {other:?}")),
    }
}
