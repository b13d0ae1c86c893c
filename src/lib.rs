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
