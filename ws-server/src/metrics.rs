//! The server's metrics, recorded through the `metrics` facade: nothing happens unless the
//! application installs a recorder (`realtime serve` renders them for Prometheus at
//! `GET /metrics`). Install it before the first server starts: the handles of the
//! per-message counters are registered once per process, on first use.
//!
//! What is counted, and where, so that no delivery pays for it: connections when they
//! open and close, refused handshakes and dropped connections when they happen, incoming
//! messages once each (two atomic adds), outgoing messages and bytes once per socket write
//! (a burst of broadcasts is one write; an outbox counts its frames by kind in its own
//! state, under the lock it already holds, and reports them with the write: [`Sent`]),
//! never with an atomic per recipient. Gauges that are a sum over
//! connections (queued outgoing bytes) are read at scrape time from
//! [`Server::stats`](crate::Server::stats) instead.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Unit, counter, describe_counter, describe_gauge, gauge};

/// Open connections (counted against `max_connections`, handshakes past that check
/// included).
pub(crate) const CONNECTIONS: &str = "realtime_connections";
const CONNECTIONS_TOTAL: &str = "realtime_connections_total";
const HANDSHAKES_REFUSED: &str = "realtime_handshakes_refused_total";
const MESSAGES_IN: &str = "realtime_messages_in_total";
const BYTES_IN: &str = "realtime_bytes_in_total";
const MESSAGES_OUT: &str = "realtime_messages_out_total";
const BYTES_OUT: &str = "realtime_bytes_out_total";
const DROPPED: &str = "realtime_connections_dropped_total";
const RATE_LIMITED: &str = "realtime_rate_limited_total";

/// The handles of the counters touched per message or per write, registered once.
pub(crate) struct Handles {
    pub(crate) connections: Gauge,
    pub(crate) connections_total: Counter,
    pub(crate) messages_in_text: Counter,
    pub(crate) messages_in_binary: Counter,
    pub(crate) bytes_in_text: Counter,
    pub(crate) bytes_in_binary: Counter,
    /// By kind: text, binary.
    messages_out: [Counter; 2],
    /// By kind: text, binary, control.
    bytes_out: [Counter; 3],
}

/// What one outbox sent since it last reported: data frames by kind (text, binary) and
/// frame bytes (headers included) by kind (text, binary, control). Counted in the outbox's
/// own state, under the lock a delivery already holds, and reported once per socket
/// write: no atomic per recipient.
#[derive(Default)]
pub(crate) struct Sent {
    frames: [u64; 2],
    bytes: [u64; 3],
}

impl Sent {
    /// A data frame of `bytes` on the wire.
    pub(crate) fn data(&mut self, binary: bool, bytes: usize) {
        let kind = usize::from(binary);
        self.frames[kind] += 1;
        self.bytes[kind] += bytes as u64;
    }

    /// A control frame (ping, pong, close) of `bytes`.
    pub(crate) fn control(&mut self, bytes: usize) {
        self.bytes[2] += bytes as u64;
    }

    /// Adds what was counted to the counters, and starts again from zero.
    pub(crate) fn report(&mut self) {
        let Self { frames, bytes } = std::mem::take(self);
        let handles = handles();
        for (counter, count) in handles.messages_out.iter().zip(frames) {
            if count > 0 {
                counter.increment(count);
            }
        }
        for (counter, count) in handles.bytes_out.iter().zip(bytes) {
            if count > 0 {
                counter.increment(count);
            }
        }
    }
}

/// The handles, registered (and every metric described) on first use.
pub(crate) fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        describe();
        Handles {
            connections: gauge!(CONNECTIONS),
            connections_total: counter!(CONNECTIONS_TOTAL),
            messages_in_text: counter!(MESSAGES_IN, "kind" => "text"),
            messages_in_binary: counter!(MESSAGES_IN, "kind" => "binary"),
            bytes_in_text: counter!(BYTES_IN, "kind" => "text"),
            bytes_in_binary: counter!(BYTES_IN, "kind" => "binary"),
            messages_out: [
                counter!(MESSAGES_OUT, "kind" => "text"),
                counter!(MESSAGES_OUT, "kind" => "binary"),
            ],
            bytes_out: [
                counter!(BYTES_OUT, "kind" => "text"),
                counter!(BYTES_OUT, "kind" => "binary"),
                counter!(BYTES_OUT, "kind" => "control"),
            ],
        }
    })
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open WebSocket connections (counted against max_connections)");
    describe_counter!(CONNECTIONS_TOTAL, "WebSocket connections accepted");
    describe_counter!(
        HANDSHAKES_REFUSED,
        "Upgrades refused, by reason: an HTTP status, timeout, evicted or tls"
    );
    describe_counter!(MESSAGES_IN, "Messages received, by kind");
    describe_counter!(BYTES_IN, Unit::Bytes, "Message payload bytes received, by kind");
    describe_counter!(
        MESSAGES_OUT,
        "Data frames sent, by kind (a broadcast counts once per recipient; counted at the socket write that follows)"
    );
    describe_counter!(
        BYTES_OUT,
        Unit::Bytes,
        "Frame bytes sent (headers included), by kind: text, binary or control"
    );
    describe_counter!(
        DROPPED,
        "Connections closed by the server's policy: slow_consumer, queue_full or rate_limit"
    );
    describe_counter!(RATE_LIMITED, "Times a connection's reading was paused by its rate limit");
}

/// A refused upgrade: `reason` is an HTTP status code, `timeout`, `evicted` or `tls`.
pub(crate) fn handshake_refused(reason: impl Into<metrics::SharedString>) {
    handles();
    counter!(HANDSHAKES_REFUSED, "reason" => reason.into()).increment(1);
}

/// A connection the server closed by policy.
pub(crate) fn dropped(reason: &'static str) {
    handles();
    counter!(DROPPED, "reason" => reason).increment(1);
}

/// A connection paused by its rate limit.
pub(crate) fn rate_limited() {
    handles();
    counter!(RATE_LIMITED).increment(1);
}
