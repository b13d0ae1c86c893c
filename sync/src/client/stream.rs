//! The streams a client reads: the messages of one path, raw or typed, and background
//! errors.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::BackgroundError;
use super::state::{Listener, SyncCore};
use crate::protocol::Op;

/// A change of what a path names, as a [`SyncStream`] delivers it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SyncMessage {
    /// The subscribed path.
    pub path: String,
    /// What happened: see [`Op`]. Always [`Op::Change`] for a snapshot.
    pub op: Op,
    /// The value: the model, or the collection item (for [`Op::Remove`], the item that
    /// left or the model that was deleted, as the server sent it). For a snapshot, the
    /// whole current value: the model, or for a collection a JSON array of every item.
    pub data: Value,
    /// `false` for a push of the server (a `data` frame). `true` for the path's whole
    /// value: the answer to
    /// [`Subscription::connect_with_snapshot`](super::Subscription::connect_with_snapshot)
    /// (and so [`Collection::start`](super::Collection::start)), the snapshot of the
    /// subscription the router renews after every reconnect
    /// (see [`read_after_resubscribe`](super::SyncClientConfig::read_after_resubscribe))
    /// or after a version gap, or the answer to
    /// [`Subscription::fetch`](super::Subscription::fetch). A snapshot replaces what
    /// the reader knew of the path: changes made while the link was down are in it, but not
    /// one by one.
    pub snapshot: bool,
}

/// A [`SyncMessage`] whose `data` was decoded as `T`, as a [`TypedSyncStream`] delivers
/// it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TypedMessage<T> {
    /// The subscribed path.
    pub path: String,
    /// What happened.
    pub op: Op,
    /// The value, decoded.
    pub data: T,
    /// Whether the message is a snapshot (see [`SyncMessage::snapshot`]).
    pub snapshot: bool,
}

impl<T: DeserializeOwned> TypedMessage<T> {
    fn decode(message: SyncMessage) -> Result<Self, serde_json::Error> {
        let SyncMessage { path, op, data, snapshot } = message;
        Ok(Self { path, op, data: serde_json::from_value(data)?, snapshot })
    }
}

/// Removes a listener from the router when its stream or collection is dropped.
pub(super) struct Registration {
    pub(super) core: Arc<SyncCore>,
    pub(super) path: Arc<str>,
    pub(super) id: Option<u64>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.core.remove_listener(&self.path, id);
        }
    }
}

/// The messages of one path: the server's pushes and the snapshots (see
/// [`SyncMessage::snapshot`]); made by [`Subscription::messages`](super::Subscription::messages).
///
/// Every stream of a path gets every message, from its creation on: create it before
/// [`connect`](super::Subscription::connect) to miss nothing. It ends when the
/// subscription ends ([`close`](super::Subscription::close), or a refusal) or the network
/// closes for good; messages already queued are still delivered. Drop it to stop
/// listening.
///
/// # Backpressure
/// The stream's queue holds
/// [`message_queue_capacity`](super::SyncClientConfig::message_queue_capacity) messages.
/// When it is full the router waits for the reader, and the client meanwhile reads nothing
/// more from its socket: a stream nobody reads stalls every incoming frame of the client,
/// replies included. Nothing is ever dropped.
pub struct SyncStream {
    receiver: mpsc::Receiver<SyncMessage>,
    registration: Registration,
}

impl fmt::Debug for SyncStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncStream")
            .field("path", &self.registration.path)
            .field("queued", &self.receiver.len())
            .finish()
    }
}

impl SyncStream {
    pub(super) fn new(core: Arc<SyncCore>, path: Arc<str>) -> Self {
        let (sender, receiver) = mpsc::channel(core.config.message_queue_capacity);
        let id = core.add_listener(&path, Listener::Stream(sender));
        Self { receiver, registration: Registration { core, path, id } }
    }

    /// The next message; `None` once the stream has ended.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<SyncMessage> {
        self.receiver.recv().await
    }

    /// The next message if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<SyncMessage> {
        self.receiver.try_recv().ok()
    }

    /// The path.
    pub fn path(&self) -> &str {
        &self.registration.path
    }

    /// The same stream, decoding each message's data as `T`.
    pub fn typed<T: DeserializeOwned>(self) -> TypedSyncStream<T> {
        TypedSyncStream { inner: self, _data: PhantomData }
    }
}

impl Stream for SyncStream {
    type Item = SyncMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SyncMessage>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

/// A [`SyncStream`] whose items are decoded as `T`; made by
/// [`Subscription::typed`](super::Subscription::typed) or [`SyncStream::typed`].
///
/// Items are `Ok(message)`, or `Err` for a message whose data does not decode as `T`
/// (reported, not skipped: the next item follows as usual). Same delivery, end and
/// backpressure as [`SyncStream`].
pub struct TypedSyncStream<T> {
    inner: SyncStream,
    _data: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for TypedSyncStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSyncStream").field("inner", &self.inner).finish()
    }
}

impl<T: DeserializeOwned> TypedSyncStream<T> {
    /// The next message; `None` once the stream has ended.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<Result<TypedMessage<T>, serde_json::Error>> {
        self.inner.recv().await.map(TypedMessage::decode)
    }

    /// The next message if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<TypedMessage<T>, serde_json::Error>> {
        self.inner.try_recv().map(TypedMessage::decode)
    }

    /// The path.
    pub fn path(&self) -> &str {
        self.inner.path()
    }
}

impl<T: DeserializeOwned> Stream for TypedSyncStream<T> {
    type Item = Result<TypedMessage<T>, serde_json::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().inner).poll_next(cx).map(|message| message.map(TypedMessage::decode))
    }
}

/// Problems that no caller waits for (see [`BackgroundError`]); made by
/// [`SyncClient::errors`](super::SyncClient::errors).
///
/// Each stream has its own queue of
/// [`error_queue_capacity`](super::SyncClientConfig::error_queue_capacity). The router
/// never waits for it: when it is full, the **newest** error is dropped for that stream and
/// a warning is logged. Errors that happen while no stream exists are only logged. The
/// stream ends when the network closes for good.
pub type ErrorStream = network_core::client::ErrorStream<BackgroundError>;
