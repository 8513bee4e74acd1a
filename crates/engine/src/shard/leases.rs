//! A shard's retention leases (`leases.rs`): added, removed and expired durably before the
//! answer, as Elasticsearch syncs them hard; renewed and acknowledged in memory and written
//! by the maintenance round (within `maintain_every`), as Elasticsearch's background sync
//! does. Compaction releases no segment at or above the persisted floor.

use std::time::Duration;

use wal::SeqNo;

use super::{Shard, now_ms};
use crate::changes::ShardPosition;
use crate::error::{Error, Result};
use crate::leases::{Lease, LeaseTable};

impl Shard {
    /// Adds lease `id` for a holder that has everything up to `since`: it retains every
    /// seq_no after it. Durable before it returns.
    pub fn add_lease(
        &self,
        id: &str,
        since: ShardPosition,
        source: &str,
        period: Duration,
    ) -> Result<Lease> {
        self.check_serving()?;
        let mut table = self.lock_leases();
        if table.leases.contains_key(id) {
            return Err(Error::LeaseAlreadyExists { id: id.to_owned() });
        }
        let lease = Lease {
            id: id.to_owned(),
            source: source.to_owned(),
            retaining_seq_no: since.next_seq_no(),
            acked: since,
            renewed_at_ms: now_ms(),
            period,
        };
        table.leases.insert(id.to_owned(), lease.clone());
        if let Err(e) = self.persist_leases(&mut table) {
            table.leases.remove(id);
            return Err(e);
        }
        Ok(lease)
    }

    /// Removes lease `id`; durable before it returns.
    pub fn remove_lease(&self, id: &str) -> Result<()> {
        self.check_serving()?;
        let mut table = self.lock_leases();
        let Some(lease) = table.leases.remove(id) else {
            return Err(Error::LeaseNotFound { id: id.to_owned() });
        };
        if let Err(e) = self.persist_leases(&mut table) {
            table.leases.insert(id.to_owned(), lease);
            return Err(e);
        }
        Ok(())
    }

    /// Lease `id` as it is now.
    pub fn lease(&self, id: &str) -> Result<Lease> {
        let table = self.lock_leases();
        let lease = table.leases.get(id).cloned();
        lease.ok_or_else(|| Error::LeaseNotFound { id: id.to_owned() })
    }

    /// Every lease, by id.
    pub fn leases(&self) -> Vec<Lease> {
        self.lock_leases().leases.values().cloned().collect()
    }

    /// Elasticsearch's `RetentionLeases.version`: bumped by every change to the leases.
    pub fn leases_version(&self) -> u64 {
        self.lock_leases().version
    }

    /// Renews lease `id` (a read through it); written by the next maintenance round.
    pub fn renew_lease(&self, id: &str) -> Result<Lease> {
        let mut table = self.lock_leases();
        let lease = table
            .leases
            .get_mut(id)
            .ok_or_else(|| Error::LeaseNotFound { id: id.to_owned() })?;
        lease.renewed_at_ms = now_ms();
        let lease = lease.clone();
        table.dirty = true;
        Ok(lease)
    }

    /// Records that the holder of lease `id` has what is at or before `acked`: the lease
    /// retains from the next seq_no on, and is renewed. Never lowered; never past what is
    /// durable. Written by the next maintenance round, so until then a crash re-delivers.
    pub fn ack_lease(&self, id: &str, acked: ShardPosition) -> Result<Lease> {
        let mut table = self.lock_leases();
        if let Some(refusal) = self.ack_refusal(&table, id, acked) {
            return Err(refusal);
        }
        let lease = table.leases.get_mut(id).expect("checked above");
        lease.retaining_seq_no = acked.next_seq_no();
        lease.acked = acked;
        lease.renewed_at_ms = now_ms();
        let lease = lease.clone();
        table.dirty = true;
        table.version += 1;
        Ok(lease)
    }

    /// Why lease `id` cannot acknowledge `acked`, if it cannot (`ack_lease`'s refusals, for
    /// a caller that checks every shard before it changes any).
    pub fn check_ack(&self, id: &str, acked: ShardPosition) -> Result<()> {
        let table = self.lock_leases();
        self.ack_refusal(&table, id, acked).map_or(Ok(()), Err)
    }

    fn ack_refusal(&self, table: &LeaseTable, id: &str, acked: ShardPosition) -> Option<Error> {
        let durable = self.wal.durable_seq_no();
        if let Some(seq_no) = acked.seq_no
            && durable.is_none_or(|g| seq_no > g)
        {
            let g = durable.map_or(-1, |g| g.0 as i64);
            return Some(Error::IllegalArgument(format!(
                "cannot acknowledge seq_no [{seq_no}] of shard [{}][{}]: above its global \
                 checkpoint [{g}]",
                self.settings.index_name, self.shard_id
            )));
        }
        let Some(lease) = table.leases.get(id) else {
            return Some(Error::LeaseNotFound { id: id.to_owned() });
        };
        let retaining = acked.next_seq_no();
        (retaining < lease.retaining_seq_no).then(|| Error::LeaseRetainingLower {
            id: id.to_owned(),
            current: lease.retaining_seq_no,
            new: retaining,
            source: lease.source.clone(),
        })
    }

    /// Removes the leases whose period passed since their renewal (durably), then writes
    /// renewals and acknowledgements made since the last write. Returns the ids expired.
    pub fn maintain_leases(&self) -> Result<Vec<String>> {
        self.check_serving()?;
        let mut table = self.lock_leases();
        let now = now_ms();
        let expired: Vec<String> = table
            .leases
            .values()
            .filter(|l| l.expires_at_ms() <= now)
            .map(|l| l.id.clone())
            .collect();
        for id in &expired {
            table.leases.remove(id);
        }
        if !expired.is_empty() || table.dirty {
            self.persist_leases(&mut table)?;
        }
        Ok(expired)
    }

    /// Writes renewals and acknowledgements not written yet: at a clean stop, so the next
    /// open re-delivers nothing a consumer acknowledged.
    pub(crate) fn flush_leases(&self) -> Result<()> {
        let mut table = self.lock_leases();
        if table.dirty {
            self.persist_leases(&mut table)?;
        }
        Ok(())
    }

    /// Releases the log's segments below `seq_no` but none holding a seq_no a persisted
    /// lease retains. The leases stay locked through the release, so a lease being added
    /// either is seen here or sees the release (`Index::create_consumer` checks after).
    pub(crate) fn release_below(&self, seq_no: SeqNo) -> wal::Result<usize> {
        let table = self.lock_leases();
        let point = table
            .persisted_floor
            .map_or(seq_no, |floor| floor.min(seq_no));
        self.wal.release_below(point)
    }

    /// Bytes of the log kept only for a lease retaining from `retaining_seq_no`: segments
    /// the compacted files cover whole, which the lease still needs.
    pub fn pinned_bytes(&self, retaining_seq_no: SeqNo) -> u64 {
        let covers_below = self.read_files().covers_below();
        let segments = self.wal.segments();
        let pinned = segments.iter().filter(|s| {
            !s.active && s.end_seq_no <= covers_below && s.end_seq_no > retaining_seq_no
        });
        pinned.map(|s| s.len).sum()
    }

    fn persist_leases(&self, table: &mut LeaseTable) -> Result<()> {
        table.version += 1;
        table.persist(&self.storage).map_err(|e| {
            Error::Unavailable(format!(
                "the retention leases of shard [{}][{}] could not be written, nothing changed: \
                 {e}",
                self.settings.index_name, self.shard_id
            ))
        })
    }

    pub(super) fn lock_leases(&self) -> std::sync::MutexGuard<'_, LeaseTable> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}
