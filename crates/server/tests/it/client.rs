//! The official Rust `elasticsearch` client (8.x, rustls) against a live server, unchanged:
//! the calls an application makes, and what it sees. Once over plain HTTP, once over HTTPS
//! with basic authentication and the server's certificate fully validated.

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{StatusCode, Url};
use elasticsearch::{BulkParts, DeleteParts, Elasticsearch, GetParts, IndexParts, UpdateParts};
use serde_json::{Value, json};
use server::{ServeOptions, Users};

use crate::support::Server;

async fn walk_through(client: &Elasticsearch) {
    // Index, then get: the stamp.
    let r = client
        .index(IndexParts::IndexId("movies", "109487"))
        .body(json!({"title": "The Godfather", "year": 1972}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status_code(), StatusCode::CREATED);
    let r = client
        .get(GetParts::IndexId("movies", "109487"))
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    assert_eq!(
        (&doc["_seq_no"], &doc["_primary_term"]),
        (&json!(0), &json!(1))
    );

    // A conditional index on the stamp succeeds once; the same again is 409.
    for expected in [StatusCode::OK, StatusCode::CONFLICT] {
        let r = client
            .index(IndexParts::IndexId("movies", "109487"))
            .if_seq_no(0)
            .if_primary_term(1)
            .body(json!({"title": "The Godfather", "year": 1972, "genre": "crime"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status_code(), expected);
        let body: Value = r.json().await.unwrap();
        if expected == StatusCode::CONFLICT {
            assert_eq!(body["error"]["type"], "version_conflict_engine_exception");
            assert_eq!(
                body["error"]["current"],
                json!({"found": true, "_version": 2, "_seq_no": 1, "_primary_term": 1}),
                "the conflict's evidence, as data"
            );
        } else {
            assert_eq!(body["_seq_no"], 1);
        }
    }

    // Bulk with one conflicting item: the others land, `errors` says so.
    let lines: Vec<JsonBody<Value>> = vec![
        json!({"index": {"_index": "movies", "_id": "1"}}).into(),
        json!({"title": "Alien"}).into(),
        json!({"index": {"_index": "movies", "_id": "109487", "if_seq_no": 0, "if_primary_term": 1}}).into(),
        json!({"title": "stale"}).into(),
        json!({"create": {"_index": "movies", "_id": "2"}}).into(),
        json!({"title": "Aliens"}).into(),
    ];
    let r = client
        .bulk(BulkParts::None)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status_code(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"], true);
    let statuses: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item.as_object().unwrap().values().next().unwrap()["status"])
        .collect();
    assert_eq!(statuses, [&json!(201), &json!(409), &json!(201)]);

    // Upserts of one id from several tasks at once: the racing creates conflict, and
    // retry_on_conflict re-runs them as updates, so every call succeeds (the later ones are
    // noops) and exactly one document is created.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let r = client
                        .update(UpdateParts::IndexId("counters", "c"))
                        .retry_on_conflict(100)
                        .body(json!({"doc": {}, "upsert": {"n": 0}}))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status_code().is_success());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let r = client
        .get(GetParts::IndexId("counters", "c"))
        .send()
        .await
        .unwrap();
    let counter: Value = r.json().await.unwrap();
    assert_eq!(
        (&counter["_version"], &counter["_source"]),
        (&json!(1), &json!({"n": 0}))
    );
    let r = client
        .update(UpdateParts::IndexId("movies", "1"))
        .retry_on_conflict(3)
        .body(json!({"doc": {"year": 1979}}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["result"], &body["_version"]),
        (&json!("updated"), &json!(2))
    );

    // Delete, then the document is gone.
    let r = client
        .delete(DeleteParts::IndexId("movies", "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status_code(), StatusCode::OK);
    let r = client
        .get(GetParts::IndexId("movies", "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status_code(), StatusCode::NOT_FOUND);
}

#[test]
fn the_official_client_over_http() {
    let server = Server::start_fresh();
    let url = Url::parse(&format!("http://{}", server.addr)).unwrap();
    let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .build()
        .unwrap();
    let client = Elasticsearch::new(transport);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(walk_through(&client));
}

#[test]
fn the_official_client_over_https_with_basic_auth() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let options = ServeOptions {
        users: Some(Users::parse(["elastic:changeme"]).unwrap()),
        tls: Some(server::tls::server_config(&cert, &key).unwrap()),
        ..ServeOptions::default()
    };
    let data = dir.path().join("data");
    let server = Server::start_with(&data, options);
    let url = Url::parse(&format!("https://{}", server.addr)).unwrap();
    let pem = certified.cert.pem();
    let connect = |credentials: Credentials| {
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
            .auth(credentials)
            .cert_validation(CertificateValidation::Full(
                Certificate::from_pem(pem.as_bytes()).unwrap(),
            ))
            .build()
            .unwrap();
        Elasticsearch::new(transport)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let wrong = connect(Credentials::Basic("elastic".into(), "guess".into()));
        let r = wrong
            .get(GetParts::IndexId("movies", "1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status_code(), StatusCode::UNAUTHORIZED);
        let client = connect(Credentials::Basic("elastic".into(), "changeme".into()));
        walk_through(&client).await;
    });
    // Plain HTTP to the HTTPS port gets no answer it could mistake for one.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(
        !raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn over_https_a_stalled_handshake_is_closed_and_connections_are_limited() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let options = ServeOptions {
        tls: Some(server::tls::server_config(&cert, &key).unwrap()),
        limits: server::connections::Limits {
            header_timeout: Duration::from_secs(1),
            connections_max: 2,
            ..server::connections::Limits::default()
        },
        ..ServeOptions::default()
    };
    let server = Server::start_with(&dir.path().join("data"), options);
    let closed_within = |stream: &mut std::net::TcpStream, limit: Duration| {
        stream.set_read_timeout(Some(limit)).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let timed_out = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        };
        let closed = match stream.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => !timed_out(&e),
        };
        closed && started.elapsed() < limit
    };
    // Two clients that never start a handshake take both places...
    let mut stalled: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // ...so a third is closed at once...
    let mut third = std::net::TcpStream::connect(server.addr).unwrap();
    assert!(
        closed_within(&mut third, Duration::from_millis(900)),
        "over the limit, kept"
    );
    // ...and the stalled ones go after the header timeout.
    for stream in &mut stalled {
        assert!(
            closed_within(stream, Duration::from_secs(10)),
            "stalled handshake kept"
        );
    }
}
