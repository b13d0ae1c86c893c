//! Presence for `network-core`: who has a view open.
//!
//! A client opens a named view (a document, a page); every client with the same view open
//! learns who else has it open, and is told of changes as they happen. Attach the router to
//! a server with [`ViewsConfig::attach`]; the returned [`Presence`] answers questions
//! (`info(name)`, `info_matching(regex)`) from server code, and clients ask the same over the
//! wire. The client side is [`client`].
//!
//! ```no_run
//! use views::ViewsConfig;
//! use ws_server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//! let presence = ViewsConfig::default()
//!     .authorize(|connection, view| async move {
//!         if view.starts_with("admin-") && connection.identity().is_none() {
//!             Err("log in first".to_owned())
//!         } else {
//!             Ok(())
//!         }
//!     })
//!     .attach(&server)?;
//! if let Some(info) = presence.info("doc-7", false) {
//!     println!("{} clients, {} users", info.clients, info.users.len());
//! }
//! # Ok(()) }
//! ```
//!
//! # Members, diffs and fan-out
//! A connection with a user id counts under its user: a user with three tabs on a view is
//! one member with three clients. Opening a view answers the full member list; after that
//! the members get diffs (members that appeared or changed, keys that left), coalesced over
//! [`ViewsConfig::diff_interval`] into one frame per view, so a view with 5,000 members
//! never resends its list on each change. Diffs are encoded once and broadcast through the
//! network's adapter to the view's room, `views:{name}`.
//!
//! A connection leaves its views when it closes, drops or times out. The wire protocol is
//! `docs/PROTOCOL.md`, section 6.
//!
//! # What peers may learn
//! A peer's `info` request sees only the views [`ViewsConfig::authorize_info`] allows it,
//! by default the views [`ViewsConfig::authorize`] would let it open; debug answers (with
//! connection ids) need [`ViewsConfig::authorize_debug`], which allows nobody by default;
//! and a pattern's answer covers at most [`ViewsConfig::max_info_views`] views (100), with
//! `"truncated": true` when more matched. Server code asking through [`Presence`] is the
//! application itself and gets everything.
//!
//! # Limits per connection
//! A connection has at most [`ViewsConfig::max_views_per_connection`] views open (256): an
//! `open` beyond is answered with code `limit` ([`protocol::codes::LIMIT`]), and a `close`
//! frees a slot.

pub mod client;
pub mod protocol;
mod server;

pub use protocol::{Member, UserCount, ViewInfo};
pub use server::{PatternError, Presence, SetupError, ViewsConfig};
