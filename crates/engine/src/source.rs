//! What a document's `_source` must be, as Elasticsearch's `DocumentParser` requires it: one
//! JSON object and nothing after it, UTF-8, no field named twice in an object, nested no
//! deeper than [`NESTING_DEPTH_MAX`]. Every write of a document is checked here
//! (`Shard::index_with`, which index, create, bulk, update and the typed layer all reach), so
//! no caller of the library can store what a server could not serve back; the errors carry
//! Elasticsearch's type and reason, position included.

mod duplicate_fields;
mod nesting;

pub use duplicate_fields::{Checked, CheckedValue, duplicate_message};
pub use nesting::{NESTING_DEPTH_MAX, TooDeep, too_deep};

use crate::error::{Error, Result};

/// Checks `source` is a document Elasticsearch would parse: `Error::DocumentParsing`
/// (`document_parsing_exception`, 400) if not, or `Error::IllegalArgument` for data after
/// the object, each with Elasticsearch's reason.
pub fn check(source: &[u8]) -> Result<()> {
    if source.is_empty() {
        return Err(parsing("[0:0] failed to parse, document is empty"));
    }
    // First the depth, which bounds the walk below (nesting.rs).
    if let Some(deep) = too_deep(source, NESTING_DEPTH_MAX) {
        return Err(Error::DocumentParsing(deep.reason(NESTING_DEPTH_MAX)));
    }
    // Then the document walked, not built: only its shape matters here. A source is almost
    // always one well-formed object, which one walk to its end settles; anything else is
    // walked again, value by value, to say what is wrong with it.
    if is_one_object(source) {
        return Ok(());
    }
    why_not_one_object(source).map_or(Ok(()), Err)
}

fn parsing(reason: &str) -> Error {
    Error::DocumentParsing(reason.to_owned())
}

/// Whether `source` is one JSON object and nothing else (whitespace aside), every field named
/// once in each of its objects. No depth check: see [`check`].
pub fn is_one_object(source: &[u8]) -> bool {
    let first = source.iter().find(|b| !b.is_ascii_whitespace());
    let mut whole = serde_json::Deserializer::from_slice(source);
    first == Some(&b'{')
        && <Checked as serde::Deserialize>::deserialize(&mut whole)
            .and_then(|_| whole.end())
            .is_ok()
}

/// What is wrong with a source that is not one object ([`is_one_object`]), walked value by
/// value as Elasticsearch's parser reads it; `None` if nothing is.
pub fn why_not_one_object(source: &[u8]) -> Option<Error> {
    let first = source.iter().find(|b| !b.is_ascii_whitespace());
    let mut values = serde_json::Deserializer::from_slice(source).into_iter::<Checked>();
    match values.next() {
        Some(Ok(_)) if first != Some(&b'{') => {
            Some(parsing("Malformed content, must start with an object"))
        }
        Some(Ok(_)) => match values.next() {
            None => None,
            Some(Ok(_)) => Some(Error::IllegalArgument(
                "Malformed content, found extra data after parsing: START_OBJECT".into(),
            )),
            Some(Err(e)) => Some(parse_failure(source, &e)),
        },
        Some(Err(e)) => Some(parse_failure(source, &e)),
        None => Some(parsing("[0:0] failed to parse, document is empty")),
    }
}

/// Where a source is not UTF-8, in the words of Elasticsearch's parser (Jackson), which
/// `serde_json` words differently (`invalid unicode code point`).
fn utf8_error(source: &[u8]) -> Option<String> {
    let e = std::str::from_utf8(source).err()?;
    let at = e.valid_up_to();
    let line = 1 + source[..at].iter().filter(|&&b| b == b'\n').count();
    let column = at
        - source[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1)
        + 1;
    let lead = source[at];
    // A valid lead byte followed by a bad continuation is the "middle" byte's fault.
    let what = match (lead, source.get(at + 1)) {
        (0xc2..=0xf4, Some(&next)) if e.error_len().is_some() && next & 0xc0 != 0x80 => {
            format!("Invalid UTF-8 middle byte 0x{next:x}")
        }
        _ => format!("Invalid UTF-8 start byte 0x{lead:x}"),
    };
    Some(format!("[{line}:{column}] failed to parse: {what}"))
}

/// Why a source did not parse, a duplicate field or bytes that are not UTF-8 included.
fn parse_failure(source: &[u8], e: &serde_json::Error) -> Error {
    let reason = match (utf8_error(source), duplicate_message(e)) {
        (Some(reason), _) => reason,
        (None, Some(message)) => {
            format!("[{}:{}] failed to parse: {message}", e.line(), e.column())
        }
        (None, None) => format!("[{}:{}] failed to parse: {e}", e.line(), e.column()),
    };
    Error::DocumentParsing(reason)
}
