//! The parameters of `GET /{index}/_changes`, read and refused before anything is read.

use std::time::Duration;

use engine::CHANGES_LIMIT_MAX;

use serde_json::Value;

use crate::es::{EsError, Exception};
use crate::input::param_values;
use crate::input::params::Params;
use crate::input::source_filter::SourceFilter;

/// The parameters the changes feed takes, besides the common ones.
pub(crate) const CHANGES_PARAMS: &[&str] = &[
    "_source",
    "_source_excludes",
    "_source_includes",
    "consumer",
    "feed",
    "heartbeat",
    "history_uuid",
    "include_docs",
    "limit",
    "shard",
    "since",
    "timeout",
];

/// `limit`'s default.
const LIMIT_DEFAULT: usize = 1_000;

/// A long poll's `timeout` by default (Fleet's global checkpoints wait's).
const TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// A stream's `heartbeat` by default.
const HEARTBEAT_DEFAULT: Duration = Duration::from_secs(15);

/// How long a long poll waits with `timeout=-1`.
const TIMEOUT_NONE: Duration = Duration::from_secs(86_400);

/// How the answer comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// At once, with what there is.
    Normal,
    /// As soon as there is at least one change, or at `timeout` with none.
    LongPoll,
    /// Server-sent events (`feed=sse` or `eventsource`, or `Accept: text/event-stream`), for
    /// `timeout`.
    Sse,
    /// One JSON line per change (`feed=continuous`), for `timeout`.
    Continuous,
}

/// Where a read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Since {
    /// `since=now`: after everything durable now.
    Now,
    /// A position, to parse against the index's shard count (`-1` included).
    Position(String),
    /// What the consumer named acknowledged.
    Acked,
}

/// A changes request, checked.
#[derive(Debug)]
pub(crate) struct ChangesRequest {
    pub(crate) since: Since,
    pub(crate) feed: Feed,
    /// How long a long poll waits for a first change; how long a stream lasts.
    pub(crate) timeout: Duration,
    /// How often a quiet stream says how far it has read.
    pub(crate) heartbeat: Duration,
    pub(crate) limit: usize,
    pub(crate) include_docs: bool,
    /// `shard=N`: that shard only, `since` then one shard's position.
    pub(crate) shard: Option<u32>,
    pub(crate) history_uuid: Option<String>,
    pub(crate) filter: SourceFilter,
    /// `consumer=ID`: read as that consumer (renewing it), `since` defaulting to what it
    /// acknowledged.
    pub(crate) consumer: Option<String>,
}

impl ChangesRequest {
    pub(crate) fn parse(params: &Params) -> Result<ChangesRequest, EsError> {
        let consumer = params.get("consumer").map(str::to_owned);
        let since = match params.get("since") {
            // A consumer goes on from what it acknowledged.
            None if consumer.is_some() => Since::Acked,
            None => Since::Position("-1".into()),
            Some("now") => Since::Now,
            Some(position) => Since::Position(position.into()),
        };
        let feed = match params.get("feed") {
            None | Some("normal") => Feed::Normal,
            Some("longpoll") => Feed::LongPoll,
            Some("sse" | "eventsource") => Feed::Sse,
            Some("continuous") => Feed::Continuous,
            Some(other) => {
                return Err(EsError::illegal_argument(format!(
                    "feed [{other}] is not supported; the changes feed answers [normal], \
                     [longpoll], [sse] or [continuous]"
                )));
            }
        };
        let heartbeat = match params.get("heartbeat") {
            None => HEARTBEAT_DEFAULT,
            Some(h) => match param_values::time_value("heartbeat", h)? {
                Some(h) if !h.is_zero() => h,
                _ => {
                    return Err(EsError::illegal_argument(format!(
                        "[heartbeat] must be positive, got [{h}]"
                    )));
                }
            },
        };
        let timeout = match params.get("timeout") {
            None => TIMEOUT_DEFAULT,
            Some(t) => param_values::time_value("timeout", t)?.unwrap_or(TIMEOUT_NONE),
        };
        Ok(ChangesRequest {
            since,
            feed,
            timeout,
            heartbeat,
            limit: limit(params)?,
            include_docs: params.boolean("include_docs", true)?,
            shard: shard(params)?,
            history_uuid: params.get("history_uuid").map(str::to_owned),
            filter: params.source_filter().unwrap_or_else(SourceFilter::all),
            consumer,
        })
    }
}

fn limit(params: &Params) -> Result<usize, EsError> {
    let Some(text) = params.get("limit") else {
        return Ok(LIMIT_DEFAULT);
    };
    match text.parse::<i64>() {
        Ok(n) if (1..=CHANGES_LIMIT_MAX as i64).contains(&n) => Ok(n as usize),
        Ok(n) => Err(EsError::illegal_argument(format!(
            "[limit] must be between [1] and [{CHANGES_LIMIT_MAX}], got [{n}]"
        ))),
        Err(_) => Err(EsError::illegal_argument(format!(
            "Failed to parse int parameter [limit] with value [{text}]"
        ))),
    }
}

fn shard(params: &Params) -> Result<Option<u32>, EsError> {
    let Some(text) = params.get("shard") else {
        return Ok(None);
    };
    text.parse::<u32>().map(Some).map_err(|_| {
        EsError::illegal_argument(format!(
            "Failed to parse int parameter [shard] with value [{text}]"
        ))
    })
}

/// Elasticsearch's `paramAsBoolean`: `true`, `false`, or empty for true.
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<ChangesRequest, String> {
        ChangesRequest::parse(&Params::parse(query)).map_err(|e| e.reason)
    }

    #[test]
    fn defaults_and_values() {
        let r = parse("").unwrap();
        assert_eq!(
            (r.since, r.limit, r.include_docs, r.shard),
            (Since::Position("-1".into()), 1000, true, None)
        );
        let r = parse("since=now&limit=10000&include_docs=false&shard=2").unwrap();
        assert_eq!(
            (r.since, r.limit, r.include_docs, r.shard),
            (Since::Now, 10_000, false, Some(2))
        );
        assert!(parse("include_docs").unwrap().include_docs);
    }

    #[test]
    fn bad_values_are_refused_in_words() {
        assert_eq!(
            parse("limit=0").unwrap_err(),
            "[limit] must be between [1] and [10000], got [0]"
        );
        assert_eq!(
            parse("limit=10001").unwrap_err(),
            "[limit] must be between [1] and [10000], got [10001]"
        );
        assert_eq!(
            parse("limit=x").unwrap_err(),
            "Failed to parse int parameter [limit] with value [x]"
        );
        assert_eq!(
            parse("include_docs=yes").unwrap_err(),
            "Failed to parse value [yes] as only [true] or [false] are allowed."
        );
        assert_eq!(
            parse("shard=-1").unwrap_err(),
            "Failed to parse int parameter [shard] with value [-1]"
        );
        assert!(
            parse("feed=rss")
                .unwrap_err()
                .contains("feed [rss] is not supported")
        );
        assert_eq!(parse("feed=eventsource").unwrap().feed, Feed::Sse);
        assert_eq!(parse("feed=continuous").unwrap().feed, Feed::Continuous);
        assert_eq!(
            parse("heartbeat=2s").unwrap().heartbeat,
            Duration::from_secs(2)
        );
        assert!(parse("heartbeat=0s").is_err());
        assert_eq!(parse("feed=longpoll").unwrap().feed, Feed::LongPoll);
        assert_eq!(parse("feed=normal").unwrap().feed, Feed::Normal);
        assert_eq!(parse("").unwrap().timeout, Duration::from_secs(30));
        assert_eq!(
            parse("timeout=250ms").unwrap().timeout,
            Duration::from_millis(250)
        );
        assert_eq!(
            parse("timeout=2m").unwrap().timeout,
            Duration::from_secs(120)
        );
        assert_eq!(parse("timeout=-1").unwrap().timeout, TIMEOUT_NONE);
        assert_eq!(
            parse("timeout=5").unwrap_err(),
            "failed to parse setting [timeout] with value [5] as a time value: unit is missing or \
             unrecognized"
        );
    }
}

/// The body of `PUT /{index}/_changes/consumer/{id}`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ConsumerBody {
    pub(crate) since: Since,
    pub(crate) source: String,
    pub(crate) lease_period: Duration,
}

impl ConsumerBody {
    pub(crate) fn parse(body: &[u8]) -> Result<ConsumerBody, EsError> {
        let fields = object(body, "consumer")?;
        let mut since = None;
        let mut source = String::new();
        let mut lease_period = engine::LEASE_PERIOD_DEFAULT;
        for (name, value) in &fields {
            match (name.as_str(), value) {
                ("since", Value::String(s)) if s == "now" => since = Some(Since::Now),
                ("since", Value::String(s)) => since = Some(Since::Position(s.clone())),
                ("since", Value::Number(n)) => since = Some(Since::Position(n.to_string())),
                ("source", Value::String(s)) => source = s.clone(),
                ("lease_period", Value::String(p)) => lease_period = period(p)?,
                ("since" | "source" | "lease_period", other) => {
                    return Err(field_refusal("consumer", name, other));
                }
                _ => return Err(unknown_field("consumer", name)),
            }
        }
        let since = since.ok_or_else(|| {
            EsError::illegal_argument("a consumer needs [since]: -1, now, or a position")
        })?;
        Ok(ConsumerBody {
            since,
            source,
            lease_period,
        })
    }
}

/// The position of `POST /{index}/_changes/consumer/{id}/_ack`.
pub(crate) fn ack_position(body: &[u8]) -> Result<String, EsError> {
    let fields = object(body, "ack")?;
    let mut position = None;
    for (name, value) in &fields {
        match (name.as_str(), value) {
            ("position", Value::String(p)) => position = Some(p.clone()),
            ("position", Value::Number(n)) => position = Some(n.to_string()),
            ("position", other) => return Err(field_refusal("ack", name, other)),
            _ => return Err(unknown_field("ack", name)),
        }
    }
    position.ok_or_else(|| EsError::illegal_argument("an acknowledgement needs [position]"))
}

/// `lease_period`: a positive time value.
fn period(text: &str) -> Result<Duration, EsError> {
    match param_values::time_value("lease_period", text)? {
        Some(p) if !p.is_zero() => Ok(p),
        _ => Err(EsError::illegal_argument(format!(
            "[lease_period] must be positive, got [{text}]"
        ))),
    }
}

/// A body that must be one JSON object, as an `ObjectParser` reads it.
fn object(body: &[u8], what: &str) -> Result<serde_json::Map<String, Value>, EsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::bad_request(
            Exception::Parse,
            "request body is required",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(EsError::bad_request(
            Exception::XContentParse,
            format!("[{what}] expected a JSON object"),
        )),
        Err(e) => Err(EsError::bad_request(
            Exception::XContentParse,
            format!("[{what}] failed to parse the body: {e}"),
        )),
    }
}

fn unknown_field(what: &str, name: &str) -> EsError {
    EsError::bad_request(
        Exception::XContentParse,
        format!("[{what}] unknown field [{name}]"),
    )
}

fn field_refusal(what: &str, name: &str, value: &Value) -> EsError {
    EsError::bad_request(
        Exception::XContentParse,
        format!("[{what}] failed to parse field [{name}]: not a string: {value}"),
    )
}
