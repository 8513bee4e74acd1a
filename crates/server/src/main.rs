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
        #[command(flatten)]
        security: Security,
    },
}

/// Who may call, and over what.
#[derive(clap::Args)]
struct Security {
    /// A user NAME:PASSWORD for HTTP basic authentication (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// A file of NAME:PASSWORD lines (mode 600), for HTTP basic authentication.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl Security {
    fn options(&self) -> Result<server::ServeOptions, String> {
        let mut users = server::Users::parse(self.users.iter().map(String::as_str))?;
        if let Some(file) = &self.users_file {
            users.add(server::Users::read_file(file)?);
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(server::tls::server_config(cert, key)?),
            _ => None,
        };
        Ok(server::ServeOptions {
            users: (!users.is_empty()).then_some(users),
            tls,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve {
            data_dir,
            listen,
            security,
        } => match security.options().and_then(|o| serve(data_dir, listen, o)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                error!("{message}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(
    data_dir: PathBuf,
    listen: SocketAddr,
    options: server::ServeOptions,
) -> Result<(), String> {
    if !listen.ip().is_loopback() && options.users.is_none() {
        // Never expose the data on a network to anyone who connects.
        return Err(format!(
            "refusing to listen on {listen} without authentication: anyone who can reach it \
             could read and change every document. Add --user NAME:PASSWORD or --users-file \
             FILE, or listen on 127.0.0.1"
        ));
    }
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let auth = if options.users.is_some() {
        "basic"
    } else {
        "none"
    };
    let store = Store::open_dir(&data_dir, StoreOptions::default())
        .map_err(|e| format!("cannot open {}: {}", data_dir.display(), e.reason()))?;
    let store = Arc::new(store);
    info!(data_dir = %data_dir.display(), indices = store.index_names().len(), "data directory open");
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        info!(address = %listen, scheme, auth, "listening");
        server::serve_with(listener, store, options, shutdown_signal())
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
