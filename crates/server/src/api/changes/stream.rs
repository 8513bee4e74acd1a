//! `_changes` as a stream: server-sent events (`feed=sse`) or one JSON line per change
//! (`feed=continuous`), for `timeout`. Each change is sent with the position after it (an
//! event's `id`, so a browser's `Last-Event-ID` resumes with no gap and no repeat), then a
//! `progress` after each batch and every `heartbeat` when nothing else was sent; a failure
//! is one `error` event (or line) with Elasticsearch's body, then the end.
//!
//! Pull-based: the next batch is read only once the client took the last (the channel holds
//! two chunks), so a slow client costs one reader, not a growing buffer.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use engine::{ChangesPosition, Index, IndexChanges, ShardPosition};
use http_body::Frame;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Reading, read_off_the_workers};
use crate::es::changes::{Docs, StreamEvent, entry, progress, stream_event};
use crate::es::{EsError, Exception};
use crate::input::changes::{ChangesRequest, Feed};
use crate::input::source_filter::SourceFilter;
use crate::state::{AppState, ChangesWaiters, Reply};

/// Streams open at once, at most (`es_rejected_execution_exception` beyond).
pub(crate) const STREAMS_MAX: usize = 512;

/// A response body fed by a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// Counts a stream open until dropped.
struct Open(Arc<ChangesWaiters>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a stream needs, moved into its task.
struct Stream {
    state: AppState,
    index: Arc<Index>,
    reading: Reading,
    limit: usize,
    heartbeat: std::time::Duration,
    deadline: Instant,
    feed: Feed,
    include_docs: bool,
    filter: SourceFilter,
    tx: mpsc::Sender<Bytes>,
}

/// Starts the stream's task and answers with its body.
pub(super) fn start(
    state: &AppState,
    index: Arc<Index>,
    reading: Reading,
    request: &ChangesRequest,
    started: Instant,
) -> Result<Reply, EsError> {
    let open = state.changes.streams.fetch_add(1, Ordering::Relaxed);
    let guard = Open(state.changes.clone());
    if open >= STREAMS_MAX {
        return Err(EsError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Exception::EsRejectedExecution,
            format!("rejected execution of a changes stream: [{STREAMS_MAX}] are open already"),
        ));
    }
    let (tx, rx) = mpsc::channel(2);
    let stream = Stream {
        state: state.clone(),
        index,
        reading,
        limit: request.limit,
        heartbeat: request.heartbeat,
        deadline: started + request.timeout,
        feed: request.feed,
        include_docs: request.include_docs,
        filter: request.filter.clone(),
        tx,
    };
    tokio::spawn(async move {
        let _open = guard;
        stream.run().await;
    });
    let mut reply = Reply::new(Body::new(ChannelBody(rx)));
    let content_type = match request.feed {
        Feed::Sse => "text/event-stream",
        _ => "application/x-ndjson",
    };
    let headers = reply.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(reply)
}

impl Stream {
    async fn run(mut self) {
        if self.feed == Feed::Sse && !self.send("retry: 2000\n\n".into()).await {
            return;
        }
        let changes = self.state.changes.clone();
        let notify = changes.waiter(self.index.name());
        while Instant::now() < self.deadline {
            let mut woken = std::pin::pin!(notify.notified());
            woken.as_mut().enable();
            let mut closed = std::pin::pin!(changes.closed.notified());
            closed.as_mut().enable();
            if changes.closing.load(Ordering::Acquire) {
                return;
            }
            let answer = match read_off_the_workers(&self.index, &self.reading, self.limit).await {
                Ok(answer) => answer,
                Err(e) => {
                    self.send(self.event(StreamEvent::Error, None, &e.body_text(false)))
                        .await;
                    return;
                }
            };
            let read = answer.shards.iter().any(|s| !s.changes.is_empty());
            if read && !self.send_batch(&answer).await {
                return;
            }
            self.reading = self.reading.after(&answer.last);
            if read {
                continue;
            }
            let now = Instant::now();
            let heartbeat = (now + self.heartbeat).min(self.deadline);
            tokio::select! {
                _ = closed => return,
                _ = woken => {}
                _ = tokio::time::sleep_until(heartbeat) => {
                    let last = answer.last.to_string();
                    let beat = self.event(StreamEvent::Progress, Some(&last), &progress(&answer, &last));
                    if !self.send(beat).await {
                        return;
                    }
                }
            }
        }
    }

    /// Each change with the position after it, then the batch's progress.
    async fn send_batch(&self, answer: &IndexChanges) -> bool {
        let docs = Docs {
            include: self.include_docs,
            filter: &self.filter,
        };
        let since = answer.shards.iter().map(|s| s.since);
        let mut at: Vec<ShardPosition> = since.collect();
        for change in answer.merged() {
            let slot = answer.shards.iter().position(|s| s.shard == change.shard);
            let slot = slot.expect("a change of a shard the answer read");
            at[slot] = ShardPosition::after(change.seq_no, change.primary_term);
            let id = ChangesPosition(at.clone()).to_string();
            let data = entry(self.index.name(), change, &docs);
            if !self
                .send(self.event(StreamEvent::Change, Some(&id), &data))
                .await
            {
                return false;
            }
        }
        let last = answer.last.to_string();
        self.send(self.event(StreamEvent::Progress, Some(&last), &progress(answer, &last)))
            .await
    }

    fn event(&self, event: StreamEvent, id: Option<&str>, data: &str) -> Bytes {
        stream_event(self.feed == Feed::Sse, event, id, data).into()
    }

    /// False once the client is gone.
    async fn send(&self, chunk: Bytes) -> bool {
        self.tx.send(chunk).await.is_ok()
    }
}
