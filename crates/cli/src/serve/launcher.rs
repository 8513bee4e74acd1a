//! What a process that starts a server needs from it: a file that says where it answers once
//! it does (`--ready-file`), and a server that stops when asked (SIGTERM, Ctrl-C) or, in
//! `--ephemeral` mode, when that process ends, so that a test run that crashed leaves no
//! server behind.

use std::path::Path;
use std::time::Duration;

use tracing::info;

/// How often an ephemeral server looks whether the process that started it still lives.
const PARENT_LOOK_EVERY: Duration = Duration::from_millis(100);

/// Writes `{"url", "pid", "version", "es_version", "ready_ms"}` to `file`, whole: to a
/// temporary file beside it, then renamed over it, so a launcher polling for the file never
/// reads half of it.
pub(super) fn write_ready_file(file: &Path, url: &str, ready: Duration) -> std::io::Result<()> {
    let text = serde_json::json!({
        "url": url,
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "es_version": server::es::VERSION_NUMBER,
        // To the microsecond: a start in memory takes well under one.
        "ready_ms": ready.as_micros() as f64 / 1e3,
    })
    .to_string();
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, file)
}

/// Resolves when the server should stop: Ctrl-C, SIGTERM, or with `follow_parent` the end of
/// the process that started this one.
pub(super) async fn stop_signal(follow_parent: bool) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let parent = async {
        match follow_parent {
            true => parent_ended().await,
            false => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => info!("shutting down: finishing requests in flight"),
        () = term => info!("shutting down: finishing requests in flight"),
        () = parent => info!("shutting down: the process that started this one ended"),
    }
}

/// Resolves once this process's parent is no longer the one it started with: an orphan is
/// given to init (or to a subreaper), and its parent id changes. Looked at, not signalled
/// (Linux's `PR_SET_PDEATHSIG` would need `unsafe` and follows the parent thread, not the
/// process).
async fn parent_ended() {
    let first = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(PARENT_LOOK_EVERY).await;
        if std::os::unix::process::parent_id() != first {
            return;
        }
    }
}
