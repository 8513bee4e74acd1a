//! `optimist repair`: cut a shard's log at its first corruption (`offline.rs`).

use std::path::PathBuf;

/// Cut a shard's log at its first corruption, dropping everything after it (as
/// Elasticsearch's `elasticsearch-shard remove-corrupted-data`). Offline; keeps a backup.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The data directory (refused while a server holds it).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long)]
    index: String,
    #[arg(long)]
    shard: u32,
    /// The repair to make (required: the only one there is, named so nobody runs it by
    /// accident).
    #[arg(long, required = true)]
    truncate_after_corruption: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        crate::offline::repair(
            &self.data_dir,
            &self.index,
            self.shard,
            self.yes,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout(),
        )
    }
}
