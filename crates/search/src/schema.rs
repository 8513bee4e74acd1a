//! The fixed tantivy schema of a shard's view. A change to it is a new `FORMAT`: a view of
//! another format is discarded at open and rebuilt from the log.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions, STORED, STRING, Schema,
    TextFieldIndexing,
};

/// The view's format: bumped with every change to the schema or to how a source becomes
/// terms (`document.rs`).
pub(crate) const FORMAT: u64 = 1;

/// Strings longer than this many characters are not indexed as keywords: Elasticsearch's
/// `ignore_above` of a dynamic string's `.keyword` sub-field.
pub(crate) const KEYWORD_IGNORE_ABOVE: usize = 256;

/// The fields of a view's documents.
#[derive(Clone, Debug)]
pub(crate) struct Fields {
    /// `_id`: indexed whole (deletes and `ids` go by it), stored.
    pub(crate) id: Field,
    /// `_seq_no`: indexed, fast (sort and range on it), stored.
    pub(crate) seq_no: Field,
    pub(crate) primary_term: Field,
    pub(crate) version: Field,
    /// `_source`: the bytes written, as GET answers them.
    pub(crate) source: Field,
    /// Every leaf value by its path: strings whole (keywords), numbers, booleans.
    pub(crate) keywords: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let raw = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic);
    let keywords = JsonObjectOptions::default()
        .set_indexing_options(raw)
        .set_expand_dots_enabled();
    let fields = Fields {
        id: builder.add_text_field("_id", STRING | STORED),
        seq_no: builder.add_u64_field("_seq_no", INDEXED | FAST | STORED),
        primary_term: builder.add_u64_field("_primary_term", STORED),
        version: builder.add_u64_field("_version", STORED),
        source: builder.add_bytes_field("_source", STORED),
        keywords: builder.add_json_field("k", keywords),
    };
    (builder.build(), fields)
}
