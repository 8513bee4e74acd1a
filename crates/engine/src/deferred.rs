//! Work a store in memory leaves for after an answer (`snapshot.rs`, `Store::delete_index`):
//! halting a replaced index's threads, opening the next restore's copy ahead. One thread per
//! store runs it, started on first use and ending with the store, so an answer never pays for
//! a thread's start; each job waits a moment first, so that on a machine of few cores it does
//! not take the core the answer it follows is still using.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a job waits after it was given.
const AFTER: Duration = Duration::from_millis(2);

type Job = Box<dyn FnOnce() + Send>;

/// The store's deferred work.
#[derive(Default)]
pub(crate) struct Deferred {
    jobs: Mutex<Option<Sender<(Instant, Job)>>>,
}

impl Deferred {
    /// Runs `job` on the deferred thread, a moment from now; at once here if that thread
    /// cannot be started.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if jobs.is_none() {
            *jobs = start();
        }
        let job: Job = Box::new(job);
        let given = Instant::now();
        let refused = match jobs.as_ref() {
            Some(sender) => sender.send((given, job)).err().map(|e| e.0.1),
            None => Some(job),
        };
        if let Some(job) = refused {
            // No thread (or it ended): the job runs now, late answer or not.
            *jobs = None;
            drop(jobs);
            job();
        }
    }
}

/// The thread, and the sender of its jobs; `None` if it could not start.
fn start() -> Option<Sender<(Instant, Job)>> {
    let (sender, jobs) = channel::<(Instant, Job)>();
    let started = std::thread::Builder::new()
        .name("optimist-deferred".into())
        .spawn(move || {
            for (given, job) in jobs {
                let due = given + AFTER;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                job();
            }
        });
    match started {
        Ok(_) => Some(sender),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the thread for deferred work");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jobs_run_in_order_a_moment_later_on_one_thread() {
        let deferred = Deferred::default();
        let done = Arc::new(Mutex::new(Vec::new()));
        let given = Instant::now();
        for n in 0..5 {
            let done = done.clone();
            deferred.run(move || done.lock().unwrap().push((n, given.elapsed())));
        }
        let threads = Arc::new(AtomicUsize::new(0));
        let seen = threads.clone();
        deferred.run(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        drop(deferred);
        // The thread ends once the store (the sender) is gone and its jobs are done.
        let started = Instant::now();
        while threads.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "the jobs ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        let done = done.lock().unwrap();
        assert_eq!(
            done.iter().map(|d| d.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert!(done.iter().all(|d| d.1 >= AFTER), "{done:?}");
    }
}
