//! Index administration: create, get, delete, refresh, flush, stats.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{Index, IndexSettings, Store};
use serde_json::{Map, Value, json};

use crate::es::{self, EsError};
use crate::input::content::{ContentType, require_json};
use crate::input::params::Params;
use crate::state::{AppState, Reply, blocking};

/// What every handler answers: its reply, or Elasticsearch's error.
type Answer = Result<Reply, EsError>;

pub(crate) async fn create_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let pretty = params.pretty();
    let settings = if body.is_empty() {
        IndexSettings::default()
    } else {
        require_json(&content_type)?;
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| index_settings(&v))
            .map_err(EsError::illegal_argument)?
    };
    let store = state.store.clone();
    blocking(move || {
        store.create_index(&index, settings)?;
        Ok(es::json_response(
            StatusCode::OK,
            &json!({"acknowledged": true, "shards_acknowledged": true, "index": index}),
            pretty,
        ))
    })
    .await
}

/// Index settings from a create-index body, flat (`index.number_of_shards`) or nested: each
/// setting Elasticsearch accepts read with its own refusal, in the order it reads them.
fn index_settings(body: &Value) -> Result<IndexSettings, String> {
    let flat: HashMap<String, String> = body
        .get("settings")
        .map(crate::input::flat_settings::flatten)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => (key, s),
            other => (key, other.to_string()),
        })
        .collect();
    let get = |name: &str| {
        flat.get(&format!("index.{name}"))
            .or_else(|| flat.get(name))
            .cloned()
    };
    let number = |name: &str, value: String| {
        value
            .parse::<u32>()
            .map_err(|_| format!("Failed to parse value [{value}] for setting [index.{name}]"))
    };
    let shards = match get("number_of_shards") {
        Some(v) => number("number_of_shards", v)?,
        None => 1,
    };
    let mut settings = IndexSettings::with_shards(shards.max(1));
    if shards == 0 {
        return Err(
            "Failed to parse value [0] for setting [index.number_of_shards] must be >= 1".into(),
        );
    }
    if let Some(v) = get("number_of_replicas") {
        settings.number_of_replicas = number("number_of_replicas", v)?;
    }
    if let Some(v) = get("number_of_routing_shards") {
        settings.routing_num_shards = number("number_of_routing_shards", v)?;
    }
    let interval = match get("translog.sync_interval") {
        Some(v) => parse_time(&v).ok_or_else(|| format!("failed to parse setting [index.translog.sync_interval] with value [{v}] as a time value"))?,
        None => engine::Durability::SYNC_INTERVAL_DEFAULT,
    };
    match get("translog.durability").as_deref() {
        None | Some("request") | Some("REQUEST") => {}
        Some("async") | Some("ASYNC") => {
            settings.durability = engine::Durability::Async {
                sync_interval: interval,
            }
        }
        Some(other) => return Err(format!("No translog.durability match [{other}]")),
    }
    if let Some(v) = get("gc_deletes") {
        settings.gc_deletes = parse_time(&v).ok_or_else(|| {
            format!("failed to parse setting [index.gc_deletes] with value [{v}] as a time value")
        })?;
    }
    Ok(settings)
}

/// Elasticsearch time values: `100ms`, `5s`, `1m`, `1h`, `1d`.
fn parse_time(value: &str) -> Option<std::time::Duration> {
    let split = value.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = value.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

pub(crate) async fn get_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    let pretty = params.pretty();
    match state.store.index(&index) {
        Ok(idx) => {
            let settings = crate::api::settings::rendered(&state, &idx);
            let body = json!({ index.clone(): {
                "aliases": {},
                "mappings": {},
                "settings": {"index": settings}
            }});
            Ok(es::json_response(StatusCode::OK, &body, pretty))
        }
        Err(e) => Err(EsError::from(e)),
    }
}

pub(crate) async fn delete_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    let pretty = params.pretty();
    // Elasticsearch 8's `action.destructive_requires_name` (true by default).
    if index == "_all" || index.contains('*') {
        return Err(EsError::illegal_argument(
            "Wildcard expressions or all indices are not allowed",
        ));
    }
    let store = state.store.clone();
    if let Ok(idx) = store.index(&index) {
        state.writers.forget(idx.uuid());
    }
    blocking(move || {
        store.delete_index(&index)?;
        Ok(es::json_response(
            StatusCode::OK,
            &json!({"acknowledged": true}),
            pretty,
        ))
    })
    .await
}

/// The named indices: one name, a comma-separated list, `_all` or `*`.
pub(crate) fn resolve(store: &Store, expression: &str) -> Result<Vec<Arc<Index>>, EsError> {
    let names: Vec<String> = match expression {
        "_all" | "*" => store.index_names(),
        list => list.split(',').map(str::to_owned).collect(),
    };
    let indices = names.iter().map(|name| store.index(name));
    Ok(indices.collect::<engine::Result<_>>()?)
}

/// `_refresh`: every write is visible to realtime reads the moment it is acknowledged, so
/// there is nothing to do but answer as Elasticsearch does.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    broadcast(state, index, params, Work::Nothing).await
}

pub(crate) async fn refresh_all(State(state): State<AppState>, params: Params) -> Answer {
    broadcast(state, "_all".into(), params, Work::Nothing).await
}

/// `_flush`: makes every acknowledged write durable now (an fsync per shard), which matters
/// for `async` durability.
pub(crate) async fn flush(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    broadcast(state, index, params, Work::Sync).await
}

pub(crate) async fn flush_all(State(state): State<AppState>, params: Params) -> Answer {
    broadcast(state, "_all".into(), params, Work::Sync).await
}

/// `_forcemerge`: compacts every shard now (the engine's compaction: superseded operations
/// and tombstones past `gc_deletes` leave the disk), answering when done, as Elasticsearch's
/// merge does. `max_num_segments`, `only_expunge_deletes` and `flush` are accepted.
pub(crate) async fn forcemerge(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    broadcast(state, index, params, Work::Compact).await
}

pub(crate) async fn forcemerge_all(State(state): State<AppState>, params: Params) -> Answer {
    broadcast(state, "_all".into(), params, Work::Compact).await
}

/// What a broadcast does to each shard before it answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    Nothing,
    Sync,
    Compact,
}

async fn broadcast(state: AppState, expression: String, params: Params, work: Work) -> Answer {
    let pretty = params.pretty();
    let store = state.store.clone();
    blocking(move || {
        let indices = resolve(&store, &expression)?;
        for index in &indices {
            match work {
                Work::Nothing => {}
                Work::Sync => index.sync()?,
                Work::Compact => index
                    .shards()
                    .iter()
                    .try_for_each(|shard| shard.compact().map(drop))?,
            }
        }
        let shards = es::broadcast_shards(indices.iter().map(|i| i.as_ref()));
        Ok(es::json_response(
            StatusCode::OK,
            &json!({ "_shards": shards }),
            pretty,
        ))
    })
    .await
}

pub(crate) async fn stats(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    stats_of(state, index, params).await
}

pub(crate) async fn stats_all(State(state): State<AppState>, params: Params) -> Answer {
    stats_of(state, "_all".into(), params).await
}

/// `_stats`: documents, store size and indexing figures per index; with `level=shards`, each
/// shard copy with its `seq_no` section (`max_seq_no`, `local_checkpoint`,
/// `global_checkpoint`), where Elasticsearch reports them.
async fn stats_of(state: AppState, expression: String, params: Params) -> Answer {
    let pretty = params.pretty();
    let shards_level = params.get("level") == Some("shards");
    let store = state.store.clone();
    let node = state.node_name.to_string();
    blocking(move || {
        let indices = resolve(&store, &expression)?;
        let mut all = Figures::default();
        let mut per_index = Map::new();
        for index in &indices {
            let mut figures = Figures::default();
            let mut shards = Map::new();
            for (n, shard) in index.shards().iter().enumerate() {
                let s = shard.stats();
                figures.add(&s);
                if shards_level {
                    let mut one = Figures::default();
                    one.add(&s);
                    let mut copy = one.render();
                    let seq = |n: Option<engine::SeqNo>| n.map_or(-1, |n| n.0 as i64);
                    let copy_fields = copy.as_object_mut().expect("an object");
                    copy_fields.insert(
                        "routing".into(),
                        json!({"state": "STARTED", "primary": true, "node": node, "relocating_node": null}),
                    );
                    copy_fields.insert(
                        "seq_no".into(),
                        json!({
                            "max_seq_no": seq(s.max_seq_no),
                            "local_checkpoint": seq(s.local_checkpoint),
                            "global_checkpoint": seq(s.persisted_local_checkpoint),
                        }),
                    );
                    copy_fields.insert("primary_term".into(), json!(s.primary_term.0));
                    copy_fields.insert("retention_leases".into(), retention_leases(shard));
                    shards.insert(n.to_string(), json!([copy]));
                }
            }
            all.merge(&figures);
            let mut body = Map::new();
            body.insert("uuid".into(), json!(index.uuid()));
            body.insert("primaries".into(), figures.render());
            body.insert("total".into(), figures.render());
            if shards_level {
                body.insert("shards".into(), Value::Object(shards));
            }
            per_index.insert(index.name().to_owned(), Value::Object(body));
        }
        let body = json!({
            "_shards": es::broadcast_shards(indices.iter().map(|i| i.as_ref())),
            "_all": {"primaries": all.render(), "total": all.render()},
            "indices": per_index,
        });
        Ok(es::json_response(StatusCode::OK, &body, pretty))
    })
    .await
}

/// A shard copy's `retention_leases`, in Elasticsearch 8's shape: the changes feed's
/// consumers.
fn retention_leases(shard: &engine::internals::Shard) -> Value {
    let leases: Vec<Value> = shard
        .leases()
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "retaining_seq_no": l.retaining_seq_no.0,
                "timestamp": l.renewed_at_ms,
                "source": l.source,
            })
        })
        .collect();
    json!({
        "primary_term": shard.primary_term().0,
        "version": shard.leases_version(),
        "leases": leases,
    })
}

/// The sums `_stats` reports.
#[derive(Default)]
struct Figures {
    docs: u64,
    deleted: u64,
    bytes: u64,
    operations: u64,
}

impl Figures {
    fn add(&mut self, s: &engine::internals::ShardStats) {
        self.docs += s.docs_live;
        self.deleted += s.docs_deleted;
        self.bytes += s.bytes_on_disk;
        self.operations += s.max_seq_no.map_or(0, |n| n.0 + 1);
    }

    fn merge(&mut self, other: &Figures) {
        self.docs += other.docs;
        self.deleted += other.deleted;
        self.bytes += other.bytes;
        self.operations += other.operations;
    }

    fn render(&self) -> Value {
        json!({
            "docs": {"count": self.docs, "deleted": self.deleted},
            "store": {"size_in_bytes": self.bytes, "total_data_set_size_in_bytes": self.bytes, "reserved_in_bytes": 0},
            "translog": {"operations": self.operations, "size_in_bytes": self.bytes},
        })
    }
}

/// `_count` with no query or `match_all`: every live document, exact, since every write is
/// visible at once. Other queries need a search engine, which optimist is not.
pub(crate) async fn count(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    body: Bytes,
) -> Answer {
    count_of(state, index, params, body).await
}

pub(crate) async fn count_all(
    State(state): State<AppState>,
    params: Params,
    body: Bytes,
) -> Answer {
    count_of(state, "_all".into(), params, body).await
}

async fn count_of(state: AppState, expression: String, params: Params, body: Bytes) -> Answer {
    let pretty = params.pretty();
    if !body.is_empty() {
        let query = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b.get("query").cloned());
        let match_all = match &query {
            None => true,
            Some(Value::Object(q)) => q.len() == 1 && q.contains_key("match_all"),
            Some(_) => false,
        };
        if !match_all {
            return Err(EsError::illegal_argument(
                "optimist counts with [match_all] only: it has no search engine",
            ));
        }
    }
    let store = state.store.clone();
    blocking(move || {
        let indices = resolve(&store, &expression)?;
        for index in &indices {
            index.check_blocks(engine::Access::Read)?;
        }
        let count: u64 = indices.iter().map(|i| i.doc_count()).sum();
        let shards: u32 = indices.iter().map(|i| i.settings().number_of_shards).sum();
        let body = json!({
            "count": count,
            "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        });
        Ok(es::json_response(StatusCode::OK, &body, pretty))
    })
    .await
}
