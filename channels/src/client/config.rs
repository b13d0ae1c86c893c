//! Options of the client side of the channels router.

use std::time::Duration;

use network_core::InvalidConfig;

/// Options of a [`ChannelsClient`](super::ChannelsClient).
///
/// Every field states its default; the setters take and return the config by value:
///
/// ```
/// use std::time::Duration;
/// use channels::client::ChannelsClientConfig;
///
/// let config = ChannelsClientConfig::default().ack_timeout(Duration::from_secs(3)).event_queue_capacity(64);
/// assert_eq!(config.join_timeout, Duration::from_secs(10));
/// ```
///
/// The setters only store; [`attach`](super::ChannelsClient::attach) checks the values and refuses a
/// zero capacity, cap or timeout with
/// [`AttachError::InvalidConfig`](network_core::AttachError::InvalidConfig), naming the field.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChannelsClientConfig {
    /// How long [`Channel::emit_with_ack`](super::Channel::emit_with_ack) waits for the
    /// server's `ack`. Default 10 s (the server's own default for the other direction).
    pub ack_timeout: Duration,
    /// How long [`Channel::join`](super::Channel::join) and
    /// [`Channel::leave`](super::Channel::leave) wait for the server's answer. Default 10 s.
    pub join_timeout: Duration,
    /// Payloads waiting in each [`EventStream`](super::EventStream). When one is full the
    /// router waits for its reader, which stops the client reading from the socket
    /// (backpressure, nothing is dropped). Default 256.
    pub event_queue_capacity: usize,
    /// Errors waiting in each [`ErrorStream`](super::ErrorStream). When one is full the
    /// newest error is dropped for that stream, with a warning in the log (the router never
    /// waits for it). Default 64.
    pub error_queue_capacity: usize,
    /// Acknowledged emits waiting for their `ack` at once; past it
    /// [`AckError::TooManyPending`](crate::AckError::TooManyPending). Default 1024.
    pub max_pending_acks: usize,
    /// Handlers ([`Channel::handle`](super::Channel::handle)) running at once. When all
    /// are busy the router waits for one to finish before starting the next (backpressure,
    /// as for full event streams). Default 64.
    pub max_concurrent_handlers: usize,
}

impl Default for ChannelsClientConfig {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            event_queue_capacity: 256,
            error_queue_capacity: 64,
            max_pending_acks: 1024,
            max_concurrent_handlers: 64,
        }
    }
}

impl ChannelsClientConfig {
    /// Sets [`ack_timeout`](Self::ack_timeout).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Sets [`join_timeout`](Self::join_timeout).
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }

    /// Sets [`event_queue_capacity`](Self::event_queue_capacity).
    pub fn event_queue_capacity(mut self, capacity: usize) -> Self {
        self.event_queue_capacity = capacity;
        self
    }

    /// Sets [`error_queue_capacity`](Self::error_queue_capacity).
    pub fn error_queue_capacity(mut self, capacity: usize) -> Self {
        self.error_queue_capacity = capacity;
        self
    }

    /// Sets [`max_pending_acks`](Self::max_pending_acks).
    pub fn max_pending_acks(mut self, max: usize) -> Self {
        self.max_pending_acks = max;
        self
    }

    /// Sets [`max_concurrent_handlers`](Self::max_concurrent_handlers).
    pub fn max_concurrent_handlers(mut self, max: usize) -> Self {
        self.max_concurrent_handlers = max;
        self
    }

    /// The config, if every timeout, capacity and cap is positive (a zero-sized queue
    /// could never deliver, a zero timeout expires at once).
    pub(super) fn validated(self) -> Result<Self, InvalidConfig> {
        InvalidConfig::require_positive_duration("ack_timeout", self.ack_timeout)?;
        InvalidConfig::require_positive_duration("join_timeout", self.join_timeout)?;
        InvalidConfig::require_positive("event_queue_capacity", self.event_queue_capacity)?;
        InvalidConfig::require_positive("error_queue_capacity", self.error_queue_capacity)?;
        InvalidConfig::require_positive("max_pending_acks", self.max_pending_acks)?;
        InvalidConfig::require_positive("max_concurrent_handlers", self.max_concurrent_handlers)?;
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
        assert!(ChannelsClientConfig::default().validated().is_ok());
        let zeroed = [
            ("ack_timeout", ChannelsClientConfig::default().ack_timeout(Duration::ZERO)),
            ("join_timeout", ChannelsClientConfig::default().join_timeout(Duration::ZERO)),
            ("event_queue_capacity", ChannelsClientConfig::default().event_queue_capacity(0)),
            ("error_queue_capacity", ChannelsClientConfig::default().error_queue_capacity(0)),
            ("max_pending_acks", ChannelsClientConfig::default().max_pending_acks(0)),
            ("max_concurrent_handlers", ChannelsClientConfig::default().max_concurrent_handlers(0)),
        ];
        for (field, config) in zeroed {
            assert_eq!(config.validated().unwrap_err(), InvalidConfig::new(field, Constraint::Positive));
        }
    }
}
