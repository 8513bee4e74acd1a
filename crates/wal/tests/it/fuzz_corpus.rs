//! Replays the committed cargo-fuzz corpus through the targets' library bodies, so CI checks
//! them on every run without cargo-fuzz.

use std::path::PathBuf;

#[test]
fn wal_decode_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wal_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        wal::fuzz::wal_decode(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 5, "the corpus is in {}", dir.display());
}

#[test]
fn wal_decode_on_real_frames() {
    // A frame of the log itself, and damaged copies, as a fuzzer would find them.
    let sim = wal::sim::SimStorage::new(1);
    let mut rng = wal::sim::Rng::new(crate::support::seed("wal_decode_on_real_frames"));
    let config = crate::support::sim_config(wal::Durability::Request);
    let (log, _) = crate::support::open(&sim, &config).unwrap();
    for i in 0..5u8 {
        log.append(&[i; 50]).unwrap();
    }
    let name = wal::files::segment(log.segments()[0].generation);
    let frames = sim.file_bytes(&name).unwrap()[wal::SEGMENT_HEADER_LEN..600].to_vec();
    wal::fuzz::wal_decode(&frames);
    for _ in 0..200 {
        let mut damaged = frames.clone();
        let at = rng.below(damaged.len() as u64) as usize;
        damaged[at] = rng.next_u64() as u8;
        damaged.truncate(rng.below(frames.len() as u64 + 1) as usize);
        wal::fuzz::wal_decode(&damaged);
    }
}

#[test]
fn the_wal_recover_corpus_and_systematic_edits_hold() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wal_recover");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        wal::fuzz::wal_recover(&std::fs::read(entry.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is committed: {}", dir.display());
    // A flip and a cut at every 61st offset of every file, as a fuzzer would start.
    wal::fuzz::wal_recover(&[]);
    for file in 0..4u8 {
        for at in (0..4096u16).step_by(61) {
            let [lo, hi] = at.to_le_bytes();
            wal::fuzz::wal_recover(&[file, hi, lo, 0x10]);
            wal::fuzz::wal_recover(&[file, hi, lo, 0x80]);
        }
    }
}
