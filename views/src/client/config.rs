//! Options of the client side of the views router.

use std::time::Duration;

use network_core::InvalidConfig;

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
/// The setters only store; [`attach`](super::ViewsClient::attach) checks the values and refuses a
/// zero capacity, cap or timeout with
/// [`AttachError::InvalidConfig`](network_core::AttachError::InvalidConfig), naming the field.
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

    /// Sets [`change_queue_capacity`](Self::change_queue_capacity).
    pub fn change_queue_capacity(mut self, capacity: usize) -> Self {
        self.change_queue_capacity = capacity;
        self
    }

    /// Sets [`max_pending_requests`](Self::max_pending_requests).
    pub fn max_pending_requests(mut self, max: usize) -> Self {
        self.max_pending_requests = max;
        self
    }

    /// The config, if every timeout, capacity and cap is positive (a zero-sized queue
    /// could never deliver, a zero timeout expires at once).
    pub(super) fn validated(self) -> Result<Self, InvalidConfig> {
        InvalidConfig::require_positive_duration("request_timeout", self.request_timeout)?;
        InvalidConfig::require_positive("change_queue_capacity", self.change_queue_capacity)?;
        InvalidConfig::require_positive("max_pending_requests", self.max_pending_requests)?;
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
        assert!(ViewsClientConfig::default().validated().is_ok());
        let zeroed = [
            ("request_timeout", ViewsClientConfig::default().request_timeout(Duration::ZERO)),
            ("change_queue_capacity", ViewsClientConfig::default().change_queue_capacity(0)),
            ("max_pending_requests", ViewsClientConfig::default().max_pending_requests(0)),
        ];
        for (field, config) in zeroed {
            assert_eq!(config.validated().unwrap_err(), InvalidConfig::new(field, Constraint::Positive));
        }
    }
}
