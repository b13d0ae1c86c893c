//! The options of a node's membership in a cluster.

use std::time::Duration;

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

    pub(crate) fn validate(&self) -> Result<(), crate::RedisAdapterError> {
        let invalid = |reason: &str| Err(crate::RedisAdapterError::InvalidConfig(reason.to_owned()));
        if self.heartbeat_interval.is_zero() || self.heartbeat_timeout < self.heartbeat_interval * 2 {
            return invalid("heartbeat_timeout must be at least twice a non-zero heartbeat_interval");
        }
        if self.publish_queue == 0 || self.max_pending_requests == 0 {
            return invalid("publish_queue and max_pending_requests must be at least 1");
        }
        if self.prefix.is_empty() || self.prefix.contains('#') {
            return invalid("prefix must be non-empty and without '#'");
        }
        Ok(())
    }
}
