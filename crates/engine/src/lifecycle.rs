//! How an index comes into being and goes away, so that across any crash it is whole or
//! absent, never in part.
//!
//! **Creation.** The index directory and every shard first, the settings file last and
//! durably (`settings.rs`): a directory without a settings file is a creation that never
//! completed and was never acknowledged, and the next open removes it.
//!
//! **Deletion.** First a durable marker in the data directory, `DELETING-{uuid}`, holding the
//! index's name: once it is on disk the delete is decided. Then the index directory is
//! removed, the data directory synced, and the marker removed. An open that finds a marker
//! finishes the delete it names, before it opens any index, so a crash half way through a
//! removal never brings back an index with some of its shards (and documents) gone. Only a
//! directory that still has the marker's uuid (or no settings at all) is removed: a later
//! index of the same name is never touched. A marker's name is upper case, which no index
//! name can be, and a file, where indices are directories.

use std::io;
use std::sync::Arc;

use wal::Storage;

use crate::durable_file::DurableFile;
use crate::index_name::validate_index_name;
use crate::settings::IndexSettings;

const DELETING_PREFIX: &str = "DELETING-";

fn marker_name(uuid: &str) -> String {
    format!("{DELETING_PREFIX}{uuid}")
}

/// A decided delete found on disk: the index's name and uuid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDelete {
    /// The index being deleted.
    pub index: String,
    /// Its uuid: only the directory with this uuid is removed.
    pub uuid: String,
}

/// Makes the delete of index `name` (of `uuid`) decided: the marker, durable. Nothing has
/// been removed when this fails, so the index stays as it was.
pub(crate) fn mark_deleting(root: &Arc<dyn Storage>, name: &str, uuid: &str) -> io::Result<()> {
    let mut marker = DurableFile::create(root, &marker_name(uuid))?;
    marker.write(name.as_bytes())?;
    marker.finish()
}

/// Removes what a decided delete names, then its marker, each step durable.
pub(crate) fn finish_delete(root: &Arc<dyn Storage>, pending: &PendingDelete) -> io::Result<()> {
    if root.list_dirs()?.contains(&pending.index) {
        let dir = root.sub(&pending.index)?;
        let uuid = IndexSettings::load_uuid(&dir).map_err(|e| io::Error::other(e.reason()))?;
        // Another uuid: an index created under the same name after this delete finished.
        if uuid.as_deref().is_none_or(|u| u == pending.uuid) {
            root.remove_dir(&pending.index)?;
        }
    }
    root.sync_dir()?;
    root.remove(&marker_name(&pending.uuid))?;
    root.sync_dir()
}

/// The decided deletes in the data directory, oldest marker name first. A marker's
/// temporary file (a crash before the delete was decided) is removed.
pub fn pending_deletes(root: &Arc<dyn Storage>) -> io::Result<Vec<PendingDelete>> {
    let mut pending = Vec::new();
    for name in root.list()? {
        let Some(uuid) = name.strip_prefix(DELETING_PREFIX) else {
            continue;
        };
        if uuid.ends_with(".tmp") {
            continue;
        }
        let bytes = wal::read_to_end(&*root.open(&name)?)?;
        let index = String::from_utf8(bytes)
            .ok()
            .filter(|n| validate_index_name(n).is_ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the delete marker {name} does not name an index"),
                )
            })?;
        pending.push(PendingDelete {
            index,
            uuid: uuid.to_owned(),
        });
    }
    Ok(pending)
}

/// Finishes every decided delete (`Store::open`, before any index is opened), and removes
/// the temporary files of markers never finished. Returns what was finished.
pub(crate) fn finish_pending_deletes(root: &Arc<dyn Storage>) -> io::Result<Vec<PendingDelete>> {
    for name in root.list()? {
        if name.starts_with(DELETING_PREFIX) && name.ends_with(".tmp") {
            root.remove(&name)?;
        }
    }
    let pending = pending_deletes(root)?;
    for p in &pending {
        finish_delete(root, p)?;
    }
    Ok(pending)
}

/// The shard numbers that have a directory in an index directory, sorted.
pub fn shard_dirs(index_dir: &Arc<dyn Storage>) -> io::Result<Vec<u32>> {
    let mut shards: Vec<u32> = index_dir
        .list_dirs()?
        .iter()
        .filter_map(|d| d.parse::<u32>().ok().filter(|n| n.to_string() == *d))
        .collect();
    shards.sort_unstable();
    Ok(shards)
}

/// What an index directory is, as an open would treat it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexDirState {
    /// A settings file naming `shards` shards, each with its directory (`extra`: directories
    /// of shard numbers the settings do not name, which no open reads).
    Whole {
        /// Shards its settings name.
        shards: u32,
        /// Shard directories beyond them.
        extra: Vec<u32>,
    },
    /// No settings file: a creation that never completed; the next open removes it.
    HalfCreated,
    /// The settings name shards that have no directory, or no log in it: damage an open
    /// refuses.
    MissingShards {
        /// Shards its settings name.
        shards: u32,
        /// Those without a directory or a log.
        missing: Vec<u32>,
    },
}

/// The shards of `0..shards` that have no directory among `found` (`shard_dirs`), or no log
/// in it: a log created afresh there would be empty, and the next open could not tell.
pub(crate) fn missing_shards(
    index_dir: &Arc<dyn Storage>,
    shards: u32,
    found: &[u32],
) -> io::Result<Vec<u32>> {
    let mut missing = Vec::new();
    for n in 0..shards {
        let has_log = found.contains(&n)
            && index_dir
                .sub(&n.to_string())?
                .list()?
                .iter()
                .any(|f| f == wal::files::CHECKPOINT);
        if !has_log {
            missing.push(n);
        }
    }
    Ok(missing)
}

/// Reads what an index directory holds against what its settings name.
pub fn index_dir_state(index_dir: &Arc<dyn Storage>) -> crate::Result<IndexDirState> {
    let Some((settings, _)) = IndexSettings::load(index_dir)? else {
        return Ok(IndexDirState::HalfCreated);
    };
    let found = shard_dirs(index_dir).map_err(|e| {
        let why = format!("cannot list the index's shard directories: {e}");
        crate::Error::shard_failed_by(why, e)
    })?;
    let shards = settings.number_of_shards;
    let missing = missing_shards(index_dir, shards, &found).map_err(|e| {
        crate::Error::shard_failed_by(format!("cannot list the index's shards: {e}"), e)
    })?;
    if !missing.is_empty() {
        return Ok(IndexDirState::MissingShards { shards, missing });
    }
    let extra = found.into_iter().filter(|n| *n >= shards).collect();
    Ok(IndexDirState::Whole { shards, extra })
}
