//! `crashtest`: the crash-recovery harness. `crashtest kill --rounds N --seed S` (SIGKILL the
//! real server), `crashtest sim --seeds N --seed S` (power loss below the engine).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "crashtest",
    about = "Kill optimist at random moments and check every acknowledged write"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SIGKILL the real server during concurrent writes, restart it, check.
    Kill {
        #[arg(long, default_value_t = 200)]
        rounds: u64,
        /// The seed of the run (random if absent; printed either way).
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, default_value_t = 4)]
        clients: u64,
        /// Run the index with `index.translog.durability: async`.
        #[arg(long)]
        r#async: bool,
        /// The optimist binary (default: beside this one).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// The kill rounds with the data directory on a FUSE file system that drops unsynced
    /// writes (or tears the last one) at each cut.
    Power {
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
    },
    /// Cut the power below the engine (SimStorage) at every I/O point of seeded workloads,
    /// under every damage variant; inject EIO and ENOSPC; check.
    Sim {
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// The first seed (random if absent; printed either way).
        #[arg(long)]
        seed: Option<u64>,
    },
}

fn random_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_000)
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Kill {
            rounds,
            seed,
            clients,
            r#async,
            binary,
        } => kill(
            rounds,
            seed.unwrap_or_else(random_seed),
            clients,
            r#async,
            binary,
        ),
        Command::Sim { seeds, seed } => sim(seeds, seed.unwrap_or_else(random_seed)),
        Command::Power {
            rounds,
            seed,
            clients,
            binary,
        } => power(rounds, seed.unwrap_or_else(random_seed), clients, binary),
    }
}

fn power(rounds: u64, seed: u64, clients: u64, binary: Option<PathBuf>) -> ExitCode {
    let work = std::env::temp_dir().join(format!("crashtest-power-{}-{seed}", std::process::id()));
    let options = crashtest::Options {
        binary: binary.unwrap_or_else(crashtest::default_binary),
        rounds,
        seed,
        clients,
        async_durability: false,
        work_dir: work.clone(),
    };
    println!(
        "crashtest power: seed {seed}, {rounds} rounds, {clients} clients, durability request"
    );
    match crashtest::power::run(&options) {
        Ok((f, p)) => {
            println!(
                "ok: {} power cuts ({} dropping every unsynced write, {} tearing the last; {} \
                 unsynced writes undone), {} acknowledged writes checked, {} lost, {} surviving \
                 stamps written once then refused; the file system served {} writes and {} \
                 fsyncs",
                f.rounds,
                p.dropped,
                p.torn,
                p.writes_undone,
                f.acknowledged,
                f.lost,
                f.surviving_stamps,
                p.writes,
                p.syncs
            );
            let _ = std::fs::remove_dir_all(&work);
            ExitCode::SUCCESS
        }
        Err(violation) => {
            println!("VIOLATION: {violation}");
            println!(
                "server log kept in {}; replay with --seed {seed}",
                work.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn sim(seeds: u64, seed: u64) -> ExitCode {
    println!("crashtest sim: seeds {seed}..{}", seed + seeds);
    let started = std::time::Instant::now();
    let result = crashtest::sim::run(seed, seeds, |done| {
        if done % 10 == 0 {
            println!("  {done} seeds done");
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

fn kill(rounds: u64, seed: u64, clients: u64, r#async: bool, binary: Option<PathBuf>) -> ExitCode {
    let work = std::env::temp_dir().join(format!("crashtest-{}-{seed}", std::process::id()));
    let options = crashtest::Options {
        binary: binary.unwrap_or_else(crashtest::default_binary),
        rounds,
        seed,
        clients,
        async_durability: r#async,
        work_dir: work.clone(),
    };
    let durability = if r#async { "async" } else { "request" };
    println!(
        "crashtest kill: seed {seed}, {rounds} rounds, {clients} clients, durability {durability}"
    );
    let result = crashtest::kill::run(&options);
    match result {
        Ok(f) => {
            println!(
                "ok: {} rounds, {} acknowledged writes checked, {} lost, {} surviving stamps written once then refused, {} lost stamps refused",
                f.rounds, f.acknowledged, f.lost, f.surviving_stamps, f.lost_stamps
            );
            let _ = std::fs::remove_dir_all(&work);
            ExitCode::SUCCESS
        }
        Err(violation) => {
            println!("VIOLATION: {violation}");
            println!(
                "data and server log kept in {}; replay with --seed {seed}",
                work.display()
            );
            ExitCode::FAILURE
        }
    }
}
