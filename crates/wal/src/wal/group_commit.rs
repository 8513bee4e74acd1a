//! Group commit: a sync's leader gathers the appenders that want the same fsync, writes the
//! pending frames, syncs once, and publishes the durable point only once every sync started
//! before it has returned (a success never vouches for records whose own sync is in flight).

use super::*;

impl Shared {
    pub(super) fn sync(&self) -> Result<()> {
        // Bound first: a guard in the match scrutinee would live through the arms.
        let last = self.lock_log().next_seq_no.0.checked_sub(1);
        match last {
            Some(last) => self.sync_to(SeqNo(last), Gather::Yield),
            None => self.check_poison(),
        }
    }

    pub(super) fn sync_to(&self, seq_no: SeqNo, gather: Gather) -> Result<()> {
        loop {
            // Whoever synced before us may have covered our record too.
            self.check_poison()?;
            if self.durable_end.load(Ordering::Acquire) > seq_no.0 {
                return Ok(());
            }
            // Read before looking at the state: a change after this wakes the wait below.
            let epoch = self.sync_epoch.load(Ordering::Acquire);
            {
                let mut syncs = self.lock_syncs();
                self.check_poison()?;
                if self.durable_end.load(Ordering::Acquire) > seq_no.0 {
                    return Ok(());
                }
                if !syncs.leading && !syncs.covers(seq_no) {
                    syncs.leading = true;
                    drop(syncs);
                    // Our sync may wait for an earlier one to be published: loop.
                    self.lead_sync(seq_no, gather)?;
                    continue;
                }
            }
            atomic_wait::wait(&self.sync_epoch, epoch);
        }
    }

    /// Wakes every waiter to look again (a wait compares the epoch it read before looking).
    pub(super) fn wake_waiters(&self) {
        self.sync_epoch.fetch_add(1, Ordering::Release);
        atomic_wait::wake_all(&self.sync_epoch);
    }

    /// Ends a lead that started no sync.
    pub(super) fn step_down(&self) {
        self.lock_syncs().leading = false;
        self.wake_waiters();
    }

    pub(super) fn lock_syncs(&self) -> MutexGuard<'_, SyncQueue> {
        self.syncs_started.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One fsync for everything written so far; the caller holds the leader flag.
    pub(super) fn lead_sync(&self, seq_no: SeqNo, gather: Gather) -> Result<()> {
        if gather == Gather::Yield {
            self.gather();
        }
        let started = self.start_group_sync(seq_no);
        let Ok(Some((file, generation, ticket))) = started else {
            self.step_down();
            return started.map(|_| ());
        };
        // The append lock is released: appends go on while this fsync runs.
        let fsync = Instant::now();
        let synced = file
            .sync_data()
            .map_err(|e| self.poison("fdatasync", segment::file_name(generation), e));
        let nanos = u64::try_from(fsync.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.sync_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.finish_sync(ticket, true);
        synced
    }

    /// Writes the pending frames and starts a sync of them: the file, its generation and the
    /// ticket, or `None` when a sync already started covers `seq_no`.
    pub(super) fn start_group_sync(&self, seq_no: SeqNo) -> Result<Option<GroupSync>> {
        let mut log = self.lock_log();
        self.flush_pending(&mut log)?;
        assert!(
            seq_no < log.next_seq_no,
            "sync_to({seq_no}) of a seq_no never written"
        );
        // A roll since we took the lead started a sync of everything before it.
        let mut syncs = self.lock_syncs();
        if syncs.covers(seq_no) {
            return Ok(None);
        }
        // NB: records of sealed segments were synced when they were sealed.
        let active = log
            .active
            .as_ref()
            .expect("an unsynced record is in the active segment");
        let point = DurablePoint {
            generation: active.generation,
            offset: active.write_offset,
            seq_no_end: log.next_seq_no,
        };
        let ticket = syncs.start(point);
        Ok(Some((active.file.clone(), active.generation, ticket)))
    }

    /// Records that the sync `ticket` ended (a failure has poisoned the log already) and
    /// publishes, in order, every sync whose predecessors all succeeded.
    pub(super) fn finish_sync(&self, ticket: u64, leader: bool) {
        let mut syncs = self.lock_syncs();
        if leader {
            syncs.leading = false;
        }
        if self.poison.get().is_none() {
            let index = (ticket - syncs.first_ticket) as usize;
            syncs.started[index].succeeded = Some(syncs.last_ticket());
        }
        let mut moved = false;
        for point in syncs.take_proven() {
            let before = self.durable_end.load(Ordering::Acquire);
            self.last_group
                .store(point.seq_no_end.0.saturating_sub(before), Ordering::Relaxed);
            moved |= self.advance_durable(point);
        }
        drop(syncs);
        self.wake_waiters();
        if moved && let Some(on_durable) = self.on_durable.get() {
            on_durable();
        }
    }

    /// Lets the writers that the last sync woke append before this one starts, so it covers
    /// them (as a write group gathers behind its leader): yields while records keep arriving,
    /// at most `GATHER_ROUNDS` times. Only when the last sync covered more than one record: a
    /// lone writer pays nothing, and 64 writers share one fsync instead of splitting into a
    /// small group and a large one.
    pub(super) fn gather(&self) {
        if self.last_group.load(Ordering::Relaxed) <= 1 {
            return;
        }
        let mut seen = self.lock_log().next_seq_no;
        for _ in 0..GATHER_ROUNDS {
            std::thread::yield_now();
            let now = self.lock_log().next_seq_no;
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Whether the durable seq_no moved.
    pub(super) fn advance_durable(&self, point: DurablePoint) -> bool {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        if (point.seq_no_end, point.generation, point.offset)
            > (durable.seq_no_end, durable.generation, durable.offset)
        {
            let moved = point.seq_no_end > durable.seq_no_end;
            *durable = point;
            self.durable_end
                .store(point.seq_no_end.0, Ordering::Release);
            return moved;
        }
        false
    }
}
