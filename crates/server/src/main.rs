//! `optimist`: run the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use engine::{Store, StoreOptions};
use tracing::{error, info};

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
    /// Serve the Elasticsearch-compatible HTTP API.
    Serve {
        /// Where the data lives.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9200")]
        listen: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    match cli.command {
        Command::Serve { data_dir, listen } => match serve(data_dir, listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                error!("{message}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(data_dir: PathBuf, listen: SocketAddr) -> Result<(), String> {
    if !listen.ip().is_loopback() {
        // Authentication is not built yet: never expose the data on a network without it.
        return Err(format!(
            "refusing to listen on {listen}: a non-loopback address needs authentication, \
             which this build does not have yet; listen on 127.0.0.1"
        ));
    }
    let store = Store::open_dir(&data_dir, StoreOptions::default())
        .map_err(|e| format!("cannot open {}: {}", data_dir.display(), e.reason()))?;
    let store = Arc::new(store);
    info!(data_dir = %data_dir.display(), indices = store.index_names().len(), "data directory open");
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        info!(address = %listen, "listening");
        server::serve(listener, store, shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        info!("stopped; every index synced");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    info!("shutting down: finishing requests in flight");
}
