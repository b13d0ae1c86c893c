//! Realtime models and collections for `network-core`: path subscriptions, server push,
//! and create/read/update/delete with error-first replies.
//!
//! The server registers [`Route`]s for path patterns with named segments
//! (`/api/book/:id`). A route may have a model factory (called when the first client
//! subscribes to a path; the [`Model`] hears clients join and leave), CRUD handlers, the
//! collection its items belong to, and an authorization hook. Successful changes are pushed
//! to the subscribers of the path (and of the collection) automatically; anything else
//! pushes through the [`SyncHandle`].
//!
//! ```no_run
//! use serde_json::json;
//! use sync::{Route, SyncConfig};
//! use ws_server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//! let books = Route::new()
//!     .collection("/api/books")
//!     .read(|request| async move { Ok(json!({"id": request.params["id"], "title": "Dune"})) })
//!     .update(|request| async move { Ok(request.data) }); // pushed as `change` to subscribers
//! let sync = SyncConfig::default().route("/api/book/:id", books).attach(&server)?;
//! sync.push("/api/book/7", sync::protocol::Op::Change, &json!({"id": 7, "title": "Dune"})).await?;
//! # Ok(()) }
//! ```
//!
//! # Order and fan-out
//! One connection's frames are handled in order (a request sent right after a
//! subscription sees it), connections concurrently, with `max_queued_frames` bounding the
//! work in flight (`network_core::OrderedExecutor`). Every push is encoded once per path and
//! broadcast through the network's adapter to the path's room, `sync:{path}`; a push to a
//! model's several paths reaches each connection once.
//!
//! # Versioned subscriptions
//! A `sub` with `"snapshot":true` is answered with the path's value (its `read` handler's)
//! and a version, and every push on it carries the next version, counted per connection
//! and path: a client holds the pushes that arrive before the answer, applies those newer
//! than the snapshot, and resyncs when it sees a gap (PROTOCOL.md 7.3, rule 8). Those
//! pushes are encoded per connection; on an adapter spanning nodes, each push is also
//! published to the other nodes, which number it for their own connections.
//!
//! # Limits per connection
//! A connection holds at most [`SyncConfig::max_subscriptions_per_connection`]
//! subscriptions (256): a `sub` beyond is answered with code `limit`
//! ([`protocol::codes::LIMIT`]), and an `unsub` frees a slot.
//!
//! The wire protocol is `docs/PROTOCOL.md`, section 7; the client side is [`client`].

pub mod client;
pub mod protocol;
mod server;

pub use protocol::{Method, Op, RemoteError};
pub use server::{
    Access, Model, ModelContext, ModelRoom, Params, PushError, Request, Route, SetupError, SyncConfig,
    SyncHandle,
};
