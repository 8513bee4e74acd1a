//! `optimist`: the server and the operator tools, one subcommand per file.

mod check;
mod export;
mod follow;
mod import;
mod progress;
mod repair;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::error;

#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator {};

#[derive(Parser)]
#[command(
    name = "optimist",
    version,
    about = "A durable document store that speaks Elasticsearch's document API"
)]
struct Cli {
    /// Log level (or set RUST_LOG).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::Args),
    Export(export::Args),
    Check(check::Args),
    Repair(repair::Args),
    Import(import::Args),
    Follow(follow::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colours only for a person at a terminal: a log file (or a harness reading it)
        // gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let done = match cli.command {
        Command::Serve(args) => args.run(),
        Command::Export(args) => args.run(),
        Command::Check(args) => args.run(),
        Command::Repair(args) => args.run(),
        Command::Import(args) => args.run(),
        Command::Follow(args) => args.run(),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}
