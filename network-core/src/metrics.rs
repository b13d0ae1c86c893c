//! Outgoing messages, counted through the `metrics` facade (nothing happens unless the
//! application installs a recorder; `realtime serve` renders them at `GET /metrics`).
//!
//! A message is counted where it is known how many connections took it: once per
//! [`Connection::send`](crate::Connection::send), once per broadcast with its number of
//! recipients. That is one atomic add per call, never one per recipient: an atomic per
//! delivery on a process-wide counter costs a fan-out 5-10 % (measured on the server's
//! outbox, docs/DESIGN.md). Code that delivers a frame to many connections itself, with
//! [`Connection::send_batched`](crate::Connection::send_batched) in a loop, reports the
//! total with [`sent`].

use std::sync::OnceLock;

use metrics::{Counter, Unit, counter, describe_counter};

use crate::message::Message;

const MESSAGES_OUT: &str = "realtime_messages_out_total";
const BYTES_OUT: &str = "realtime_bytes_out_total";

/// Text, then binary.
struct Handles {
    messages: [Counter; 2],
    bytes: [Counter; 2],
}

fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        describe_counter!(MESSAGES_OUT, "Messages sent, by kind (a broadcast counts once per recipient)");
        describe_counter!(BYTES_OUT, Unit::Bytes, "Message payload bytes sent, by kind (per recipient)");
        Handles {
            messages: [counter!(MESSAGES_OUT, "kind" => "text"), counter!(MESSAGES_OUT, "kind" => "binary")],
            bytes: [counter!(BYTES_OUT, "kind" => "text"), counter!(BYTES_OUT, "kind" => "binary")],
        }
    })
}

/// Registers the counters (at zero) with the recorder installed now, so that a scrape
/// lists them before the first message.
pub fn register() {
    handles();
}

/// Counts `message` as sent to `recipients` connections.
pub fn sent(message: &Message, recipients: usize) {
    count(message.is_binary(), message.len(), recipients);
}

/// Counts a message of `len` payload bytes (binary or text) sent to `recipients`
/// connections, for a caller that no longer holds it.
pub(crate) fn count(binary: bool, len: usize, recipients: usize) {
    if recipients == 0 {
        return;
    }
    let handles = handles();
    let kind = usize::from(binary);
    handles.messages[kind].increment(recipients as u64);
    handles.bytes[kind].increment((len * recipients) as u64);
}
