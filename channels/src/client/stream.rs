//! The streams a client reads: events of one name on one channel, and background errors.

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
use super::state::{ChannelsCore, EventKey};

/// Removes its subscriber from the router when the stream is dropped.
struct Subscription {
    core: Arc<ChannelsCore>,
    key: EventKey,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.core.unsubscribe(&self.key, self.id);
    }
}

/// The payloads of the events the server emits (without acknowledgement) under one name on
/// one channel, decoded as `T`; made by [`Channel::on`](super::Channel::on).
///
/// Items are `Ok(payload)`, or `Err` for a payload that does not decode as `T` (reported,
/// not skipped). The stream ends when the network closes for good.
///
/// # Backpressure
/// The stream's queue holds [`event_queue_capacity`](super::ChannelsClientConfig::event_queue_capacity)
/// payloads. When it is full the router waits for the reader, and the client meanwhile
/// reads nothing more from its socket: a stream that nobody reads stalls every incoming
/// frame of the client, acknowledgements included. Drop a stream to unsubscribe.
pub struct EventStream<T> {
    receiver: mpsc::Receiver<Value>,
    subscription: Subscription,
    _payload: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("channel", &self.subscription.key.0)
            .field("event", &self.subscription.key.1)
            .field("queued", &self.receiver.len())
            .finish()
    }
}

impl<T: DeserializeOwned> EventStream<T> {
    pub(super) fn new(core: Arc<ChannelsCore>, key: EventKey) -> Self {
        let (id, receiver) = core.subscribe(key.clone());
        Self { receiver, subscription: Subscription { core, key, id }, _payload: PhantomData }
    }

    /// The next payload; `None` once the network has closed for good.
    ///
    /// # Cancel safety
    /// Cancel safe: a payload is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<Result<T, serde_json::Error>> {
        self.receiver.recv().await.map(serde_json::from_value)
    }

    /// The next payload if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<T, serde_json::Error>> {
        self.receiver.try_recv().ok().map(serde_json::from_value)
    }

    /// The channel path.
    pub fn channel(&self) -> &str {
        &self.subscription.key.0
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.subscription.key.1
    }
}

impl<T: DeserializeOwned> Stream for EventStream<T> {
    type Item = Result<T, serde_json::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().receiver.poll_recv(cx).map(|value| value.map(serde_json::from_value))
    }
}

/// Problems that no caller waits for (see [`BackgroundError`]); made by
/// [`ChannelsClient::errors`](super::ChannelsClient::errors).
///
/// Each stream has its own queue of
/// [`error_queue_capacity`](super::ChannelsClientConfig::error_queue_capacity). The router
/// never waits for it: when it is full, the **newest** error is dropped for that stream and
/// a warning is logged. Errors that happen while no stream exists are only logged. The
/// stream ends when the network closes for good.
pub type ErrorStream = network_core::client::ErrorStream<BackgroundError>;
