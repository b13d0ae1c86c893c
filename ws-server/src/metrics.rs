//! The server's metrics, recorded through the `metrics` facade: nothing happens unless the
//! application installs a recorder (`realtime serve` renders them for Prometheus at
//! `GET /metrics`). Install it before the first server starts: the handles of the
//! per-message counters are registered once per process, on first use.
//!
//! What is counted, and where, so that no delivery pays for it: connections when they
//! open and close, refused handshakes and dropped connections when they happen, incoming
//! messages once each (two atomic adds), bytes read once per socket read, bytes written once
//! per socket write (a burst of
//! broadcasts is one write), never per recipient. Messages out are counted by
//! `network_core::metrics`, once per send and once per broadcast. Gauges that are a sum over
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
const SOCKET_BYTES_IN: &str = "realtime_socket_bytes_in_total";
const SOCKET_BYTES_OUT: &str = "realtime_socket_bytes_out_total";
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
    pub(crate) socket_bytes_in: Counter,
    pub(crate) socket_bytes_out: Counter,
}

/// The handles, registered (and every metric described) on first use.
pub(crate) fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        describe();
        network_core::metrics::register();
        Handles {
            connections: gauge!(CONNECTIONS),
            connections_total: counter!(CONNECTIONS_TOTAL),
            messages_in_text: counter!(MESSAGES_IN, "kind" => "text"),
            messages_in_binary: counter!(MESSAGES_IN, "kind" => "binary"),
            bytes_in_text: counter!(BYTES_IN, "kind" => "text"),
            bytes_in_binary: counter!(BYTES_IN, "kind" => "binary"),
            socket_bytes_in: counter!(SOCKET_BYTES_IN),
            socket_bytes_out: counter!(SOCKET_BYTES_OUT),
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
    describe_counter!(
        BYTES_IN,
        Unit::Bytes,
        "Message payload bytes received (inflated, when compressed), by kind"
    );
    describe_counter!(
        SOCKET_BYTES_IN,
        Unit::Bytes,
        "Bytes read from sockets: frames as sent (compressed ones compressed), headers included"
    );
    describe_counter!(
        SOCKET_BYTES_OUT,
        Unit::Bytes,
        "Bytes written to sockets: frames with their headers, control frames included"
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
