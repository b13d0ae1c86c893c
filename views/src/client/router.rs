//! The thin async layer: the router task feeding the shared state machine.

use std::sync::Arc;

use network_core::client::fan_out;
use network_core::{Network, NetworkEvent, Router, envelope};

use super::state::{Action, Shared};
use crate::protocol::{Frame, ROUTER};

/// The client's views router. Dropping it (the network detaches its routers when it
/// closes for good) fails every waiter and ends every stream.
pub(super) struct ClientRouter {
    shared: Arc<Shared>,
}

impl ClientRouter {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Drop for ClientRouter {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl<N: Network> Router<N> for ClientRouter {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Added(connection) => self.shared.connected(connection),
            NetworkEvent::Removed { connection, .. } => self.shared.disconnected(connection.id()),
            NetworkEvent::Message { message, .. } => match envelope::decode::<Frame>(ROUTER, &message) {
                Ok(frame) => {
                    if let Action::Deliver { targets, change } = self.shared.on_frame(frame) {
                        // Waits while a stream is full (backpressure); a dropped stream is
                        // skipped.
                        fan_out(targets, change).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(?error, ?message, "malformed views frame from the server ignored")
                }
            },
            _ => {}
        }
    }
}
