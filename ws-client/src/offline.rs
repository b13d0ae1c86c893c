//! What a send does while the link is down: the per-message offline policy.

use std::time::Duration;

/// What [`Client::send_with`](crate::Client::send_with) does with a message while the
/// link is down, and with a message still queued when it comes back.
///
/// Every policy applies to the message it is given and to nothing else; the queue's bounds
/// (`max_enqueued_messages`, `max_enqueued_bytes`) hold for all of them, with
/// [`SendError::Full`](network_core::SendError::Full) past either. Messages that are
/// written keep the order in which they were sent: what reaches the server is always the
/// sent sequence with some messages left out, never reordered.
///
/// The browser client takes the same policies as `client.send(data, {offline})`:
/// `'buffer'`, `'volatile'`, `{offline: 'latest', key}` and `{offline: 'expire', ttl}`
/// (milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Offline {
    /// Queued while the link is down and written once it is back (routers restore
    /// first). What [`Client::send`](crate::Client::send) does. The default.
    #[default]
    Buffer,
    /// Written only on the link that is open now: dropped
    /// ([`Sent::Dropped`]) while the link is down or routers restore, and dropped if still
    /// queued when that link closes. For frames that are worthless later: a cursor
    /// position, a "typing" signal, a game tick.
    Volatile,
    /// At most one message with this key waits in the queue: a send removes the queued
    /// message with the same key ([`Sent::Replaced`]) and queues the new one **at the
    /// end**, after everything sent before it, so the order of sends is kept. For state
    /// where only the latest value matters (a status, a position, a draft).
    Latest(String),
    /// Dropped if still queued when this long has passed since the send: the socket task
    /// skips it when it would write it (the count is logged at debug level), and a send
    /// that finds the queue full first discards the expired messages to make room. A zero
    /// TTL is never written.
    Expire(Duration),
}

impl Offline {
    /// [`Offline::Latest`] with `key`.
    pub fn latest(key: impl Into<String>) -> Self {
        Self::Latest(key.into())
    }
}

/// What [`Client::send_with`](crate::Client::send_with) did with a message it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sent {
    /// Queued: written now if the link is open, otherwise once it is back (unless its
    /// policy drops it meanwhile).
    Queued,
    /// Queued, and the message with the same [`Offline::Latest`] key that was still
    /// waiting was removed: it will never be written.
    Replaced,
    /// An [`Offline::Volatile`] message sent while the link is down: not queued, never
    /// written.
    Dropped,
}
