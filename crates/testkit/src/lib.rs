//! optimist's test fixtures, shared by the server's tests, the CLI's tests and the crash
//! harness: a small HTTP/1.1 client that shows exactly what went over the wire
//! ([`http`]), and, with the `server` feature, a live server on 127.0.0.1 in this process
//! ([`Server`]).

pub mod http;
#[cfg(feature = "server")]
mod server;

pub use http::{Response, exchange, send_to};

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, for the tidy tests that read the sources.
pub fn rust_sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}
#[cfg(feature = "server")]
pub use server::Server;
