//! Pure reading of what a request carries, below the handlers: query parameters and their
//! values, `_source` filters, the body's content type, what an unknown name looks like.

pub(crate) mod changes;
pub(crate) mod content;
pub(crate) mod flat_settings;
pub(crate) mod param_values;
pub(crate) mod params;
pub mod source_filter;
pub(crate) mod suggest;
