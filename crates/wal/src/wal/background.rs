//! The log's background thread: frames written without a sync flushed within a tick, async
//! durability's periodic sync, the next segment prepared ahead, the checkpoint refreshed.

use super::*;

impl Shared {
    pub(super) fn wake_background(&self) {
        *self.wake_flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_one();
    }

    pub(super) fn run_background(&self) {
        let sync_interval = match self.config.durability {
            Durability::Async { sync_interval } => Some(sync_interval),
            Durability::Request => None,
        };
        let tick = sync_interval.map_or(self.config.checkpoint_interval, |s| {
            s.min(self.config.checkpoint_interval)
        });
        let mut last_sync = Instant::now();
        let mut last_checkpoint = Instant::now();
        loop {
            {
                let flag = self.wake_flag.lock().unwrap_or_else(|e| e.into_inner());
                let (mut flag, _) = self
                    .wake
                    .wait_timeout_while(flag, tick.min(Duration::from_secs(1)), |woken| !*woken)
                    .unwrap_or_else(|e| e.into_inner());
                *flag = false;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            // Frames written without a sync reach the page cache within a tick. An error
            // poisons the log; appenders see it.
            let _ = self.flush_pending(&mut self.lock_log());
            if sync_interval.is_some_and(|interval| last_sync.elapsed() >= interval) {
                // An error poisons the log; appenders see it.
                let _ = self.sync();
                last_sync = Instant::now();
            }
            // A failure here surfaces again, to an appender, when a roll prepares inline.
            if self.next_segment_wanted() {
                let _ = self.prepare_ahead();
            }
            if last_checkpoint.elapsed() >= self.config.checkpoint_interval {
                self.refresh_checkpoint();
                last_checkpoint = Instant::now();
            }
        }
    }
}
