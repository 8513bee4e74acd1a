//! `GET /{index}/_changes`: an index's durable operations after a position, in seq_no
//! order per shard (`engine::changes`), at once (`feed=normal`) or as soon as there is one
//! (`feed=longpoll`, woken by the store through `ChangesWaiters`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use engine::{
    CHANGES_SOURCE_LEN_MAX, ChangesPosition, Index, IndexChanges, ShardId, ShardPosition,
};
use tokio::time::Instant;

use crate::api::consumers::on_index;
use crate::es::changes::{Docs, changes_text, with_took};
use crate::es::{self, EsError, Exception};
use crate::input::changes::{ChangesRequest, Feed, Since};
use crate::input::params::Params;
use crate::state::{AppState, ChangesText, Reply, blocking};

/// How often a long poll looks again though nothing woke it, when the store was opened
/// without `on_changes` (it then answers a second late at most); with it, a waiting poll
/// costs nothing until it is woken or times out.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

mod stream;

/// What a request reads, its position resolved once (`since=now` is the request's now).
#[derive(Clone)]
enum Reading {
    Index(ChangesPosition),
    Shard(ShardId, ShardPosition),
    /// As a named consumer, after `since` or else after what it acknowledged.
    Consumer(String, Option<ChangesPosition>),
}

impl Reading {
    /// The same read, after `last` (an answer's).
    fn after(&self, last: &ChangesPosition) -> Reading {
        match self {
            Reading::Index(_) => Reading::Index(last.clone()),
            Reading::Shard(n, _) => Reading::Shard(*n, last.0[0]),
            Reading::Consumer(id, _) => Reading::Consumer(id.clone(), Some(last.clone())),
        }
    }
}

pub(crate) async fn changes(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Reply, EsError> {
    let pretty = params.pretty();
    let mut request = ChangesRequest::parse(&params)?;
    let event_stream = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if params.get("feed").is_none() && event_stream {
        request.feed = Feed::Sse;
    }
    // A browser reconnecting says where it was, and that wins over the URL's `since`.
    if request.feed == Feed::Sse
        && let Some(id) = headers.get("last-event-id").and_then(|v| v.to_str().ok())
    {
        request.since = Since::Position(id.to_owned());
    }
    let request = Arc::new(request);
    let started = Instant::now();
    // A position given is parsed here; `now` and a consumer's read read the log or the
    // lease table, off the async workers.
    let (index, reading) = match (&request.since, &request.consumer) {
        (Since::Position(_), None) => start(&state, &index, &request)?,
        _ => {
            let (state, request) = (state.clone(), request.clone());
            blocking(move || start(&state, &index, &request)).await?
        }
    };
    let answer = match request.feed {
        Feed::Normal => read_shared(&state, &index, &reading, &request, None).await?,
        Feed::LongPoll => {
            let deadline = started + request.timeout;
            long_poll(&state, &index, &reading, &request, deadline).await?
        }
        Feed::Sse | Feed::Continuous => {
            return stream::start(&state, index, reading, &request, started);
        }
    };
    let timed_out = request.feed == Feed::LongPoll && !answer.found;
    let took = started.elapsed().as_millis() as u64;
    let text = with_took(took, timed_out, &answer.text);
    Ok(es::maybe_pretty_response(StatusCode::OK, text, pretty))
}

/// The index, its `history_uuid` checked, and the position to read after.
fn start(
    state: &AppState,
    name: &str,
    request: &ChangesRequest,
) -> Result<(Arc<Index>, Reading), EsError> {
    let index = state.store.index(name)?;
    check_history_uuid(&index, request.history_uuid.as_deref())?;
    let shards = index.settings().number_of_shards;
    if let Some(id) = &request.consumer {
        return as_consumer(index, id, request);
    }
    let reading = match (request.shard, &request.since) {
        (_, Since::Acked) => {
            return Err(EsError::illegal_argument(
                "[since] defaults to what a consumer acknowledged only with [consumer]",
            ));
        }
        (None, Since::Now) => {
            Reading::Index(index.changes_now().map_err(|e| on_index(&e, &index))?)
        }
        (None, Since::Position(text)) => {
            Reading::Index(ChangesPosition::parse(text, shards).map_err(EsError::illegal_argument)?)
        }
        (Some(n), _) if n >= shards => {
            return Err(EsError::illegal_argument(format!(
                "shard [{n}] is not a shard of index [{name}], which has [{shards}]"
            )));
        }
        (Some(n), Since::Now) => {
            let now = index.shard(ShardId(n)).position_now();
            Reading::Shard(ShardId(n), now.map_err(|e| on_index(&e, &index))?)
        }
        (Some(n), Since::Position(text)) => {
            let one = ChangesPosition::parse(text, 1).map_err(EsError::illegal_argument)?;
            Reading::Shard(ShardId(n), one.0[0])
        }
    };
    Ok((index, reading))
}

/// A read as consumer `id`, which must exist (404 before anything is read).
fn as_consumer(
    index: Arc<Index>,
    id: &str,
    request: &ChangesRequest,
) -> Result<(Arc<Index>, Reading), EsError> {
    if request.shard.is_some() {
        return Err(EsError::illegal_argument(
            "[shard] cannot be used with [consumer]: a consumer reads every shard",
        ));
    }
    index.consumer(id)?;
    let shards = index.settings().number_of_shards;
    let since = match &request.since {
        Since::Acked => None,
        Since::Now => Some(index.changes_now().map_err(|e| on_index(&e, &index))?),
        Since::Position(text) => {
            Some(ChangesPosition::parse(text, shards).map_err(EsError::illegal_argument)?)
        }
    };
    Ok((index, Reading::Consumer(id.to_owned(), since)))
}

fn read(index: &Index, reading: &Reading, limit: usize) -> Result<IndexChanges, EsError> {
    let read = match reading {
        Reading::Index(since) => index.changes(since, limit),
        Reading::Consumer(id, since) => index.changes_for(id, since.as_ref(), limit),
        Reading::Shard(n, since) => index
            .shard(*n)
            .changes(*since, limit, CHANGES_SOURCE_LEN_MAX)
            .map(|read| IndexChanges {
                last: ChangesPosition(vec![read.last]),
                shards: vec![read],
            }),
    };
    read.map_err(|e| on_index(&e, index))
}

async fn read_off_the_workers(
    index: &Arc<Index>,
    reading: &Reading,
    limit: usize,
) -> Result<IndexChanges, EsError> {
    let (index, reading) = (index.clone(), reading.clone());
    blocking(move || read(&index, &reading, limit)).await
}

/// The read, rendered, off the async workers.
async fn read_text(
    index: &Arc<Index>,
    reading: &Reading,
    request: &Arc<ChangesRequest>,
) -> Result<ChangesText, EsError> {
    let (index, reading, request) = (index.clone(), reading.clone(), request.clone());
    blocking(move || {
        let answer = read(&index, &reading, request.limit)?;
        let docs = Docs {
            include: request.include_docs,
            filter: &request.filter,
        };
        Ok(ChangesText {
            found: !is_empty(&answer),
            text: changes_text(&index, &answer, &docs),
        })
    })
    .await
}

/// The read, rendered, shared with the requests that ask the same of the same index at about
/// the same time (`state::SharedReads`): long polls woken by one sync read it once. `armed`
/// is when a long poll armed its wake before this read.
async fn read_shared(
    state: &AppState,
    index: &Arc<Index>,
    reading: &Reading,
    request: &Arc<ChangesRequest>,
    armed: Option<Instant>,
) -> Result<Arc<ChangesText>, EsError> {
    let Some(key) = shared_key(index, reading, request) else {
        return read_text(index, reading, request).await.map(Arc::new);
    };
    let reads = &state.changes.reads;
    let (read, begun) = reads.read(&key);
    let text = read
        .get_or_try_init(|| async { read_text(index, reading, request).await.map(Arc::new) })
        .await?
        .clone();
    reads.settle(&read, text.text.len(), text.found);
    // A read that found nothing and began before the poll armed its wake may have missed a
    // change made durable in between, which then wakes no one: the poll reads again, alone.
    if !text.found && armed.is_some_and(|armed| begun < armed.into_std()) {
        return read_text(index, reading, request).await.map(Arc::new);
    }
    Ok(text)
}

/// What makes two reads the same read: the index (by uuid: a new index of the same name is
/// another history), the position, the page and what it shows. A consumer's read renews its
/// lease, so it is its own; so is a read whose sources are filtered.
fn shared_key(index: &Index, reading: &Reading, request: &ChangesRequest) -> Option<String> {
    let since = match reading {
        Reading::Index(since) => since.to_string(),
        Reading::Shard(n, since) => format!("{}:{since}", n.0),
        Reading::Consumer(..) => return None,
    };
    if !request.filter.is_identity() {
        return None;
    }
    let (uuid, limit, docs) = (index.uuid(), request.limit, request.include_docs);
    Some(format!("{uuid}/{since}/{limit}/{docs}"))
}

/// Reads until there is a change or the deadline passes. The wake is armed before each
/// read, so a change made durable during the read is not missed.
async fn long_poll(
    state: &AppState,
    index: &Arc<Index>,
    reading: &Reading,
    request: &Arc<ChangesRequest>,
    deadline: Instant,
) -> Result<Arc<ChangesText>, EsError> {
    let changes = &state.changes;
    let notify = changes.waiter(index.name());
    loop {
        let mut woken = std::pin::pin!(notify.notified());
        woken.as_mut().enable();
        let mut closed = std::pin::pin!(changes.closed.notified());
        closed.as_mut().enable();
        let armed = Instant::now();
        let answer = read_shared(state, index, reading, request, Some(armed)).await?;
        let now = Instant::now();
        // A stopping server answers what there is rather than wait out the timeout.
        let closing = changes.closing.load(std::sync::atomic::Ordering::Acquire);
        if answer.found || now >= deadline || closing {
            return Ok(answer);
        }
        let look_again = match changes.wired() {
            true => deadline,
            false => (now + RECHECK_EVERY).min(deadline),
        };
        tokio::select! {
            _ = closed => {}
            _ = woken => {}
            _ = tokio::time::sleep_until(look_again) => {}
        }
    }
}

fn is_empty(answer: &IndexChanges) -> bool {
    answer.shards.iter().all(|s| s.changes.is_empty())
}

/// `history_uuid`: the index the position was read from. Another (the index was deleted and
/// created again) is a history the reader must start over on, in cross-cluster
/// replication's words.
fn check_history_uuid(index: &Index, given: Option<&str>) -> Result<(), EsError> {
    match given {
        Some(uuid) if uuid != index.uuid() => Err(EsError::new(
            StatusCode::CONFLICT,
            Exception::HistoryDiverged,
            format!(
                "unexpected history uuid, expected [{uuid}], actual [{}]",
                index.uuid()
            ),
        )
        .with("index_uuid", index.uuid())
        .with("index", index.name())
        .with_detail("diverged_at_seq_no", -1)),
        _ => Ok(()),
    }
}
