//! The options of a node's membership in a cluster.

use std::time::Duration;

use network_core::{Constraint, InvalidConfig};

/// How a node joins its cluster: where Redis is, how its channels are named, and how fast
/// nodes notice each other come and go.
///
/// ```
/// use std::time::Duration;
/// use redis_adapter::RedisConfig;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .prefix("chat")
///     .heartbeat_interval(Duration::from_secs(2))
///     .heartbeat_timeout(Duration::from_secs(6));
/// assert_eq!(config.channel_all(), "chat#all");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The Redis server, `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every channel and key: several applications can share one Redis as long
    /// as their prefixes differ. Default `"realtime"`.
    pub prefix: String,
    /// How the packets are laid out on channels. Default [`ChannelLayout::PerNode`].
    pub layout: ChannelLayout,
    /// How often a node tells the others it is alive. Default 2 s.
    pub heartbeat_interval: Duration,
    /// A node not heard from for this long is dead: its connections leave every other
    /// node's view of the cluster. Each node announces its own in its heartbeats, and the
    /// others judge it by that, so nodes with different settings agree. Default 6 s; at
    /// least two intervals.
    pub heartbeat_timeout: Duration,
    /// How long a question to other nodes (`members`, `rooms_of`, a remote `join`) waits
    /// for their answers. Default 2 s.
    pub request_timeout: Duration,
    /// How long one Redis command may take before it fails (and the emit that waited for
    /// it is reported as not published). Default 1 s.
    pub command_timeout: Duration,
    /// Packets waiting to be published; past it a broadcast fails at once with
    /// `AdapterError::NotPublished` (nothing is queued without bound). Default 4096.
    pub publish_queue: usize,
    /// Questions to other nodes waiting for answers at once; past it a question fails with
    /// `AdapterError::Unavailable`. Default 1024.
    pub max_pending_requests: usize,
}

/// The channels a cluster's packets travel on. Every node has one subscription (one
/// connection) whatever the layout; never one per room or per connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelLayout {
    /// `{prefix}#all` for what every node reads (broadcasts, heartbeats, questions to all)
    /// and `{prefix}#node#{n}` for what is meant for node `n` alone (answers, questions to
    /// one node): a node reads only its own answers.
    #[default]
    PerNode,
    /// Only `{prefix}#all`: packets for one node carry its number and the others drop
    /// them. For Redis set-ups that limit the number of channels.
    Single,
}

impl RedisConfig {
    /// The defaults, with Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "realtime".to_owned(),
            layout: ChannelLayout::default(),
            heartbeat_interval: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(6),
            request_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            publish_queue: 4096,
            max_pending_requests: 1024,
        }
    }

    /// Sets [`prefix`](Self::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`layout`](Self::layout).
    pub fn layout(mut self, layout: ChannelLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`command_timeout`](Self::command_timeout).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets [`publish_queue`](Self::publish_queue).
    pub fn publish_queue(mut self, packets: usize) -> Self {
        self.publish_queue = packets;
        self
    }

    /// Sets [`max_pending_requests`](Self::max_pending_requests).
    pub fn max_pending_requests(mut self, requests: usize) -> Self {
        self.max_pending_requests = requests;
        self
    }

    /// The channel every node reads.
    pub fn channel_all(&self) -> String {
        format!("{}#all", self.prefix)
    }

    /// The channel of what is meant for `node` alone (with [`ChannelLayout::PerNode`]).
    pub fn channel_of(&self, node: u16) -> String {
        match self.layout {
            ChannelLayout::PerNode => format!("{}#node#{node}", self.prefix),
            ChannelLayout::Single => self.channel_all(),
        }
    }

    /// The key whose owner holds node number `node`.
    pub(crate) fn lease_key(&self, node: u16) -> String {
        format!("{}#lease#{node}", self.prefix)
    }

    /// Checks every field; the setters only store.
    ///
    /// # Errors
    /// The first field out of range.
    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive_duration("heartbeat_interval", self.heartbeat_interval)?;
        if self.heartbeat_timeout < self.heartbeat_interval.saturating_mul(2) {
            let constraint = Constraint::AtLeastTimes { field: "heartbeat_interval", times: 2 };
            return Err(InvalidConfig::new("heartbeat_timeout", constraint));
        }
        InvalidConfig::require_positive_duration("request_timeout", self.request_timeout)?;
        InvalidConfig::require_positive_duration("command_timeout", self.command_timeout)?;
        InvalidConfig::require_positive("publish_queue", self.publish_queue)?;
        InvalidConfig::require_positive("max_pending_requests", self.max_pending_requests)?;
        if self.prefix.is_empty() || self.prefix.contains('#') {
            return Err(InvalidConfig::new("prefix", Constraint::Form("non-empty and without '#'")));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(config: RedisConfig) -> InvalidConfig {
        config.validate().unwrap_err()
    }

    #[test]
    fn the_defaults_pass() {
        assert_eq!(RedisConfig::new("redis://127.0.0.1").validate(), Ok(()));
    }

    #[test]
    fn every_rule_names_its_field() {
        let base = || RedisConfig::new("redis://127.0.0.1");
        let positive = |field| InvalidConfig::new(field, Constraint::Positive);
        assert_eq!(refused(base().heartbeat_interval(Duration::ZERO)), positive("heartbeat_interval"));
        assert_eq!(
            refused(
                base().heartbeat_interval(Duration::from_secs(2)).heartbeat_timeout(Duration::from_secs(3))
            ),
            InvalidConfig::new(
                "heartbeat_timeout",
                Constraint::AtLeastTimes { field: "heartbeat_interval", times: 2 }
            )
        );
        assert_eq!(refused(base().request_timeout(Duration::ZERO)), positive("request_timeout"));
        assert_eq!(refused(base().command_timeout(Duration::ZERO)), positive("command_timeout"));
        assert_eq!(refused(base().publish_queue(0)), positive("publish_queue"));
        assert_eq!(refused(base().max_pending_requests(0)), positive("max_pending_requests"));
        for prefix in ["", "a#b"] {
            assert_eq!(refused(base().prefix(prefix)).field, "prefix");
        }
        // Exactly twice the interval is enough.
        let twice =
            base().heartbeat_interval(Duration::from_secs(2)).heartbeat_timeout(Duration::from_secs(4));
        assert_eq!(twice.validate(), Ok(()));
    }
}
