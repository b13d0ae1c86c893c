//! A reconnecting WebSocket client implementing `network-core`'s
//! [`Network`](network_core::Network), to embed in a CLI or a long-running service.
//!
//! [`Client::connect`] returns at once; a background task connects, reconnects with an
//! exponential backoff, and keeps **one** logical
//! [`Connection`](network_core::Connection) for the client's whole
//! life. The application's events are kept from the start until it takes them, so
//! taking [`events`](network_core::Network::events) right after `connect`, as below,
//! misses nothing, even a first connection that opened and closed meanwhile. Messages sent while the link is down wait in a bounded offline queue and go out,
//! in order, once it is back. Routers written against `Network` run on it unchanged and
//! restore their server-side state after every reconnect before the queue is flushed.
//!
//! ```no_run
//! use network_core::{Network, NetworkEvent};
//! use ws_client::{Client, ClientConfig, ClientEvent};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::connect("ws://127.0.0.1:9000/ws", ClientConfig::default())?;
//!     let mut lifecycle = client.lifecycle();
//!     let mut events = client.events().expect("events are taken once");
//!     tokio::spawn(async move {
//!         while let Ok(event) = lifecycle.recv().await {
//!             if let ClientEvent::Reconnecting { delay, .. } = event {
//!                 eprintln!("reconnecting in {delay:?}");
//!             }
//!         }
//!     });
//!
//!     client.send("hello")?; // queued now, written once connected
//!     while let Some(event) = events.recv().await {
//!         if let NetworkEvent::Message { message, .. } = event {
//!             println!("{:?}", message.as_text());
//!             break;
//!         }
//!     }
//!     client.close().await;
//!     Ok(())
//! }
//! ```
//!
//! # Reconnection
//! The schedule and the names are those of the npm package `reconnecting-websocket`
//! ([`ClientConfig`] lists them with their defaults). The first connection is attempted
//! at once. Attempt `n >= 1` (the `n`-th retry) waits
//! `min(max_reconnection_delay, min_reconnection_delay * grow^(n-1))` (see [`Backoff`]),
//! shortened by a random fraction only when [`ClientConfig::jitter`] is set. The retry
//! count starts over only once a connection has stayed open for `min_uptime`, so a server
//! that accepts and drops at once still sees growing delays. After `max_retries` failed
//! retries the client emits [`ClientEvent::RetriesExhausted`] and waits for
//! [`Client::reconnect`]. An attempt (TCP, TLS, WebSocket handshake) fails after
//! `connection_timeout`; a [`UrlProvider`] can hand out a fresh URL (a one-time token)
//! before every attempt.
//!
//! A server's close frame is passed to [`ClientConfig::should_reconnect`]; `false` stops
//! reconnecting ([`ClientEvent::ReconnectDeclined`]) until [`Client::reconnect`]. A server
//! that stays silent for `idle_timeout` (no frame, pings included) is considered dead;
//! after `ping_interval` of silence the client pings it, and it answers the server's
//! pings by itself.
//!
//! # Sending and the offline queue
//! [`Client::send`] (or `Connection::send`, which routers use) never waits. Every
//! message goes through one queue, bounded by `max_enqueued_messages` and
//! `max_enqueued_bytes`: while the link is open a socket task drains it at once, while it
//! is down it holds the messages. Past either bound the send fails with
//! [`SendError::Full`](network_core::SendError::Full) and the message comes back; after
//! [`Client::close`], with [`SendError::Closed`](network_core::SendError::Closed). Nothing
//! is dropped silently: only a message whose [offline policy](#offline-policy-per-message)
//! asks for it is dropped, and the call or the log says so.
//!
//! **Delivery guarantee.** Messages leave the queue in order and at most once. A message
//! counts as sent when the socket task takes it from the queue to write it: messages still
//! queued when a socket dies stay queued, in order, for the next connection; a message
//! already taken (in the socket task's write buffer or the kernel's) is not written again, so it may
//! be lost with the socket but is never duplicated. With [session
//! resume](#session-resume) on, delivery becomes exactly once in both directions across
//! drops. [`Client::flush`] waits until the queue has been written to the socket.
//!
//! # Offline policy per message
//! [`Client::send_with`] takes an [`Offline`] policy that says what happens to a message
//! while the link is down; [`Client::send`] is [`Offline::Buffer`].
//!
//! | policy | while the link is down | still queued later |
//! |---|---|---|
//! | [`Offline::Buffer`] | queued | written once routers restored |
//! | [`Offline::Volatile`] | dropped: [`Sent::Dropped`] | dropped when its link closes |
//! | [`Offline::Latest(key)`](Offline::Latest) | queued; the queued message with `key` is removed ([`Sent::Replaced`]) | written |
//! | [`Offline::Expire(ttl)`](Offline::Expire) | queued | skipped once `ttl` has passed since the send |
//!
//! While restoring, the application's volatile messages are dropped too: only router
//! frames are written then. A `Latest` message goes to the **end** of the queue, so the
//! server receives the messages in the order they were sent, some left out, never
//! reordered. The bounds hold for every policy, with the same
//! [`SendError::Full`](network_core::SendError::Full); a send that meets a bound first
//! discards the expired messages, and a `Latest` replacement counts the room it frees.
//! Expired messages are logged at debug level with their count. Frames that routers send
//! through `Connection::send` (restore frames and the rest) are buffered, as before: the
//! [`Link`](network_core::Link) they go through takes no policy. The browser client
//! offers the same policies as `client.send(data, {offline})`.
//!
//! # Reconnects and routers
//! On every (re)connect the client resets the connection's closed state, reports
//! `Added` to the hub with `restoring = true`, and waits until every router has handled
//! it. Frames a router sends meanwhile (recognised with
//! [`network_core::hub::is_restoring`]) are written first, before the offline queue; then
//! the queue, then normal traffic, and [`ClientEvent::Open`] is emitted. Restore frames
//! of a socket that dies before they are written are dropped: the next `Added` restores
//! again. Restore frames have a queue of their own, with the same bounds. A router must
//! not wait for a server reply inside its `Added` handler (frames are not read until every
//! router has restored).
//!
//! Incoming data frames go to [`HubDriver::message`](network_core::HubDriver::message),
//! which applies backpressure: while a router or the application's event queue is full
//! (once taken) the client stops reading. On disconnect the connection's `closed()` fires and routers see `Removed`
//! with the close frame (1006 when none was exchanged), then the backoff begins.
//!
//! # Session resume
//! With [`ClientConfig::resume`] the client asks the server for a resumable session
//! (PROTOCOL.md section 9). Both ends then count the frames they exchange and acknowledge
//! them; the client keeps what it wrote until the server acknowledges it (counted against
//! the queue's bounds). When a socket is lost without a close frame, the routers are not
//! told: the client reconnects with its session token, the server answers `resumed` with
//! how many frames it has, and each side sends exactly what the other lacks, in order.
//! Routers see no `Removed`/`Added`, restore nothing, and their requests in flight stay
//! valid; the application sees [`ClientEvent::Resumed`] instead of `Open`. When the server
//! refuses (the window passed, the server restarted, its replay buffer overflowed), the
//! routers get the `Removed` they were owed and restore as after any reconnect, and the
//! application gets [`ClientEvent::Reset`] with the reason and how many frames it sent
//! that were never confirmed. A close frame from either side ends the session.
//!
//! # Lifecycle events
//! [`Client::lifecycle`] is a bounded broadcast of [`ClientEvent`]s (connecting, open,
//! resumed or reset, failed, closed, reconnecting with its delay, retries exhausted). A receiver that lags
//! loses the oldest events; the client never waits for it.
//!
//! # Closing and dropping
//! [`Client::close`] (or `close_with`) closes for good: sends fail from then on, queued
//! messages are dropped (call [`Client::flush`] first), the close frame is sent and the
//! server's awaited for up to `close_timeout`, routers see `Removed` and are detached.
//! Dropping the last [`Client`] handle held by the application does the same in the
//! background, with code 1001. The handles that routers receive through
//! [`Network::attach`](network_core::Network::attach) do not count: the client tracks
//! application handles with a guard that routers' handles do not carry, so attached
//! routers never keep a client alive.
//!
//! # Compression
//! With [`ClientConfig::compression`] (on by default, as in browsers) every upgrade
//! request offers permessage-deflate (RFC 7692) without context takeover in either
//! direction, and the server decides. Once it accepts, messages of at least
//! [`Compression::min_size`] bytes (1 KiB by default) go compressed (even those that do
//! not shrink, as the server does), with the window the server asked for
//! (`client_max_window_bits`); compressed messages from the server are inflated, and one that would inflate beyond
//! `max_message_size` is refused with 1009 as soon as it passes it, before it is fully
//! inflated. No compression state lives in a connection: each message is compressed and
//! inflated on its own, by one compressor and one inflater per thread. An answer the RFC
//! tells a client to refuse (an extension not offered, an invalid parameter) fails the
//! attempt with [`ConnectError::Extension`].
//!
//! # The wire
//! The client does its own upgrade (HTTP/1.1 with `httparse`) and its own frames: they are
//! read with the parser the server uses (`ws-protocol`, reading as a client: unmasked
//! frames only) and written masked with a fresh random mask per frame. Protocol
//! violations from the server (1002), invalid text (1007) and messages over
//! `max_message_size` (1009) are answered with a close frame of that code; every ping gets
//! a pong carrying its payload.
//!
//! # TLS
//! `wss://` uses rustls (through `tokio-rustls`) with the `ring` provider chosen explicitly
//! and the Mozilla roots of `webpki-roots`, so no process-wide crypto provider needs to be
//! installed.

mod backoff;
mod client;
mod config;
mod driver;
mod error;
mod event;
mod frames;
mod offline;
mod resume;
mod socket;
mod state;
mod tls;
mod url;

pub use backoff::Backoff;
pub use client::Client;
pub use config::{ClientConfig, Compression, ShouldReconnect};
pub use error::{ConfigError, ConnectError, FlushError, HandshakeError, NegotiationError};
pub use event::ClientEvent;
pub use offline::{Offline, Sent};
/// The rustls `wss://` is served with, to build [`ClientConfig::tls`] with the same version.
pub use rustls;
pub use url::{UrlProvider, UrlSource};
