//! Replays the committed `http_request` fuzz corpus through the target's library body, so CI
//! checks it on every run without cargo-fuzz; and a few inputs a fuzzer would try first.

use std::path::PathBuf;

#[test]
fn the_http_request_corpus_replays_without_a_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_request");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        server::fuzz::http_request(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 6, "the corpus is committed: {}", dir.display());
    for input in [
        &b""[..],
        b"\n",
        b"\n\n",
        b"a=%ZZ\n{}",
        b"_source=\n{\"index\":{}}\n\xff\xfe\n",
        b"\n{\"index\":{\"_id\":\"\\ud800\"}}\n{}\n",
        b"\n{\"update\":{\"_index\":\"m\",\"_id\":\"1\",\"retry_on_conflict\":[1]}}\n{}\n",
        // Plain action lines, which the fast reader takes: it must read them as the general.
        b"\n{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"f\":1}\n\
          { \"update\" : {\"_id\":\"2\",\"if_seq_no\":7,\"if_primary_term\":1}}\n{\"doc\":{}}\n\
          {\"delete\":{\"version\":12,\"version_type\":\"external\",\"routing\":null}}\n",
    ] {
        server::fuzz::http_request(input);
    }
    // The shape of the slowest input an hour of fuzzing found (94 s, session 6): wildcards
    // in `_source` against a long field name. Ends at once now.
    let slow = format!("_source=*E*E*E*E*E*E*E*x\n{{\"{}\":1}}", "E".repeat(2_000));
    server::fuzz::http_request(slow.as_bytes());
}
