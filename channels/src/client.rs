//! The client side of the channels router: join channels, emit events with or without
//! acknowledgement, receive the server's events, and answer its requests, over any
//! [`Network`] with one connection, such as `ws_client::Client`.
//!
//! ```no_run
//! use channels::RemoteError;
//! use channels::client::{ChannelsClient, ChannelsClientConfig};
//! use ws_client::{Client, ClientConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("ws://127.0.0.1:9000/ws", ClientConfig::default())?;
//! let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default())?;
//! let chat = channels.channel("/chat")?;
//! chat.join().await?; // waits for the link, then for the server's `joined`
//!
//! let mut said = chat.on::<String>("said"); // what the server emits on /chat
//! chat.emit("say", "hello")?; // fire and forget
//! let count: u64 = chat.emit_with_ack("count", &()).await?; // request and answer
//! chat.handle("ping", |n: u64| async move { Ok::<_, RemoteError>(n + 1) }); // the server asks
//!
//! while let Some(text) = said.recv().await {
//!     println!("{count}: {}", text?);
//! }
//! # Ok(()) }
//! ```
//!
//! The wire protocol is in `docs/PROTOCOL.md`, section 5; this module speaks its client
//! side. [`ChannelsClient::attach`] attaches a router named `ch` to the network and
//! returns a cheap handle; [`ChannelsClient::channel`] gives a [`Channel`] handle per path.
//!
//! # Channels
//! The server puts every connection in the root channel `/` by itself, so
//! [`ChannelsClient::root`] needs no join. [`Channel::join`] asks for another channel
//! and waits for the answer: joined, or refused (`unknown_channel`, `forbidden`). A
//! joined channel is *wanted*: after every reconnect the router sends its `join` again
//! while the client restores, so these joins reach the server before the frames queued
//! while the link was down. [`Channel::leave`] forgets it.
//!
//! # Events
//! [`Channel::emit`] sends an event and forgets it; the server reports a failure (a
//! channel not joined, no handler) with an `error` frame that ends up on
//! [`ChannelsClient::errors`]. [`Channel::emit_with_ack`] waits for the server's `ack`:
//! its data, or its error (error-first), within
//! [`ack_timeout`](ChannelsClientConfig::ack_timeout). [`Channel::on`] returns a stream of
//! the payloads of one event name; several streams of one event each get every payload.
//! [`Channel::handle`] answers the server's events that carry an `id` (the server waits
//! for an `ack`); without a handler they are answered `no_handler`.
//!
//! # Backpressure and bounds
//! Every queue is bounded by a field of [`ChannelsClientConfig`]. An [`EventStream`] that
//! is full makes the router wait for its reader, and the client stops reading its socket
//! meanwhile: nothing is dropped, but a stream nobody reads stalls every incoming frame.
//! Handlers run in tasks of their own, at most
//! [`max_concurrent_handlers`](ChannelsClientConfig::max_concurrent_handlers) at once
//! (the router waits for a free slot). Acknowledgements waiting at once are capped by
//! [`max_pending_acks`](ChannelsClientConfig::max_pending_acks). The
//! [`ErrorStream`]s never hold the router back: a full one loses the newest errors.
//!
//! # Reconnects
//! Ids are per connection: the server never answers, on a new connection, a request made
//! on the old one. So when the link drops (the router sees `Removed`), every pending
//! [`emit_with_ack`](Channel::emit_with_ack) fails with
//! [`AckError::Closed`]; the event may or may not have been handled. Frames sent while
//! the link is down wait in the client's offline queue and go out, after the rejoins, on
//! the next connection. A [`join`](Channel::join) in progress is not failed: the join is
//! sent again on the next connection and its answer settles it, within
//! [`join_timeout`](ChannelsClientConfig::join_timeout). A rejoin that the server refuses
//! is reported on [`errors`](ChannelsClient::errors) and the channel is forgotten.
//!
//! # Before the first connection
//! A network has no connection to queue frames on before its first one opens (a
//! `ws_client::Client` just created is still connecting). Until then
//! [`emit`](Channel::emit) fails with [`EmitError::NoConnection`], while
//! [`join`](Channel::join) and [`emit_with_ack`](Channel::emit_with_ack) wait for it
//! within their timeouts; [`ChannelsClient::ready`] waits for it. From the first
//! connection on, frames are queued by the client while the link is down.
//!
//! # Closing
//! When the network closes for good (`ws_client::Client::close`, or its last handle
//! dropped), it detaches the router: every waiting call fails with `Closed` and every
//! stream ends.

mod config;
mod error;
mod router;
mod state;
mod stream;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use network_core::client::answer_within;
use network_core::session;
use network_core::{AttachError, Message, Network, envelope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, timeout_at};

pub use self::config::ChannelsClientConfig;
pub use self::error::{BackgroundError, InvalidChannel, JoinError, LeaveError};
use self::state::{ChannelsCore, Handler};
pub use self::stream::{ErrorStream, EventStream};
use crate::error::{AckError, EmitError, RemoteError};
use crate::protocol::{ROOT, ROUTER, valid_channel, valid_name};

/// The client side of the channels router, attached to a network: a cheap handle, `Send
/// + Sync`, whose clones all share one router. See the [module docs](self).
///
/// The router is meant for a network with one connection (a client); it treats the last
/// connection it saw open as the link to the server.
#[derive(Clone)]
pub struct ChannelsClient {
    core: Arc<ChannelsCore>,
}

impl fmt::Debug for ChannelsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelsClient").field("config", &self.core.config).finish_non_exhaustive()
    }
}

impl ChannelsClient {
    /// Attaches the channels router (named `ch`) to `network` and returns its handle.
    ///
    /// Fails when a router named `ch` is attached already, or with
    /// [`AttachError::InvalidConfig`] naming a field of `config` out of its range.
    /// Needs a tokio runtime (the router runs in a task of its own).
    pub fn attach<N: Network>(network: &N, config: ChannelsClientConfig) -> Result<Self, AttachError> {
        let core = ChannelsCore::new(config.validated()?);
        session::attach(network, core.clone())?;
        Ok(Self { core })
    }

    /// The channel `path` (`/` then up to 127 of `A-Z a-z 0-9 _ - . /`).
    pub fn channel(&self, path: &str) -> Result<Channel, InvalidChannel> {
        if !valid_channel(path) {
            return Err(InvalidChannel(path.to_owned()));
        }
        Ok(Channel { core: self.core.clone(), path: path.into() })
    }

    /// The root channel `/`, which every connection is in without joining.
    pub fn root(&self) -> Channel {
        Channel { core: self.core.clone(), path: ROOT.into() }
    }

    /// A new stream of the problems no caller waits for: `error` frames that answer no
    /// request, and rejoins refused after a reconnect. See [`ErrorStream`] for its bound.
    pub fn errors(&self) -> ErrorStream {
        ErrorStream::new(self.core.subscribe_errors())
    }

    /// Waits until the router knows the network's connection: at once when it does, else
    /// until the first connection opens. `false` if the network closed for good first.
    ///
    /// From then on [`Channel::emit`] queues frames even while the link is down.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self) -> bool {
        self.core.session.ready().await
    }

    /// The options the router runs with.
    pub fn config(&self) -> &ChannelsClientConfig {
        &self.core.config
    }
}

/// A handle to one channel of a [`ChannelsClient`]: cheap to clone, `Send + Sync`.
///
/// Made by [`ChannelsClient::channel`] or [`ChannelsClient::root`]. Dropping it changes
/// nothing: the membership, streams and handlers belong to the client.
#[derive(Clone)]
pub struct Channel {
    core: Arc<ChannelsCore>,
    path: Arc<str>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("path", &self.path).finish()
    }
}

/// The body of an `emit` frame, borrowing the payload so that it is serialised once.
/// Same shape as [`Frame::Emit`](crate::protocol::Frame::Emit).
#[derive(Serialize)]
#[serde(tag = "t", rename = "emit")]
struct EmitFrame<'a, P: ?Sized> {
    ch: &'a str,
    ev: &'a str,
    data: &'a P,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
}

impl Channel {
    /// The channel path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the server confirmed the join on the current connection (for `/`: whether
    /// the link is up).
    pub fn is_joined(&self) -> bool {
        self.core.is_joined(&self.path)
    }

    /// Joins the channel: sends `join` and waits for `joined` (or the refusal), at most
    /// [`join_timeout`](ChannelsClientConfig::join_timeout).
    ///
    /// From this call on the channel is wanted: it is joined again after every reconnect,
    /// until [`leave`](Self::leave) or a refusal. While the link is down the join waits
    /// for the next connection. Joining a channel joined already returns at once; joining
    /// `/` always does. See [`JoinError`] for the failures.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the channel stays wanted and is joined
    /// when the server answers.
    pub async fn join(&self) -> Result<(), JoinError> {
        if &*self.path == ROOT {
            return Ok(());
        }
        let Some(answer) = self.core.join(&self.path)? else {
            return Ok(());
        };
        answer_within(self.core.config.join_timeout, answer, Err(JoinError::Closed), JoinError::Timeout).await
    }

    /// Leaves the channel: forgets it at once (it is no longer joined after reconnects, and
    /// joins of it still waiting fail with [`JoinError::Left`]) and, when the link is up,
    /// sends `leave` and waits for `left`, at most
    /// [`join_timeout`](ChannelsClientConfig::join_timeout). While the link is down there
    /// is nothing to tell the server (a new connection starts in `/` only).
    ///
    /// The server's `not_joined` counts as success. Leaving `/` lasts until the next
    /// reconnect, since the server puts every new connection in `/`.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the channel is forgotten and the leave
    /// is sent anyway.
    pub async fn leave(&self) -> Result<(), LeaveError> {
        let Some((id, answer)) = self.core.leave(&self.path)? else {
            return Ok(());
        };
        let _pending = self.core.session.pending(id);
        answer_within(self.core.config.join_timeout, answer, Err(LeaveError::Closed), LeaveError::Timeout)
            .await
    }

    /// Emits `event` with `payload` and returns without waiting for anything.
    ///
    /// Ok means the frame is in the client's outgoing queue (written at once, or on the
    /// next connection while the link is down), not that the server handled it: the
    /// server reports failures with an `error` frame, which [`ChannelsClient::errors`]
    /// delivers. Fails with [`EmitError::InvalidName`] for an invalid event name,
    /// [`EmitError::Encode`] when the payload does not serialise,
    /// [`EmitError::NoConnection`] before the network's first connection (see the
    /// [module docs](self#before-the-first-connection)), and [`EmitError::Send`] when the
    /// client's queue is full or the client closed.
    pub fn emit<P: Serialize + ?Sized>(&self, event: &str, payload: &P) -> Result<(), EmitError> {
        let message = self.encode_emit(event, payload, None)?;
        let connection = self.core.session.connection().ok_or(EmitError::NoConnection)?;
        connection.send(message)?;
        Ok(())
    }

    /// Emits `event` with `payload` and waits for the server's acknowledgement, at most
    /// [`ack_timeout`](ChannelsClientConfig::ack_timeout); see
    /// [`emit_with_ack_timeout`](Self::emit_with_ack_timeout).
    ///
    /// # Cancel safety
    /// See [`emit_with_ack_timeout`](Self::emit_with_ack_timeout).
    pub async fn emit_with_ack<T, P>(&self, event: &str, payload: &P) -> Result<T, AckError>
    where
        T: DeserializeOwned,
        P: Serialize + ?Sized,
    {
        self.emit_with_ack_timeout(event, payload, self.core.config.ack_timeout).await
    }

    /// Emits `event` with `payload` and waits, at most `limit` in all, for the server's
    /// `ack`, decoded as `T` (`()` for an answer without data).
    ///
    /// Error-first: the handler's error comes back as [`AckError::Remote`] (with its code:
    /// `not_joined`, `no_handler`, `bad_request`, `internal`, or the application's own).
    /// [`AckError::Timeout`] when no answer came within `limit` (a later one is ignored);
    /// [`AckError::Closed`] when the link dropped before the answer, in which case the
    /// event may or may not have been handled, or when the network closed for good;
    /// [`AckError::TooManyPending`] when
    /// [`max_pending_acks`](ChannelsClientConfig::max_pending_acks) are waiting already;
    /// [`AckError::Decode`] when the answer is not a `T`; [`AckError::Emit`] when the
    /// emit could not be sent (see [`emit`](Self::emit); before the first connection this
    /// waits for it instead, within `limit`).
    ///
    /// # Cancel safety
    /// Dropping the future forgets the request (a later answer is ignored); the emit itself
    /// may have been sent already.
    pub async fn emit_with_ack_timeout<T, P>(
        &self,
        event: &str,
        payload: &P,
        limit: Duration,
    ) -> Result<T, AckError>
    where
        T: DeserializeOwned,
        P: Serialize + ?Sized,
    {
        let deadline = Instant::now() + limit;
        let id = self.core.session.allocate_id();
        let message = self.encode_emit(event, payload, Some(id))?;
        match timeout_at(deadline, self.core.session.ready()).await {
            Ok(true) => {}
            Ok(false) => return Err(AckError::Closed),
            Err(_) => return Err(AckError::Timeout(limit)),
        }
        let answer = self.core.start_ack(id, message)?;
        let _pending = self.core.session.pending(id);
        match timeout_at(deadline, answer).await {
            Ok(Ok(Ok(data))) => serde_json::from_value(data).map_err(AckError::Decode),
            Ok(Ok(Err(error))) => Err(AckError::Remote(error)),
            Ok(Err(_)) => Err(AckError::Closed),
            Err(_) => Err(AckError::Timeout(limit)),
        }
    }

    /// A new stream of the payloads of `event` on this channel, decoded as `T`. Every
    /// stream of an event gets every payload; a dropped stream is unsubscribed.
    ///
    /// Only events the server emits without acknowledgement arrive here; those with an
    /// `id` go to [`handle`](Self::handle). An invalid event name never matches. Read the
    /// stream, or drop it: see [`EventStream`] on backpressure.
    pub fn on<T: DeserializeOwned>(&self, event: &str) -> EventStream<T> {
        if !valid_name(event) {
            tracing::warn!(channel = %self.path, event, "invalid event name: the stream will stay empty");
        }
        EventStream::new(self.core.clone(), (self.path.to_string(), event.to_owned()))
    }

    /// Answers the server's `event` requests (emits with an `id`) on this channel with
    /// `handler`, replacing a previous handler of the event.
    ///
    /// The payload is decoded as `T` (a payload that does not decode is answered
    /// `bad_request`); `Ok(value)` is sent as the `ack`'s data, `Err(error)` as its
    /// `err`. Each call runs in a task of its own, at most
    /// [`max_concurrent_handlers`](ChannelsClientConfig::max_concurrent_handlers) at once;
    /// a handler that panics is answered `internal`. An answer is sent only on the
    /// connection the request came on: after a reconnect the server no longer waits for
    /// it.
    pub fn handle<T, R, F, Fut>(&self, event: &str, handler: F)
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, RemoteError>> + Send + 'static,
    {
        if !valid_name(event) {
            tracing::warn!(channel = %self.path, event, "invalid event name: the handler will never run");
        }
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |data| {
            let handler = handler.clone();
            Box::pin(async move {
                let payload: T = serde_json::from_value(data)
                    .map_err(|error| RemoteError::bad_request(error.to_string()))?;
                let answer = handler(payload).await?;
                serde_json::to_value(answer)
                    .map_err(|error| RemoteError::internal(format!("cannot encode the answer: {error}")))
            })
        });
        self.core.set_handler((self.path.to_string(), event.to_owned()), erased);
    }

    /// Removes the handler of `event`; returns whether there was one. Later requests for
    /// it are answered `no_handler`.
    pub fn remove_handler(&self, event: &str) -> bool {
        self.core.remove_handler(&(self.path.to_string(), event.to_owned()))
    }

    fn encode_emit<P: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &P,
        id: Option<u64>,
    ) -> Result<Message, EmitError> {
        if !valid_name(event) {
            return Err(EmitError::InvalidName(event.to_owned()));
        }
        let frame = EmitFrame { ch: &self.path, ev: event, data: payload, id };
        Ok(envelope::json(ROUTER, &frame)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Frame;

    #[test]
    fn borrowed_emits_have_the_shape_of_frames() {
        for id in [None, Some(7)] {
            let borrowed = EmitFrame { ch: "/chat", ev: "say", data: &serde_json::json!({"a": [1]}), id };
            let owned =
                Frame::Emit { ch: "/chat".into(), ev: "say".into(), data: serde_json::json!({"a": [1]}), id };
            assert_eq!(serde_json::to_string(&borrowed).unwrap(), serde_json::to_string(&owned).unwrap());
        }
        let unit = serde_json::to_string(&EmitFrame { ch: "/", ev: "ping", data: &(), id: None }).unwrap();
        assert_eq!(unit, r#"{"t":"emit","ch":"/","ev":"ping","data":null}"#);
    }
}
