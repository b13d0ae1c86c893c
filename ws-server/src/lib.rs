//! A WebSocket server on tokio that implements [`network_core::Network`], with its own
//! upgrade and frame reader (tungstenite serves the accept key and a relay's sockets).
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
//! # TLS
//! With the `tls` feature (off by default; rustls with its `ring` provider, no aws-lc),
//! `ServerConfig::tls` makes [`Server::bind`] and [`Server::from_listener`] serve
//! `wss://`: each socket's TLS handshake counts as a pending handshake, within
//! `handshake_timeout`. With `axum` too, `Server::axum_tls_listener` does the same for an
//! axum app (HTTPS and WSS on one port). The crate re-exports `rustls` to build the
//! configuration with the same version.
//!
//! # Handshake
//! A [`HandshakeHook`] sees every upgrade request (path, query, headers, cookies) and
//! accepts it, attaching an [`Identity`](network_core::Identity), or refuses it with an
//! HTTP status before the upgrade. Before the hook, the request must be a well-formed
//! HTTP/1.1 upgrade (400 otherwise) and, when [`ServerConfig::allowed_origins`] is set,
//! come from one of those origins (403 otherwise). By default every origin is accepted:
//! set the list on any server that browsers reach and that trusts cookies.
//!
//! # One-time tokens
//! Browsers cannot set headers on a WebSocket, so [`TokenStore`] lets the application
//! issue a single-use token from its own authenticated REST route; the client sends it as
//! `?token=` (or `Authorization: Bearer`), and
//! `ServerConfig::default().handshake(tokens.handshake_hook())` attaches the token's
//! identity to the connection, or answers 401 to a reused, expired or unknown token.
//! Tokens live [`TokenConfig::ttl`], the store holds at most [`TokenConfig::max_tokens`]
//! and each identity at most [`TokenConfig::max_tokens_per_identity`] unused ones, and
//! secrets are compared in constant time.
//!
//! # The write path
//! Server frames are unmasked, so a frame's bytes are the same for every recipient: a
//! header of 2 to 10 bytes and the message's shared payload, written with one vectored
//! write and never copied. A reply (`Connection::send`) is written straight to the socket
//! when nothing is queued. A broadcast (`Connection::send_batched`, what adapters use)
//! appends to the connection's queue and hands it to the server's flusher, which writes
//! everything queued meanwhile once the broadcasting task yields: a burst of broadcasts
//! costs each connection one write. What the socket does not take at once is left to the
//! connection's writer task, which waits for the socket to become writable.
//!
//! # Compression
//! permessage-deflate (RFC 7692) is negotiated with every client that offers it (every
//! browser does) unless [`ServerConfig::compression`] is `None`. The server always answers
//! with no context takeover in both directions, so each message is compressed and inflated
//! on its own and no compression state lives in a connection: one compressor and one
//! inflater per runtime thread serve them all. Messages of at least
//! [`Compression::min_size`] bytes are compressed where they are sent (the router's or
//! application's task, not the connection's), and a broadcast is compressed once: the
//! first member's outbox compresses, the others on that thread find the result by the
//! payload's address. A compressed message from a client is inflated with a bound
//! ([`ServerConfig::max_message_size`], 1009 past it, checked as it inflates) and its
//! inflated bytes count against [`ServerConfig::max_total_incoming_size`].
//!
//! # Session resume
//! A client that asks (`?session=new`, which `ws_client::ClientConfig::resume` does) gets a
//! connection that outlives its socket (PROTOCOL.md section 9): when the socket is lost
//! without a close frame, the connection stays registered for
//! [`ServerConfig::resume_window`] (same id, rooms and router state; no `Removed`, no leave
//! in any view) and the frames sent to it are kept, up to [`ServerConfig::max_replay_size`]
//! bytes of payload. A reconnect with the session's token gets every frame it missed, in
//! order, once, and sends every frame the server lacked, once. In a cluster the client may
//! come back to any node: that node carries the socket for the session's owner. Past the
//! window (or the bound) the session ends with a normal `Removed`.
//!
//! # Backpressure and limits
//! A burst must not cost healthy readers their connection, and no peer may grow the
//! server's memory without bound:
//! - Each outgoing queue has a soft bound, [`ServerConfig::outgoing_queue_size`]. A
//!   connection over it whose socket then takes no byte for
//!   [`ServerConfig::slow_consumer_timeout`] is dropped as a slow consumer (1008 "slow
//!   consumer"); one that keeps reading is never dropped for being behind, up to the hard
//!   bound [`ServerConfig::max_outgoing_queue_size`] (1008 "outgoing queue full", and the
//!   send fails with [`SendError::Full`](network_core::SendError::Full)). Messages are never
//!   skipped.
//! - The publisher is slowed instead: a message read from a socket keeps counting against
//!   its sender until its last copy is written (a relay or a broadcast shares the payload),
//!   and a sender with more than the soft bound of its messages still queued, while some
//!   receiver is over its soft bound, is not read until that clears.
//! - All outgoing queues together have a budget, [`ServerConfig::max_total_outgoing_size`]:
//!   past it no socket is read. Incoming messages not complete yet (fragments, a large frame
//!   arriving) draw on [`ServerConfig::max_total_incoming_size`]; a connection whose partial
//!   message finds it spent is closed with 1013.
//! - Each connection has a [`RateLimit`] (messages and bytes per second, token buckets): a
//!   sender over it is not read until its buckets refill, and is closed with 1008 only if
//!   it stays over for [`RateLimit::close_after`].
//! - Upgrades: [`ServerConfig::handshake_timeout`] for the whole request head,
//!   [`ServerConfig::max_handshake_size`] (431), and at most
//!   [`ServerConfig::max_pending_handshakes`] sockets in their handshake (the oldest is
//!   closed past it). The axum mount gets the same limits from `Server::axum_listener`.
//!
//! # Close codes
//! A message over [`ServerConfig::max_message_size`] closes with 1009, invalid UTF-8 in a
//! text frame with 1007, other protocol violations with 1002; only that connection is
//! affected. After such a close frame the server reads and discards the peer's input until
//! it closes (at most 64 MiB, at most [`ServerConfig::close_timeout`]), so that the peer
//! reads the reason instead of a reset. A peer silent for [`ServerConfig::idle_timeout`]
//! is dropped (1006 "idle timeout"). [`Server::shutdown`] sends 1001 to everyone and waits
//! with a deadline.

#[cfg(feature = "axum")]
mod axum;
mod compress;
mod config;
mod connection;
mod error;
mod flusher;
mod frame;
#[cfg(feature = "axum")]
mod guarded;
mod handshake;
mod metrics;
mod outbox;
mod pending;
mod pressure;
mod rate;
mod reader;
mod relay;
mod resume;
mod server;
#[cfg(feature = "tls")]
mod tls;
mod tokens;

pub use config::{Compression, ServerConfig};
pub use error::ServerError;
#[cfg(feature = "axum")]
pub use guarded::{GuardedListener, GuardedStream, RemoteAddr};
pub use handshake::{Accept, HandshakeHook, HandshakeRequest, Reject};
pub use rate::RateLimit;
/// The rustls this crate serves TLS with (feature `tls`), to build
/// [`ServerConfig::tls`] with the same version.
#[cfg(feature = "tls")]
pub use rustls;
pub use server::{Server, ServerStats};
#[cfg(all(feature = "tls", feature = "axum"))]
pub use tls::TlsListener;
pub use tokens::{OneTimeToken, TokenConfig, TokenError, TokenStore};
