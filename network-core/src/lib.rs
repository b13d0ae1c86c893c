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
//! [`Hub`] (through the hub's [`HubDriver`]). The hub reads the frame's envelope ([`envelope`]) and hands it to the router
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
//! # Writing a transport
//! A transport (a server, a client, an in-memory network for tests) implements [`Network`]
//! over a [`HubDriver`], its own side of the [`Hub`]: applications and routers reach the
//! hub through [`Network::hub`] (connections, routers, the event stream); only the
//! transport, holding the driver, reports connections and frames.
//!
//! 1. Create the driver once with [`HubDriver::new`], choosing with [`UntakenEvents`]
//!    what becomes of the application's events until it takes [`Network::events`]. Build
//!    the adapter over `driver.hub().registry()`.
//! 2. Implement [`Network::hub`] as `driver.hub()`, and keep the driver to yourself.
//! 3. For each connection, make a [`Connection`] over your [`Link`] with
//!    [`Connection::new`]. Then, from the connection's own task (so that its events stay in
//!    order): [`HubDriver::connection_added`]; [`HubDriver::message`] for each data frame
//!    (it answers heartbeats and routes by envelope, and waits while the target queue is
//!    full: stop reading the socket meanwhile); once closed, fire the [`ClosedSignal`] and
//!    call [`HubDriver::connection_removed`].
//! 4. When the network stops for good, [`HubDriver::detach_all`].
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use network_core::{
//!     CloseCode, CloseFrame, Connection, ConnectionId, ConnectionMeta, Hub, HubConfig, HubDriver,
//!     Link, LocalAdapter, Message, Network, NetworkEvent, SendError, UntakenEvents,
//! };
//!
//! /// Connections in memory.
//! #[derive(Clone)]
//! struct MemoryNetwork {
//!     driver: HubDriver,
//!     adapter: LocalAdapter,
//! }
//!
//! impl Network for MemoryNetwork {
//!     type Adapter = LocalAdapter;
//!
//!     fn hub(&self) -> &Hub {
//!         self.driver.hub()
//!     }
//!
//!     fn adapter(&self) -> &LocalAdapter {
//!         &self.adapter
//!     }
//! }
//!
//! /// The peer's end: keeps what it is sent.
//! #[derive(Default)]
//! struct Peer(Mutex<Vec<Message>>);
//!
//! impl Link for Peer {
//!     fn send(&self, message: Message) -> Result<(), SendError> {
//!         self.0.lock().unwrap().push(message);
//!         Ok(())
//!     }
//!
//!     fn close(&self, _frame: CloseFrame) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let driver = HubDriver::new(HubConfig::default(), UntakenEvents::Discard);
//! let adapter = LocalAdapter::new(driver.hub().registry().clone());
//! let network = MemoryNetwork { driver, adapter };
//! let mut events = network.events().unwrap();
//!
//! let peer = Arc::new(Peer::default());
//! let (connection, closed) = Connection::new(ConnectionId::next(), ConnectionMeta::default(), peer.clone());
//! network.driver.connection_added(&connection, false).await;
//! network.driver.message(&connection, Message::text("hello")).await;
//! assert_eq!(network.broadcast_local(&Message::text("to everyone here")), 1);
//! let frame = CloseFrame::new(CloseCode::NORMAL, "");
//! closed.fire(frame.clone());
//! network.driver.connection_removed(&connection, frame).await;
//!
//! assert!(matches!(events.recv().await, Some(NetworkEvent::Added(_))));
//! assert!(matches!(events.recv().await, Some(NetworkEvent::Message { .. })));
//! assert!(matches!(events.recv().await, Some(NetworkEvent::Removed { .. })));
//! assert_eq!(peer.0.lock().unwrap().len(), 1);
//! # }
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
pub mod metrics;
mod network;
pub mod ordered;
mod remote_error;
pub mod resume;
mod router;
pub mod session;
mod sync;

pub use adapter::{Adapter, AdapterFactory, ClusterInbox, ClusterMessage, LocalAdapter, Room, Target};
pub use connection::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionIds, ConnectionMeta, Identity,
    Link, NodeId,
};
pub use error::{AdapterError, AttachError, Constraint, DecodeError, EncodeError, InvalidConfig, SendError};
pub use hub::{Hub, HubConfig, HubDriver, Registry, UntakenEvents};
pub use message::{Message, Text};
pub use network::{Events, Network, NetworkEvent};
pub use ordered::OrderedExecutor;
pub use remote_error::RemoteError;
pub use router::Router;

pub use bytes::Bytes;
pub use http;
