//! Channels, rooms, identity rooms and acknowledged events: a router for `network-core`.
//!
//! Several channels (like socket.io namespaces: `/`, `/admin`, `/chat`) share one
//! WebSocket connection. A [`Channel`] decides who may join ([`Channel::on_join`], which
//! can refuse: a private channel) and handles named events ([`Channel::on`]) with
//! error-first acknowledgements. Rooms live inside channels. A connection with an
//! identity is put in the rooms `user.{userId}` and `session.{sessionId}` of every channel
//! it joins, so that a [`Messenger`], usable from anywhere in the application, reaches a
//! user wherever that user is connected:
//!
//! ```no_run
//! use channels::{Channel, ChannelsConfig};
//! use ws_server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//! let chat = Channel::new().on("say", |ctx, text: String| async move {
//!     let _ = ctx.broadcast_to_room("lobby", "said", &text).await;
//!     Ok(())
//! });
//! let messenger = ChannelsConfig::default().channel("/chat", chat).attach(&server)?;
//! // Later, from an HTTP handler: every tab of user 42, on channel `/`.
//! messenger.emit_to_user("42", "notify", &serde_json::json!({"text": "approved"})).await?;
//! # Ok(()) }
//! ```
//!
//! The wire protocol (router `ch`) is in `docs/PROTOCOL.md`, section 5.
//!
//! # Ordering and backpressure
//! The router decodes each frame once and queues joins, leaves and events per
//! connection; a connection's frames are handled one at a time, in arrival order (an
//! event sent right after a join is handled after it), while different connections are
//! handled concurrently. A task runs only while a connection has queued work, so idle
//! connections cost no task. At most `max_queued_frames` frames wait at once; beyond
//! that the router stops reading, which holds back the sockets.
//!
//! # Rooms and the adapter
//! Every room is an adapter room named `{channel}#{room}` (the channel's own member list
//! is the room `{channel}`), so all fan-out goes through the network's adapter and spans
//! nodes when the adapter does.
//!
//! # Limits per connection
//! A peer must not grow the server's state without bound. A connection is in at most
//! [`ChannelsConfig::max_channels_per_connection`] channels (64, `/` included; a `join`
//! beyond is answered with code `limit`) and in at most
//! [`ChannelsConfig::max_rooms_per_connection`] rooms put there by
//! [`Messenger::join_room`] (256; beyond, it fails with [`EmitError::TooManyRooms`], which a
//! hook or handler returns with `?` to answer the client `limit`). Leaving a channel or a
//! room frees its slot.

pub mod client;
mod cluster;
mod error;
mod messenger;
pub mod protocol;
mod server;
mod state;

pub use error::{AckError, EmitError, RemoteError, SetupError, codes};
pub use messenger::{Messenger, RoomAcks};
pub use server::{Channel, ChannelsConfig, EventContext, JoinContext};
