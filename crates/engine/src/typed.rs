//! Typed documents: a value of any `serde` type in, the same type out, with its stamp; and a
//! read-modify-write that retries on conflict. Sources are JSON, as every other path writes
//! them, so a typed document reads back through the server and the byte API alike.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::request::{Conditions, IndexRequest};
use crate::shard::{Document, WriteResult};
use crate::stamp::Stamp;

/// A document decoded into `T`, with the stamp its latest write left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The document, decoded.
    pub value: T,
    /// Its stamp.
    pub stamp: Stamp,
}

/// How many times `Index::update_with` reads and writes again after a conflict before it
/// answers the conflict.
pub const UPDATE_WITH_ATTEMPTS: u32 = 1_000;

impl Index {
    /// Writes `value` as document `id` (created or replaced), routed by the id; its stamp.
    pub fn put<T: Serialize + ?Sized>(&self, id: &str, value: &T) -> Result<Stamp> {
        self.put_request(id, value, Conditions::default())
    }

    /// `put`, on the condition that the document still has `expected`'s seq_no and primary
    /// term (Elasticsearch's `if_seq_no` and `if_primary_term`); a 409 conflict, with its
    /// evidence, if anyone wrote it since.
    pub fn put_if<T: Serialize + ?Sized>(
        &self,
        id: &str,
        value: &T,
        expected: Stamp,
    ) -> Result<Stamp> {
        let conditions = Conditions {
            if_seq_no: Some(expected.seq_no),
            if_primary_term: Some(expected.primary_term),
            ..Conditions::default()
        };
        self.put_request(id, value, conditions)
    }

    /// Document `id` decoded into `T`, with its stamp; `None` if there is none. A source
    /// that is not a `T` is an `illegal_argument_exception` naming the id.
    pub fn get_as<T: DeserializeOwned>(&self, id: &str) -> Result<Option<Versioned<T>>> {
        match self.get(id, None)? {
            Some(doc) => decode(&doc).map(Some),
            None => Ok(None),
        }
    }

    /// Reads document `id` as a `T`, lets `change` change it, and writes it back on the
    /// condition that nobody wrote it in between; after a conflict it reads and changes
    /// again, up to `UPDATE_WITH_ATTEMPTS` times. `change` may run more than once, so it
    /// should only change the value it is given. The value and stamp written; 404
    /// `document_missing_exception` if there is no document.
    pub fn update_with<T, F>(&self, id: &str, mut change: F) -> Result<Versioned<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T),
    {
        let mut attempt = 0;
        loop {
            let Some(Versioned { mut value, stamp }) = self.get_as::<T>(id)? else {
                return Err(Error::DocumentMissing { id: id.to_owned() });
            };
            change(&mut value);
            match self.put_if(id, &value, stamp) {
                Ok(stamp) => return Ok(Versioned { value, stamp }),
                Err(Error::VersionConflict(_)) if attempt + 1 < UPDATE_WITH_ATTEMPTS => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn put_request<T: Serialize + ?Sized>(
        &self,
        id: &str,
        value: &T,
        conditions: Conditions,
    ) -> Result<Stamp> {
        let source = serde_json::to_vec(value).map_err(|e| {
            Error::IllegalArgument(format!("[{id}]: the value cannot be written as JSON: {e}"))
        })?;
        let mut request = IndexRequest::new(id, source);
        request.conditions = conditions;
        self.index(&request, None).map(|w| stamp_of(&w))
    }
}

fn stamp_of(w: &WriteResult) -> Stamp {
    Stamp {
        seq_no: w.seq_no,
        primary_term: w.primary_term,
        version: w.version,
    }
}

fn decode<T: DeserializeOwned>(doc: &Document) -> Result<Versioned<T>> {
    let value = serde_json::from_slice(&doc.source).map_err(|e| {
        Error::IllegalArgument(format!(
            "[{}]: the source is not a {}: {e}",
            doc.id,
            std::any::type_name::<T>()
        ))
    })?;
    let stamp = Stamp {
        seq_no: doc.seq_no,
        primary_term: doc.primary_term,
        version: doc.version,
    };
    Ok(Versioned { value, stamp })
}
