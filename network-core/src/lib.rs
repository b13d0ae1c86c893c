//! The interface of the realtime workspace: messages, connections, the [`Network`] trait,
//! the [`Router`] plug-in point and the room [`Adapter`] seam.
//!
//! This crate knows nothing of sockets. `ws-server` and `ws-client` implement
//! [`Network`]; features (presence, sync, rooms) are [`Router`]s written once against the
//! trait, so the same router runs on a server and on a client.
//!
//! # Messages
//! A [`Message`] is one WebSocket data frame: text (JSON by convention) or binary
//! (MessagePack by convention, or raw bytes). Payloads are shared [`bytes::Bytes`]: a
//! broadcast to ten thousand connections clones a pointer ten thousand times and copies
//! the payload never.
//!
//! # Connections
//! A [`Connection`] is a cheap handle with a [`ConnectionId`], handshake
//! [`ConnectionMeta`], an optional [`Identity`], a non-blocking [`Connection::send`], and
//! [`Connection::close`] paired with [`Connection::closed`]. Transports implement [`Link`]
//! behind it.
//!
//! # Networks, routers and envelopes
//! A network reports every connection's `Added`, its frames and its `Removed` to its
//! [`Hub`]. The hub reads the frame's envelope ([`envelope`]) and hands it to the router
//! it names, or else to the application's [`Events`] stream. Every queue on the way is
//! bounded and full queues push back on the sockets: nothing is dropped between a socket
//! and a router.
//!
//! ```
//! use network_core::{envelope, Message};
//! let frame = envelope::json("views", &serde_json::json!({"t": "open"})).unwrap();
//! assert_eq!(envelope::router_name(&frame), Some("views"));
//! assert_eq!(envelope::router_name(&Message::text("hello")), None);
//! ```
//!
//! # Heartbeats
//! Every network answers the frame `{"$r":"hb","d":{"t":"ping","id":N}}` with a `pong`
//! itself, whatever routers are attached ([`heartbeat`]): browsers cannot use WebSocket
//! pings, and this lets them tell a dead server from a quiet one.
//!
//! # Remote errors
//! Every router reports a peer's failure as the same [`RemoteError`]: a `code` and a
//! `message`.
//!
//! # Client-side helpers
//! [`client`] holds what the client sides of routers share: [`client::fan_out`] feeds
//! bounded streams with backpressure, [`client::ErrorSubscribers`] feeds `errors()`
//! streams without ever blocking the router.
//!
//! # Router clients' sessions
//! [`session`] holds the session lifecycle of every router's client side, once: a router
//! client implements [`session::SessionState`] over its own protocol state (what a new
//! session re-sends, what an ended one fails, how a frame is applied) and
//! [`session::attach`] runs it. The [`session::Session`] owns the lock, the
//! [`session::ServerLink`] to the server, reconnects (an `Added` without `Removed`, a stale
//! `Removed`), adopting a connection opened before the router was attached, and the close
//! that ends everything without the lock held.
//!
//! # Rooms
//! Routers and applications reach groups of connections through [`Network::adapter`].
//! [`LocalAdapter`] keeps rooms in memory; an adapter spanning several nodes replaces it
//! without touching any router.

pub mod adapter;
pub mod client;
mod connection;
pub mod envelope;
mod error;
pub mod heartbeat;
pub mod hub;
mod message;
mod network;
pub mod ordered;
mod remote_error;
mod router;
pub mod session;
mod sync;

pub use adapter::{Adapter, AdapterFactory, ClusterInbox, ClusterMessage, LocalAdapter, Room, Target};
pub use connection::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionIds, ConnectionMeta, Identity,
    Link, NodeId,
};
pub use error::{AdapterError, AttachError, Constraint, DecodeError, EncodeError, InvalidConfig, SendError};
pub use hub::{Hub, HubConfig, Registry};
pub use message::{Message, Text};
pub use network::{Events, Network, NetworkEvent};
pub use ordered::OrderedExecutor;
pub use remote_error::RemoteError;
pub use router::Router;

pub use bytes::Bytes;
pub use http;
