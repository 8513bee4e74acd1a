//! Criterion: one durable append, as `Wal::append` and as the raw `write` + `fdatasync`
//! baseline, on the same disk. The ratio of the two is what matters (see `ratios`).

use criterion::{Criterion, criterion_group, criterion_main};

use benches::{RECORD_LEN, RawLog, open_wal, scratch_dir};

fn durable_append(c: &mut Criterion) {
    let dir = scratch_dir("criterion");
    let mut raw = RawLog::create(&dir);
    let wal = open_wal(&dir.join("wal"));
    let payload = vec![7u8; RECORD_LEN];
    let mut group = c.benchmark_group("durable_append_300B");
    group.bench_function("raw_write_fdatasync", |b| b.iter(|| raw.append()));
    group.bench_function("wal_request_1_writer", |b| {
        b.iter(|| wal.append(&payload).unwrap())
    });
    group.finish();
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = durable_append
}
criterion_main!(benches);
