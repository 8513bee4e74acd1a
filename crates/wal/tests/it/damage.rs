//! Every single-bit flip and every truncation length of a last segment of at least 16 KiB.
//!
//! Method: a log with one sealed segment and a last segment holding over 16 KiB of records
//! (each synced before the next was written). For each damage, a fresh copy of the machine is
//! damaged and reopened. Expected, by where the damage falls:
//! - the segment header: `Corrupt` (the segment is published and holds acknowledged data);
//! - the last record: cut as a torn tail, every earlier record intact;
//! - any earlier record: `Corrupt` (the records after it prove it had been synced);
//! - past the last record: the log opens whole.
//!
//! After `close()` the checkpoint records the end as durable, and then any damage to a record
//! is `Corrupt`. In no case may a record come back with other bytes.

use wal::sim::{Damage, SimStorage};
use wal::{Appended, Config, Durability, Error, Generation, LogUuid, ShardId};

use crate::support;

const RECORD_LEN: usize = 200;

fn config() -> Config {
    let mut config = Config::new(ShardId(0), Durability::Request);
    config.segment_size = 24 << 10;
    config.background = false;
    config.log_uuid = Some(LogUuid([1; 16]));
    config
}

struct Base {
    machine: SimStorage,
    name: String,
    payloads: Vec<Vec<u8>>,
    /// (start, end) of each frame in the last segment, and the seq_no of the first.
    frames: Vec<(usize, usize)>,
    first_in_last: usize,
    file_len: usize,
}

fn build(close: bool) -> Base {
    let sim = SimStorage::new(5);
    let (wal, _) = support::open(&sim, &config()).unwrap();
    let mut payloads = Vec::new();
    let mut appended: Vec<Appended> = Vec::new();
    for i in 0..10u8 {
        payloads.push(vec![i; RECORD_LEN]);
        appended.push(wal.append(&payloads[i as usize]).unwrap());
    }
    wal.roll().unwrap();
    let last_generation = wal.segments().last().unwrap().generation;
    let mut written = 0;
    while written < 17 << 10 {
        let i = payloads.len();
        payloads.push((0..RECORD_LEN).map(|j| (i * 7 + j) as u8).collect());
        let a = wal.append(&payloads[i]).unwrap();
        assert_eq!(a.location.generation, last_generation);
        appended.push(a);
        written = a.location.offset as usize;
    }
    if close {
        wal.close().unwrap();
    } else {
        drop(wal);
    }
    let machine = sim.crash(Damage::DropUnsynced);
    let name = wal::files::segment(last_generation);
    let file_len = machine.file_bytes(&name).unwrap().len();
    let first_in_last = appended
        .iter()
        .position(|a| a.location.generation == last_generation)
        .unwrap();
    let frame_len = (wal::RECORD_HEADER_LEN + RECORD_LEN).div_ceil(8) * 8;
    let frames = appended[first_in_last..]
        .iter()
        .map(|a| {
            (
                a.location.offset as usize,
                a.location.offset as usize + frame_len,
            )
        })
        .collect::<Vec<_>>();
    assert!(
        frames.last().unwrap().1 - wal::SEGMENT_HEADER_LEN >= 16 << 10,
        "16 KiB of records"
    );
    Base {
        machine,
        name,
        payloads,
        frames,
        first_in_last,
        file_len,
    }
}

enum Expect {
    Corrupt,
    /// Opens with this many records.
    Records(usize),
}

impl Base {
    fn expect_at(&self, offset: usize, durable_to_end: bool) -> Expect {
        let all = self.payloads.len();
        if offset < wal::SEGMENT_HEADER_LEN {
            return Expect::Corrupt;
        }
        match self
            .frames
            .iter()
            .position(|(s, e)| (*s..*e).contains(&offset))
        {
            Some(_) if durable_to_end => Expect::Corrupt,
            Some(k) if k + 1 == self.frames.len() => Expect::Records(all - 1),
            Some(_) => Expect::Corrupt,
            None => Expect::Records(all),
        }
    }

    fn check(&self, damage: impl FnOnce(&mut Vec<u8>), expect: Expect, what: &str) {
        let sim = self.machine.crash(Damage::DropUnsynced);
        sim.damage_file(&self.name, damage);
        match (support::open(&sim, &config()), expect) {
            (Err(Error::Corrupt(c)), Expect::Corrupt) => {
                assert_eq!(c.generation, Some(Generation(2)), "{what}: {c}");
            }
            (Ok((wal, recovery)), Expect::Records(n)) => {
                let records = support::read_all(&wal);
                assert_eq!(records.len(), n, "{what}");
                assert_eq!(recovery.records as usize, n, "{what}");
                for r in &records {
                    assert_eq!(
                        r.payload, self.payloads[r.seq_no.0 as usize],
                        "{what}: wrong bytes"
                    );
                }
            }
            (Err(e), Expect::Records(n)) => panic!("{what}: expected {n} records, got {e}"),
            (Err(e), Expect::Corrupt) => panic!("{what}: expected Corrupt, got {e}"),
            (Ok((_, r)), Expect::Corrupt) => {
                panic!("{what}: expected Corrupt, opened with {}", r.records)
            }
        }
    }
}

#[test]
fn every_bit_flip_of_the_last_segment() {
    let base = build(false);
    assert!(base.first_in_last > 0);
    for bit in 0..base.file_len * 8 {
        let offset = bit / 8;
        let expect = base.expect_at(offset, false);
        base.check(
            |b| b[offset] ^= 1 << (bit % 8),
            expect,
            &format!("flip of bit {bit}"),
        );
    }
    eprintln!("{} bit flips checked", base.file_len * 8);
}

#[test]
fn every_truncation_of_the_last_segment() {
    let base = build(false);
    for len in 0..=base.file_len {
        let expect = if len < wal::SEGMENT_HEADER_LEN {
            Expect::Corrupt
        } else {
            Expect::Records(
                base.first_in_last + base.frames.iter().filter(|(_, e)| *e <= len).count(),
            )
        };
        base.check(|b| b.truncate(len), expect, &format!("truncation to {len}"));
    }
}

#[test]
fn after_close_any_damage_to_a_record_is_corrupt() {
    let base = build(true);
    let end = base.frames.last().unwrap().1;
    for len in 0..end {
        base.check(
            |b| b.truncate(len),
            Expect::Corrupt,
            &format!("truncation to {len}"),
        );
    }
    for bit in (0..base.file_len * 8).step_by(7) {
        let offset = bit / 8;
        let expect = base.expect_at(offset, true);
        base.check(
            |b| b[offset] ^= 1 << (bit % 8),
            expect,
            &format!("flip of bit {bit}"),
        );
    }
}
