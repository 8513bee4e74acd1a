//! `crashtest faults`: the faults outside the write path.
//!
//! **Below the engine** (`SimStorage`): a workload that creates multi-shard indices, writes
//! into them, deletes one, re-creates its name and writes again, with ENOSPC, EMFILE or EIO
//! injected at every I/O call in turn (once, or from then on). Afterwards, reopened as after
//! a restart and again after a power cut: the store opens; an index whose creation was
//! acknowledged (and its delete not) is whole, every acknowledged document with its
//! `_seq_no`; an index whose delete was acknowledged is gone; one whose creation or delete
//! failed is whole or gone. Before those reopens, with ENOSPC or EMFILE (causes that pass),
//! the running store recovers by itself once the fault is gone: every shard that failed is
//! reopened in the process (`Index::reopen_shard`), the store agrees with the answers, and
//! every index takes writes again, which the restart and the power cut then keep.
//!
//! **Against the real server**: oversized documents through `_doc`, `_bulk` and `_update`
//! are refused and the index goes on serving; slow, stalled and idle clients (and more
//! connections than allowed) are closed while other clients are served; a SIGKILL after
//! all that loses no acknowledged write.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use engine::{IndexSettings, Store, StoreOptions};
use serde_json::json;
use wal::sim::{Damage, Fault, SimStorage};

use crate::http::request;
use crate::kill::Options;
use crate::process::Server;

/// What a run checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// I/O calls of the workload, each failed in turn by every fault.
    pub io_points: u64,
    /// Runs with a fault injected, each reopened twice (restart, power cut) and checked.
    pub faulted_runs: u64,
    /// Of those, runs where some step failed.
    pub runs_with_refusals: u64,
    /// Shards failed by ENOSPC or EMFILE and reopened in the running process.
    pub shards_reopened: u64,
    /// Acknowledged documents checked after the reopens.
    pub documents_checked: u64,
    /// Oversized documents refused by the real server, with the index serving after.
    pub oversized_refused: u64,
    /// Slow, stalled or idle connections the real server closed.
    pub stalled_closed: u64,
    /// Writes acknowledged to other clients meanwhile, all found after a SIGKILL.
    pub writes_meanwhile: u64,
    /// Writes acknowledged on a small file system filled up, all found after a restart.
    pub disk_full_writes: u64,
}

fn options() -> StoreOptions {
    StoreOptions {
        segment_size: 16 << 10,
        background: false,
        ..StoreOptions::default()
    }
}

/// What the workload was told: per index name, whether it exists by the answers, its
/// shards, and the documents acknowledged into it (id → `_seq_no`).
#[derive(Clone, Debug, Default)]
struct Ledger {
    indices: BTreeMap<String, Known>,
    refusals: u64,
}

#[derive(Clone, Debug, Default)]
struct Known {
    /// `Some(true)`: acknowledged to exist; `Some(false)`: acknowledged gone; `None`: a
    /// creation or delete failed, so either may be found.
    exists: Option<bool>,
    shards: u32,
    acked: BTreeMap<String, u64>,
    /// Ids whose latest write failed: it may have landed (a failed fsync says nothing of
    /// what the page cache kept), so a later `_seq_no` is allowed for them.
    uncertain: std::collections::BTreeSet<String>,
}

fn create(store: &Store, ledger: &mut Ledger, name: &str, shards: u32) {
    let known = ledger.indices.entry(name.to_owned()).or_default();
    match store.create_index(name, IndexSettings::with_shards(shards)) {
        Ok(_) => {
            *known = Known {
                exists: Some(true),
                shards,
                ..Known::default()
            }
        }
        Err(_) => {
            // Whatever was there before (nothing, here) or a creation cut short.
            *known = Known {
                exists: None,
                shards,
                ..Known::default()
            };
            ledger.refusals += 1;
        }
    }
}

fn write(store: &Store, ledger: &mut Ledger, name: &str, docs: u32) {
    let Ok(index) = store.index(name) else {
        return;
    };
    for i in 0..docs {
        let id = format!("d{i}");
        let request = engine::IndexRequest::new(id.clone(), format!("{{\"n\":{i}}}").into_bytes());
        let known = ledger
            .indices
            .get_mut(name)
            .expect("written only after created");
        match index.index(&request, None) {
            Ok(w) => {
                known.uncertain.remove(&id);
                known.acked.insert(id, w.seq_no.0);
            }
            Err(_) => {
                known.uncertain.insert(id);
                ledger.refusals += 1;
            }
        }
    }
}

fn delete(store: &Store, ledger: &mut Ledger, name: &str) {
    let known = ledger.indices.entry(name.to_owned()).or_default();
    match store.delete_index(name) {
        Ok(()) => known.exists = Some(false),
        Err(engine::Error::IndexNotFound { .. }) => {}
        Err(_) => {
            known.exists = None;
            ledger.refusals += 1;
        }
    }
}

/// Creates, writes, deletes, re-creates, reopens.
fn workload(store: &Store) -> Ledger {
    let mut ledger = Ledger::default();
    create(store, &mut ledger, "a", 3);
    write(store, &mut ledger, "a", 9);
    create(store, &mut ledger, "b", 2);
    write(store, &mut ledger, "b", 6);
    delete(store, &mut ledger, "a");
    write(store, &mut ledger, "b", 4);
    // The name again: a new index, which must not see the old one's documents.
    create(store, &mut ledger, "a", 2);
    write(store, &mut ledger, "a", 3);
    ledger
}

/// The store as reopened agrees with what the workload was told.
fn check(store: &Store, ledger: &Ledger, what: &str) -> Result<u64, String> {
    let mut checked = 0;
    for (name, known) in &ledger.indices {
        let found = store.index(name).ok();
        match (&found, known.exists) {
            (None, Some(true)) => {
                return Err(format!("{what}: [{name}] was acknowledged and is gone"));
            }
            (Some(_), Some(false)) => {
                return Err(format!("{what}: [{name}] was deleted and is back"));
            }
            _ => {}
        }
        let Some(index) = found else { continue };
        if index.settings().number_of_shards != known.shards && known.exists == Some(true) {
            return Err(format!(
                "{what}: [{name}] has {} shards, created with {}",
                index.settings().number_of_shards,
                known.shards
            ));
        }
        for (id, seq_no) in &known.acked {
            let uncertain = known.uncertain.contains(id);
            match index.get(id, None) {
                Ok(Some(doc)) if doc.seq_no.0 == *seq_no => checked += 1,
                Ok(Some(doc)) if uncertain && doc.seq_no.0 > *seq_no => checked += 1,
                other => {
                    return Err(format!(
                        "{what}: [{name}][{id}] acknowledged at seq_no {seq_no}, found {other:?}"
                    ));
                }
            }
        }
    }
    Ok(checked)
}

/// The fault gone, a running store whose shards failed for a cause that passes recovers
/// without a restart: each failed shard reopens, the store agrees with the answers, and every
/// index takes a write again. Returns the shards reopened.
fn recover_in_process(store: &Store, ledger: &mut Ledger, what: &str) -> Result<u64, String> {
    let mut reopened = 0;
    for name in store.index_names() {
        let index = store.index(&name).map_err(|e| e.to_string())?;
        for n in index.settings().shard_ids() {
            match index.reopen_shard(n) {
                Ok(Some(_)) => reopened += 1,
                Ok(None) => {}
                Err(e) => return Err(format!("{what}: [{name}][{n}] does not reopen: {e}")),
            }
            if let Some(f) = index.shard(n).failure() {
                return Err(format!("{what}: [{name}][{n}] still failed: {}", f.reason));
            }
        }
    }
    check(store, ledger, &format!("{what}, recovered in process"))?;
    for name in store.index_names() {
        let before = ledger.refusals;
        write(store, ledger, &name, 2);
        if ledger.refusals > before {
            return Err(format!(
                "{what}: [{name}] refuses writes after recovering in process"
            ));
        }
    }
    Ok(reopened)
}

/// Runs the workload with every fault at every I/O call; `Err` names the first violation.
pub fn run_sim(seed: u64, figures: &mut Figures) -> Result<(), String> {
    let probe = SimStorage::new(seed);
    let store = Store::open(Arc::new(probe.clone()), options()).map_err(|e| e.to_string())?;
    let before = probe.io_count();
    let clean = workload(&store);
    if clean.refusals > 0 {
        return Err(format!(
            "seed {seed}: the workload failed on a healthy disk"
        ));
    }
    let points = probe.io_count() - before;
    figures.io_points = points;
    for point in 1..=points {
        for fault in [Fault::Enospc, Fault::Emfile, Fault::Eio] {
            for persistent in [false, true] {
                let what = format!(
                    "seed {seed}, {fault:?} at I/O {point}{}",
                    if persistent { " and after" } else { "" }
                );
                let sim = SimStorage::new(seed ^ (point << 8));
                let store =
                    Store::open(Arc::new(sim.clone()), options()).map_err(|e| e.to_string())?;
                sim.fail_at(point, fault, persistent);
                let mut ledger = workload(&store);
                sim.heal();
                if ledger.refusals > 0 {
                    figures.runs_with_refusals += 1;
                }
                if fault != Fault::Eio {
                    figures.shards_reopened += recover_in_process(&store, &mut ledger, &what)?;
                }
                drop(store);
                // A restart (the page cache kept), then a power cut.
                let store = Store::open(Arc::new(sim.clone()), options())
                    .map_err(|e| format!("{what}: the store does not reopen: {e}"))?;
                figures.documents_checked += check(&store, &ledger, &format!("{what}, reopened"))?;
                drop(store);
                let sim = sim.crash(Damage::DropUnsynced);
                let store = Store::open(Arc::new(sim), options())
                    .map_err(|e| format!("{what}: the store does not open after a cut: {e}"))?;
                figures.documents_checked += check(&store, &ledger, &format!("{what}, power cut"))?;
                figures.faulted_runs += 1;
            }
        }
    }
    Ok(())
}

/// The real server, started with short connection timeouts.
pub fn run_server(options: &Options, figures: &mut Figures) -> Result<(), String> {
    std::fs::create_dir_all(&options.work_dir).map_err(|e| e.to_string())?;
    let data = options.work_dir.join("data");
    let log = options.work_dir.join("server.log");
    let args = [
        "--http-header-timeout",
        "1",
        "--http-body-timeout",
        "1",
        "--http-max-connections",
        "64",
    ];
    let mut server = Server::start_with(&options.binary, &data, &log, &args)?;
    oversized(&server, figures)?;
    let acked = stalled_clients(&server, figures)?;
    server.kill();
    let server = Server::start_with(&options.binary, &data, &log, &args)?;
    for (id, seq_no) in &acked {
        match request(server.addr, "GET", &format!("/calm/_doc/{id}"), None) {
            Some((200, doc)) if doc["_seq_no"].as_u64() == Some(*seq_no) => {}
            other => {
                return Err(format!(
                    "[calm][{id}] acknowledged, after SIGKILL {other:?}"
                ));
            }
        }
    }
    Ok(())
}

/// `{"pad":"ppp…"}`, exactly `len` bytes.
fn source_of_len(len: usize) -> String {
    format!("{{\"pad\":\"{}\"}}", "p".repeat(len - 10))
}

/// One request over a fresh connection, the body given as bytes; the status.
fn send(server: &Server, method: &str, path: &str, body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(server.addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    std::str::from_utf8(raw.get(9..12)?).ok()?.parse().ok()
}

fn oversized(server: &Server, figures: &mut Figures) -> Result<(), String> {
    const CONTENT_LEN_MAX: usize = 100 << 20;
    let expect = |what: &str, got: Option<u16>, want: u16| -> Result<(), String> {
        if got == Some(want) {
            Ok(())
        } else {
            Err(format!("{what}: answered {got:?}, expected {want}"))
        }
    };
    let over = source_of_len(CONTENT_LEN_MAX + 1);
    expect(
        "a _doc one byte over",
        send(server, "PUT", "/big/_doc/1", over.as_bytes()),
        413,
    )?;
    let mut bulk = b"{\"index\":{\"_index\":\"big\",\"_id\":\"2\"}}\n".to_vec();
    bulk.extend_from_slice(over.as_bytes());
    bulk.push(b'\n');
    expect(
        "a _bulk item over",
        send(server, "POST", "/_bulk", &bulk),
        413,
    )?;
    let near = source_of_len(CONTENT_LEN_MAX - 9);
    expect(
        "a _doc at the bound less 9",
        send(server, "PUT", "/big/_doc/3", near.as_bytes()),
        201,
    )?;
    let update = br#"{"doc":{"more":""}}"#;
    expect(
        "an _update merging one byte over",
        send(server, "POST", "/big/_update/3", update),
        400,
    )?;
    figures.oversized_refused += 3;
    // The index serves reads and writes as before.
    expect(
        "a write after",
        send(server, "PUT", "/big/_doc/4", b"{}"),
        201,
    )?;
    match request(server.addr, "GET", "/big/_doc/3?_source=false", None) {
        Some((200, doc)) if doc["_version"] == json!(1) => Ok(()),
        other => Err(format!("the document the update was refused on: {other:?}")),
    }
}

/// Idle, trickling and stalled clients, and more connections than allowed, while a calm
/// client writes; returns the calm client's acknowledged writes (id → `_seq_no`).
fn stalled_clients(
    server: &Server,
    figures: &mut Figures,
) -> Result<BTreeMap<String, u64>, String> {
    let mut hostile = Vec::new();
    for n in 0..80 {
        let Ok(mut stream) = TcpStream::connect(server.addr) else {
            continue;
        };
        let _ = match n % 3 {
            // Idle: says nothing.
            0 => Ok(()),
            // A head that never ends.
            1 => stream.write_all(b"GET / HTTP/1.1\r\nHost: local"),
            // A body that stops.
            _ => stream.write_all(
                b"PUT /s/_doc/1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                  Content-Length: 1000\r\n\r\n{\"a\":",
            ),
        };
        hostile.push(stream);
    }
    // Meanwhile a calm client is served (retrying a connection the limit closed at once).
    let mut acked = BTreeMap::new();
    for i in 0..40 {
        let id = format!("c{i}");
        let mut answer = None;
        for _ in 0..200 {
            answer = request(server.addr, "PUT", &format!("/calm/_doc/{id}"), Some("{}"));
            if answer.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        match answer {
            Some((201 | 200, w)) => {
                acked.insert(id, w["_seq_no"].as_u64().unwrap_or(u64::MAX));
            }
            other => return Err(format!("the calm client's write {i}: {other:?}")),
        }
    }
    figures.writes_meanwhile += acked.len() as u64;
    // Every hostile connection is closed by the server within a few timeouts.
    for mut stream in hostile {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(format!("a stalled connection was not closed: {e}")),
            }
        }
        figures.stalled_closed += 1;
    }
    Ok(acked)
}

/// A small real file system filled up (tmpfs, mounted here: needs root): writes are refused
/// (429 at the flood stage, or 503 if the disk fills between two looks) and every
/// acknowledged one reads back; deleting an index frees space and writes resume without a
/// restart; after a restart, everything acknowledged is there and `optimist check` passes.
pub fn run_disk_full(options: &Options, figures: &mut Figures) -> Result<(), String> {
    let mount = options.work_dir.join("small");
    std::fs::create_dir_all(&mount).map_err(|e| e.to_string())?;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "optimist-small"])
        .arg(&mount)
        .status()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if !mounted.success() {
        return Err("cannot mount a 48 MiB tmpfs (--disk-full needs root)".into());
    }
    let result = disk_full_on(options, &mount.join("data"), figures);
    let _ = std::process::Command::new("umount").arg(&mount).status();
    result
}

/// Fills the small file system at `data` until the disk refuses, checks every acknowledged
/// write (beside the block, after space is freed, after a restart, and by `optimist check`).
fn disk_full_on(
    options: &Options,
    data: &std::path::Path,
    figures: &mut Figures,
) -> Result<(), String> {
    let log = options.work_dir.join("server-small.log");
    let mut server = Server::start(&options.binary, data, &log)?;
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(60 << 10));
    // Space to give back later: an index of its own, about 12 MiB.
    for i in 0..200 {
        match request(server.addr, "PUT", &format!("/spare/_doc/{i}"), Some(&body)) {
            Some((201 | 200, _)) => {}
            other => return Err(format!("filling [spare]: {other:?}")),
        }
    }
    let (mut acked, status) = fill_until_refused(&server, &body)?;
    if status == 429 {
        check_blocked(&server)?;
    }
    check_acked(&server, &acked, "with the disk full")?;
    // Deleting an index is allowed under the block, and gives the space back.
    match request(server.addr, "DELETE", "/spare", None) {
        Some((200, _)) => {}
        other => return Err(format!("deleting [spare] to free space: {other:?}")),
    }
    let after = write_when_space_returns(&server)?;
    acked.insert("after".into(), after);
    server.kill();
    let server = Server::start(&options.binary, data, &log)?;
    check_acked(&server, &acked, "after a restart")?;
    drop(server);
    let checked = std::process::Command::new(&options.binary)
        .args(["check", "--data-dir"])
        .arg(data)
        .output()
        .map_err(|e| e.to_string())?;
    if !checked.status.success() {
        return Err(format!(
            "optimist check after the disk was full: {}",
            String::from_utf8_lossy(&checked.stdout)
        ));
    }
    figures.disk_full_writes = acked.len() as u64;
    Ok(())
}

/// Writes `body` into [fill] until the disk refuses: what was acknowledged (id to seq_no),
/// and the refusal's status.
fn fill_until_refused(server: &Server, body: &str) -> Result<(BTreeMap<String, u64>, u16), String> {
    let mut acked = BTreeMap::new();
    for i in 0..2_000 {
        let id = format!("f{i}");
        match request(server.addr, "PUT", &format!("/fill/_doc/{id}"), Some(body)) {
            Some((201, w)) => {
                acked.insert(id, w["_seq_no"].as_u64().unwrap_or(u64::MAX));
            }
            Some((status @ (429 | 503), e)) => {
                let kind = e["error"]["type"].clone();
                println!(
                    "  the disk refused write {} with {status} {kind}",
                    acked.len()
                );
                return Ok((acked, status));
            }
            other => {
                return Err(format!(
                    "filling [fill] ({} acknowledged): {other:?}",
                    acked.len()
                ));
            }
        }
    }
    Err("48 MiB took 2,000 writes of 60 KiB without a refusal".into())
}

/// While blocked, the index says so, as Elasticsearch's settings do.
fn check_blocked(server: &Server) -> Result<(), String> {
    let blocks = request(server.addr, "GET", "/fill", None)
        .map(|(_, index)| index["fill"]["settings"]["index"]["blocks"].clone());
    let blocked = blocks
        .as_ref()
        .is_some_and(|b| b["read_only_allow_delete"] == "true");
    if !blocked {
        return Err(format!(
            "refused with 429, yet [fill] shows no read_only_allow_delete block: {blocks:?}"
        ));
    }
    Ok(())
}

/// Every acknowledged document of [fill] is found with its seq_no.
fn check_acked(server: &Server, acked: &BTreeMap<String, u64>, when: &str) -> Result<(), String> {
    for (id, seq_no) in acked {
        let path = format!("/fill/_doc/{id}?_source=false");
        match request(server.addr, "GET", &path, None) {
            Some((200, doc)) if doc["_seq_no"].as_u64() == Some(*seq_no) => {}
            other => {
                return Err(format!(
                    "{when}: [fill][{id}] acknowledged, found {other:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Writes resume without a restart (the block lifts at the maintenance's next look): the
/// seq_no of the first write taken.
fn write_when_space_returns(server: &Server) -> Result<u64, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match request(server.addr, "PUT", "/fill/_doc/after", Some("{}")) {
            Some((201, w)) => return Ok(w["_seq_no"].as_u64().unwrap_or(u64::MAX)),
            other if std::time::Instant::now() > deadline => {
                return Err(format!(
                    "writes did not resume after space was freed: {other:?}"
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
