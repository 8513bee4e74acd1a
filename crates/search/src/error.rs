//! What searching can fail with.

use std::fmt;

/// A search view's error.
#[derive(Debug)]
pub enum Error {
    /// The engine refused (the shard failed, the index was deleted, history is gone).
    Engine(engine::Error),
    /// The view of a shard could not be read or written. The next open checks it, and
    /// rebuilds it from the log if it cannot be trusted.
    View {
        /// `[index][shard]`.
        shard: String,
        /// What failed.
        reason: String,
    },
    /// The query asks for what the view does not answer (yet): Elasticsearch would answer
    /// it, optimist refuses rather than answer differently.
    Unsupported(String),
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl From<engine::Error> for Error {
    fn from(e: engine::Error) -> Error {
        Error::Engine(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Engine(e) => write!(f, "{e}"),
            Error::View { shard, reason } => write!(f, "the search view of {shard}: {reason}"),
            Error::Unsupported(what) => write!(f, "optimist does not support {what}"),
        }
    }
}

impl std::error::Error for Error {}
