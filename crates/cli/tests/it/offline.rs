//! `optimist check` and `optimist repair` on real data directories.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testkit::Server;

fn optimist(args: &[&str], dir: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every file under `dir` with its bytes: what "changes nothing" is checked against.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Two indices, one with two shards; every write acknowledged (durable) before the next.
fn populate(dir: &Path) {
    let server = Server::start(dir);
    let (status, _) = server.json(
        "PUT",
        "/movies",
        Some(r#"{"settings":{"number_of_shards":2}}"#),
    );
    assert_eq!(status, 200);
    for i in 0..60 {
        let body = format!(r#"{{"title":"movie {i}","pad":"{}"}}"#, "x".repeat(200));
        let (status, _) = server.json("PUT", &format!("/movies/_doc/{i}"), Some(&body));
        assert!(status == 201 || status == 200);
        let (status, _) = server.json("PUT", &format!("/books/_doc/{i}"), Some(&body));
        assert!(status == 201 || status == 200);
    }
    server.json("DELETE", "/books/_doc/3", None);
}

/// The newest segment of a shard and where its records end (the rest is zeros).
fn segment_of(dir: &Path, index: &str, shard: u32) -> (PathBuf, usize) {
    let shard_dir = dir.join(index).join(shard.to_string());
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&shard_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    // The segment holding the writes: the biggest stretch of non-zero bytes.
    let (path, used) = segments
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            (p, used)
        })
        .max_by_key(|(_, used)| *used)
        .unwrap();
    (path, used)
}

#[test]
fn check_reads_everything_changes_nothing_and_names_the_first_corruption() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());

    // Beside a live server: refused, because the data directory's lock is held.
    {
        let _server = Server::start(dir.path());
        let out = optimist(&["check"], dir.path(), None);
        assert!(!out.status.success());
        assert!(text(&out).contains("in use"), "{}", text(&out));
    }

    let before = snapshot(dir.path());
    let out = optimist(&["check"], dir.path(), None);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for shard in ["[books][0] ok", "[movies][0] ok", "[movies][1] ok"] {
        assert!(report.contains(shard), "{report}");
    }
    assert!(
        report.contains("key-directory checkpoint: sound"),
        "{report}"
    );
    assert!(report.contains("59 documents read back"), "{report}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "check changed the data directory"
    );

    let out = optimist(&["check", "--index", "books"], dir.path(), None);
    assert!(out.status.success());
    assert!(!text(&out).contains("[movies]"));

    // A flipped byte in the middle of acknowledged records.
    let (segment, used) = segment_of(dir.path(), "books", 0);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[used / 2] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let before = snapshot(dir.path());
    let out = optimist(&["check"], dir.path(), None);
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("[books][0] CORRUPT"), "{report}");
    assert!(report.contains("first corruption:"), "{report}");
    assert!(report.contains("offset"), "{report}");
    assert!(report.contains("[movies][1] ok"), "{report}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "check changed a damaged directory"
    );
}

#[test]
fn repair_shows_what_it_drops_asks_keeps_a_backup_and_leaves_a_shard_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let (segment, used) = segment_of(dir.path(), "books", 0);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[used / 2] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let repair = ["repair", "--index", "books", "--shard", "0"];

    // The flag that names the repair is required.
    let out = optimist(&repair, dir.path(), None);
    assert!(!out.status.success());
    assert!(text(&out).contains("--truncate-after-corruption"));

    // Not confirmed: nothing changes.
    let before = snapshot(dir.path());
    let mut args = repair.to_vec();
    args.push("--truncate-after-corruption");
    let out = optimist(&args, dir.path(), Some("no\n"));
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("will drop seq_nos"), "{report}");
    assert!(report.contains("Type 'yes'"), "{report}");
    assert_eq!(snapshot(dir.path()), before);

    // Confirmed.
    let out = optimist(&args, dir.path(), Some("yes\n"));
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("repaired: the shard opens"), "{report}");
    let backup = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("_repair-backup-books-0-")
        })
        .expect("a backup directory");
    let saved = std::fs::read(backup.join(segment.file_name().unwrap())).unwrap();
    assert_eq!(saved, bytes, "the backup holds the segment as it was");

    // Check agrees, and the server serves what came before the damage.
    let out = optimist(&["check"], dir.path(), None);
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::start(dir.path());
    let (status, doc) = server.json("GET", "/books/_doc/0", None);
    assert_eq!(status, 200, "{doc}");
    let (status, _) = server.json("GET", "/books/_doc/59", None);
    assert_eq!(status, 404, "the last write came after the damage");
    let (status, _) = server.json("GET", "/movies/_doc/59", None);
    assert_eq!(status, 200, "other shards are untouched");
    drop(server);

    // Nothing left to repair.
    let mut yes = args.clone();
    yes.push("--yes");
    let out = optimist(&yes, dir.path(), None);
    assert!(out.status.success());
    assert!(text(&out).contains("nothing to repair"));
}

/// The uuid an index directory's settings file names.
fn uuid_of(dir: &Path, index: &str) -> String {
    let settings = std::fs::read_to_string(dir.join(index).join("settings")).unwrap();
    settings
        .lines()
        .find_map(|l| l.strip_prefix("uuid="))
        .unwrap()
        .to_owned()
}

#[test]
fn check_reports_indices_half_created_half_deleted_or_missing_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());

    // A creation cut before its settings file: never acknowledged, removed by the next open.
    std::fs::create_dir_all(dir.path().join("half").join("0")).unwrap();
    // A delete of [books] decided (its marker durable) but cut before its removal finished.
    let uuid = uuid_of(dir.path(), "books");
    std::fs::write(dir.path().join(format!("DELETING-{uuid}")), "books").unwrap();
    let out = optimist(&["check"], dir.path(), None);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("[half] half-created"), "{report}");
    assert!(report.contains("[books] half-deleted"), "{report}");
    assert!(!report.contains("[books][0]"), "{report}");
    assert!(report.contains("[movies][1] ok"), "{report}");

    // The next open finishes both: [books] and [half] gone, [movies] whole.
    let server = Server::start(dir.path());
    assert_eq!(server.json("GET", "/books/_doc/0", None).0, 404);
    assert_eq!(server.json("GET", "/half", None).0, 404);
    assert_eq!(server.json("GET", "/movies/_doc/59", None).0, 200);
    drop(server);
    assert!(!dir.path().join("books").exists());
    assert!(!dir.path().join("half").exists());
    assert!(!dir.path().join(format!("DELETING-{uuid}")).exists());

    // A shard's directory gone from under an index: damage, named, and the exit code says so.
    std::fs::remove_dir_all(dir.path().join("movies").join("1")).unwrap();
    let out = optimist(&["check"], dir.path(), None);
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("[movies] CORRUPT: its settings name 2 shards, but shards [1]"),
        "{report}"
    );
    // And the server refuses to serve it with some of its documents gone.
    let store = engine::Store::open_dir(dir.path(), engine::StoreOptions::default());
    let err = store.err().expect("an index missing a shard is refused");
    assert!(
        err.reason().contains("shards [1] have no directory"),
        "{err}"
    );
}

#[test]
fn check_names_each_consumer_and_the_log_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = Server::start(dir.path());
        assert_eq!(server.json("PUT", "/feed", None).0, 200);
        let (status, body) = server.json(
            "PUT",
            "/feed/_changes/consumer/indexer",
            Some(r#"{"since":"-1","source":"search indexer v2"}"#),
        );
        assert_eq!(status, 201, "{body}");
        for n in 0..3 {
            server.json("PUT", &format!("/feed/_doc/d{n}"), Some("{}"));
        }
    }
    let out = optimist(&["check"], dir.path(), None);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("consumer [indexer] (search indexer v2): retains from seq_no 0, 0 bytes of log kept for it"),
        "{report}"
    );
}
