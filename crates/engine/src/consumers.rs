//! Named consumers of an index's changes feed: one retention lease of the same id on every
//! shard (`shard/leases.rs`), so history a consumer has not acknowledged is kept for it.
//! Made, renewed by every read through it and every acknowledgement, and expired
//! `lease_period` after the last renewal (Elasticsearch's
//! `index.soft_deletes.retention_lease.period`, 12 h).

use std::time::Duration;

use crate::changes::{Below, ChangesPosition, IndexChanges, ShardPosition};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::leases::{LEASE_ID_LEN_MAX, Lease};

/// A consumer, as its leases on every shard say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Its id.
    pub id: String,
    /// Who holds it.
    pub source: String,
    /// How long after its last renewal it expires.
    pub period: Duration,
    /// Its lease on each shard, shard 0 first.
    pub shards: Vec<Lease>,
}

impl Consumer {
    /// What it has acknowledged, as a position (`-1` where nothing yet).
    pub fn acked(&self) -> ChangesPosition {
        ChangesPosition(self.shards.iter().map(|l| l.acked).collect())
    }

    /// When it was last renewed (the latest of its shards'), wall-clock ms.
    pub fn renewed_at_ms(&self) -> u64 {
        self.shards
            .iter()
            .map(|l| l.renewed_at_ms)
            .max()
            .unwrap_or(0)
    }

    /// When it expires, wall-clock ms.
    pub fn expires_at_ms(&self) -> u64 {
        self.shards
            .iter()
            .map(Lease::expires_at_ms)
            .max()
            .unwrap_or(0)
    }
}

impl Index {
    /// Makes consumer `id`, retaining every operation after `since` (which must still be
    /// held: 410 below, 409 if diverged) on every shard; durable before it returns. Whole or
    /// not at all: a shard that refuses undoes the others.
    pub fn create_consumer(
        &self,
        id: &str,
        since: &ChangesPosition,
        source: &str,
        period: Duration,
    ) -> Result<Consumer> {
        validate_consumer_id(id)?;
        self.check_position_len(since)?;
        let (mut made, mut leases) = (Vec::new(), Vec::new());
        for (n, position) in self.settings().shard_ids().zip(&since.0) {
            let shard = self.shard(n);
            // The lease first, then the check: a compaction releasing history meanwhile
            // either obeys the lease or is seen by the check.
            let added = shard.add_lease(id, *position, source, period);
            let checked = added.and_then(|lease| {
                made.push(n);
                // From the beginning always works: below what the log holds, the consumer
                // reads the compacted view first (its lease keeps the log from there on).
                if *position == ShardPosition::START {
                    return Ok(lease);
                }
                shard.check_position_now(*position).map(|()| lease)
            });
            match checked {
                Ok(lease) => leases.push(lease),
                Err(e) => {
                    for undo in made {
                        let _ = self.shard(undo).remove_lease(id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(self.consumer_of(id, leases))
    }

    /// Consumer `id`.
    pub fn consumer(&self, id: &str) -> Result<Consumer> {
        let shards: Result<Vec<Lease>> = self
            .settings()
            .shard_ids()
            .map(|n| self.shard(n).lease(id))
            .collect();
        Ok(self.consumer_of(id, shards?))
    }

    /// Every consumer, by id: not the leases the store holds itself (a search view's), whose
    /// ids start with `_`, which a consumer's never does.
    pub fn consumers(&self) -> Result<Vec<Consumer>> {
        let first = self.shard(wal::ShardId(0)).leases();
        let consumers = first.iter().filter(|l| !l.id.starts_with('_'));
        consumers.map(|l| self.consumer(&l.id)).collect()
    }

    /// Deletes consumer `id` from every shard; durable before it returns.
    pub fn delete_consumer(&self, id: &str) -> Result<()> {
        self.consumer(id)?;
        for n in self.settings().shard_ids() {
            match self.shard(n).remove_lease(id) {
                Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Records that consumer `id` has everything up to `position`: history before it may be
    /// released (once written, within a maintenance round). Never backwards, never past
    /// what is durable.
    pub fn ack_consumer(&self, id: &str, position: &ChangesPosition) -> Result<Consumer> {
        self.check_position_len(position)?;
        // Every shard checked before any moves: an acknowledgement is whole or refused.
        for (n, p) in self.settings().shard_ids().zip(&position.0) {
            self.shard(n).check_ack(id, *p)?;
        }
        let acked: Result<Vec<Lease>> = self
            .settings()
            .shard_ids()
            .zip(&position.0)
            .map(|(n, p)| self.shard(n).ack_lease(id, *p))
            .collect();
        Ok(self.consumer_of(id, acked?))
    }

    /// The changes consumer `id` has not acknowledged (after `since` if given, else after
    /// its acknowledged position); renews it.
    pub fn changes_for(
        &self,
        id: &str,
        since: Option<&ChangesPosition>,
        limit: usize,
    ) -> Result<IndexChanges> {
        let renewed: Result<Vec<Lease>> = self
            .settings()
            .shard_ids()
            .map(|n| self.shard(n).renew_lease(id))
            .collect();
        let consumer = self.consumer_of(id, renewed?);
        let since = since.cloned().unwrap_or_else(|| consumer.acked());
        self.changes_reading(&since, limit, Below::CompactedView)
    }

    fn consumer_of(&self, id: &str, shards: Vec<Lease>) -> Consumer {
        let first = shards.first();
        Consumer {
            id: id.to_owned(),
            source: first.map(|l| l.source.clone()).unwrap_or_default(),
            period: first.map_or(Duration::ZERO, |l| l.period),
            shards,
        }
    }

    pub(crate) fn check_position_len(&self, position: &ChangesPosition) -> Result<()> {
        let shards = self.settings().number_of_shards as usize;
        if position.0.len() == shards {
            return Ok(());
        }
        Err(Error::IllegalArgument(format!(
            "position [{position}] has [{}] elements, the index has [{shards}] shards",
            position.0.len()
        )))
    }
}

/// 1 to 255 bytes, none of the characters an index name may not hold, not starting with
/// `_`, `-` or `+` (the index-name rules, as the feed's consumers are named like indices).
fn validate_consumer_id(id: &str) -> Result<()> {
    const REFUSED: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];
    let why = if id.is_empty() || id.len() > LEASE_ID_LEN_MAX {
        Some(format!("must be 1 to {LEASE_ID_LEN_MAX} bytes"))
    } else if id.starts_with(['_', '-', '+']) {
        Some("must not start with '_', '-', or '+'".to_owned())
    } else if id.contains(REFUSED) {
        Some(format!("must not contain any of {REFUSED:?}"))
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::IllegalArgument(format!(
            "invalid consumer id [{id}]: {why}"
        ))),
        None => Ok(()),
    }
}
