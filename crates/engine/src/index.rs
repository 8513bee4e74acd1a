//! `Index`: named shards with settings; a document's shard is chosen by Elasticsearch's
//! routing (`routing` if given, else the `_id`).

use std::sync::Arc;

use wal::{ShardId, Storage};

use crate::disk::DiskBlock;
use crate::error::{Error, Result};
use crate::lifecycle::{missing_shards, shard_dirs};
use crate::request::{DeleteRequest, IndexRequest};
use crate::routing;
use crate::settings::IndexSettings;
use crate::shard::{Document, Shard, ShardRecovery, ShardSettings, WriteResult};
use crate::store::StoreOptions;

/// One index: its settings and its shards.
pub struct Index {
    name: String,
    uuid: String,
    settings: IndexSettings,
    shards: Vec<Shard>,
    /// What opening each shard found (replayed operations, a torn tail cut, files removed).
    recoveries: Vec<ShardRecovery>,
}

impl Index {
    /// Opens an index that exists: its settings file names its shards, and each must have
    /// its directory and its log. A missing one is damage, never a shard to create empty:
    /// that would serve an index with its documents silently gone.
    pub(crate) fn open_existing(
        dir: &Arc<dyn Storage>,
        name: &str,
        uuid: String,
        settings: IndexSettings,
        options: &StoreOptions,
        disk: &Arc<DiskBlock>,
    ) -> Result<Index> {
        let shards = settings.number_of_shards;
        let missing = shard_dirs(dir)
            .and_then(|found| missing_shards(dir, shards, &found))
            .map_err(|e| {
                Error::ShardFailed(format!("cannot list the shards of index [{name}]: {e}"))
            })?;
        if !missing.is_empty() {
            return Err(Error::ShardFailed(format!(
                "index [{name}] is damaged: its settings name {shards} shards, but shards \
                 {missing:?} have no directory or no log in it; `optimist check` reports it"
            )));
        }
        Index::open(dir, name, uuid, settings, options, disk)
    }

    /// Opens (creating what is absent) every shard the settings name.
    pub(crate) fn open(
        dir: &Arc<dyn Storage>,
        name: &str,
        uuid: String,
        settings: IndexSettings,
        options: &StoreOptions,
        disk: &Arc<DiskBlock>,
    ) -> Result<Index> {
        let mut shards = Vec::with_capacity(settings.number_of_shards as usize);
        let mut recoveries = Vec::with_capacity(shards.capacity());
        for n in 0..settings.number_of_shards {
            let storage = dir
                .sub(&n.to_string())
                .map_err(|e| Error::ShardFailed(format!("cannot open shard [{name}][{n}]: {e}")))?;
            let mut shard_settings = ShardSettings::new(settings.durability);
            shard_settings.gc_deletes = settings.gc_deletes;
            shard_settings.segment_size = options.segment_size;
            shard_settings.background = options.background;
            shard_settings.progress = options.progress.clone();
            shard_settings.index_name = name.to_owned();
            shard_settings.disk = Some(disk.clone());
            let (shard, recovery) = Shard::open(storage, ShardId(u64::from(n)), shard_settings)?;
            shards.push(shard);
            recoveries.push(recovery);
        }
        Ok(Index {
            name: name.to_owned(),
            uuid,
            settings,
            shards,
            recoveries,
        })
    }

    /// What opening each shard found, by shard number.
    pub fn recoveries(&self) -> &[ShardRecovery] {
        &self.recoveries
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A random id given at creation, as Elasticsearch's `index.uuid`.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    pub fn settings(&self) -> &IndexSettings {
        &self.settings
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Refuses every read and write through this index's shards from now on (`Shard::retire`).
    pub(crate) fn retire(&self, why: Error) {
        for shard in &self.shards {
            shard.retire(why.clone());
        }
    }

    /// The shard number a document goes to.
    pub fn shard_id(&self, id: &str, routing: Option<&str>) -> u32 {
        routing::shard_for(
            routing.unwrap_or(id),
            self.settings.number_of_shards,
            self.settings.routing_num_shards,
        )
    }

    fn shard(&self, id: &str, routing: Option<&str>) -> &Shard {
        &self.shards[self.shard_id(id, routing) as usize]
    }

    pub fn index(&self, request: &IndexRequest, routing: Option<&str>) -> Result<WriteResult> {
        self.shard(&request.id, routing).index(request)
    }

    pub fn delete(&self, request: &DeleteRequest, routing: Option<&str>) -> Result<WriteResult> {
        self.shard(&request.id, routing).delete(request)
    }

    /// Realtime get, on the shard the routing names.
    pub fn get(&self, id: &str, routing: Option<&str>) -> Result<Option<Document>> {
        self.shard(id, routing).get(id)
    }

    /// Realtime get with Elasticsearch's read-time version check: with `version`, a document
    /// of another version is a 409 conflict.
    pub fn get_version(
        &self,
        id: &str,
        routing: Option<&str>,
        version: Option<i64>,
    ) -> Result<Option<Document>> {
        let doc = self.get(id, routing)?;
        if let (Some(d), Some(v)) = (&doc, version) {
            d.check_version(v)?;
        }
        Ok(doc)
    }

    /// Live documents over all shards.
    pub fn doc_count(&self) -> u64 {
        self.shards.iter().map(Shard::doc_count).sum()
    }

    /// Makes every write durable.
    pub fn sync(&self) -> Result<()> {
        self.shards.iter().try_for_each(Shard::sync)
    }
}
