//! The kit's only calls into the transport side of the hub, its
//! [`HubDriver`](network_core::HubDriver): reporting connections and frames, and detaching
//! routers.

use network_core::{CloseFrame, Connection, Message};

use super::MemoryNetwork;

/// `connection` opened (`restoring`: a client's link reopened, see
/// `network_core::hub::is_restoring`); returns once every router has been handed `Added`
/// (and, when restoring, has handled it).
pub(super) async fn added(network: &MemoryNetwork, connection: &Connection, restoring: bool) {
    network.driver().connection_added(connection, restoring).await;
}

/// A frame arrived from `connection`.
pub(super) async fn deliver(network: &MemoryNetwork, connection: &Connection, message: Message) {
    network.driver().message(connection, message).await;
}

/// `connection` closed with `frame`.
pub(super) async fn removed(network: &MemoryNetwork, connection: &Connection, frame: CloseFrame) {
    network.driver().connection_removed(connection, frame).await;
}

/// The network closed for good.
pub(super) fn detach_all(network: &MemoryNetwork) {
    network.driver().detach_all();
}
