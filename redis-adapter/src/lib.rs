//! A room adapter that makes several server nodes act as one, over Redis pub/sub.
//!
//! ```text
//!  clients ─ node A ─┐                      ┌─ node B ─ clients
//!   (rooms of A's    ├── {prefix}#all ──────┤   (rooms of B's
//!    connections)    └── {prefix}#node#{n} ─┘    connections)
//! ```
//!
//! Each node keeps the rooms of its own connections in memory, exactly as a standalone
//! server does, and tells the others only what crosses nodes. A broadcast is delivered
//! to this node's members, then published once on `{prefix}#all`; every other node
//! delivers it to its members. Questions (`members`, `rooms_of`, `join` of another node's
//! connection) go to the nodes that own the connections, answers come back on the asking
//! node's own channel. Every node has exactly one subscription, on one dedicated Redis
//! connection, whatever the number of rooms and connections; commands go through one
//! multiplexed, reconnecting connection.
//!
//! # Joining
//! [`RedisCluster::connect`] claims a free node number (a Redis key with a time to live,
//! renewed by heartbeats), which the server puts into every connection id
//! (`network_core::ConnectionIds`), so ids are unique across the cluster and a node knows
//! which node owns any id. Nodes learn of each other by heartbeats (and a hello when a
//! node joins); a node silent for `heartbeat_timeout` is dead to the others.
//!
//! # Faults
//! - Redis away: broadcasts fail with `AdapterError::NotPublished` (after reaching this
//!   node's members), questions with `Unavailable` or `Timeout`; the node resubscribes by
//!   itself with backoff, re-takes its node number, says hello, and carries on. Nothing
//!   is buffered and replayed: at most once across an outage.
//! - A node that crashes stops beating: the others drop it after `heartbeat_timeout`
//!   (checked every `heartbeat_interval`) and report `ClusterEvent::NodeDown`.
//! - A subscription that looks alive but delivers nothing (half-open TCP) is caught by
//!   the node's own heartbeats not coming back, and replaced.
//!
//! # Ordering
//! Broadcasts from one node reach every node in the order that node made them (one
//! publisher, one pipeline, sequence numbers checked on receipt). There is no order
//! between nodes.
//!
//! # One-time tokens
//! [`RedisTokenStore`] keeps the handshake's one-time tokens in the same Redis, under the
//! same prefix, so that a token any node issued is accepted, once, by any node: no sticky
//! sessions behind a load balancer. It has `ws_server::TokenStore`'s methods, format,
//! limits and 401 answers; Redis holds only a hash of each secret; while Redis is down
//! its handshake hook answers 503.
//!
//! The packet format and the channel layout are described in `docs/DESIGN.md`.

mod adapter;
mod commands;
mod config;
mod error;
mod lease;
mod node;
mod packet;
mod tokens;

pub use adapter::{RedisAdapter, RedisCluster};
pub use config::{ChannelLayout, RedisConfig};
pub use error::RedisAdapterError;
pub use node::ClusterEvent;
pub use tokens::{RedisTokenError, RedisTokenStore};
