//! `GET /{index}/_settings` and `PUT /{index}/_settings`: an index's settings as
//! Elasticsearch renders them, and the ones that may change while it is open. Of those,
//! optimist takes the index blocks (`index.blocks.read_only`, `read`, `write`,
//! `read_only_allow_delete`: `engine::IndexBlock`), which tests use to make a real refusal
//! that a real cluster makes alike; any other is refused by name, never accepted and ignored.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{Index, IndexBlock};
use serde_json::{Map, Value, json};

use crate::es::{self, EsError};
use crate::input::content::{ContentType, json_body};
use crate::input::params::Params;
use crate::state::{AppState, Reply, blocking};

type Answer = Result<Reply, EsError>;

/// An index's `settings.index` object, as `GET /{index}` and `GET /{index}/_settings` give it.
pub(crate) fn rendered(state: &AppState, index: &Index) -> Value {
    let s = index.settings();
    let mut settings = json!({
        "number_of_shards": s.number_of_shards.to_string(),
        "number_of_replicas": s.number_of_replicas.to_string(),
        "uuid": index.uuid(),
        "provided_name": index.name(),
    });
    let mut blocks = index.blocks();
    // The flood stage's block, as Elasticsearch puts it on every index.
    if state.store.writes_blocked() {
        blocks = blocks.with(IndexBlock::ReadOnlyAllowDelete, true);
    }
    let set: Map<String, Value> = blocks
        .iter()
        .map(|b| (b.setting().to_owned(), json!("true")))
        .collect();
    if !set.is_empty() {
        settings["blocks"] = Value::Object(set);
    }
    settings
}

/// `GET /{index}/_settings`.
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    Path(expression): Path<String>,
    params: Params,
) -> Answer {
    let indices = crate::api::indices::resolve(&state.store, &expression)?;
    let mut body = Map::new();
    for index in &indices {
        let settings = json!({"settings": {"index": rendered(&state, index)}});
        body.insert(index.name().to_owned(), settings);
    }
    Ok(es::json_response(
        StatusCode::OK,
        &Value::Object(body),
        params.pretty(),
    ))
}

/// `PUT /{index}/_settings`: each named index's blocks set or lifted (`null` lifts one),
/// stored before the answer.
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    Path(expression): Path<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let value = json_body(&content_type, &body, "the settings")?;
    let changes = block_changes(&value)?;
    if changes.is_empty() {
        return Err(EsError::new(
            StatusCode::BAD_REQUEST,
            crate::es::Exception::ActionRequestValidation,
            "Validation Failed: 1: no settings to update;",
        ));
    }
    let indices = crate::api::indices::resolve(&state.store, &expression)?;
    let store = state.store.clone();
    blocking(move || -> Result<(), EsError> {
        for index in &indices {
            let blocks = changes
                .iter()
                .fold(index.blocks(), |b, (block, on)| b.with(*block, *on));
            store.set_blocks(index.name(), blocks)?;
        }
        Ok(())
    })
    .await?;
    Ok(es::json_response(
        StatusCode::OK,
        &json!({"acknowledged": true}),
        params.pretty(),
    ))
}

/// The blocks a body sets (`true`) or lifts (`false`, `null`), its settings flat
/// (`index.blocks.write`) or nested, under `settings` or not.
fn block_changes(body: &Value) -> Result<Vec<(IndexBlock, bool)>, EsError> {
    let body = body.get("settings").unwrap_or(body);
    let Value::Object(_) = body else {
        return Err(EsError::illegal_argument("the settings must be an object"));
    };
    let mut changes = Vec::new();
    for (key, value) in crate::input::flat_settings::flatten(body) {
        let name = key.strip_prefix("index.").unwrap_or(&key);
        let block = name
            .strip_prefix("blocks.")
            .and_then(|b| IndexBlock::ALL.into_iter().find(|x| x.setting() == b));
        let Some(block) = block else {
            return Err(EsError::illegal_argument(format!(
                "optimist cannot change the setting [index.{name}] of an open index; of the \
                 dynamic settings it takes only the index blocks (index.blocks.*)"
            )));
        };
        let on = match &value {
            Value::Bool(on) => *on,
            Value::Null => false,
            Value::String(s) if s == "true" => true,
            Value::String(s) if s == "false" => false,
            other => {
                return Err(EsError::illegal_argument(format!(
                    "Failed to parse value [{}] as only [true] or [false] are allowed.",
                    other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_owned)
                )));
            }
        };
        changes.push((block, on));
    }
    Ok(changes)
}
