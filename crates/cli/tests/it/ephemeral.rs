//! `optimist serve --ephemeral`, as a test suite starts it: on a port the system picks, a
//! ready file that says where, nothing written anywhere else, stopped by SIGTERM or by the
//! end of the process that started it; ids that are the same in every run when asked.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::send_to;

use crate::serve::{Process, stop};

/// The ready file's contents, once it is there.
fn wait_for_ready_file(file: &Path) -> Value {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            // Written whole (renamed into place): never half a document.
            return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no ready file");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn address_of(ready: &Value) -> SocketAddr {
    let url = ready["url"].as_str().unwrap();
    url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// An ephemeral server with `more` arguments, run in `cwd` with `HOME` at `home`.
fn spawn(cwd: &Path, home: &Path, ready_file: &Path, more: &[&str]) -> (Process, Value) {
    let child = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args([
            "serve",
            "--ephemeral",
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
        ])
        .arg(ready_file)
        .args(more)
        .current_dir(cwd)
        .env("HOME", home)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    let ready = wait_for_ready_file(ready_file);
    (process, ready)
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn it_says_where_it_answers_serves_every_api_and_writes_nothing() {
    let (cwd, home, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let file = out.path().join("ready.json");
    let (process, ready) = spawn(cwd.path(), home.path(), &file, &[]);
    assert_eq!(ready["pid"], json!(process.0.id()));
    assert_eq!(ready["es_version"], "8.17.0");
    assert!(ready["ready_ms"].as_f64().unwrap() < 30_000.0);
    let addr = address_of(&ready);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let root = send_to(addr, "GET", "/", &[], None);
    assert_eq!(root.status, 200);
    assert_eq!(root.header("x-elastic-product"), Some("Elasticsearch"));
    let settings = br#"{"settings":{"number_of_shards":3}}"#;
    assert_eq!(
        send_to(addr, "PUT", "/orders", &[], Some(settings)).status,
        200
    );
    for i in 0..100 {
        let r = send_to(
            addr,
            "PUT",
            &format!("/orders/_doc/{i}"),
            &[],
            Some(br#"{"n":1}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = send_to(
        addr,
        "PUT",
        "/orders/_doc/7?if_seq_no=0&if_primary_term=1",
        &[],
        Some(b"{}"),
    );
    assert_eq!(r.status, 409, "conditional writes hold in memory too");
    let got = send_to(addr, "GET", "/orders/_doc/42", &[], None).json();
    assert_eq!(
        (&got["_version"], &got["_source"]),
        (&json!(1), &json!({"n": 1}))
    );
    // A snapshot and its restore stay in memory too.
    let snapshot = send_to(addr, "PUT", "/_optimist/snapshots/s", &[], None);
    assert_eq!(snapshot.status, 200, "{}", snapshot.text());
    send_to(addr, "DELETE", "/orders", &[], None);
    let restore = send_to(addr, "POST", "/_optimist/snapshots/s/_restore", &[], None);
    assert_eq!(restore.status, 200, "{}", restore.text());
    let again = send_to(addr, "GET", "/orders/_doc/42", &[], None).json();
    assert_eq!(again, got);

    assert!(stop(process).success(), "SIGTERM stops it cleanly");
    assert!(
        is_empty(cwd.path()) && is_empty(home.path()),
        "nothing written"
    );
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["ready.json"], "no partial ready file left");
}

#[test]
fn it_keeps_no_data_directory() {
    let refused = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(["serve", "--ephemeral", "--data-dir", "/tmp/never"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.contains("--ephemeral keeps no data directory"),
        "{text}"
    );
}

#[test]
fn it_stops_when_the_process_that_started_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ready.json");
    // A launcher that dies without stopping its server: a test run killed half way.
    let launcher = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" serve --ephemeral --listen 127.0.0.1:0 --ready-file \"$1\" >/dev/null 2>&1 & wait")
        .arg(env!("CARGO_BIN_EXE_optimist"))
        .arg(&file)
        .spawn()
        .unwrap();
    let mut launcher = Process(launcher);
    let ready = wait_for_ready_file(&file);
    let pid = ready["pid"].as_u64().unwrap();
    let addr = address_of(&ready);
    assert_eq!(send_to(addr, "GET", "/", &[], None).status, 200);
    launcher.0.kill().unwrap();
    launcher.0.wait().unwrap();
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > Duration::from_secs(10) {
            // Not left behind by this test either.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("server {pid} outlived its launcher");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The process exists and has not exited (an exited orphan that nobody reaped is a zombie).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// What a golden file would record of a run: generated ids, the index's and the cluster's
/// uuids.
fn generated(seed: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ready.json");
    let (process, ready) = spawn(
        dir.path(),
        dir.path(),
        &file,
        &["--deterministic-ids", "--seed", seed],
    );
    let addr = address_of(&ready);
    let mut seen = Vec::new();
    for index in ["logs", "metrics", "logs"] {
        let r = send_to(addr, "POST", &format!("/{index}/_doc"), &[], Some(b"{}")).json();
        seen.push(r["_id"].clone());
    }
    let bulk = b"{\"index\":{\"_index\":\"logs\"}}\n{}\n";
    let r = send_to(
        addr,
        "POST",
        "/_bulk",
        &[("Content-Type", "application/x-ndjson")],
        Some(bulk),
    )
    .json();
    seen.push(r["items"][0]["index"]["_id"].clone());
    seen.push(
        send_to(addr, "GET", "/logs", &[], None).json()["logs"]["settings"]["index"]["uuid"]
            .clone(),
    );
    seen.push(send_to(addr, "GET", "/", &[], None).json()["cluster_uuid"].clone());
    assert!(stop(process).success());
    seen
}

#[test]
fn deterministic_ids_are_the_same_in_every_run_of_a_seed() {
    let first = generated("5");
    assert!(
        first
            .iter()
            .all(|v| v.as_str().is_some_and(|s| s.len() >= 20)),
        "{first:?}"
    );
    assert_eq!(first, generated("5"));
    let other = generated("6");
    assert!(
        first.iter().zip(&other).all(|(a, b)| a != b),
        "{first:?} {other:?}"
    );
}

#[test]
fn reset_empties_it_and_ids_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ready.json");
    let (process, ready) = spawn(dir.path(), dir.path(), &file, &["--deterministic-ids"]);
    let addr = address_of(&ready);
    let auto_id = || send_to(addr, "POST", "/logs/_doc", &[], Some(b"{}")).json()["_id"].clone();
    let first = auto_id();
    assert_ne!(auto_id(), first);
    let reset = send_to(addr, "POST", "/_optimist/reset", &[], None);
    assert_eq!(reset.status, 200, "{}", reset.text());
    assert_eq!(reset.json()["deleted_indices"], 1);
    assert_eq!(send_to(addr, "GET", "/logs/_doc/x", &[], None).status, 404);
    assert_eq!(
        auto_id(),
        first,
        "each test sees the ids it would see alone"
    );
    assert!(stop(process).success());
}

#[test]
fn test_mode_serves_the_test_api_on_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("log");
    let (process, addr) = crate::serve::serve_process(&data, &log, 4096, &["--test-mode"]);
    assert_eq!(
        send_to(addr, "PUT", "/i/_doc/1", &[], Some(b"{}")).status,
        201
    );
    assert_eq!(
        send_to(addr, "POST", "/_optimist/reset", &[], None).status,
        200
    );
    assert!(!data.join("i").exists());
    assert!(stop(process).success());
}
