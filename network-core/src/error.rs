//! Errors of the core types.

use std::fmt;
use std::time::Duration;

use crate::connection::NodeId;
use crate::message::Message;

/// A message could not be serialised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// `serde_json` refused the value (a map with non-string keys, a failing `Serialize`).
    #[error("cannot encode as JSON")]
    Json(#[source] serde_json::Error),
    /// `rmp-serde` refused the value.
    #[error("cannot encode as MessagePack")]
    MessagePack(#[source] rmp_serde::encode::Error),
}

/// A message could not be decoded into the requested type.
///
/// Peers control these bytes: treat the error as bad input from that peer, never as a bug.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A text payload was not valid UTF-8.
    #[error("text is not valid UTF-8")]
    Utf8(#[source] std::str::Utf8Error),
    /// A text frame was not JSON of the expected shape.
    #[error("invalid JSON for the expected type")]
    Json(#[source] serde_json::Error),
    /// A binary frame was not MessagePack of the expected shape.
    #[error("invalid MessagePack for the expected type")]
    MessagePack(#[source] rmp_serde::decode::Error),
    /// The frame is not a router envelope, or names another router.
    #[error("not an envelope for router {expected:?}")]
    NotForRouter {
        /// The router that tried to decode it.
        expected: String,
    },
}

/// A message could not be handed to a connection. The message comes back to the caller,
/// as with tokio's `mpsc::error::TrySendError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection's outgoing queue is at its bound. On the server this also closes the
    /// connection (the slow-consumer policy, see `ws-server`); on the client nothing is
    /// closed and the caller may retry later.
    #[error("outgoing queue full")]
    Full(Message),
    /// The connection is closed or closing; nothing more will be sent on it.
    #[error("connection closed")]
    Closed(Message),
}

impl SendError {
    /// The message that was not sent.
    pub fn into_message(self) -> Message {
        match self {
            Self::Full(message) | Self::Closed(message) => message,
        }
    }
}

/// A router could not be attached to a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// Another router already uses this name; every router needs its own.
    #[error("a router named {0:?} is already attached")]
    NameTaken(String),
    /// Router names travel in every envelope and must be short and plain.
    #[error("invalid router name {0:?}: use 1 to 31 of a-z, 0-9, '_', '-', '.'")]
    InvalidName(String),
    /// The name belongs to the core (`hb`, the heartbeat every network answers itself,
    /// see [`heartbeat`](crate::heartbeat)); choose another name.
    #[error("router name {0:?} is reserved")]
    Reserved(String),
    /// The router's configuration has a value out of range (a router client's zero
    /// capacity, say); nothing was attached. Fix the named field.
    #[error(transparent)]
    InvalidConfig(#[from] InvalidConfig),
}

/// A configuration value is out of range: `field` (as named in the configuration struct,
/// `hub.event_queue_capacity` for a nested one) breaks `constraint`.
///
/// Every configuration of the workspace is checked once, where it is used (`bind`,
/// `connect`, `attach`, `TokenStore::new`), and a value out of range is refused with
/// this error, never clamped silently; the setters only store. See `docs/DESIGN.md`,
/// "One validation policy".
///
/// ```
/// use network_core::{Constraint, InvalidConfig};
/// let error = InvalidConfig::new("max_queued_frames", Constraint::Positive);
/// assert_eq!(error.to_string(), "invalid configuration: max_queued_frames must be positive");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field} {constraint}")]
#[non_exhaustive]
pub struct InvalidConfig {
    /// The field, as named in its configuration struct.
    pub field: &'static str,
    /// What its value must be.
    pub constraint: Constraint,
}

impl InvalidConfig {
    /// `field` breaks `constraint`.
    pub fn new(field: &'static str, constraint: Constraint) -> Self {
        Self { field, constraint }
    }

    /// Checks that a count, size or capacity is positive.
    ///
    /// # Errors
    /// [`Constraint::Positive`] for zero.
    pub fn require_positive(field: &'static str, value: usize) -> Result<(), Self> {
        if value == 0 { Err(Self::new(field, Constraint::Positive)) } else { Ok(()) }
    }

    /// Checks that a duration is positive.
    ///
    /// # Errors
    /// [`Constraint::Positive`] for zero.
    pub fn require_positive_duration(field: &'static str, value: Duration) -> Result<(), Self> {
        if value.is_zero() { Err(Self::new(field, Constraint::Positive)) } else { Ok(()) }
    }
}

/// What a configuration value must be; the text completes "`field` must ...".
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Constraint {
    /// Greater than zero: a queue that holds nothing never delivers, a timeout of zero
    /// expires at once.
    Positive,
    /// At least this many bytes.
    AtLeastBytes(u64),
    /// At most this long.
    AtMost(Duration),
    /// At least `times` the value of another field of the same configuration.
    AtLeastTimes {
        /// The other field.
        field: &'static str,
        /// The factor (1: at least that field).
        times: u32,
    },
    /// Of the form described (`scheme://host[:port]`, say).
    Form(&'static str),
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Positive => f.write_str("must be positive"),
            Self::AtLeastBytes(bytes) => write!(f, "must be at least {bytes} bytes"),
            Self::AtMost(max) => write!(f, "must be at most {max:?}"),
            Self::AtLeastTimes { field, times: 1 } => write!(f, "must be at least {field}"),
            Self::AtLeastTimes { field, times } => write!(f, "must be at least {times} times {field}"),
            Self::Form(form) => write!(f, "must be {form}"),
        }
    }
}

/// A room operation could not be carried out by the adapter.
///
/// The in-memory adapter never fails; an adapter that spans nodes (over Redis) reports here
/// what it could not publish, so that nothing is lost silently.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The shared backend (Redis) cannot be reached; the operation did not happen on other
    /// nodes. Retry later or report the failure to whoever asked for it.
    #[error("adapter backend unavailable: {0}")]
    Unavailable(String),
    /// A broadcast reached this node's connections (`delivered_locally` of them) but could
    /// not be published to the other nodes: their connections did not get it.
    #[error("delivered to {delivered_locally} local connections, not published to other nodes: {reason}")]
    NotPublished {
        /// How many of this node's connections accepted the message.
        delivered_locally: usize,
        /// Why it was not published.
        reason: String,
    },
    /// Some nodes did not answer a request in time; nothing partial is returned.
    #[error("no answer in time from {}", display_nodes(.missing))]
    Timeout {
        /// The nodes that did not answer.
        missing: Vec<NodeId>,
    },
}

fn display_nodes(nodes: &[NodeId]) -> String {
    nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
