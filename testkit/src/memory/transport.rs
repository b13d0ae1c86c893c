//! The kit's only calls into the transport side of the [`Hub`](network_core::Hub):
//! reporting connections and frames, and detaching routers. Kept in one place because
//! these calls are moving to a transport-side driver handle.

use network_core::{CloseFrame, Connection, Message, Network};

use super::MemoryNetwork;

/// `connection` opened (`restoring`: a client's link reopened, see
/// `network_core::hub::is_restoring`); returns once every router has been handed `Added`
/// (and, when restoring, has handled it).
pub(super) async fn added(network: &MemoryNetwork, connection: &Connection, restoring: bool) {
    network.hub().connection_added(connection, restoring).await;
}

/// A frame arrived from `connection`.
pub(super) async fn deliver(network: &MemoryNetwork, connection: &Connection, message: Message) {
    network.hub().message(connection, message).await;
}

/// `connection` closed with `frame`.
pub(super) async fn removed(network: &MemoryNetwork, connection: &Connection, frame: CloseFrame) {
    network.hub().connection_removed(connection, frame).await;
}

/// The network closed for good.
pub(super) fn detach_all(network: &MemoryNetwork) {
    network.hub().detach_all();
}
