//! Per-connection rate limits on incoming messages: two token buckets (messages and bytes).
//!
//! The action is backpressure first: a connection that spent its tokens is not read until
//! they refill, so a burst is slowed, never lost, and the excess waits in the peer's socket.
//! Only a connection kept throttled without a break for [`RateLimit::close_after`] is
//! closed, with 1008.

use std::time::Duration;

use network_core::{Constraint, InvalidConfig};
use tokio::time::Instant;

/// Limits on what one connection may send, as token buckets: each holds up to its burst
/// and refills at its rate; every message takes one message token and its length in byte
/// tokens. The defaults slow what no interactive client does (more than 2,000 messages or
/// 8 MiB per second, sustained) and never close a client that sends a few megabytes in
/// one go or a few hundred requests per second.
///
/// ```
/// use std::time::Duration;
/// use ws_server::{RateLimit, ServerConfig};
/// let config = ServerConfig::default()
///     .rate_limit(Some(RateLimit::default().messages_per_second(100).message_burst(200)));
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Messages per second the bucket refills. Default 2,000.
    pub messages_per_second: u32,
    /// Messages the bucket holds: what a connection may send at once before it is slowed.
    /// Default 4,000.
    pub message_burst: u32,
    /// Bytes per second the bucket refills. Default 8 MiB.
    pub bytes_per_second: u64,
    /// Bytes the bucket holds. Default 16 MiB (a few images in a row go through at once).
    pub byte_burst: u64,
    /// A connection throttled without a break for this long is closed with 1008 "rate
    /// limit exceeded"; `None` only ever slows it. Default 60 s.
    pub close_after: Option<Duration>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            messages_per_second: 2_000,
            message_burst: 4_000,
            bytes_per_second: 8 << 20,
            byte_burst: 16 << 20,
            close_after: Some(Duration::from_secs(60)),
        }
    }
}

impl RateLimit {
    /// Sets [`messages_per_second`](Self::messages_per_second).
    pub fn messages_per_second(mut self, messages_per_second: u32) -> Self {
        self.messages_per_second = messages_per_second;
        self
    }

    /// Sets [`message_burst`](Self::message_burst).
    pub fn message_burst(mut self, message_burst: u32) -> Self {
        self.message_burst = message_burst;
        self
    }

    /// Sets [`bytes_per_second`](Self::bytes_per_second).
    pub fn bytes_per_second(mut self, bytes_per_second: u64) -> Self {
        self.bytes_per_second = bytes_per_second;
        self
    }

    /// Sets [`byte_burst`](Self::byte_burst).
    pub fn byte_burst(mut self, byte_burst: u64) -> Self {
        self.byte_burst = byte_burst;
        self
    }

    /// Sets [`close_after`](Self::close_after).
    pub fn close_after(mut self, close_after: Option<Duration>) -> Self {
        self.close_after = close_after;
        self
    }

    /// Checks every field (named as in `ServerConfig`: `rate_limit.message_burst`).
    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        for (field, value) in [
            ("rate_limit.messages_per_second", u64::from(self.messages_per_second)),
            ("rate_limit.message_burst", u64::from(self.message_burst)),
            ("rate_limit.bytes_per_second", self.bytes_per_second),
            ("rate_limit.byte_burst", self.byte_burst),
        ] {
            if value == 0 {
                return Err(InvalidConfig::new(field, Constraint::Positive));
            }
        }
        Ok(())
    }
}

/// How much refill a throttled connection waits for beyond the debt it must pay back, so
/// that it is read again in batches: a client over its rate is otherwise read one message
/// per token (every 0.5 ms at the default 2,000 a second), and each message is then
/// handled, and broadcast, on its own, with nothing to coalesce. 10 ms is 20 messages at
/// the default rate; the connection's average rate is unchanged (the tokens accrue while
/// it waits), only its pace becomes batches.
const RESUME_BATCH: Duration = Duration::from_millis(10);

/// What [`Limiter::admit`] decides about the connection after a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Keep reading.
    Go,
    /// Stop reading until this instant.
    WaitUntil(Instant),
    /// Throttled for longer than `close_after`: close with 1008.
    Close,
}

/// One connection's buckets (the limits stay in the server's config).
pub(crate) struct Limiter {
    messages: f64,
    bytes: f64,
    refilled: Instant,
    /// When the current run of throttling began.
    throttled_since: Option<Instant>,
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit, now: Instant) -> Self {
        Self {
            messages: f64::from(limit.message_burst),
            bytes: limit.byte_burst as f64,
            refilled: now,
            throttled_since: None,
        }
    }

    /// Charges one message of `len` bytes read at `now`, under `limit`.
    pub(crate) fn admit(&mut self, limit: &RateLimit, len: usize, now: Instant) -> Admission {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let message_rate = f64::from(limit.messages_per_second);
        let byte_rate = limit.bytes_per_second as f64;
        self.messages = (self.messages + elapsed * message_rate).min(f64::from(limit.message_burst)) - 1.0;
        self.bytes = (self.bytes + elapsed * byte_rate).min(limit.byte_burst as f64) - len as f64;
        // The wait until both buckets are back to zero.
        let wait = (-self.messages / message_rate).max(-self.bytes / byte_rate);
        if wait <= 0.0 {
            self.throttled_since = None;
            return Admission::Go;
        }
        let since = *self.throttled_since.get_or_insert(now);
        let until = now + Duration::from_secs_f64(wait) + RESUME_BATCH;
        match limit.close_after {
            Some(close_after) if until.saturating_duration_since(since) > close_after => Admission::Close,
            _ => Admission::WaitUntil(until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit() -> RateLimit {
        RateLimit::default()
            .messages_per_second(10)
            .message_burst(10)
            .bytes_per_second(1000)
            .byte_burst(1000)
            .close_after(Some(Duration::from_secs(5)))
    }

    #[test]
    fn a_burst_within_the_bucket_goes_through() {
        let now = Instant::now();
        let mut limiter = Limiter::new(&limit(), now);
        for _ in 0..10 {
            assert_eq!(limiter.admit(&limit(), 10, now), Admission::Go);
        }
        assert!(matches!(limiter.admit(&limit(), 10, now), Admission::WaitUntil(_)));
    }

    #[test]
    fn a_big_message_waits_for_its_bytes_to_refill() {
        let now = Instant::now();
        let mut limiter = Limiter::new(&limit(), now);
        // 3,000 bytes against a 1,000-byte bucket at 1,000 bytes/s: two seconds of debt.
        let Admission::WaitUntil(until) = limiter.admit(&limit(), 3000, now) else { panic!("not throttled") };
        assert_eq!(until - now, Duration::from_secs(2) + RESUME_BATCH);
        // After the wait the bucket is empty, not in debt: a small message goes through
        // once it refills a little.
        assert_eq!(limiter.admit(&limit(), 0, until + Duration::from_millis(200)), Admission::Go);
    }

    #[test]
    fn a_throttled_connection_is_read_again_in_batches() {
        let limit = RateLimit::default().messages_per_second(2_000).message_burst(100);
        let start = Instant::now();
        let mut limiter = Limiter::new(&limit, start);
        let mut now = start;
        let mut waits = 0;
        for _ in 0..1_000 {
            if let Admission::WaitUntil(until) = limiter.admit(&limit, 10, now) {
                waits += 1;
                now = until;
            }
        }
        // 900 messages past the burst at 2,000 a second: about 450 ms, in batches of about
        // 20 (10 ms of refill), not one wait per message.
        assert!(waits <= 900 / 15, "{waits} waits");
        let took = now - start;
        assert!(took >= Duration::from_millis(440) && took <= Duration::from_millis(480), "{took:?}");
    }

    #[test]
    fn sustained_excess_is_closed_after_close_after() {
        let start = Instant::now();
        let mut limiter = Limiter::new(&limit(), start);
        let mut now = start;
        let mut closed = false;
        for _ in 0..1000 {
            match limiter.admit(&limit(), 500, now) {
                Admission::Go => {}
                Admission::WaitUntil(until) => now = until,
                Admission::Close => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed);
        // Closed when the wait it would need (0.5 s of byte debt) takes it past 5 s.
        assert!(now - start >= Duration::from_millis(4_500));
    }
}
