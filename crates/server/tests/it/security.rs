//! Authentication, TLS and the refusals that protect the data directory.

use std::process::Command;

use serde_json::json;
use server::{ServeOptions, Users};

use crate::support::Server;

fn basic(name: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {token}")
}

#[test]
fn basic_auth_answers_401_as_elasticsearch() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions {
        users: Some(Users::parse(["elastic:changeme"]).unwrap()),
        tls: None,
    };
    let server = Server::start_with(dir.path(), options);
    let r = server.send("GET", "/?pretty", &[], None);
    assert_eq!(r.status, 401);
    let challenge = "Basic realm=\"security\", charset=\"UTF-8\"";
    assert_eq!(r.header("www-authenticate"), Some(challenge));
    let body = r.json();
    assert_eq!(body["status"], 401);
    assert_eq!(body["error"]["type"], "security_exception");
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/?pretty]"
    );
    assert_eq!(
        body["error"]["header"],
        json!({"WWW-Authenticate": challenge})
    );
    assert_eq!(body["error"]["root_cause"][0]["type"], "security_exception");
    let wrong = basic("elastic", "guess");
    let r = server.send(
        "PUT",
        "/m/_doc/1",
        &[("Authorization", &wrong)],
        Some(b"{}"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["reason"],
        "unable to authenticate user [elastic] for REST request [/m/_doc/1]"
    );
    let right = basic("elastic", "changeme");
    let r = server.send("GET", "/m/_doc/1", &[("Authorization", &right)], None);
    assert_eq!(r.status, 404, "the refused write stored nothing");
    let r = server.send(
        "PUT",
        "/m/_doc/1",
        &[("Authorization", &right)],
        Some(b"{}"),
    );
    assert_eq!(r.status, 201);
    assert_eq!(server.send("HEAD", "/", &[], None).status, 401);
}

#[test]
fn a_users_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    std::fs::write(
        &file,
        "# who may call\nelastic:changeme\n\nbob:pw:with:colons\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refusal = Users::read_file(&file).unwrap_err();
    assert!(refusal.contains("chmod 600"), "{refusal}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let users = Users::read_file(&file).unwrap();
    assert!(!users.is_empty());
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

#[test]
fn names_never_reach_outside_the_data_directory() {
    // The data directory sits alone in a directory of its own, so that what other tests
    // create in the shared temporary directory meanwhile is not counted.
    let outer = tempfile::tempdir().unwrap();
    let server = Server::start(&outer.path().join("data"));
    let parent = outer.path().to_owned();
    let before: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in [
        "%2e%2e",
        "..",
        ".",
        "a%2Fb",
        "..%2F..%2Fetc",
        "-x",
        "_x",
        "+x",
        "A",
        "a%20b",
        "a:b",
        "a%5Cb",
    ] {
        let (status, body) = server.json("PUT", &format!("/{name}/_doc/1"), Some("{}"));
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(
            body["error"]["type"], "invalid_index_name_exception",
            "{name}"
        );
        let (status, _) = server.json("PUT", &format!("/{name}"), None);
        assert_eq!(status, 400, "{name}");
    }
    let long = "a".repeat(256);
    let (status, body) = server.json("PUT", &format!("/{long}/_doc/1"), Some("{}"));
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        format!("Invalid index name [{long}], index name is too long, (256 > 255)")
    );
    let after: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        before.len(),
        after.len(),
        "nothing created beside the data directory"
    );
    assert!(
        server.json("GET", "/_stats", None).1["indices"]
            .as_object()
            .unwrap()
            .is_empty()
    );
}
