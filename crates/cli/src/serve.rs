//! `optimist serve`: the Elasticsearch-compatible HTTP API on a data directory, or in memory
//! (`--ephemeral`, for tests).

mod launcher;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use engine::{Store, StoreOptions};
use tracing::{info, warn};

/// Serve the Elasticsearch-compatible HTTP API.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the data lives [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory, and nothing once the process ends: for tests. Every
    /// guarantee but surviving the process holds (the same log and engine run on memory).
    /// The server also stops when the process that started it ends.
    #[arg(long)]
    ephemeral: bool,
    /// Address to listen on; port 0 lets the system pick a free one (see --ready-file).
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: SocketAddr,
    /// Once the server answers, write {"url", "pid", "version", "es_version", "ready_ms"}
    /// here as JSON (written whole: a reader never sees half of it).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Serve the test API (`POST /_optimist/reset`, docs/testing.md) on a data directory
    /// too; --ephemeral always serves it. Without either, its paths are unknown.
    #[arg(long)]
    test_mode: bool,
    /// Generated document ids and uuids (indices, the cluster) are a function of --seed,
    /// of the index and of how many came before: the same in every run, for golden files.
    #[arg(long)]
    deterministic_ids: bool,
    /// The seed of --deterministic-ids.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        requires = "deterministic_ids"
    )]
    seed: u64,
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

/// Where the store lives.
enum Data {
    Dir(PathBuf),
    Memory,
}

/// The largest log segment in memory: a test's shards stay small.
const EPHEMERAL_SEGMENT_SIZE_MAX: u64 = 4 << 20;

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        let mut options = self.security.options()?;
        options.limits = self.http.limits();
        options.test_api = self.ephemeral || self.test_mode;
        let (data, segment_size) = match (self.ephemeral, self.data_dir) {
            (true, Some(_)) => return Err("--ephemeral keeps no data directory".into()),
            (true, None) => (
                Data::Memory,
                self.segment_size.min(EPHEMERAL_SEGMENT_SIZE_MAX),
            ),
            (false, dir) => (
                Data::Dir(dir.unwrap_or_else(|| "./data".into())),
                self.segment_size,
            ),
        };
        let ids = match self.deterministic_ids {
            true => engine::IdGenerator::seeded(self.seed),
            false => engine::IdGenerator::new(),
        };
        let serving = Serving {
            data,
            listen: self.listen,
            ready_file: self.ready_file,
            segment_size,
            ids: Arc::new(ids),
        };
        serve(serving, options)
    }
}

/// What `serve` needs beyond who may call.
struct Serving {
    data: Data,
    listen: SocketAddr,
    ready_file: Option<PathBuf>,
    segment_size: u64,
    ids: Arc<engine::IdGenerator>,
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
            test_api: false,
        })
    }
}

fn serve(serving: Serving, options: server::ServeOptions) -> Result<(), String> {
    let started = std::time::Instant::now();
    let listen = serving.listen;
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
    let ephemeral = matches!(serving.data, Data::Memory);
    let store = Arc::new(open_store(&serving, &options)?);
    log_recoveries(&store);
    let runtime = server::runtime().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        // The address actually bound: with port 0 the system picked it, and whoever started
        // us (the crash harness does) reads it from this line, or from the ready file.
        let address = listener.local_addr().unwrap_or(listen);
        info!(address = %address, scheme, auth, "listening");
        // Connections are taken from here on (the kernel queues them until the server's
        // first accept), so the file may say so now.
        if let Some(file) = &serving.ready_file {
            let url = format!("{scheme}://{address}");
            launcher::write_ready_file(file, &url, started.elapsed())
                .map_err(|e| format!("cannot write the ready file {}: {e}", file.display()))?;
        }
        let stop = launcher::stop_signal(ephemeral);
        server::serve_with(listener, store, options, stop)
            .await
            .map_err(|e| e.to_string())?;
        info!("stopped; every index synced");
        Ok(())
    })
}

/// The store, on its data directory or in memory.
fn open_store(serving: &Serving, options: &server::ServeOptions) -> Result<Store, String> {
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
        segment_size: serving.segment_size,
        on_changes: Some(options.changes.on_changes()),
        ids: serving.ids.clone(),
        ..StoreOptions::default()
    };
    match &serving.data {
        Data::Dir(data_dir) => {
            let store = Store::open_dir(data_dir, options_store)
                .map_err(|e| format!("cannot open {}: {}", data_dir.display(), e.reason()))?;
            info!(data_dir = %data_dir.display(), indices = store.index_names().len(), "data directory open");
            Ok(store)
        }
        Data::Memory => {
            let store = Store::open(Arc::new(wal::MemStorage::new()), options_store)
                .map_err(|e| format!("cannot open a store in memory: {}", e.reason()))?;
            info!("ephemeral: everything in memory, nothing kept once the process ends");
            Ok(store)
        }
    }
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
