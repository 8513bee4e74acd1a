//! The in-flight body budget, as Elasticsearch's `in_flight_requests` circuit breaker: the
//! bytes of every request body being read or handled count against one limit, and a request
//! that would take the total over it is refused with 429 `circuit_breaking_exception` before
//! its body is buffered, so slow clients sending large bodies cannot take the memory the
//! shards need. A body with a `Content-Length` reserves it up front; a chunked one as its
//! pieces arrive. The bytes are released when the request's answer is made.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};

/// The default budget: ten bodies of `http.max_content_length`.
pub const BUDGET_DEFAULT: u64 = 10 * crate::state::CONTENT_LEN_MAX as u64;

/// Bytes of request bodies in flight, and the limit.
#[derive(Debug)]
pub struct InFlight {
    used: AtomicU64,
    limit: u64,
}

/// A request that would take the budget over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tripped {
    /// What the total would have been.
    pub would_be: u64,
    pub wanted: u64,
    pub limit: u64,
}

impl std::fmt::Display for Tripped {
    /// Elasticsearch's `ChildMemoryCircuitBreaker` message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[in_flight_requests] Data too large, data for [<http_request>] would be [{}/{}], \
             which is larger than the limit of [{}/{}]",
            self.would_be,
            human(self.would_be),
            self.limit,
            human(self.limit)
        )
    }
}

impl std::error::Error for Tripped {}

/// Bytes as Elasticsearch's `ByteSizeValue` prints them: `512b`, `1kb`, `99.9mb`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["b", "kb", "mb", "gb", "tb", "pb"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}{}", rounded as u64, UNITS[unit])
    } else {
        format!("{rounded:.1}{}", UNITS[unit])
    }
}

impl InFlight {
    pub fn new(limit: u64) -> Arc<InFlight> {
        Arc::new(InFlight {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation, released (whatever it grew to) when its last clone is dropped.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation(Arc::new(Share {
            budget: self.clone(),
            bytes: AtomicU64::new(0),
        }))
    }
}

/// One request's share of the budget, held by the request and by its body.
#[derive(Clone, Debug)]
pub struct Reservation(Arc<Share>);

#[derive(Debug)]
struct Share {
    budget: Arc<InFlight>,
    bytes: AtomicU64,
}

impl Reservation {
    /// Adds `bytes` to the share, or refuses if the budget's total would pass its limit.
    pub fn reserve(&self, bytes: u64) -> Result<(), Tripped> {
        let budget = &self.0.budget;
        let mut used = budget.used.load(Ordering::Relaxed);
        loop {
            let would_be = used + bytes;
            if would_be > budget.limit {
                return Err(Tripped {
                    would_be,
                    wanted: bytes,
                    limit: budget.limit,
                });
            }
            match budget.used.compare_exchange_weak(
                used,
                would_be,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.0.bytes.fetch_add(bytes, Ordering::Relaxed);
                    return Ok(());
                }
                Err(now) => used = now,
            }
        }
    }
}

impl Drop for Share {
    /// The last clone gone (the request's, and its body's): the bytes go back.
    fn drop(&mut self) {
        let bytes = *self.bytes.get_mut();
        self.budget.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// A body whose pieces are counted against the budget as they arrive (a body without a
/// `Content-Length`).
pub struct Counted {
    inner: Body,
    reservation: Reservation,
}

impl Counted {
    pub fn new(inner: Body, reservation: Reservation) -> Counted {
        Counted { inner, reservation }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref()
            && let Err(tripped) = self.reservation.reserve(data.len() as u64)
        {
            return Poll::Ready(Some(Err(Box::new(tripped))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_as_byte_size_value_does() {
        assert_eq!(human(512), "512b");
        assert_eq!(human(1024), "1kb");
        assert_eq!(human(100 << 20), "100mb");
        assert_eq!(human(1_932_735_283), "1.8gb");
    }

    #[test]
    fn a_reservation_gives_back_what_it_took_and_the_limit_holds() {
        let budget = InFlight::new(100);
        let a = budget.reservation();
        a.reserve(60).unwrap();
        let b = budget.reservation();
        let tripped = b.reserve(41).unwrap_err();
        assert_eq!((tripped.would_be, tripped.limit), (101, 100));
        b.reserve(40).unwrap();
        let clone = a.clone();
        drop(a);
        assert_eq!(budget.used(), 100, "a clone still holds it");
        drop(clone);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
