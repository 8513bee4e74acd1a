//! The operator tools against real data: `optimist export` of an index, fed back through
//! `optimist import` into optimist's own `_bulk`, reproduces every document and `_version`.

use std::process::Command;

use serde_json::{Value, json};

use testkit::Server;

#[test]
fn export_then_import_reproduces_every_document_and_version() {
    let source_dir = tempfile::tempdir().unwrap();
    let mut expected: Vec<(String, u64, Value)> = Vec::new();
    {
        let server = Server::start(source_dir.path());
        let (status, _) = server.json(
            "PUT",
            "/src",
            Some(r#"{"settings":{"number_of_shards":3}}"#),
        );
        assert_eq!(status, 200);
        for i in 0..300 {
            let id = format!("doc-{i}");
            // Some documents are rewritten, some deleted, some carry external versions.
            let writes = 1 + i % 4;
            for w in 0..writes {
                let body = json!({"i": i, "w": w, "text": "x".repeat(i % 50)}).to_string();
                let path = if i % 7 == 0 {
                    format!(
                        "/src/_doc/{id}?version={}&version_type=external",
                        10 * (w + 1)
                    )
                } else {
                    format!("/src/_doc/{id}")
                };
                let (status, _) = server.json("PUT", &path, Some(&body));
                assert!(status == 200 || status == 201, "{path}: {status}");
            }
            if i % 11 == 0 {
                server.json("DELETE", &format!("/src/_doc/{id}"), None);
            }
        }
        for i in 0..300 {
            let (status, doc) = server.json("GET", &format!("/src/_doc/doc-{i}"), None);
            if status == 200 {
                expected.push((
                    format!("doc-{i}"),
                    doc["_version"].as_u64().unwrap(),
                    doc["_source"].clone(),
                ));
            }
        }
    }
    assert_eq!(expected.len(), 300 - 28, "300 documents, 28 deleted");

    let exported = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(["export", "--index", "src", "--data-dir"])
        .arg(source_dir.path())
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let ndjson = String::from_utf8(exported.stdout).unwrap();
    assert_eq!(ndjson.lines().count(), 2 * expected.len());
    let first: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    assert_eq!(first["index"]["version_type"], "external");
    let file = source_dir.path().join("export.ndjson");
    std::fs::write(&file, &ndjson).unwrap();

    let target = Server::start_fresh();
    let imported = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(["import", "--batch", "64", "--index", "copy", "--url"])
        .arg(format!("http://{}", target.addr))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    for (id, version, source) in &expected {
        let (status, doc) = target.json("GET", &format!("/copy/_doc/{id}"), None);
        assert_eq!(status, 200, "{id}");
        assert_eq!(
            (&doc["_version"], &doc["_source"]),
            (&json!(version), source),
            "{id}"
        );
    }
    let (_, count) = target.json("GET", "/copy/_count", None);
    assert_eq!(count["count"], expected.len());

    // Importing the same file again changes nothing: external versions refuse to go back.
    let again = Command::new(env!("CARGO_BIN_EXE_optimist"))
        .args(["import", "--index", "copy", "--url"])
        .arg(format!("http://{}", target.addr))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "every item conflicts, and it says so"
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("version_conflict_engine_exception"),
        "{stderr}"
    );
    let (_, doc) = target.json("GET", &format!("/copy/_doc/{}", expected[0].0), None);
    assert_eq!(doc["_version"], json!(expected[0].1));
}

/// `optimist follow` copies an index into another cluster's through the changes feed, with
/// every `_version`, and on a second run copies only what changed since, deletes included.
#[test]
fn follow_keeps_another_cluster_s_index_in_sync_with_versions() {
    let source = Server::start_fresh();
    let target = Server::start_fresh();
    source.json(
        "PUT",
        "/src",
        Some(r#"{"settings":{"number_of_shards":2}}"#),
    );
    let write = |from: usize, to: usize| {
        for i in from..to {
            let id = format!("d{}", i % 40);
            let body = json!({"i": i}).to_string();
            source.json("PUT", &format!("/src/_doc/{id}"), Some(&body));
            if i % 9 == 0 {
                source.json("DELETE", &format!("/src/_doc/d{}", (i + 3) % 40), None);
            }
        }
    };
    let follow = || {
        let out = Command::new(env!("CARGO_BIN_EXE_optimist"))
            .args([
                "follow",
                "--index",
                "src",
                "--to-index",
                "copy",
                "--once",
                "--from",
            ])
            .arg(format!("http://{}", source.addr))
            .arg("--to")
            .arg(format!("http://{}", target.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let documents = |server: &Server, index: &str| -> Vec<(String, Value, Value)> {
        (0..40)
            .filter_map(|i| {
                let (status, d) = server.json("GET", &format!("/{index}/_doc/d{i}"), None);
                (status == 200)
                    .then(|| (format!("d{i}"), d["_version"].clone(), d["_source"].clone()))
            })
            .collect()
    };
    write(0, 200);
    // Early history compacted away: the copy starts from the compacted view.
    source.json("POST", "/src/_forcemerge", None);
    write(200, 260);
    follow();
    let copied = documents(&target, "copy");
    assert!(!copied.is_empty());
    assert_eq!(copied, documents(&source, "src"));
    write(260, 330);
    follow();
    assert_eq!(documents(&target, "copy"), documents(&source, "src"));
    // Nothing new: a run changes nothing.
    follow();
    assert_eq!(documents(&target, "copy"), documents(&source, "src"));
}
