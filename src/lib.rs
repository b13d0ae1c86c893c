//! Realtime applications over WebSockets: one import for the whole workspace.
//!
//! - [`network_core`]: messages, connections, the `Network` and `Router` traits, rooms.
//! - [`ws_server`]: the server, on a port, an existing listener, or inside an axum app.
//! - [`ws_client`]: the reconnecting client, for a CLI or a service.
//! - [`channels`]: the channels router: rooms, identity rooms, events with acknowledgements.
//! - [`views`]: the views router: presence, who has a view open.
//! - [`sync`]: the sync router: models and collections by path, server push, CRUD.
//! - `redis_adapter` (feature `redis`): several server nodes sharing rooms over Redis.
//!
//! The crates can also be used on their own; this package exists so that the examples and
//! the cross-crate tests of the workspace have one home.
//!
//! # A first example
//!
//! A server that sends every frame back, and a client that says hello:
//!
//! ```
//! use realtime::network_core::{Message, Network, NetworkEvent};
//! use realtime::ws_client::{Client, ClientConfig};
//! use realtime::ws_server::{Server, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//! let mut server_events = server.events().ok_or("the events were taken")?;
//! tokio::spawn(async move {
//!     while let Some(event) = server_events.recv().await {
//!         if let NetworkEvent::Message { connection, message } = event {
//!             let _ = connection.send(message);
//!         }
//!     }
//! });
//!
//! let url = format!("ws://{}", server.local_addr().ok_or("the server has no address")?);
//! let client = Client::connect(url.as_str(), ClientConfig::default())?;
//! let mut client_events = client.events().ok_or("the events were taken")?;
//! // Sent once the connection is open: the client queues it meanwhile.
//! client.send(Message::text("hello"))?;
//! while let Some(event) = client_events.recv().await {
//!     if let NetworkEvent::Message { message, .. } = event {
//!         assert_eq!(message, Message::text("hello"));
//!         break;
//!     }
//! }
//! client.close().await;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Next: the quick start (the example server and the browser client, rooms, presence and
//! sync in a page) in the README, linked below; `examples/` holds one runnable program per
//! use, each listed in the README with its command.
#![doc = concat!(
    "\nQuick start: [`README.md`, *Quick start*](",
    env!("CARGO_PKG_REPOSITORY"),
    "#quick-start)."
)]

pub use channels;
pub use network_core;
#[cfg(feature = "redis")]
pub use redis_adapter;
pub use sync;
pub use views;
pub use ws_client;
pub use ws_server;

/// The README's code blocks, compiled and run as doc tests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
