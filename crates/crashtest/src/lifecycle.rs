//! `crashtest lifecycle`: indices created and deleted while the real server is cut (SIGKILL,
//! or a power cut with `--power`). Each round fills a multi-shard index, then at once deletes
//! it and creates another one (writing into it as soon as it exists), and cuts the server at
//! a random moment. After the restart, which must succeed:
//! - the deleted index is gone if its delete was acknowledged; if not, it is gone or whole:
//!   every shard its creation named, every acknowledged document with its `_seq_no`, and
//!   nothing else;
//! - the created index exists if its creation was acknowledged, and wherever it exists it has
//!   every shard and every document acknowledged into it;
//! - every index deleted in an earlier round (acknowledged) stays gone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use wal::sim::Rng;

use crate::http::request;
use crate::kill::Options;
use crate::process::Server;

/// What a run checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub rounds: u64,
    /// Deletes acknowledged before the cut (then found gone, as they must be).
    pub deletes_acknowledged: u64,
    /// Deletes the cut left unanswered, found whole and found gone.
    pub deletes_cut_whole: u64,
    pub deletes_cut_gone: u64,
    /// Creations acknowledged before the cut (then found whole).
    pub creates_acknowledged: u64,
    /// Creations the cut left unanswered, found whole and found gone.
    pub creates_cut_whole: u64,
    pub creates_cut_gone: u64,
    /// Acknowledged documents checked after a restart.
    pub documents_checked: u64,
}

/// Documents written into each index.
const DOCS: u64 = 12;

/// What is known of one index: its shard count and the documents acknowledged into it
/// (id → `_seq_no`), with how many writes got no answer.
#[derive(Clone, Debug, Default)]
struct Known {
    shards: u64,
    acked: BTreeMap<String, u64>,
    unanswered: u64,
    /// The answer that ended a fill early (a status and its error), to say why.
    refused: Option<String>,
}

/// Writes `DOCS` documents into `index` one at a time, until one gets no answer.
fn fill(addr: SocketAddr, index: &str, known: &mut Known, stop: Option<&AtomicBool>) {
    for i in 0..DOCS {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return;
        }
        let id = format!("d{i}");
        let body = json!({"n": i}).to_string();
        match request(addr, "PUT", &format!("/{index}/_doc/{id}"), Some(&body)) {
            Some((201, answer)) => {
                let seq_no = answer["_seq_no"].as_u64().unwrap_or(u64::MAX);
                known.acked.insert(id, seq_no);
            }
            other => {
                known.unanswered += 1;
                known.refused = Some(match other {
                    Some((status, e)) => format!("{status} {}", e["error"]),
                    None => "no answer".to_owned(),
                });
                return;
            }
        }
    }
}

fn create(addr: SocketAddr, index: &str, shards: u64) -> Option<(u16, serde_json::Value)> {
    let settings = json!({"settings": {"number_of_shards": shards}}).to_string();
    request(addr, "PUT", &format!("/{index}"), Some(&settings))
}

/// Runs the rounds, each ended by SIGKILL.
pub fn run(options: &Options) -> Result<Figures, String> {
    crate::kill::with_kills(options, |data, cut| run_with(options, data, cut))
}

/// Runs the rounds with a power cut at each (`crashtest power`'s file system).
pub fn run_power(options: &Options) -> Result<(Figures, crate::power::PowerFigures), String> {
    crate::power::with_power_cuts(options, |data, cut| run_with(options, data, cut))
}

/// Runs the rounds on `data`, each ended by `cut` (which leaves the server dead).
pub(crate) fn run_with(
    options: &Options,
    data: &Path,
    mut cut: impl FnMut(&mut Server) -> Result<(), String>,
) -> Result<Figures, String> {
    let log = options.work_dir.join("server.log");
    let mut rng = Rng::new(options.seed);
    let mut figures = Figures::default();
    let mut gone: Vec<String> = Vec::new();
    let mut server = Server::start(&options.binary, data, &log)?;
    for round in 0..options.rounds {
        let at = |v: String| format!("round {round} (seed {}): {v}", options.seed);
        // An index to delete, full and acknowledged before the window opens.
        let doomed = format!("p{round}");
        let doomed_known = full_index(server.addr, &doomed, 2 + rng.below(5)).map_err(at)?;
        // The window: the delete, and a creation with writes into the new index.
        let made = format!("c{round}");
        let stop = Arc::new(AtomicBool::new(false));
        let window = Window::open(server.addr, &doomed, &made, 2 + rng.below(5), &stop);
        // Half the cuts within the first 4 ms, where a delete (a marker, then a few dozen
        // unlinks) and a creation run; the rest anywhere in 60 ms, among the writes.
        let within = if rng.coin() { 4_000 } else { 60_000 };
        std::thread::sleep(Duration::from_micros(rng.below(within)));
        cut(&mut server).map_err(|e| at(format!("the cut failed: {e}")))?;
        stop.store(true, Ordering::Relaxed);
        let (deleted, created, made_known) = window.close();
        server = Server::start(&options.binary, data, &log).map_err(at)?;
        judge_delete(&server, &doomed, deleted, &doomed_known, &mut figures).map_err(at)?;
        judge_creation(&server, &made, created, &made_known, &mut figures).map_err(at)?;
        for name in &gone {
            if present(&server, name).map_err(at)? {
                return Err(at(format!(
                    "[{name}], deleted in an earlier round, is back"
                )));
            }
        }
        // What is left is deleted, acknowledged, so the store stays small.
        for name in [&doomed, &made] {
            match request(server.addr, "DELETE", &format!("/{name}"), None) {
                Some((200 | 404, _)) => {}
                other => return Err(at(format!("deleting [{name}]: {other:?}"))),
            }
        }
        gone.extend([doomed, made]);
        if gone.len() > 20 {
            gone.drain(..gone.len() - 20);
        }
        figures.rounds += 1;
        if figures.rounds % (options.rounds / 10).max(10) == 0 {
            println!("  {} rounds: {figures:?}", figures.rounds);
        }
    }
    Ok(figures)
}

/// A new index of `shards` shards, filled with `DOCS` acknowledged documents.
fn full_index(addr: SocketAddr, name: &str, shards: u64) -> Result<Known, String> {
    let mut known = Known {
        shards,
        ..Known::default()
    };
    match create(addr, name, shards) {
        Some((200, _)) => {}
        other => return Err(format!("creating [{name}]: {other:?}")),
    }
    fill(addr, name, &mut known, None);
    if known.acked.len() as u64 != DOCS {
        let why = known.refused.as_deref().unwrap_or("?");
        return Err(format!(
            "filling [{name}] before the cut failed: {why} (a disk over its flood stage \
             answers 429 cluster_block_exception)"
        ));
    }
    Ok(known)
}

/// What runs while the cut comes: the delete of one index, and the creation of another with
/// writes into it until `stop`.
struct Window {
    delete: std::thread::JoinHandle<bool>,
    creation: std::thread::JoinHandle<(bool, Known)>,
}

impl Window {
    fn open(
        addr: SocketAddr,
        doomed: &str,
        made: &str,
        made_shards: u64,
        stop: &Arc<AtomicBool>,
    ) -> Window {
        let delete = {
            let doomed = doomed.to_owned();
            std::thread::spawn(move || {
                matches!(
                    request(addr, "DELETE", &format!("/{doomed}"), None),
                    Some((200, _))
                )
            })
        };
        let creation = {
            let (made, stop) = (made.to_owned(), stop.clone());
            std::thread::spawn(move || {
                let mut known = Known {
                    shards: made_shards,
                    ..Known::default()
                };
                let acked = matches!(create(addr, &made, made_shards), Some((200, _)));
                if acked {
                    fill(addr, &made, &mut known, Some(&stop));
                }
                (acked, known)
            })
        };
        Window { delete, creation }
    }

    /// Whether the delete and the creation were acknowledged, and what the new index was
    /// acknowledged to hold.
    fn close(self) -> (bool, bool, Known) {
        let deleted = self.delete.join().unwrap_or(false);
        let (created, known) = self.creation.join().unwrap_or_default();
        (deleted, created, known)
    }
}

/// The deleted index is gone if its delete was acknowledged, and whole or gone if not.
fn judge_delete(
    server: &Server,
    doomed: &str,
    deleted: bool,
    known: &Known,
    figures: &mut Figures,
) -> Result<(), String> {
    match (present(server, doomed)?, deleted) {
        (true, true) => return Err(format!("[{doomed}]: an acknowledged delete came undone")),
        (true, false) => {
            check_whole(server, doomed, known, figures)?;
            figures.deletes_cut_whole += 1;
        }
        (false, true) => figures.deletes_acknowledged += 1,
        (false, false) => figures.deletes_cut_gone += 1,
    }
    Ok(())
}

/// The created index is whole if its creation was acknowledged, and whole or gone if not.
fn judge_creation(
    server: &Server,
    made: &str,
    created: bool,
    known: &Known,
    figures: &mut Figures,
) -> Result<(), String> {
    match (present(server, made)?, created) {
        (false, true) => return Err(format!("[{made}]: an acknowledged creation was lost")),
        (true, acked) => {
            check_whole(server, made, known, figures)?;
            if acked {
                figures.creates_acknowledged += 1;
            } else {
                figures.creates_cut_whole += 1;
            }
        }
        (false, false) => figures.creates_cut_gone += 1,
    }
    Ok(())
}

/// Whether the index exists after the restart.
fn present(server: &Server, index: &str) -> Result<bool, String> {
    match request(server.addr, "GET", &format!("/{index}"), None) {
        Some((200, _)) => Ok(true),
        Some((404, _)) => Ok(false),
        other => Err(format!("GET /{index}: {other:?}")),
    }
}

/// The index has every shard it was created with, every acknowledged document with its
/// `_seq_no`, and no document beyond those written.
fn check_whole(
    server: &Server,
    index: &str,
    known: &Known,
    figures: &mut Figures,
) -> Result<(), String> {
    let Some((200, info)) = request(server.addr, "GET", &format!("/{index}"), None) else {
        return Err(format!("GET /{index} failed"));
    };
    let shards = &info[index]["settings"]["index"]["number_of_shards"];
    if shards.as_str() != Some(known.shards.to_string().as_str()) {
        return Err(format!(
            "[{index}] has {shards} shards, created with {}",
            known.shards
        ));
    }
    for (id, seq_no) in &known.acked {
        match request(server.addr, "GET", &format!("/{index}/_doc/{id}"), None) {
            Some((200, doc)) if doc["_seq_no"].as_u64() == Some(*seq_no) => {}
            other => {
                return Err(format!(
                    "[{index}][{id}] acknowledged at seq_no {seq_no}, found {other:?}"
                ));
            }
        }
        figures.documents_checked += 1;
    }
    let Some((200, count)) = request(server.addr, "GET", &format!("/{index}/_count"), None) else {
        return Err(format!("GET /{index}/_count failed"));
    };
    let count = count["count"].as_u64().unwrap_or(u64::MAX);
    let most = known.acked.len() as u64 + known.unanswered;
    if count < known.acked.len() as u64 || count > most {
        return Err(format!(
            "[{index}] counts {count} documents; {} were acknowledged, {} unanswered",
            known.acked.len(),
            known.unanswered
        ));
    }
    Ok(())
}
