//! The `Network` trait: what servers and clients have in common.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;

use crate::adapter::Adapter;
use crate::connection::{CloseFrame, Connection, ConnectionId};
use crate::error::AttachError;
use crate::hub::Hub;
use crate::message::Message;
use crate::router::Router;

/// Something that happened on a network, in the order it happened for each connection:
/// `Added`, then that connection's messages, then `Removed`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NetworkEvent {
    /// A connection opened (on a client: the link to the server opened or reopened).
    Added(Connection),
    /// A frame arrived from `connection`.
    Message {
        /// The sender.
        connection: Connection,
        /// The frame, still in its envelope when it is for a router.
        message: Message,
    },
    /// A connection closed; `frame` says why (code 1006 when no close frame was exchanged).
    Removed {
        /// The connection that closed.
        connection: Connection,
        /// Code and reason.
        frame: CloseFrame,
    },
}

impl NetworkEvent {
    /// The connection the event is about.
    pub fn connection(&self) -> &Connection {
        match self {
            Self::Added(connection) | Self::Message { connection, .. } | Self::Removed { connection, .. } => {
                connection
            }
        }
    }
}

/// A set of connections that frames arrive from and go to: a server (many peers) or a
/// client (one link to its server). Routers are written against this trait, so that one
/// router runs on either side.
///
/// Implementations keep their connections and routers in a [`Hub`], which they report to
/// through its [`HubDriver`](crate::HubDriver); the provided methods are written in terms
/// of the hub. See "Writing a transport" in the [crate docs](crate).
pub trait Network: Clone + Send + Sync + 'static {
    /// How this network addresses groups of connections (rooms). The in-memory
    /// [`LocalAdapter`](crate::LocalAdapter) by default; an adapter spanning several
    /// server nodes can replace it without changing any router.
    type Adapter: Adapter;

    /// The hub holding this network's connections, routers and application events.
    fn hub(&self) -> &Hub;

    /// The room adapter.
    fn adapter(&self) -> &Self::Adapter;

    /// The connections open now.
    fn connections(&self) -> Vec<Connection> {
        self.hub().connections()
    }

    /// The open connection with this id.
    fn connection(&self, id: ConnectionId) -> Option<Connection> {
        self.hub().connection(id)
    }

    /// Sends `message` to every open connection of this network, on this node only;
    /// returns how many accepted it. On a cluster node,
    /// [`adapter().broadcast(&Target::everyone(), ..)`](Adapter::broadcast) reaches every
    /// node.
    ///
    /// The message is shared, not copied, between connections.
    fn broadcast_local(&self, message: &Message) -> usize {
        let accepted = self
            .hub()
            .connections()
            .iter()
            .filter(|connection| connection.send_batched(message).is_ok())
            .count();
        crate::metrics::sent(message, accepted);
        accepted
    }

    /// Attaches `router`: from now on it receives every connection's `Added` and `Removed`
    /// events and the frames whose envelope names it, in its own task.
    fn attach<R: Router<Self>>(&self, router: R) -> Result<(), AttachError> {
        self.hub().attach(self.clone(), router)
    }

    /// The stream of events no router claimed: connections added and removed, and
    /// application frames. It can be taken once; later calls return `None`.
    ///
    /// Until it is taken, events never wait for room, so that a network driven only by
    /// routers never stalls on a queue nobody reads: a server discards them (with a debug
    /// log), a client keeps the first ones, up to
    /// [`HubConfig::event_queue_capacity`](crate::HubConfig::event_queue_capacity), so that
    /// taking the stream right after connecting misses nothing (see
    /// [`UntakenEvents`](crate::UntakenEvents)). Once taken, the queue is bounded and a
    /// full queue holds back the connections' readers (TCP backpressure): nothing is
    /// dropped.
    fn events(&self) -> Option<Events> {
        self.hub().take_events()
    }
}

/// The stream of [`NetworkEvent`]s that no router claimed. See [`Network::events`].
#[derive(Debug)]
pub struct Events {
    pub(crate) receiver: mpsc::Receiver<NetworkEvent>,
}

impl Events {
    /// The next event; `None` once the network has shut down.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        self.receiver.recv().await
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<NetworkEvent> {
        self.receiver.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = NetworkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NetworkEvent>> {
        self.receiver.poll_recv(cx)
    }
}
