//! `optimist check`: verify a data directory that is not being served (`offline.rs`).

use std::path::PathBuf;

/// Verify a data directory that is not being served, changing nothing: every segment,
/// record checksum, compacted file and key-directory checkpoint. Exits 1 on corruption.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The data directory (refused while a server holds it).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Check only this index.
    #[arg(long)]
    index: Option<String>,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        crate::offline::check(
            &self.data_dir,
            self.index.as_deref(),
            &mut std::io::stdout(),
        )
    }
}
