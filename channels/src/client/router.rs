//! The thin async layer: the router task feeding the shared state machine.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use network_core::client::fan_out;
use network_core::{Network, NetworkEvent, Router, envelope};

use super::state::{Action, Shared};
use crate::error::RemoteError;
use crate::protocol::{Frame, ROUTER};

/// The client's channels router. Dropping it (the network detaches its routers when it
/// closes for good) fails every waiter with `Closed` and ends every stream.
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
            // Waits while a stream is full (backpressure); a dropped stream is skipped.
            Action::Deliver { targets, data } => fan_out(targets, data).await,
            Action::Handle { handler, id, data, session } => {
                // Waits for a free slot: handlers cannot pile up without bound.
                let Ok(slot) = self.shared.handler_slots.clone().acquire_owned().await else {
                    return;
                };
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let run = AssertUnwindSafe(async move { handler(data).await });
                    let result = run.catch_unwind().await.unwrap_or_else(|_| {
                        tracing::error!(id, "a channels handler panicked");
                        Err(RemoteError::internal("the handler panicked"))
                    });
                    drop(slot);
                    shared.answer(id, session, result);
                });
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
                    tracing::warn!(?error, ?message, "malformed channels frame from the server ignored")
                }
            },
            _ => {}
        }
    }
}
