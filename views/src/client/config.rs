//! Options of the client side of the views router.

use std::time::Duration;

/// Options of a [`ViewsClient`](super::ViewsClient).
///
/// Every field states its default; the setters take and return the config by value:
///
/// ```
/// use std::time::Duration;
/// use views::client::ViewsClientConfig;
///
/// let config = ViewsClientConfig::default().request_timeout(Duration::from_secs(3)).change_queue_capacity(64);
/// assert_eq!(config.max_pending_requests, 1024);
/// ```
///
/// Capacities and caps below 1 count as 1 (a zero-sized queue could never deliver).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ViewsClientConfig {
    /// How long [`open`](super::ViewsClient::open), [`close`](super::ViewsClient::close)
    /// and the `info` requests wait for the server's answer, including, before the first
    /// connection, the wait for it. Default 10 s.
    pub request_timeout: Duration,
    /// Changes waiting in each [`ChangeStream`](super::ChangeStream). When one is full the
    /// router waits for its reader, which stops the client reading from its socket
    /// (backpressure, nothing is dropped). Default 256.
    pub change_queue_capacity: usize,
    /// Requests (`open`, `close`, `info`) waiting for the server's answer at once; past it
    /// a new request fails with `TooManyPending`. The re-opens the router sends after a
    /// reconnect count but are never refused. Default 1024.
    pub max_pending_requests: usize,
}

impl Default for ViewsClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            change_queue_capacity: 256,
            max_pending_requests: 1024,
        }
    }
}

impl ViewsClientConfig {
    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`change_queue_capacity`](Self::change_queue_capacity) (at least 1).
    pub fn change_queue_capacity(mut self, capacity: usize) -> Self {
        self.change_queue_capacity = capacity.max(1);
        self
    }

    /// Sets [`max_pending_requests`](Self::max_pending_requests) (at least 1).
    pub fn max_pending_requests(mut self, max: usize) -> Self {
        self.max_pending_requests = max.max(1);
        self
    }

    /// The config with every capacity and cap at least 1 (the fields are public, so the
    /// setters' clamping can be bypassed).
    pub(super) fn normalized(mut self) -> Self {
        self.change_queue_capacity = self.change_queue_capacity.max(1);
        self.max_pending_requests = self.max_pending_requests.max(1);
        self
    }
}
