//! Errors of joining a cluster, and why a packet did not reach Redis.

use std::sync::Arc;

use network_core::{AdapterError, InvalidConfig};

/// A node could not join its cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisAdapterError {
    /// A [`RedisConfig`](crate::RedisConfig) value is out of range; the error names the
    /// field. Fix the configuration.
    #[error(transparent)]
    InvalidConfig(#[from] InvalidConfig),
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis could not be reached at all: the connection was refused (nothing listens on
    /// that address: is Redis running?), or the host is unknown or unreachable. Check the
    /// URL and that Redis is up.
    #[error("cannot connect to redis")]
    Unreachable(#[source] redis::RedisError),
    /// Redis did not answer within the command timeout (it accepted a connection, or the
    /// attempt itself hung).
    #[error("redis did not answer within the command timeout")]
    Timeout,
    /// Every node number tried was held by a live node.
    #[error("no free node number (tried {0})")]
    NoFreeNodeNumber(usize),
}

/// Why a packet did not reach Redis. The adapter hands its text on in
/// `AdapterError::NotPublished` and `AdapterError::Unavailable`.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// This node is leaving the cluster: after its goodbye nothing more is sent.
    #[error("this node is leaving the cluster")]
    Leaving,
    /// The goodbye was queued already.
    #[error("already left")]
    Left,
    /// The publish queue is at `publish_queue`.
    #[error("publish queue full")]
    QueueFull,
    /// The publisher task has ended (the adapter shut down).
    #[error("cluster adapter stopped")]
    Stopped,
    /// Redis refused the pipeline; shared by every packet in it.
    #[error(transparent)]
    Redis(Arc<redis::RedisError>),
    /// Redis did not answer the pipeline within `command_timeout`.
    #[error("redis did not answer in time")]
    Timeout,
}

/// Whatever did not reach Redis did not reach the other nodes: the backend is unavailable.
impl From<PublishError> for AdapterError {
    fn from(error: PublishError) -> Self {
        AdapterError::Unavailable(error.to_string())
    }
}
