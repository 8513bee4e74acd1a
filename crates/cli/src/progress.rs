//! Progress of long work (export, import, check, and the engine's replay and compaction): a bar
//! on a terminal, a log line every few seconds otherwise (a pipe, a file, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// Reports how far a task has come.
pub(crate) struct Progress {
    what: &'static str,
    bar: Option<ProgressBar>,
    last_log: Instant,
}

impl Progress {
    /// `total` when it is known (a bar), else a counter.
    pub(crate) fn new(what: &'static str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec})")
                        .expect("a valid template"),
                ),
            };
            bar.set_message(what);
            bar
        });
        Progress {
            what,
            bar,
            last_log: Instant::now(),
        }
    }

    pub(crate) fn update(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_log.elapsed() >= Duration::from_secs(5) => {
                self.last_log = Instant::now();
                info!(task = self.what, done, "progress");
            }
            None => {}
        }
    }

    pub(crate) fn finish(self, done: u64) {
        match self.bar {
            Some(bar) => bar.finish_with_message(format!("{} done", self.what)),
            None => info!(task = self.what, done, "finished"),
        }
    }
}

/// Work smaller than this draws nothing: a bar that flashes by tells nobody anything.
const ENGINE_TASK_MIN: u64 = 1 << 16;

/// The engine's progress reports (replay when a shard opens, compaction) shown as `Progress`:
/// one task at a time, a bar on a terminal, log lines otherwise.
pub(crate) fn for_engine() -> engine::Progress {
    let current: std::sync::Mutex<Option<(&'static str, Progress)>> = std::sync::Mutex::new(None);
    engine::Progress(std::sync::Arc::new(move |task, done, total| {
        if total < ENGINE_TASK_MIN {
            return;
        }
        let mut current = current.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(&*current, Some((t, _)) if *t == task) {
            *current = Some((task, Progress::new(task, Some(total))));
        }
        if let Some((_, progress)) = current.as_mut() {
            progress.update(done);
        }
        if done >= total
            && let Some((_, progress)) = current.take()
        {
            progress.finish(done);
        }
    }))
}
