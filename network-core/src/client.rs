//! Small pieces that the client sides of routers share: the link to the server with its
//! request ids ([`Link`]), handing a value to several bounded streams with backpressure
//! ([`fan_out`]), and the `errors()` streams that never block the router
//! ([`ErrorSubscribers`]).
//!
//! Nothing here knows about sockets or about any one router's protocol.

use std::fmt::Debug;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::{Connection, ConnectionId, SendError, envelope};

/// Hands `value` to each of `senders` in turn, waiting while one is full (backpressure);
/// a closed receiver is skipped. Clones for all but the last.
///
/// # Cancel safety
/// Not cancel safe: when dropped, the senders not reached yet do not get `value`.
pub async fn fan_out<T: Clone>(mut senders: Vec<mpsc::Sender<T>>, value: T) {
    let last = senders.pop();
    for sender in senders {
        let _ = sender.send(value.clone()).await;
    }
    if let Some(sender) = last {
        let _ = sender.send(value).await;
    }
}

/// The senders of a router's `errors()` streams: problems no caller waits for.
///
/// [`report`](Self::report) never waits: a full stream loses the **newest** error (with a
/// warning), and an error reported while no stream exists is only logged.
#[derive(Debug)]
pub struct ErrorSubscribers<E> {
    /// Names the router in the logs (`"{router} error"`).
    router: &'static str,
    subscribers: Vec<mpsc::Sender<E>>,
}

impl<E: Clone + Debug> ErrorSubscribers<E> {
    /// No streams yet; `router` names the router in the logs.
    pub fn new(router: &'static str) -> Self {
        Self { router, subscribers: Vec::new() }
    }

    /// Adds a stream, forgetting those whose receiver was dropped.
    pub fn add(&mut self, sender: mpsc::Sender<E>) {
        self.subscribers.retain(|subscriber| !subscriber.is_closed());
        self.subscribers.push(sender);
    }

    /// Takes every sender out (to drop them without a lock held): the streams end once
    /// drained.
    pub fn take(&mut self) -> Vec<mpsc::Sender<E>> {
        std::mem::take(&mut self.subscribers)
    }

    /// Hands `error` to every stream without waiting; a full stream loses it.
    pub fn report(&mut self, error: E) {
        let router = self.router;
        self.subscribers.retain(|subscriber| !subscriber.is_closed());
        if self.subscribers.is_empty() {
            tracing::warn!(?error, "{router} error (nobody listens on errors())");
            return;
        }
        tracing::debug!(?error, "{router} error");
        for subscriber in &self.subscribers {
            if let Err(mpsc::error::TrySendError::Full(error)) = subscriber.try_send(error.clone()) {
                tracing::warn!(?error, "an errors() stream is full: this error is dropped for it");
            }
        }
    }
}

/// A client-side router's link to the server: the network's one connection, whether it
/// is up, and the ids of the router's requests.
///
/// The connection is known from the first `Added` (or from the registry at attach time)
/// and kept afterwards, since a client's connection survives reconnects and queues frames
/// while the link is down.
#[derive(Debug)]
pub struct Link {
    /// The network's connection, once known.
    pub connection: Option<Connection>,
    /// Between `Added` and `Removed`, as the router has seen them.
    pub online: bool,
    /// The router's name, for its envelope and its logs.
    router: &'static str,
    next_id: u64,
}

impl Link {
    /// No connection yet; frames go out in the envelope of `router`; ids start at 1.
    pub fn new(router: &'static str) -> Self {
        Self { connection: None, online: false, router, next_id: 1 }
    }

    /// Takes `connection`, which the network had open before the router was attached,
    /// unless one is known already. Returns whether it was taken.
    pub fn adopt(&mut self, connection: Connection) -> bool {
        if self.connection.is_some() {
            return false;
        }
        self.connection = Some(connection);
        self.online = true;
        true
    }

    /// Whether `id` is the connection and the link is up (a `Removed` for it ends the
    /// session).
    pub fn is_current(&self, id: ConnectionId) -> bool {
        self.online && self.connection.as_ref().is_some_and(|connection| connection.id() == id)
    }

    /// A new request id: 1, 2, 3, ...
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends `frame` as JSON in the router's envelope (queued by the client while the link
    /// is down). A frame that does not encode is logged and dropped: router frames hold
    /// strings, numbers and JSON values, so that does not happen in practice.
    ///
    /// # Errors
    /// [`SendError::Closed`] before the connection is known, or what
    /// [`Connection::send`] returns.
    pub fn send<F: Serialize>(&self, frame: &F) -> Result<(), SendError> {
        let message = match envelope::json(self.router, frame) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "cannot encode a {} frame", self.router);
                return Ok(());
            }
        };
        match &self.connection {
            Some(connection) => connection.send(message),
            None => Err(SendError::Closed(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fan_out_reaches_every_open_stream_in_order() {
        let (a, mut a_rx) = mpsc::channel(1);
        let (b, b_rx) = mpsc::channel(1);
        let (c, mut c_rx) = mpsc::channel(1);
        drop(b_rx);
        fan_out(vec![a, b, c], 7).await;
        assert_eq!(a_rx.try_recv().ok(), Some(7));
        assert_eq!(c_rx.try_recv().ok(), Some(7));
    }

    #[test]
    fn a_full_stream_loses_the_newest_error() {
        let mut errors = ErrorSubscribers::new("test");
        let (sender, mut receiver) = mpsc::channel(1);
        errors.add(sender);
        errors.report(1);
        errors.report(2);
        assert_eq!(receiver.try_recv().ok(), Some(1));
        assert!(receiver.try_recv().is_err());
        assert_eq!(errors.take().len(), 1);
    }

    #[test]
    fn a_link_numbers_requests_and_refuses_to_send_before_its_connection() {
        let mut link = Link::new("test");
        assert_eq!((link.allocate_id(), link.allocate_id()), (1, 2));
        assert!(matches!(link.send(&1), Err(SendError::Closed(_))));
        assert!(!link.online);
    }
}
