//! `_bulk`: NDJSON in, one result per item out, as Elasticsearch's `BulkRequestParser` and
//! `BulkResponse`. The body is parsed whole and validated whole (one 400 for the request, as
//! `BulkRequest.validate`), then run by the engine as one batch: one group commit per shard.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use engine::{
    BulkAction, BulkItem, BulkItemResult, DeleteRequest, IdGenerator, Index, IndexRequest, OpType,
    Store, VersionType,
};

use crate::api::docs::update_body;
use crate::es::{self, EsError, Exception};
use crate::input::content::{ContentType, require_json};
use crate::input::params::{Params, write_target_refusal};
use crate::input::source_filter::SourceFilter;
use crate::state::{AppState, Reply, blocking};

mod action_line;

pub(crate) use action_line::check_plain_action_line;
use action_line::{Metadata, action_line, action_params, plain_action_line};

pub(crate) async fn bulk(
    state: State<AppState>,
    params: Params,
    content_type: ContentType,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, EsError> {
    let request = (params, content_type, opaque_id(&headers));
    run(state, None, request, body).await
}

pub(crate) async fn bulk_index(
    state: State<AppState>,
    Path(index): Path<String>,
    params: Params,
    content_type: ContentType,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, EsError> {
    let request = (params, content_type, opaque_id(&headers));
    run(state, Some(index), request, body).await
}

/// `X-Opaque-Id`, which fault rules of the test API may be scoped by.
fn opaque_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-opaque-id")?;
    value.to_str().ok().map(str::to_owned)
}

/// One parsed item: what to run, or why this item alone fails.
pub(crate) struct Parsed {
    /// `index`, `create`, `update` or `delete`: the key of its response item.
    op: &'static str,
    index: String,
    id: String,
    routing: Option<String>,
    /// Or why this item alone is refused, before the engine runs.
    action: Result<BulkAction, EsError>,
    /// For updates: the `get._source` to report.
    source_filter: Option<SourceFilter>,
}

/// Request-wide defaults from the URL.
struct Defaults {
    index: Option<String>,
    routing: Option<String>,
    source_filter: Option<SourceFilter>,
    require_alias: bool,
    pipeline: Option<String>,
}

async fn run(
    State(state): State<AppState>,
    path_index: Option<String>,
    (params, content_type, opaque_id): (Params, ContentType, Option<String>),
    body: Bytes,
) -> Result<Reply, EsError> {
    let started = Instant::now();
    let pretty = params.pretty();
    require_json(&content_type)?;
    params.forced_refresh()?;
    let mut parsed = parse_request(&body, path_index, &params, state.store.ids())?;
    let store = state.store.clone();
    let faulted = state
        .test_api
        .then(|| (state.clone(), opaque_id.clone(), body.len()));
    blocking(move || {
        let fired = match faulted {
            Some((state, opaque_id, len)) => {
                fault_items(&state, &mut parsed, opaque_id.as_deref(), len)
            }
            None => Vec::new(),
        };
        let results = execute(&store, &mut parsed);
        // The items are written straight into the answer's text, each from its typed body.
        // `errors` and `took` come first in the answer but are known only after the items,
        // so the items are written after room left for them, and the answer starts where
        // the head, written last, begins: the items are not copied again.
        let mut out = Vec::with_capacity(HEAD_ROOM + parsed.len() * 160);
        out.resize(HEAD_ROOM, b' ');
        let mut errors = false;
        let mut index = None;
        for (n, (item, result)) in parsed.iter().zip(results).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let result = match (&item.action, result) {
                (Err(refusal), _) => Err(refusal),
                (Ok(_), result) => Ok(result.expect("a result for each accepted item")),
            };
            errors |= render_item(&mut out, &store, &mut index, item, result);
        }
        out.extend_from_slice(b"]}");
        let took = started.elapsed().as_millis() as u64;
        let head = format!("{{\"errors\":{errors},\"took\":{took},\"items\":[");
        let start = HEAD_ROOM - head.len();
        out[start..HEAD_ROOM].copy_from_slice(head.as_bytes());
        let mut reply =
            es::maybe_pretty_response(StatusCode::OK, Bytes::from(out).slice(start..), pretty);
        if let Some(id) = fired.first() {
            crate::api::testing::faults::mark(&mut reply, id);
        }
        Ok(reply)
    })
    .await
}

/// The test API's faults on single items (`state/faults.rs`): a `status` of scope `item`
/// refuses the item with that status; a `version_conflict` makes a real write to its document
/// first, and refuses it with the conflict unless its own condition meets that write. The
/// ids of the rules that fired.
fn fault_items(
    state: &AppState,
    parsed: &mut [Parsed],
    opaque_id: Option<&str>,
    len: usize,
) -> Vec<String> {
    use crate::api::testing::faults as faulting;
    use crate::state::{Action, Facts};
    let mut fired_ids = Vec::new();
    for item in parsed.iter_mut().filter(|p| p.action.is_ok()) {
        let facts = Facts {
            method: "POST",
            path: "/_bulk",
            op: item.op,
            index: Some(&item.index),
            id: Some(&item.id),
            opaque_id,
            item: true,
        };
        let Some(fired) = state.testing.faults.fire(&facts) else {
            continue;
        };
        let refusal = match &fired.action {
            Action::Status { status, error, .. } => Some(es::injected::status_error(
                *status,
                error.as_deref(),
                Some(&item.index),
                len,
            )),
            action => match action.interleaved() {
                Some((doc, conflict)) => {
                    let contested = faulting::Contested {
                        index: item.index.clone(),
                        id: item.id.clone(),
                        routing: item.routing.clone(),
                        runs_anyway: item.action.as_ref().is_ok_and(meets_a_conflict),
                    };
                    faulting::interleave_now(&state.store, &contested, &doc, conflict).err()
                }
                None => None,
            },
        };
        if let Some(refusal) = refusal {
            item.action = Err(refusal);
        }
        fired_ids.push(fired.id);
    }
    fired_ids
}

/// Whether an item's own condition meets a write in between (`if_seq_no`, a version,
/// `create`), or its update retries on conflict.
fn meets_a_conflict(action: &BulkAction) -> bool {
    match action {
        BulkAction::Index(r) => {
            r.op_type == engine::OpType::Create
                || r.conditions.if_seq_no.is_some()
                || r.conditions.version.is_some()
        }
        BulkAction::Delete(r) => r.conditions.if_seq_no.is_some() || r.conditions.version.is_some(),
        BulkAction::Update(r) => r.if_seq_no.is_some() || r.retry_on_conflict > 0,
    }
}

/// Room for the answer's head, `{"errors":false,"took":<u64>,"items":[` (at most 53 bytes).
const HEAD_ROOM: usize = 64;

/// The whole request, parsed and validated: the items to run, or the one refusal.
pub(crate) fn parse_request(
    body: &Bytes,
    path_index: Option<String>,
    params: &Params,
    ids: &IdGenerator,
) -> Result<Vec<Parsed>, EsError> {
    let defaults = Defaults {
        index: path_index,
        routing: params.routing().map(str::to_owned),
        source_filter: params.source_filter(),
        require_alias: params.get("require_alias").is_some_and(|v| v != "false"),
        pipeline: params.get("pipeline").map(str::to_owned),
    };
    parse(body, &defaults, ids)
}

/// The lines of `text`, split at each `\n` (a `\r` before it dropped), found with `memchr`:
/// a bulk body is large, and a byte-at-a-time split was a visible part of a `_bulk`
/// request's CPU (docs/performance.md, session 14).
fn lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::with_capacity(memchr::memchr_iter(b'\n', text).count() + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', text).chain([text.len()]) {
        let line = &text[start..end];
        lines.push(line.strip_suffix(b"\r").unwrap_or(line));
        start = end + 1;
    }
    lines
}

/// Reads a `_bulk` body into its items: the line structure first, then each item's action
/// line and document, refusing the whole request (the `Err`) for what Elasticsearch refuses
/// whole, and keeping a per-item refusal (`Parsed::action`) with the item otherwise.
fn parse(body: &Bytes, defaults: &Defaults, ids: &IdGenerator) -> Result<Vec<Parsed>, EsError> {
    let lines = lines(terminated(body)?);
    // Most items are two lines (a delete is one).
    let mut items = Vec::with_capacity(lines.len().div_ceil(2));
    let mut validation = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line_no = n + 1;
        let line = lines[n];
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (op, meta) = read_action_line(line, line_no)?;
        // Every action but delete is followed by its document line; one without it is dropped.
        let doc = if op == "delete" {
            None
        } else {
            let Some(doc) = lines.get(n) else { break };
            n += 1;
            Some(*doc)
        };
        let mut item = Item::of(op, meta, defaults);
        let Some(index) = item.index.take() else {
            validation.push("index is missing".to_owned());
            continue;
        };
        items.push(item.parse(index, doc, body, defaults, ids, &mut validation)?);
    }
    finish(items, validation)
}

/// The body up to its last newline: a body must end with one (whitespace after it aside).
fn terminated(body: &Bytes) -> Result<&[u8], EsError> {
    if body.is_empty() {
        return Err(EsError::bad_request(
            Exception::Parse,
            "request body is required",
        ));
    }
    let Some(last_newline) = body.iter().rposition(|&b| b == b'\n') else {
        return Err(not_terminated());
    };
    if body[last_newline + 1..]
        .iter()
        .any(|b| !b.is_ascii_whitespace())
    {
        return Err(not_terminated());
    }
    Ok(&body[..last_newline])
}

/// An action line: by the fast scanner if it is a plain one, else by the general reader,
/// whose simple values are read as URL parameters are, with the same checks.
fn read_action_line(line: &[u8], line_no: usize) -> Result<(&'static str, Metadata<'_>), EsError> {
    if let Some(read) = plain_action_line(line) {
        return Ok(read);
    }
    let (op, raw) = action_line(line, line_no)?;
    let params = action_params(&raw, line_no)?;
    let meta = Metadata::from_params(&params, raw.get("_source").cloned())?;
    Ok((op, meta))
}

/// One item's action line, with the URL's defaults filled in.
struct Item<'a> {
    op: &'static str,
    index: Option<String>,
    explicit_id: Option<String>,
    routing: Option<String>,
    require_alias: bool,
    meta: Metadata<'a>,
}

impl<'a> Item<'a> {
    fn of(op: &'static str, mut meta: Metadata<'a>, defaults: &Defaults) -> Item<'a> {
        Item {
            op,
            index: meta
                .index
                .take()
                .map(Cow::into_owned)
                .or_else(|| defaults.index.clone()),
            explicit_id: meta.id.take().map(Cow::into_owned),
            routing: meta
                .routing
                .take()
                .map(Cow::into_owned)
                .or_else(|| defaults.routing.clone()),
            require_alias: meta.require_alias.unwrap_or(defaults.require_alias),
            meta,
        }
    }

    /// The item as the bulk runs it: its action, or its own refusal; request validation
    /// messages go to `validation`, which refuses the whole bulk.
    fn parse(
        mut self,
        index: String,
        doc: Option<&[u8]>,
        body: &Bytes,
        defaults: &Defaults,
        ids: &IdGenerator,
        validation: &mut Vec<String>,
    ) -> Result<Parsed, EsError> {
        // Whether `_id` was given empty, before the id moves into the action.
        let empty_id = self.explicit_id.as_deref() == Some("");
        // An index or create without one gets its id here; a delete or update without one is
        // refused by validation.
        let id = match self.explicit_id.take() {
            Some(id) => id,
            None if matches!(self.op, "index" | "create") => ids.next_id_in(&index),
            None => String::new(),
        };
        let (op, mut action, source_filter) = self.action(&id, doc, body, defaults)?;
        validation.extend(validation_messages(&action));
        // The document's own check, marked on the request so that the write does not repeat it.
        let malformed = match &mut action {
            Ok(BulkAction::Index(r)) => r.check_source().err(),
            _ => None,
        };
        let pipeline = self
            .meta
            .pipeline
            .as_deref()
            .or(defaults.pipeline.as_deref());
        let target = match op {
            "delete" => None,
            _ => write_target_refusal(&index, pipeline, self.require_alias),
        };
        let action = if let Some(e) = malformed {
            Err(EsError::from(e))
        } else if let Some(refusal) = target {
            Err(refusal)
        } else if empty_id {
            Err(EsError::illegal_argument(
                "if _id is specified it must not be empty",
            ))
        } else {
            action
        };
        Ok(Parsed {
            op,
            index,
            id,
            routing: self.routing,
            action,
            source_filter,
        })
    }

    /// The engine's action for the item, the key of its response item, and for an update
    /// the `_source` filter of its answer.
    fn action(
        &self,
        id: &str,
        doc: Option<&[u8]>,
        body: &Bytes,
        defaults: &Defaults,
    ) -> Result<Action, EsError> {
        let conditions = self.meta.conditions;
        match self.op {
            "delete" => Ok((
                "delete",
                Ok(BulkAction::Delete(DeleteRequest {
                    id: id.to_owned(),
                    conditions,
                })),
                None,
            )),
            "update" => self.update(id, doc, defaults),
            op => {
                let op_type = match (op, self.meta.op_type.as_deref()) {
                    ("create", _) | (_, Some("create")) => OpType::Create,
                    (_, None | Some("index")) => OpType::Index,
                    (_, Some(other)) => {
                        return Err(EsError::illegal_argument(format!(
                            "opType must be 'create' or 'index', found: [{other}]"
                        )));
                    }
                };
                let request = IndexRequest::with(
                    id.to_owned(),
                    // A slice of the body, not a copy: the engine only reads it.
                    doc.map_or_else(Bytes::new, |doc| body.slice_ref(doc)),
                    op_type,
                    conditions,
                );
                let op = if op_type == OpType::Create {
                    "create"
                } else {
                    "index"
                };
                Ok((op, Ok(BulkAction::Index(request)), None))
            }
        }
    }

    fn update(&self, id: &str, doc: Option<&[u8]>, defaults: &Defaults) -> Result<Action, EsError> {
        let conditions = self.meta.conditions;
        if conditions.version.is_some() || conditions.version_type != VersionType::Internal {
            return Err(EsError::bad_request(
                Exception::ActionRequestValidation,
                "Validation Failed: 1: Update requests do not support versioning. Please use \
                 `if_seq_no` and `if_primary_term` instead;",
            ));
        }
        let (mut request, body_filter) = update_body(id, doc.unwrap_or_default())?;
        request.retry_on_conflict = self.meta.retry_on_conflict.clone()?;
        request.if_seq_no = conditions.if_seq_no;
        request.if_primary_term = conditions.if_primary_term;
        let filter = match &self.meta.source {
            Some(v) => Some(SourceFilter::from_json(v).map_err(EsError::illegal_argument)?),
            None => body_filter.or_else(|| defaults.source_filter.clone()),
        };
        Ok(("update", Ok(BulkAction::Update(request)), filter))
    }
}

/// An item's response key, its action or refusal, and an update's `_source` filter.
type Action = (
    &'static str,
    Result<BulkAction, EsError>,
    Option<SourceFilter>,
);

/// Request validation is whole-bulk; what the engine checks per item stays per item. An
/// empty `_id` is the item's own refusal, as Elasticsearch's.
fn validation_messages(action: &Result<BulkAction, EsError>) -> Vec<String> {
    let checked = match action {
        Ok(BulkAction::Index(r)) if !r.id.is_empty() => r.validate(),
        Ok(BulkAction::Delete(r)) if !r.id.is_empty() => r.validate(),
        Ok(BulkAction::Update(r)) if !r.id.is_empty() => r.validate(),
        _ => Ok(()),
    };
    match checked {
        Err(engine::Error::Validation(messages)) => messages,
        _ => Vec::new(),
    }
}

/// The items, unless validation refused the bulk or it has none.
fn finish(items: Vec<Parsed>, validation: Vec<String>) -> Result<Vec<Parsed>, EsError> {
    if !validation.is_empty() {
        return Err(EsError::from(engine::Error::Validation(validation)));
    }
    if items.is_empty() {
        return Err(EsError::bad_request(
            Exception::ActionRequestValidation,
            "Validation Failed: 1: no requests added;",
        ));
    }
    Ok(items)
}

fn not_terminated() -> EsError {
    EsError::illegal_argument("The bulk request must be terminated by a newline [\\n]")
}

/// Runs the items the parser accepted as one engine batch; refused ones keep their refusal.
/// The accepted actions move into the batch (their sources are not copied); what the
/// answer needs of each item stays.
fn execute(store: &Store, parsed: &mut [Parsed]) -> Vec<Option<BulkItemResult>> {
    let moved = || BulkAction::Index(IndexRequest::new(String::new(), Vec::new()));
    // Actions, index names and routings move into the engine's batch, not copied; the names
    // come back after, for the answers.
    let mut batch: Vec<BulkItem> = parsed
        .iter_mut()
        .filter_map(|p| {
            let action = std::mem::replace(p.action.as_mut().ok()?, moved());
            Some(BulkItem {
                index: std::mem::take(&mut p.index),
                routing: p.routing.take(),
                action,
            })
        })
        .collect();
    let auto_create = engine::BulkOptions {
        create_indices: true,
    };
    let mut results = store.bulk(&batch, auto_create).into_iter();
    let taken = parsed.iter_mut().filter(|p| p.action.is_ok());
    for (p, item) in taken.zip(&mut batch) {
        p.index = std::mem::take(&mut item.index);
        p.routing = item.routing.take();
    }
    parsed
        .iter()
        .map(|p| {
            p.action
                .is_ok()
                .then(|| results.next().expect("one result per item"))
        })
        .collect()
}

/// Writes one item's answer, `{"<op>": {...}}`, to `out`. Returns whether it is an error.
/// `index` keeps the last item's index: items of a bulk mostly go to one.
fn render_item(
    out: &mut Vec<u8>,
    store: &Store,
    index: &mut Option<Arc<Index>>,
    item: &Parsed,
    result: Result<BulkItemResult, &EsError>,
) -> bool {
    let mut failure = |error: &EsError| {
        let body = es::bulk_failure(item.op, &item.index, &item.id, error);
        serde_json::to_writer(&mut *out, &body).expect("writing to memory");
        true
    };
    let outcome = match result {
        Err(refusal) => return failure(refusal),
        Ok(outcome) => outcome,
    };
    if index.as_ref().is_none_or(|i| i.name() != item.index) {
        *index = store.index(&item.index).ok();
    }
    match (outcome.result, index.as_ref()) {
        (Ok(write), Some(index)) => {
            let mut body = es::WriteBody::new(index, &write, false);
            body.status = Some(es::write_status(write.result).as_u16());
            if let (Some(filter), Some(source)) = (&item.source_filter, &outcome.source) {
                body.get = Some(es::update_get(&write, source, filter));
            }
            out.extend_from_slice(b"{");
            serde_json::to_writer(&mut *out, item.op).expect("writing to memory");
            out.extend_from_slice(b":");
            body.write_compact(out);
            out.extend_from_slice(b"}");
            false
        }
        (Ok(_), None) => failure(&EsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Exception::Exception,
            "index vanished",
        )),
        (Err(e), index) => match (index, outcome.shard) {
            (Some(index), Some(shard)) => {
                failure(&EsError::on_shard_of(&e, &item.index, index.uuid(), shard))
            }
            _ => failure(&EsError::from(&e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::lines;

    /// `lines` splits as `[u8]::split` at `\n` does, dropping one `\r` before each break.
    #[test]
    fn lines_split_at_newlines_as_a_plain_split_does() {
        let texts: [&[u8]; 9] = [
            b"",
            b"a",
            b"\n",
            b"\n\n",
            b"a\nb",
            b"a\r\nb\r",
            b"\r\r\n\r",
            b"{\"index\":{}}\n{\"f\":1}\n\n  \n{\"delete\":{}}",
            b"x\ny\n",
        ];
        for text in texts {
            let expected: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect();
            assert_eq!(lines(text), expected, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
