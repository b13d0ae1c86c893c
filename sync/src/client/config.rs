//! Options of the client side of the sync router.

use std::time::Duration;

use network_core::InvalidConfig;

/// Options of a [`SyncClient`](super::SyncClient).
///
/// Every field states its default; the setters take and return the config by value:
///
/// ```
/// use std::time::Duration;
/// use sync::client::SyncClientConfig;
///
/// let config = SyncClientConfig::default().request_timeout(Duration::from_secs(3)).message_queue_capacity(64);
/// assert_eq!(config.max_pending_requests, 1024);
/// assert!(config.read_after_resubscribe);
/// ```
///
/// The setters only store; [`attach`](super::SyncClient::attach) checks the values and refuses a
/// zero capacity, cap or timeout with
/// [`AttachError::InvalidConfig`](network_core::AttachError::InvalidConfig), naming the field.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SyncClientConfig {
    /// How long a request waits for the server's answer: the CRUD calls
    /// ([`SyncClient::create`](super::SyncClient::create) and the others),
    /// [`Subscription::connect`](super::Subscription::connect),
    /// [`Subscription::close`](super::Subscription::close) and
    /// [`Subscription::fetch`](super::Subscription::fetch). Before the network's first
    /// connection it includes the wait for it. Default 10 s.
    pub request_timeout: Duration,
    /// Items waiting in each stream: [`SyncStream`](super::SyncStream),
    /// [`TypedSyncStream`](super::TypedSyncStream) and a collection's
    /// [`CollectionChanges`](super::CollectionChanges). When one is full the router waits
    /// for its reader, which stops the client reading from its socket (backpressure,
    /// nothing is dropped). Default 256.
    pub message_queue_capacity: usize,
    /// Requests waiting for the server's answer at once (CRUD calls, fetches, subscribes
    /// and unsubscribes); past it a new one fails with `TooManyPending`. The subscribes
    /// and reads the router sends by itself after a reconnect count but are never
    /// refused. Default 1024.
    pub max_pending_requests: usize,
    /// Whether the router asks for every subscribed path's value again after a reconnect,
    /// subscribing to it again with a snapshot (a versioned subscription, PROTOCOL.md 7.3
    /// rule 8), and delivers the value to the path's streams as a snapshot (see [the
    /// module docs](super#reconnects)). Without it, changes made while
    /// the link was down are not seen until the next push. Default `true`.
    pub read_after_resubscribe: bool,
    /// Pushes held on a path while its versioned subscription's snapshot is awaited (a
    /// [`connect_with_snapshot`](super::Subscription::connect_with_snapshot) or a
    /// collection's `start`, a reconnect, a resync): the server sends the pushes made
    /// during its read before
    /// the snapshot, and the router applies the newer ones after it. Past the cap the
    /// router drops them and asks for a new snapshot once this one arrives. Default 256.
    pub max_held_pushes: usize,
    /// Errors waiting in each [`ErrorStream`](super::ErrorStream). When one is full the
    /// newest error is dropped for that stream, with a warning in the log (the router
    /// never waits for it). Default 64.
    pub error_queue_capacity: usize,
}

impl Default for SyncClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            message_queue_capacity: 256,
            max_pending_requests: 1024,
            read_after_resubscribe: true,
            max_held_pushes: 256,
            error_queue_capacity: 64,
        }
    }
}

impl SyncClientConfig {
    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`message_queue_capacity`](Self::message_queue_capacity).
    pub fn message_queue_capacity(mut self, capacity: usize) -> Self {
        self.message_queue_capacity = capacity;
        self
    }

    /// Sets [`max_pending_requests`](Self::max_pending_requests).
    pub fn max_pending_requests(mut self, max: usize) -> Self {
        self.max_pending_requests = max;
        self
    }

    /// Sets [`read_after_resubscribe`](Self::read_after_resubscribe).
    pub fn read_after_resubscribe(mut self, read: bool) -> Self {
        self.read_after_resubscribe = read;
        self
    }

    /// Sets [`max_held_pushes`](Self::max_held_pushes).
    pub fn max_held_pushes(mut self, max: usize) -> Self {
        self.max_held_pushes = max;
        self
    }

    /// Sets [`error_queue_capacity`](Self::error_queue_capacity).
    pub fn error_queue_capacity(mut self, capacity: usize) -> Self {
        self.error_queue_capacity = capacity;
        self
    }

    /// The config, if every timeout, capacity and cap is positive (a zero-sized queue
    /// could never deliver, a zero timeout expires at once).
    pub(super) fn validated(self) -> Result<Self, InvalidConfig> {
        InvalidConfig::require_positive_duration("request_timeout", self.request_timeout)?;
        InvalidConfig::require_positive("message_queue_capacity", self.message_queue_capacity)?;
        InvalidConfig::require_positive("max_pending_requests", self.max_pending_requests)?;
        InvalidConfig::require_positive("error_queue_capacity", self.error_queue_capacity)?;
        InvalidConfig::require_positive("max_held_pushes", self.max_held_pushes)?;
        Ok(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use network_core::Constraint;

    use super::*;

    #[test]
    fn every_timeout_and_capacity_must_be_positive() {
        assert!(SyncClientConfig::default().validated().is_ok());
        let zeroed = [
            ("request_timeout", SyncClientConfig::default().request_timeout(Duration::ZERO)),
            ("message_queue_capacity", SyncClientConfig::default().message_queue_capacity(0)),
            ("max_pending_requests", SyncClientConfig::default().max_pending_requests(0)),
            ("max_held_pushes", SyncClientConfig::default().max_held_pushes(0)),
            ("error_queue_capacity", SyncClientConfig::default().error_queue_capacity(0)),
        ];
        for (field, config) in zeroed {
            assert_eq!(config.validated().unwrap_err(), InvalidConfig::new(field, Constraint::Positive));
        }
    }
}
