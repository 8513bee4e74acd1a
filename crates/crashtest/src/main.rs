//! `crashtest`: the crash-recovery harness. `crashtest kill` (SIGKILL the real server),
//! `crashtest power` (the real server on a file system that loses power), `crashtest sim`
//! (power loss below the engine, at every I/O point).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "crashtest",
    about = "Crash optimist (kill, power cut, simulated power cut) and check every acknowledged write"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The options of the rounds against the real binary.
#[derive(Args)]
struct Rounds {
    #[arg(long, default_value_t = 200)]
    rounds: u64,
    /// The seed of the run (random if absent; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// The optimist binary (default: beside this one).
    #[arg(long)]
    binary: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// SIGKILL the real server during concurrent writes, restart it, check.
    Kill {
        #[command(flatten)]
        rounds: Rounds,
        /// Run the index with `index.translog.durability: async`.
        #[arg(long)]
        r#async: bool,
    },
    /// The kill rounds with the data directory on a FUSE file system that drops unsynced
    /// writes (or tears the last one) at each cut.
    Power {
        #[command(flatten)]
        rounds: Rounds,
        /// Run the index with `index.translog.durability: async`: writes acknowledged before
        /// their fsync may be lost at a cut, and a stamp lost with them must get 409.
        #[arg(long)]
        r#async: bool,
    },
    /// Delete a full multi-shard index and create another while the server is cut (SIGKILL,
    /// or a power cut with --power); check each is whole or gone as its answer allows.
    Lifecycle {
        #[command(flatten)]
        rounds: Rounds,
        /// Cut the power (the FUSE file system of `power`), not only the process.
        #[arg(long)]
        power: bool,
    },
    /// Faults outside the write path: ENOSPC, EMFILE and EIO at every I/O call of a workload
    /// that creates, writes, deletes and reopens indices (SimStorage); against the real
    /// server, oversized documents and slow, stalled and idle clients.
    Faults {
        /// The seed of the simulated workload (random if absent; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// The optimist binary (default: beside this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Also fill a small real file system (a tmpfs mounted here: needs root).
        #[arg(long)]
        disk_full: bool,
    },
    /// Cut the power below the engine (SimStorage) at every I/O point of seeded workloads,
    /// under every damage variant; inject EIO and ENOSPC; check.
    Sim {
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// The first seed (random if absent; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        /// Threads running seeds at once (each seed is independent).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
}

fn random_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_000)
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Kill { rounds, r#async } => kill(rounds, r#async),
        Command::Power { rounds, r#async } => power(rounds, r#async),
        Command::Lifecycle { rounds, power } => lifecycle(rounds, power),
        Command::Faults {
            seed,
            binary,
            disk_full,
        } => faults(seed, binary, disk_full),
        Command::Sim { seeds, seed, jobs } => sim(seeds, seed.unwrap_or_else(random_seed), jobs),
    }
}

/// `crashtest kill`: SIGKILL during concurrent writes.
fn kill(rounds: Rounds, r#async: bool) -> ExitCode {
    let options = options("kill", rounds, r#async);
    let result = crashtest::kill::run(&options).map(|f| {
        format!(
            "ok: {} rounds, {} acknowledged writes checked, {} lost, {} surviving stamps \
             written once then refused, {} lost stamps refused; the servers logged {} \
             compactions; the changes feed's follower was shown {} operations and held \
             every document as the store did after each restart",
            f.rounds,
            f.acknowledged,
            f.lost,
            f.surviving_stamps,
            f.lost_stamps,
            f.compactions,
            f.followed
        )
    });
    finish(&options, result)
}

/// `crashtest power`: power cuts on a FUSE file system that drops unsynced writes.
fn power(rounds: Rounds, r#async: bool) -> ExitCode {
    let options = options("power", rounds, r#async);
    let result = crashtest::power::run(&options).map(|(f, p)| {
        format!(
            "ok: {} power cuts ({} dropping every unsynced write, {} tearing the last; \
             {} unsynced writes undone), {} acknowledged writes checked, {} lost, {} \
             surviving stamps written once then refused, {} lost stamps refused; the \
             file system served {} writes and {} fsyncs; the servers logged {} \
             compactions; the changes feed's follower was shown {} operations and held \
             every document as the store did after each cut",
            f.rounds,
            p.dropped,
            p.torn,
            p.writes_undone,
            f.acknowledged,
            f.lost,
            f.surviving_stamps,
            f.lost_stamps,
            p.writes,
            p.syncs,
            f.compactions,
            f.followed
        )
    });
    finish(&options, result)
}

/// `crashtest lifecycle`: an index deleted and another created while the server is killed
/// (or its power cut).
fn lifecycle(rounds: Rounds, power: bool) -> ExitCode {
    let options = options("lifecycle", rounds, false);
    let describe = |f: &crashtest::lifecycle::Figures| {
        format!(
            "{} rounds: deletes {} acknowledged (gone), {} cut (whole {}, gone {}); \
             creations {} acknowledged (whole), {} cut (whole {}, gone {}); {} \
             acknowledged documents checked",
            f.rounds,
            f.deletes_acknowledged,
            f.deletes_cut_whole + f.deletes_cut_gone,
            f.deletes_cut_whole,
            f.deletes_cut_gone,
            f.creates_acknowledged,
            f.creates_cut_whole + f.creates_cut_gone,
            f.creates_cut_whole,
            f.creates_cut_gone,
            f.documents_checked
        )
    };
    let result = if power {
        crashtest::lifecycle::run_power(&options).map(|(f, p)| {
            format!(
                "ok: {} power cuts ({} unsynced writes undone): {}",
                f.rounds,
                p.writes_undone,
                describe(&f)
            )
        })
    } else {
        crashtest::lifecycle::run(&options).map(|f| format!("ok: {}", describe(&f)))
    };
    finish(&options, result)
}

/// `crashtest faults`: ENOSPC, EMFILE and EIO at every I/O point, then the real server's
/// limits, then (with `--disk-full`) a small file system filled up.
fn faults(seed: Option<u64>, binary: Option<PathBuf>, disk_full: bool) -> ExitCode {
    let rounds = Rounds {
        rounds: 1,
        seed,
        clients: 1,
        binary,
    };
    let options = options("faults", rounds, false);
    let mut f = crashtest::faults::Figures::default();
    let result = crashtest::faults::run_sim(options.seed, &mut f)
        .and_then(|()| crashtest::faults::run_server(&options, &mut f))
        .and_then(|()| {
            if disk_full {
                crashtest::faults::run_disk_full(&options, &mut f)
            } else {
                Ok(())
            }
        })
        .map(|()| {
            format!(
                "ok: {} I/O points x ENOSPC, EMFILE, EIO (once, and from then on): {} \
                 faulted runs ({} with refusals; {} shards failed by ENOSPC or EMFILE \
                 reopened in the running store, which then took writes), each reopened \
                 after a restart and a power cut, {} acknowledged documents checked; \
                 the real server refused \
                 {} oversized documents and went on serving, closed {} slow, stalled or \
                 idle connections while acknowledging {} writes, all found after a \
                 SIGKILL; {} writes acknowledged on a small file system filled up, all \
                 found after space was freed and after a restart",
                f.io_points,
                f.faulted_runs,
                f.runs_with_refusals,
                f.shards_reopened,
                f.documents_checked,
                f.oversized_refused,
                f.stalled_closed,
                f.writes_meanwhile,
                f.disk_full_writes
            )
        });
    finish(&options, result)
}

/// The options of a run, announced.
fn options(what: &str, rounds: Rounds, async_durability: bool) -> crashtest::Options {
    let seed = rounds.seed.unwrap_or_else(random_seed);
    let durability = if async_durability { "async" } else { "request" };
    println!(
        "crashtest {what}: seed {seed}, {} rounds, {} clients, durability {durability}",
        rounds.rounds, rounds.clients
    );
    crashtest::Options {
        binary: rounds.binary.unwrap_or_else(crashtest::default_binary),
        rounds: rounds.rounds,
        seed,
        clients: rounds.clients,
        async_durability,
        work_dir: std::env::temp_dir()
            .join(format!("crashtest-{what}-{}-{seed}", std::process::id())),
    }
}

/// Prints the figures (and cleans up), or the violation (and keeps the evidence).
fn finish(options: &crashtest::Options, result: Result<String, String>) -> ExitCode {
    match result {
        Ok(figures) => {
            println!("{figures}");
            let _ = std::fs::remove_dir_all(&options.work_dir);
            ExitCode::SUCCESS
        }
        Err(violation) => {
            println!("VIOLATION: {violation}");
            println!(
                "server log kept in {}; replay with --seed {}",
                options.work_dir.display(),
                options.seed
            );
            ExitCode::FAILURE
        }
    }
}

fn sim(seeds: u64, seed: u64, jobs: usize) -> ExitCode {
    println!(
        "crashtest sim: seeds {seed}..{}, {jobs} at a time",
        seed + seeds
    );
    let started = std::time::Instant::now();
    let every = (seeds / 100).max(10);
    let result = crashtest::sim::run(seed, seeds, jobs, |done| {
        if done % every == 0 {
            println!(
                "  {done} seeds done ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    });
    match result {
        Ok(f) => {
            println!(
                "ok: {} seeds, {} power cuts at every I/O point x damage variant ({} with a \
                 second cut during recovery), {} EIO/ENOSPC faults, {} acknowledged writes \
                 checked, {} lost ({:.0} s)",
                f.seeds,
                f.crashes,
                f.recovery_crashes,
                f.faults,
                f.acknowledged,
                f.lost,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(violation) => {
            println!("VIOLATION: {violation}");
            println!("replay with --seed {seed} --seeds {seeds}");
            ExitCode::FAILURE
        }
    }
}
