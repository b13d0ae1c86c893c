//! The thin async layer: the router task feeding the shared state machine.

use std::sync::Arc;

use network_core::client::fan_out;
use network_core::{Network, NetworkEvent, Router, envelope};

use super::state::{Action, Listener, Shared, end_listeners};
use crate::protocol::{Frame, ROUTER};

/// The client's sync router. Dropping it (the network detaches its routers when it closes
/// for good) fails every waiter with `Closed` and ends every stream.
pub(super) struct ClientRouter {
    shared: Arc<Shared>,
}

impl ClientRouter {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn on_frame(&self, frame: Frame) {
        match self.shared.on_frame(frame) {
            Action::Nothing => {}
            Action::End(listeners) => end_listeners(listeners),
            Action::Deliver { message, listeners, done } => {
                // Collections apply the message at once; their change streams, like the
                // message streams, are then fed with backpressure.
                let mut streams = Vec::with_capacity(listeners.len());
                let mut deliveries = Vec::new();
                for listener in listeners {
                    match listener {
                        Listener::Stream(sender) => streams.push(sender),
                        Listener::Mirror(mirror) => deliveries.extend(mirror.apply(&message)),
                    }
                }
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
                fan_out(streams, message).await;
                for delivery in deliveries {
                    delivery.await;
                }
            }
        }
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
                Ok(frame) => self.on_frame(frame).await,
                Err(error) => {
                    tracing::warn!(?error, ?message, "malformed sync frame from the server ignored")
                }
            },
            _ => {}
        }
    }
}
