//! Errors of joining a cluster.

/// A node could not join its cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisAdapterError {
    /// The options contradict each other.
    #[error("invalid cluster configuration: {0}")]
    InvalidConfig(String),
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within the command timeout.
    #[error("redis did not answer within the command timeout")]
    Timeout,
    /// Every node number tried was held by a live node.
    #[error("no free node number (tried {0})")]
    NoFreeNodeNumber(usize),
}
