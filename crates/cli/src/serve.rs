//! `optimist serve`: the Elasticsearch-compatible HTTP API on a data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use engine::{Store, StoreOptions};
use tracing::{info, warn};

/// Serve the Elasticsearch-compatible HTTP API.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the data lives.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: SocketAddr,
    #[command(flatten)]
    security: Security,
    #[command(flatten)]
    http: Http,
    /// The largest a shard's log segment grows to, in bytes (Elasticsearch's
    /// `index.translog.generation_threshold_size`): the most a shard preallocates ahead.
    /// A new log starts at 1 MiB and doubles while its segments fill.
    #[arg(long, value_name = "BYTES", default_value_t = wal::Config::SEGMENT_SIZE_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1 << 20..=1 << 30))]
    segment_size: u64,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        let mut options = self.security.options()?;
        options.limits = self.http.limits();
        serve(self.data_dir, self.listen, options, self.segment_size)
    }
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

/// What a client may hold of the server (`server::connections`).
#[derive(clap::Args)]
struct Http {
    /// Seconds a client has to send a request's head; also the longest a kept-alive
    /// connection may idle.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    http_header_timeout: u64,
    /// Seconds a request body may pause between two pieces before the request fails (408).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    http_body_timeout: u64,
    /// Connections served at once; one more is closed as soon as it is accepted.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    http_max_connections: usize,
    /// Bytes of request bodies in flight at once; a request that would pass it is answered
    /// 429 circuit_breaking_exception.
    #[arg(long, value_name = "BYTES", default_value_t = server::in_flight::BUDGET_DEFAULT)]
    http_max_in_flight_bytes: u64,
}

impl Http {
    fn limits(&self) -> server::connections::Limits {
        server::connections::Limits {
            header_timeout: std::time::Duration::from_secs(self.http_header_timeout.max(1)),
            body_timeout: std::time::Duration::from_secs(self.http_body_timeout.max(1)),
            connections_max: self.http_max_connections.max(1),
            in_flight_bytes: self.http_max_in_flight_bytes,
        }
    }
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
            limits: server::connections::Limits::default(),
            changes: Default::default(),
        })
    }
}

fn serve(
    data_dir: PathBuf,
    listen: SocketAddr,
    options: server::ServeOptions,
    segment_size: u64,
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
    let open_files_limit = match server::descriptors::raise_open_files_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            warn!(error = %e, "cannot read the descriptor limit; shards are not counted against it");
            None
        }
    };
    let options_store = StoreOptions {
        progress: Some(crate::progress::for_engine()),
        open_files_limit,
        segment_size,
        on_changes: Some(options.changes.on_changes()),
        ..StoreOptions::default()
    };
    let store = Store::open_dir(&data_dir, options_store)
        .map_err(|e| format!("cannot open {}: {}", data_dir.display(), e.reason()))?;
    let store = Arc::new(store);
    info!(data_dir = %data_dir.display(), indices = store.index_names().len(), "data directory open");
    log_recoveries(&store);
    let runtime = server::runtime().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        // The address actually bound: with port 0 the system picked it, and whoever started
        // us (the crash harness does) reads it from this line.
        let address = listener.local_addr().unwrap_or(listen);
        info!(address = %address, scheme, auth, "listening");
        server::serve_with(listener, store, options, shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        info!("stopped; every index synced");
        Ok(())
    })
}

/// What each shard's recovery did: replayed, cut, removed, salvaged.
fn log_recoveries(store: &Store) {
    for name in store.index_names() {
        let Ok(index) = store.index(&name) else {
            continue;
        };
        for (shard, r) in index.recoveries().iter().enumerate() {
            info!(
                index = %name,
                shard,
                replayed = r.replayed,
                segments = r.wal.segments,
                primary_term = r.primary_term.0,
                keys = ?r.keys,
                "shard recovered"
            );
            if let engine::internals::KeysRecovery::Rebuilt {
                discarded: Some(why),
                ..
            } = &r.keys
            {
                warn!(index = %name, shard, reason = %why, "discarded the key-directory checkpoint, rebuilt from the log");
            }
            if let Some(torn) = &r.wal.torn_tail {
                warn!(
                    index = %name,
                    shard,
                    segment = torn.generation.0,
                    offset = torn.offset,
                    bytes = torn.bytes,
                    "cut a torn tail: writes never acknowledged as durable"
                );
            }
            // Every open finds the segment prepared ahead unused, and removes it: nothing to
            // warn of (a clean start logs no warning).
            for file in &r.wal.removed_files {
                info!(index = %name, shard, file = %file, "removed an unfinished file");
            }
            for c in &r.wal.salvaged {
                warn!(
                    index = %name,
                    shard,
                    segment = ?c.generation.map(|g| g.0),
                    offset = c.offset,
                    last_good_seq_no = ?c.last_good_seq_no.map(|s| s.0),
                    what = %c.what,
                    "salvaged past corruption"
                );
            }
        }
    }
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
