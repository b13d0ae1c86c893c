//! A WebSocket server on tokio-tungstenite that implements [`network_core::Network`].
//!
//! Start it on an address, on an existing listener, or inside an existing axum app, attach
//! routers, and read the events no router claimed:
//!
//! ```no_run
//! use network_core::{Message, Network, NetworkEvent};
//! use ws_server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default()).await?;
//! let mut events = server.events().expect("taken once");
//! while let Some(event) = events.recv().await {
//!     match event {
//!         NetworkEvent::Added(connection) => println!("{} joined", connection.id()),
//!         NetworkEvent::Message { connection, message } => {
//!             let _ = connection.send(Message::text(format!("echo: {message:?}")));
//!         }
//!         NetworkEvent::Removed { connection, frame } => println!("{} left: {frame}", connection.id()),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Starting
//! [`Server::bind`] (port 0 allowed, [`Server::local_addr`] tells the real one),
//! [`Server::from_listener`] for a `tokio::net::TcpListener`,
//! [`Server::from_std_listener`] for a `std::net::TcpListener`, and with the `axum`
//! feature [`Server::detached`] plus `Server::axum_route` to mount it as a route of an
//! axum app on the app's own port. [`Server::serve_stream`] serves one stream accepted
//! elsewhere (TLS, a Unix socket).
//!
//! # Handshake
//! A [`HandshakeHook`] sees every upgrade request (path, query, headers, cookies) and
//! accepts it, attaching an [`Identity`](network_core::Identity), or refuses it with an
//! HTTP status before the upgrade.
//!
//! # One-time tokens
//! Browsers cannot set headers on a WebSocket, so [`TokenStore`] lets the application
//! issue a single-use token from its own authenticated REST route; the client sends it as
//! `?token=` (or `Authorization: Bearer`), and
//! `ServerConfig::default().handshake(tokens.handshake_hook())` attaches the token's
//! identity to the connection, or answers 401 to a reused, expired or unknown token.
//! Tokens live [`TokenConfig::ttl`], the store holds at most [`TokenConfig::max_tokens`],
//! and secrets are compared in constant time.
//!
//! # The write path
//! Server frames are unmasked, so a frame's bytes are the same for every recipient: a
//! header of 2 to 10 bytes and the message's shared payload, written with one vectored
//! write and never copied. A broadcast (`Connection::send_batched`, what adapters use)
//! appends to the connection's bounded queue and wakes its writer when the queue was
//! empty; the writer drains everything pending, so a burst of broadcasts costs each
//! connection one write. A reply (`Connection::send`) is written straight to the socket
//! when nothing is queued. A connection whose queue passes
//! [`ServerConfig::outgoing_queue_size`] is a slow consumer: the send fails with
//! [`SendError::Full`](network_core::SendError::Full) and the connection is dropped (its
//! `Removed` event says 1008 "outgoing queue full"); messages are never skipped.
//!
//! # Close codes
//! A message over [`ServerConfig::max_message_size`] closes with 1009, invalid UTF-8 in a
//! text frame with 1007, other protocol violations with 1002; only that connection is
//! affected. A peer silent for [`ServerConfig::idle_timeout`] is dropped (1006 "idle
//! timeout"). [`Server::shutdown`] sends 1001 to everyone and waits with a deadline.

#[cfg(feature = "axum")]
mod axum;
mod config;
mod connection;
mod error;
mod flusher;
mod frame;
mod handshake;
mod outbox;
mod server;
mod tokens;

pub use config::ServerConfig;
pub use error::ServerError;
pub use handshake::{Accept, HandshakeHook, HandshakeRequest, Reject};
pub use server::Server;
pub use tokens::{TokenConfig, TokenError, TokenStore};
