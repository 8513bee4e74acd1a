//! `optimist serve` as its own process: under a low descriptor limit, with a segment bound,
//! restarted cleanly, and refusing a network address without authentication.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

/// A server process, killed if a test fails before it stops it.
pub(crate) struct Process(pub(crate) std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `optimist serve` as its own process under `ulimit -n limit` (soft and hard), its log in
/// `log`; returns the process and the address it listens on.
fn serve_limited(
    dir: &std::path::Path,
    log: &std::path::Path,
    limit: u32,
) -> (Process, std::net::SocketAddr) {
    serve_process(dir, log, limit, &[])
}

/// `serve_limited`, with more arguments for `optimist serve`.
pub(crate) fn serve_process(
    dir: &std::path::Path,
    log: &std::path::Path,
    limit: u32,
    more: &[&str],
) -> (Process, std::net::SocketAddr) {
    // The log is the test's own file, not storage under test.
    #[allow(clippy::disallowed_types)]
    let err = std::fs::File::create(log).unwrap();
    let child = Process(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_optimist"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(more)
            .stderr(err)
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let addr = text
            .lines()
            .filter(|l| l.contains(" listening "))
            .find_map(|l| {
                l[l.find("address=")? + 8..]
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            });
        if let Some(addr) = addr {
            return (child, addr);
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "no listening line: {text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM, and the exit status.
pub(crate) fn stop(mut process: Process) -> std::process::ExitStatus {
    let pid = process.0.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(kill.unwrap().success());
    process.0.wait().unwrap()
}

#[test]
fn under_a_low_descriptor_limit_indices_it_could_not_reopen_are_refused_and_it_restarts() {
    use testkit::send_to;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("log");
    // Room for the reserve and 9 shards' worst case.
    let limit = engine::FILES_RESERVED as u32 + 9 * engine::FILES_PER_SHARD_MAX as u32 + 10;
    let (child, addr) = serve_limited(&data, &log, limit);
    let mut created = 0;
    let refusal = loop {
        let settings = r#"{"settings":{"number_of_shards":2}}"#;
        let r = send_to(
            addr,
            "PUT",
            &format!("/i{created}"),
            &[],
            Some(settings.as_bytes()),
        );
        if r.status != 200 {
            break r;
        }
        let r = send_to(
            addr,
            "PUT",
            &format!("/i{created}/_doc/1"),
            &[],
            Some(b"{}"),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        created += 1;
        assert!(created < 100, "never refused");
    };
    assert_eq!(created, 4, "{}", refusal.text());
    assert_eq!(refusal.status, 400);
    assert_eq!(
        refusal.json()["error"]["type"],
        json!("illegal_argument_exception")
    );
    let reason = refusal.json()["error"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("(ulimit -n)") && reason.contains(&format!("[{limit}]")),
        "{reason}"
    );
    // Nothing of the refused index was made, and the server goes on answering.
    assert!(!data.join(format!("i{created}")).exists());
    assert_eq!(send_to(addr, "GET", "/i0/_doc/1", &[], None).status, 200);
    assert!(stop(child).success());

    // Under the same limit it starts again, with everything.
    let (child, addr) = serve_limited(&data, &log, limit);
    for i in 0..created {
        assert_eq!(
            send_to(addr, "GET", &format!("/i{i}/_doc/1"), &[], None).status,
            200
        );
    }
    assert!(stop(child).success());
}

#[test]
fn segment_size_bounds_what_a_shard_preallocates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let mib = 1 << 20;
    let (process, addr) = serve_process(&data, &log, 4096, &["--segment-size", "1048576"]);
    let settings = r#"{"settings":{"number_of_shards":1}}"#;
    let created = testkit::send_to(addr, "PUT", "/seg", &[], Some(settings.as_bytes()));
    assert_eq!(created.status, 200);
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(100 << 10));
    let json = [("Content-Type", "application/json")];
    for i in 0..40 {
        let r = testkit::send_to(
            addr,
            "PUT",
            &format!("/seg/_doc/{i}"),
            &json,
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 201);
    }
    assert!(stop(process).success());
    let shard = data.join("seg").join("0");
    let segments: Vec<u64> = std::fs::read_dir(&shard)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    // 4 MB written: several segments, none over the bound.
    assert!(segments.len() >= 3, "{segments:?}");
    assert!(segments.iter().all(|&len| len <= mib), "{segments:?}");
    // A bound under 1 MiB is refused.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(["serve", "--segment-size", "4096", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn a_clean_restart_logs_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, addr) = serve_process(&data, &dir.path().join("first.log"), 4096, &[]);
    let settings = r#"{"settings":{"number_of_shards":8}}"#;
    let created = testkit::send_to(addr, "PUT", "/calm", &[], Some(settings.as_bytes()));
    assert_eq!(created.status, 200);
    assert!(stop(first).success());
    let log = dir.path().join("second.log");
    let (second, _) = serve_process(&data, &log, 4096, &[]);
    assert!(stop(second).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(warnings.is_empty(), "a clean restart warned: {warnings:#?}");
}

#[test]
fn a_network_address_without_auth_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before touching the data directory"
    );
}
