//! `/_optimist/faults`: rules that make the server misbehave the way a real cluster does at
//! its worst, for the retry code of an application under test (the rules and their matching
//! are `state/faults.rs`; the HTTP layer applies them, `http/faults.rs`):
//!
//! - `POST /_optimist/faults` makes a rule (201 `{"id", "remaining"}`);
//! - `GET /_optimist/faults` lists them, with how often each matched and fired;
//! - `DELETE /_optimist/faults/{id}`, `DELETE /_optimist/faults`.
//!
//! And the event `POST /_optimist/restart`: indices closed and opened again as after a crash.
//! Here too are the actions that need the engine: the real write a conflict is made of, and
//! the answers a `status` action gives.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use engine::{Required, Stamp, UpdateRequest};
use serde_json::{Map, Value, json};

use crate::es::{self, EsError, Exception};
use crate::input::content::{ContentType, json_body};
use crate::input::params::Params;
use crate::state::{Action, AppState, Fired, Match, RULES_MAX, Reply, Rule, blocking};

type Answer = Result<Reply, EsError>;

/// The header a faulted answer carries: the rule that made it.
pub(crate) const FAULT_HEADER: &str = "x-optimist-fault";

/// `POST /_optimist/faults`.
pub(crate) async fn create_fault(
    State(state): State<AppState>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let value = json_body(&content_type, &body, "the rule")?;
    let faults = &state.testing.faults;
    let rule = parse_rule(&value, || faults.next_id())?;
    let mut rules = faults.lock();
    if rules.len() >= RULES_MAX {
        return Err(EsError::illegal_argument(format!(
            "cannot hold more than [{RULES_MAX}] fault rules: delete some first"
        )));
    }
    if rules.iter().any(|r| r.id == rule.id) {
        return Err(EsError::bad_request(
            Exception::ResourceAlreadyExists,
            format!("fault [{}] already exists", rule.id),
        ));
    }
    let body = json!({"id": rule.id, "remaining": rule.remaining});
    rules.push(rule);
    faults.changed(&rules);
    Ok(es::json_response(
        StatusCode::CREATED,
        &body,
        params.pretty(),
    ))
}

/// `GET /_optimist/faults`.
pub(crate) async fn list_faults(State(state): State<AppState>, params: Params) -> Answer {
    let rules = state.testing.faults.lock();
    let shown: Vec<Value> = rules.iter().map(shown).collect();
    let body = json!({ "faults": shown });
    Ok(es::json_response(StatusCode::OK, &body, params.pretty()))
}

fn shown(rule: &Rule) -> Value {
    json!({
        "id": rule.id,
        "match": rule.shown.get("match").cloned().unwrap_or(json!({})),
        "action": rule.shown.get("action").cloned().unwrap_or(Value::Null),
        "remaining": rule.remaining,
        "matched": rule.matched,
        "fired": rule.fired,
    })
}

/// `DELETE /_optimist/faults/{id}`.
pub(crate) async fn delete_fault(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Answer {
    let faults = &state.testing.faults;
    let mut rules = faults.lock();
    let before = rules.len();
    rules.retain(|r| r.id != id);
    let deleted = rules.len() < before;
    faults.changed(&rules);
    if !deleted {
        return Err(EsError::new(
            StatusCode::NOT_FOUND,
            Exception::ResourceNotFound,
            format!("fault [{id}] does not exist"),
        ));
    }
    Ok(es::json_response(
        StatusCode::OK,
        &json!({"deleted": true}),
        params.pretty(),
    ))
}

/// `DELETE /_optimist/faults`.
pub(crate) async fn delete_faults(State(state): State<AppState>, params: Params) -> Answer {
    let deleted = clear(&state);
    Ok(es::json_response(
        StatusCode::OK,
        &json!({"deleted": deleted}),
        params.pretty(),
    ))
}

/// Forgets every rule (also `POST /_optimist/reset`); how many there were.
pub(crate) fn clear(state: &AppState) -> usize {
    let faults = &state.testing.faults;
    let mut rules = faults.lock();
    let deleted = rules.len();
    rules.clear();
    faults.changed(&rules);
    deleted
}

/// `POST /_optimist/restart`, body `{"indices": [...]}` (every index by default): each closed
/// and opened again from its log as after a crash (`engine::Store::restart_index`).
pub(crate) async fn restart(
    State(state): State<AppState>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let started = Instant::now();
    let given = match body.is_empty() {
        true => Value::Null,
        false => json_body(&content_type, &body, "the body")?,
    };
    let names: Vec<String> = match given.get("indices") {
        None | Some(Value::Null) => state.store.index_names(),
        Some(Value::String(list)) => list.split(',').map(str::to_owned).collect(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| EsError::illegal_argument("[indices] must hold index names"))?,
        Some(_) => return Err(EsError::illegal_argument("[indices] must list index names")),
    };
    let store = state.store.clone();
    let terms = blocking(move || -> Result<Map<String, Value>, EsError> {
        let mut terms = Map::new();
        for name in &names {
            let restarted = store.restart_index(name)?;
            let terms_of: Vec<u64> = restarted.iter().map(|t| t.0).collect();
            terms.insert(name.clone(), json!(terms_of));
        }
        Ok(terms)
    })
    .await?;
    let body = json!({
        "restarted": terms.keys().collect::<Vec<_>>(),
        "primary_terms": terms,
        "took": started.elapsed().as_millis() as u64,
    });
    Ok(es::json_response(StatusCode::OK, &body, params.pretty()))
}

/// A rule from its JSON, each field read with its own refusal, in the order the
/// documentation lists them.
fn parse_rule(value: &Value, next_id: impl FnOnce() -> String) -> Result<Rule, EsError> {
    let bad = |why: String| EsError::illegal_argument(why);
    let Value::Object(map) = value else {
        return Err(bad("a fault rule must be an object".into()));
    };
    let known = [
        "id",
        "match",
        "action",
        "times",
        "after",
        "probability",
        "seed",
        "expires_in",
    ];
    if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(bad(format!("unknown key [{key}] in a fault rule")));
    }
    let id = match map.get("id") {
        None => next_id(),
        Some(Value::String(id)) if !id.is_empty() && id.len() <= 255 => id.clone(),
        Some(_) => return Err(bad("[id] must be a string of 1 to 255 bytes".into())),
    };
    let matching = parse_match(map.get("match"))?;
    let action = parse_action(map.get("action"))?;
    let number = |key: &str| -> Result<Option<u64>, EsError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(format!("[{key}] must be a whole number"))),
        }
    };
    let remaining = match map.get("times") {
        None => Some(1),
        Some(Value::Null) => None,
        Some(_) => number("times")?,
    };
    let probability = match map.get("probability") {
        None => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad("[probability] must be a number from 0 to 1".into()))?,
    };
    let expires = match map.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            crate::input::param_values::time_value("expires_in", s)?.map(|d| Instant::now() + d)
        }
        Some(_) => return Err(bad("[expires_in] must be a time value such as [5m]".into())),
    };
    Ok(Rule {
        id,
        matching,
        action,
        remaining,
        after: number("after")?.unwrap_or(0),
        probability,
        seed: number("seed")?.unwrap_or(0),
        expires,
        shown: value.clone(),
        matched: 0,
        fired: 0,
    })
}

fn parse_match(value: Option<&Value>) -> Result<Match, EsError> {
    let Some(value) = value else {
        return Ok(Match::default());
    };
    let Value::Object(map) = value else {
        return Err(EsError::illegal_argument("[match] must be an object"));
    };
    let text = |key: &str| -> Result<Option<String>, EsError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(EsError::illegal_argument(format!(
                "[match.{key}] must be a string"
            ))),
        }
    };
    let known = ["method", "path", "index", "id", "op", "opaque_id"];
    if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(EsError::illegal_argument(format!(
            "unknown key [match.{key}]"
        )));
    }
    let ops = match map.get("op") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(op)) => vec![op.clone()],
        Some(Value::Array(ops)) => ops
            .iter()
            .map(|o| o.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| EsError::illegal_argument("[match.op] must name operations"))?,
        Some(_) => return Err(EsError::illegal_argument("[match.op] must name operations")),
    };
    Ok(Match {
        method: text("method")?.map(|m| m.to_ascii_uppercase()),
        path: text("path")?,
        index: text("index")?,
        id: text("id")?,
        ops,
        opaque_id: text("opaque_id")?,
    })
}

fn parse_action(value: Option<&Value>) -> Result<Action, EsError> {
    let bad = |why: &str| EsError::illegal_argument(why.to_owned());
    let Some(Value::Object(map)) = value else {
        return Err(bad("a fault rule needs an [action] object with a [type]"));
    };
    let ms = |key: &str| map.get(key).and_then(Value::as_u64).unwrap_or(0);
    let after_commit = |default: &str| {
        map.get("when").and_then(Value::as_str).unwrap_or(default) == "after_commit"
    };
    match map.get("type").and_then(Value::as_str) {
        Some("version_conflict") => Ok(Action::VersionConflict),
        Some("interleave_write") => Ok(Action::InterleaveWrite {
            doc: map.get("doc").cloned().unwrap_or(json!({})),
        }),
        Some("status") => {
            let status = map.get("status").and_then(Value::as_u64).unwrap_or(429);
            if !(400..=599).contains(&status) {
                return Err(bad(
                    "[action.status] must be an HTTP error status, 400 to 599",
                ));
            }
            let scope = map
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("request");
            if scope != "request" && scope != "item" {
                return Err(bad("[action.scope] is [request] or [item]"));
            }
            let raw = map.get("body").and_then(Value::as_str).map(|b| {
                let kind = map.get("content_type").and_then(Value::as_str);
                (b.to_owned(), kind.unwrap_or("text/plain").to_owned())
            });
            Ok(Action::Status {
                status: status as u16,
                error: es::injected::error_named(map)?,
                item: scope == "item",
                retry_after: map.get("retry_after").and_then(Value::as_u64),
                body: raw,
            })
        }
        Some("response_lost") => Ok(Action::ResponseLost {
            after_commit: after_commit("after_commit"),
            hang_ms: (map.get("how").and_then(Value::as_str) == Some("hang"))
                .then(|| map.get("hang_ms").and_then(Value::as_u64).unwrap_or(30_000)),
        }),
        Some("delay") => Ok(Action::Delay {
            ms: ms("ms"),
            jitter_ms: ms("jitter_ms"),
            after_commit: after_commit("before"),
        }),
        _ => Err(bad(
            "[action.type] is one of [version_conflict, interleave_write, status, \
             response_lost, delay]",
        )),
    }
}

/// The answer of a `status` action: Elasticsearch's own error for the status (or the raw
/// body given), as a whole response.
pub(crate) fn status_reply(fired: &Fired, index: Option<&str>, body_len: usize) -> Reply {
    let Action::Status {
        status,
        error,
        retry_after,
        body,
        ..
    } = &fired.action
    else {
        unreachable!("a status action")
    };
    let mut reply = match body {
        Some((text, kind)) => {
            let mut reply = Response::new(Body::from(text.clone()));
            *reply.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Ok(kind) = HeaderValue::from_str(kind) {
                reply.headers_mut().insert(header::CONTENT_TYPE, kind);
            }
            reply
        }
        None => es::injected::status_error(*status, error.as_deref(), index, body_len).reply(false),
    };
    if let Some(seconds) = retry_after {
        reply
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
    }
    mark(&mut reply, &fired.id);
    reply
}

/// Marks a faulted answer with the rule that made it.
pub(crate) fn mark(reply: &mut Reply, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        reply.headers_mut().insert(FAULT_HEADER, value);
    }
}

/// A write a `version_conflict` or `interleave_write` rule fired on.
pub(crate) struct Contested {
    pub(crate) index: String,
    pub(crate) id: String,
    pub(crate) routing: Option<String>,
    /// Its own condition would meet the write in between (`if_seq_no`, a version,
    /// `op_type=create`), or an update's own retries would: it then runs, and the conflict
    /// (or its absence) is the engine's. Otherwise the answer is the conflict an unconditional
    /// write meets when a writer wins between its read and its write.
    pub(crate) runs_anyway: bool,
}

/// The write in between, real (a new seq_no and version, in the log, in the changes feed):
/// `doc` merged into the document, created if there is none. Then, for a conflict whose
/// request would not meet it by itself, the 409 that request gets.
pub(crate) async fn interleave(
    state: &AppState,
    contested: Contested,
    doc: Value,
    conflict: bool,
) -> Result<(), EsError> {
    let store = state.store.clone();
    blocking(move || interleave_now(&store, &contested, &doc, conflict)).await
}

/// `interleave`, on this thread (a `_bulk` item's, on the bulk's blocking thread).
pub(crate) fn interleave_now(
    store: &engine::Store,
    contested: &Contested,
    doc: &Value,
    conflict: bool,
) -> Result<(), EsError> {
    let Contested {
        index,
        id,
        routing,
        runs_anyway,
    } = contested;
    let routing = routing.as_deref();
    let index = store.index_or_create(index)?;
    let before = index.get(id, routing)?;
    let mut update = UpdateRequest::new(id.clone(), doc.as_object().cloned().unwrap_or_default());
    update.doc_as_upsert = true;
    update.detect_noop = false;
    let written = index.update(&update, routing)?.write;
    if !conflict || *runs_anyway {
        return Ok(());
    }
    let required = match &before {
        Some(doc) => Required::Stamp {
            seq_no: doc.seq_no,
            primary_term: doc.primary_term,
        },
        None => Required::Absent,
    };
    let current = Stamp {
        seq_no: written.seq_no,
        primary_term: written.primary_term,
        version: written.version,
    };
    let conflict = engine::Error::conflict(id, required, Some(current), false);
    Err(EsError::on_shard(
        &conflict,
        &index,
        index.shard_id(id, routing),
    ))
}

/// How long a `delay` action waits: its `ms`, plus a seeded share of its `jitter_ms`.
pub(crate) fn delay_of(fired: &Fired) -> Duration {
    match fired.action {
        Action::Delay { ms, jitter_ms, .. } => {
            let jitter = if jitter_ms == 0 {
                0
            } else {
                crate::state::mix(fired.draw) % (jitter_ms + 1)
            };
            Duration::from_millis(ms + jitter)
        }
        _ => Duration::ZERO,
    }
}
