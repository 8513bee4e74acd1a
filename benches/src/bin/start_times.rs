//! How long a test waits for a server (issue 33): from just before the spawn of `optimist
//! serve --ephemeral --listen 127.0.0.1:0 --ready-file F` to the first 200 of `GET /` on a
//! fresh connection, and to a first useful answer (an index created, a document written
//! with `refresh=true` and read back). Beside it, in the same run: the same server on a
//! fresh data directory, and the start of a Rust process that exits at once (what
//! `cargo test` pays for each test binary it starts). `RUNS` spawns of each (default 50);
//! the binary is in the page cache after the first.
//!
//! `cargo build --release -p optimist-cli` first.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in a child that should only start and exit.
const CHILD_ENV: &str = "START_TIMES_CHILD";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let runs: usize = std::env::var("RUNS").map_or(50, |r| r.parse().expect("RUNS is a number"));
    let optimist = benches::optimist_binary();
    let dir = tempdir();
    let (mut bare, mut ephemeral, mut useful, mut ready_ms, mut disk) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so that the host's moods weigh on each alike.
    for run in 0..runs {
        bare.push(bare_process());
        let (start, first_use, file_ms) = server_start(&optimist, &dir, run, None);
        ephemeral.push(start);
        useful.push(first_use);
        ready_ms.push(file_ms);
        let data = dir.join(format!("data-{run}"));
        disk.push(server_start(&optimist, &dir, run, Some(&data)).0);
    }
    println!("{runs} spawns each, {} cores", cores());
    show("a Rust process that exits at once", &bare);
    show("--ephemeral: spawn to the first 200 of GET /", &ephemeral);
    show("--ephemeral: spawn to a first useful answer", &useful);
    show("--ephemeral: the ready file's own ready_ms", &ready_ms);
    show(
        "a fresh data directory: spawn to the first 200 of GET /",
        &disk,
    );
    let ratio = percentile(&ephemeral, 50) / percentile(&bare, 50);
    println!("--ephemeral's start / a bare process's start (p50): {ratio:.1}x");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("start-times-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Milliseconds from spawn to exit of this binary, told to exit at once.
fn bare_process() -> f64 {
    let started = Instant::now();
    let status = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed().as_secs_f64() * 1e3
}

/// Milliseconds to the first `GET /` answered, and to the first useful answer; and the
/// ready file's `ready_ms`. On `data` if given, else `--ephemeral`.
fn server_start(optimist: &Path, dir: &Path, run: usize, data: Option<&Path>) -> (f64, f64, f64) {
    let file = dir.join(format!("ready-{run}-{}.json", data.is_some()));
    let mut command = Command::new(optimist);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--ready-file"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match data {
        Some(data) => command.arg("--data-dir").arg(data),
        None => command.arg("--ephemeral"),
    };
    let started = Instant::now();
    let child = command.spawn().unwrap();
    let (addr, file_ms) = wait_for(&file);
    while get(addr, "GET", "/", "") != 200 {}
    let first = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(get(addr, "PUT", "/t", ""), 200);
    assert_eq!(get(addr, "PUT", "/t/_doc/1?refresh=true", "{}"), 201);
    assert_eq!(get(addr, "GET", "/t/_doc/1", ""), 200);
    let useful = started.elapsed().as_secs_f64() * 1e3;
    stop(child);
    (first, useful, file_ms)
}

fn wait_for(file: &Path) -> (SocketAddr, f64) {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            let ready: serde_json::Value = serde_json::from_str(&text).unwrap();
            let url = ready["url"].as_str().unwrap();
            let addr = url.strip_prefix("http://").unwrap().parse().unwrap();
            return (addr, ready["ready_ms"].as_f64().unwrap());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no ready file");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One request on a fresh connection; its status, or 0 if there was no answer.
fn get(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut answer = String::new();
    if stream.write_all(head.as_bytes()).is_err() || stream.read_to_string(&mut answer).is_err() {
        return 0;
    }
    answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

fn percentile(xs: &[f64], p: usize) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(sorted.len() - 1) * p / 100]
}

fn show(what: &str, xs: &[f64]) {
    println!(
        "{what}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        percentile(xs, 50),
        percentile(xs, 95),
        percentile(xs, 100)
    );
}
