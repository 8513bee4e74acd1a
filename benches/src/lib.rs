//! Workloads shared by the criterion benches and the `ratios` binary, so that both measure
//! exactly the same thing.
//!
//! Every comparison runs on the same file system, in the same process, interleaved round by
//! round, so a ratio is meaningful on a shared and noisy machine where an absolute time is not.
// The raw baseline writes a file directly: it measures what the seam costs.
#![allow(clippy::disallowed_types)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wal::{Config, Durability, FsStorage, ShardId, Wal};

pub mod http;
pub mod peers;

/// Bytes per record: a small document.
pub const RECORD_LEN: usize = 300;
/// Segment and baseline file size.
pub const FILE_LEN: u64 = 64 << 20;

/// The release `optimist` binary (`OPTIMIST_BIN` names another).
pub fn optimist_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("OPTIMIST_BIN") {
        return bin.into();
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/optimist");
    assert!(
        bin.exists(),
        "build it first: cargo build --release -p optimist-cli"
    );
    bin
}

/// A scratch directory on the disk under test (not tmpfs): `BENCH_DIR` or the target dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-scratch")
        });
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the scratch directory");
    dir
}

/// The baseline: `write` + `fdatasync` per record on a zero-filled preallocated file, the
/// least any durable log must do.
pub struct RawLog {
    file: File,
    offset: u64,
    record: Vec<u8>,
}

impl RawLog {
    pub fn create(dir: &Path) -> RawLog {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("raw.log"))
            .unwrap();
        let zeros = vec![0u8; 1 << 20];
        for i in 0..FILE_LEN / zeros.len() as u64 {
            file.write_all_at(&zeros, i * zeros.len() as u64).unwrap();
        }
        file.sync_all().unwrap();
        RawLog {
            file,
            offset: 0,
            record: vec![7u8; RECORD_LEN],
        }
    }

    pub fn append(&mut self) {
        if self.offset + RECORD_LEN as u64 > FILE_LEN {
            self.offset = 0;
        }
        self.file.write_all_at(&self.record, self.offset).unwrap();
        self.file.sync_data().unwrap();
        self.offset += RECORD_LEN as u64;
    }
}

/// A log with `Durability::Request` and production settings in `dir`.
pub fn open_wal(dir: &Path) -> Wal {
    let config = Config::new(ShardId(0), Durability::Request);
    let (wal, _) = Wal::open(Arc::new(FsStorage::open(dir).unwrap()), config).unwrap();
    // The first append puts a segment in service; keep that out of the measurement.
    wal.append(&[0u8; RECORD_LEN]).unwrap();
    wal
}

/// Durable appends per second with `writers` threads, `per_writer` appends each.
pub fn wal_rate(wal: &Wal, writers: usize, per_writer: usize) -> f64 {
    let payload = vec![7u8; RECORD_LEN];
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..writers {
            scope.spawn(|| {
                for _ in 0..per_writer {
                    wal.append(&payload).unwrap();
                }
            });
        }
    });
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

/// Records per second of the baseline.
pub fn raw_rate(raw: &mut RawLog, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        raw.append();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The rounds a ratio binary runs: `ROUNDS` from the environment, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The middle value (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// The ratio `a / b` of each round: their median, lowest and highest. Each round measures the
/// contenders within seconds of each other, so a round's ratio is little moved by the host
/// getting busier or quieter during the run; a ratio of two medians taken over the whole run
/// is.
pub fn round_ratios(a: &[f64], b: &[f64]) -> RoundRatios {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(0.0, f64::max);
    RoundRatios {
        median: median(ratios),
        low,
        high,
    }
}

pub struct RoundRatios {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

impl RoundRatios {
    /// "3.2x (rounds 2.8x to 4.9x)", with `decimals` and `unit` after each figure.
    pub fn show(&self, decimals: usize, unit: &str) -> String {
        format!(
            "{:.d$}{unit} (rounds {:.d$}{unit} to {:.d$}{unit})",
            self.median,
            self.low,
            self.high,
            d = decimals
        )
    }
}

/// Lets the disk go quiet before the next contender: writes back every dirty page (the
/// `sync` command) and waits a moment, so background work one contender left behind (a peer's
/// memtable flush or compaction, our own segment preparation) is not timed against the next.
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(200));
}

/// How long a round should last: long enough to smooth scheduling noise.
pub const ROUND: Duration = Duration::from_millis(1500);

/// CPU time this process has used so far (user and system, all threads), from
/// `/proc/self/stat` in clock ticks (100 per second on Linux): CPU per operation is far steadier
/// than throughput on a shared host, whose other tenants take cores but not our CPU time.
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux's /proc");
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a stat line") + 2..]
        .split(' ')
        .collect();
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The whole machine's CPU time by state, from the first line of `/proc/stat` (clock ticks of
/// all cores): what tells a slow round of a busy host from a slow build. `steal` is time a
/// virtual core was ready to run while the hypervisor ran something else; `idle` counts the
/// disk waits (`iowait`) too.
#[derive(Default, Clone, Copy, Debug)]
pub struct HostTimes {
    pub busy: u64,
    pub idle: u64,
    pub steal: u64,
}

impl HostTimes {
    pub fn now() -> HostTimes {
        let stat = std::fs::read_to_string("/proc/stat").expect("Linux's /proc");
        let line = stat.lines().next().expect("the cpu line");
        // cpu user nice system idle iowait irq softirq steal guest guest_nice
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().expect("a tick count"))
            .collect();
        HostTimes {
            busy: ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6],
            idle: ticks[3] + ticks[4],
            steal: ticks[7],
        }
    }

    pub fn since(&self, before: &HostTimes) -> HostTimes {
        HostTimes {
            busy: self.busy - before.busy,
            idle: self.idle - before.idle,
            steal: self.steal - before.steal,
        }
    }

    pub fn add(&mut self, other: &HostTimes) {
        self.busy += other.busy;
        self.idle += other.idle;
        self.steal += other.steal;
    }

    /// "idle N%, steal M%" of all the cores' time.
    pub fn show(&self) -> String {
        let all = (self.busy + self.idle + self.steal).max(1) as f64;
        format!(
            "host idle {:.0}%, steal {:.0}%",
            100.0 * self.idle as f64 / all,
            100.0 * self.steal as f64 / all
        )
    }
}
