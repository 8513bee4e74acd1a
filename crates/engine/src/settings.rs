//! Index settings, with Elasticsearch's names and defaults, and their file in the index
//! directory (`settings`: `key=value` lines, written to a temporary name, synced, renamed).

use std::sync::Arc;
use std::time::Duration;

use wal::{Durability, ShardId, Storage};

use crate::blocks::IndexBlocks;
use crate::error::{Error, Result};
use crate::routing;

pub(crate) const FILE_NAME: &str = "settings";
const TEMP_FILE_NAME: &str = "settings.tmp";

/// The settings of one index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSettings {
    /// `index.number_of_shards` (default 1).
    pub number_of_shards: u32,
    /// `index.number_of_replicas` (default 1): a single node has none, so it only shows in
    /// `_shards.total` and the yellow health, as on Elasticsearch.
    pub number_of_replicas: u32,
    /// `index.number_of_routing_shards`: Elasticsearch's default for the shard count.
    pub routing_num_shards: u32,
    /// `index.translog.durability` and `index.translog.sync_interval`.
    pub durability: Durability,
    /// `index.gc_deletes` (default 60 s).
    pub gc_deletes: Duration,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings::with_shards(1)
    }
}

impl IndexSettings {
    /// The defaults with `number_of_shards` shards (an index of 0 is refused when created).
    pub fn with_shards(number_of_shards: u32) -> IndexSettings {
        IndexSettings {
            number_of_shards,
            number_of_replicas: 1,
            routing_num_shards: routing::routing_num_shards(number_of_shards),
            durability: Durability::Request,
            gc_deletes: Duration::from_secs(60),
        }
    }

    /// Every shard of the index, in order.
    pub fn shard_ids(&self) -> impl Iterator<Item = ShardId> + use<> {
        (0..self.number_of_shards).map(ShardId)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bound = match self.number_of_shards {
            0 => Some(">= 1"),
            n if n > 1024 => Some("<= 1024"),
            _ => None,
        };
        if let Some(bound) = bound {
            return Err(Error::IllegalArgument(format!(
                "Failed to parse value [{}] for setting [index.number_of_shards] must be {bound}",
                self.number_of_shards
            )));
        }
        if !self
            .routing_num_shards
            .is_multiple_of(self.number_of_shards)
        {
            return Err(Error::IllegalArgument(format!(
                "the number of source shards [{}] must be a factor of [{}]",
                self.number_of_shards, self.routing_num_shards
            )));
        }
        self.durability.validate().map_err(Error::IllegalArgument)?;
        Ok(())
    }

    fn encode(&self, uuid: &str) -> String {
        let (durability, interval) = match self.durability {
            Durability::Request => ("request", 0),
            Durability::Async { sync_interval } => ("async", sync_interval.as_millis()),
        };
        format!(
            "uuid={uuid}\nnumber_of_shards={}\nnumber_of_replicas={}\nrouting_num_shards={}\n\
             translog.durability={durability}\ntranslog.sync_interval_ms={interval}\ngc_deletes_ms={}\n",
            self.number_of_shards,
            self.number_of_replicas,
            self.routing_num_shards,
            self.gc_deletes.as_millis()
        )
    }

    fn decode(text: &str) -> Option<(IndexSettings, String)> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let num = |key: &str| get(key)?.parse::<u64>().ok();
        let durability = match get("translog.durability")?.as_str() {
            "request" => Durability::Request,
            "async" => Durability::Async {
                sync_interval: Duration::from_millis(num("translog.sync_interval_ms")?),
            },
            _ => return None,
        };
        let settings = IndexSettings {
            number_of_shards: u32::try_from(num("number_of_shards")?).ok()?,
            number_of_replicas: u32::try_from(num("number_of_replicas")?).ok()?,
            routing_num_shards: u32::try_from(num("routing_num_shards")?).ok()?,
            durability,
            gc_deletes: Duration::from_millis(num("gc_deletes_ms")?),
        };
        Some((settings, get("uuid")?))
    }

    /// Writes the settings file durably, with no block: complete under its final name, or
    /// absent.
    pub(crate) fn store(&self, dir: &Arc<dyn Storage>, uuid: &str) -> Result<()> {
        self.store_with(dir, uuid, IndexBlocks::NONE)
    }

    /// `store`, with the index's blocks (`blocks.rs`).
    pub(crate) fn store_with(
        &self,
        dir: &Arc<dyn Storage>,
        uuid: &str,
        blocks: IndexBlocks,
    ) -> Result<()> {
        let io = |e: std::io::Error| {
            Error::shard_failed_by(format!("cannot write index settings: {e}"), e)
        };
        let _ = dir.remove(TEMP_FILE_NAME);
        let file = dir.create(TEMP_FILE_NAME).map_err(io)?;
        let text = format!("{}blocks={}\n", self.encode(uuid), blocks.encode());
        file.write_all_at(0, text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        dir.rename(TEMP_FILE_NAME, FILE_NAME).map_err(io)?;
        dir.sync_dir().map_err(io)
    }

    /// The blocks an index directory's settings file keeps: none if it has no `blocks` line
    /// (written before blocks were kept) or there is no file yet (an index being created).
    pub(crate) fn load_blocks(dir: &Arc<dyn Storage>) -> Result<IndexBlocks> {
        let Ok(file) = dir.open(FILE_NAME) else {
            return Ok(IndexBlocks::NONE);
        };
        let bytes = wal::read_to_end(&*file)
            .map_err(|e| Error::shard_failed_by(format!("cannot read index settings: {e}"), e))?;
        let text = String::from_utf8_lossy(&bytes);
        match text.lines().find_map(|l| l.strip_prefix("blocks=")) {
            None => Ok(IndexBlocks::NONE),
            Some(names) => IndexBlocks::decode(names)
                .ok_or_else(|| Error::shard_failed("the index settings file is damaged")),
        }
    }

    /// The uuid in an index directory's settings file; `None` if there is none.
    pub fn load_uuid(dir: &Arc<dyn Storage>) -> Result<Option<String>> {
        Ok(IndexSettings::load(dir)?.map(|(_, uuid)| uuid))
    }

    /// Reads the settings file; `None` if there is none (an index whose creation never
    /// completed).
    pub(crate) fn load(dir: &Arc<dyn Storage>) -> Result<Option<(IndexSettings, String)>> {
        let Ok(file) = dir.open(FILE_NAME) else {
            return Ok(None);
        };
        let bytes = wal::read_to_end(&*file)
            .map_err(|e| Error::shard_failed_by(format!("cannot read index settings: {e}"), e))?;
        let text = String::from_utf8_lossy(&bytes);
        IndexSettings::decode(&text)
            .map(Some)
            .ok_or_else(|| Error::shard_failed("the index settings file is damaged"))
    }
}
