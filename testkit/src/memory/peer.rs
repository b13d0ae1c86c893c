//! A connection whose frames the test writes, and whose outgoing frames it checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use network_core::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionMeta, Identity, Link, Message,
    SendError,
};

use super::{MemoryNetwork, transport};

/// Called with each frame a network sends to a [`RawPeer`] (to check it; it goes no
/// further).
pub type OnSend = Arc<dyn Fn(&Message) + Send + Sync>;

struct RawLink {
    on_send: OnSend,
    close_requested: Arc<AtomicBool>,
}

impl Link for RawLink {
    fn send(&self, message: Message) -> Result<(), SendError> {
        (self.on_send)(&message);
        Ok(())
    }

    fn close(&self, _frame: CloseFrame) {
        self.close_requested.store(true, Ordering::Relaxed);
    }
}

/// One peer of a [`MemoryNetwork`] driven by the test itself: its connection while open,
/// and how to open it again (with a new [`ConnectionId`]). What the network sends it goes
/// to its [`OnSend`]; what it sends, the test hands over with [`deliver`](Self::deliver).
///
/// On a server network it stands for a client; on a client network, for the link to the
/// server (open it with `restoring` as a client does).
pub struct RawPeer {
    identity: Option<Identity>,
    on_send: OnSend,
    open: Option<(Connection, ClosedSignal)>,
    close_requested: Arc<AtomicBool>,
}

impl std::fmt::Debug for RawPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawPeer")
            .field("identity", &self.identity)
            .field("connection", &self.open.as_ref().map(|(connection, _)| connection.id()))
            .finish()
    }
}

impl RawPeer {
    /// A peer with `identity` (set on each of its connections, as a handshake hook would)
    /// whose incoming frames go to `on_send`.
    pub fn new(identity: Option<Identity>, on_send: OnSend) -> Self {
        Self { identity, on_send, open: None, close_requested: Arc::new(AtomicBool::new(false)) }
    }

    /// The open connection, if any.
    pub fn connection(&self) -> Option<&Connection> {
        self.open.as_ref().map(|(connection, _)| connection)
    }

    /// Opens the connection unless it is open, and returns it once every router of
    /// `network` has been handed its `Added` (handled it, when `restoring`).
    pub async fn open(&mut self, network: &MemoryNetwork, restoring: bool) -> Connection {
        if let Some((connection, _)) = &self.open {
            return connection.clone();
        }
        let link = RawLink { on_send: self.on_send.clone(), close_requested: self.close_requested.clone() };
        let (connection, signal) =
            Connection::new(ConnectionId::next(), ConnectionMeta::new("/"), Arc::new(link));
        if let Some(identity) = &self.identity {
            connection.set_identity(identity.clone());
        }
        transport::added(network, &connection, restoring).await;
        self.open = Some((connection.clone(), signal));
        connection
    }

    /// Hands `message` to `network` as a frame from this peer, waiting while the target
    /// queue is full. Panics when the connection is not open.
    pub async fn deliver(&self, network: &MemoryNetwork, message: Message) {
        let Some((connection, _)) = &self.open else { panic!("deliver: the peer is not connected") };
        transport::deliver(network, connection, message).await;
    }

    /// Closes the connection as a transport does (1006): its `closed()` fires, it leaves
    /// every room, and the routers are handed `Removed`. Nothing when it is not open.
    pub async fn close(&mut self, network: &MemoryNetwork) {
        if let Some((connection, signal)) = self.open.take() {
            let frame = CloseFrame::new(CloseCode::ABNORMAL, "");
            signal.fire(frame.clone());
            network.adapter.leave_all_now(connection.id());
            transport::removed(network, &connection, frame).await;
        }
    }

    /// Whether the network asked to close one of this peer's connections.
    pub fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Relaxed)
    }
}
