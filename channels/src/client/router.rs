//! The thin async layer: what the router carries out, without the lock, after a frame was
//! applied to the state. The router itself is `network_core::session`'s.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use network_core::client::fan_out;
use network_core::session::SessionClient;

use super::state::{Action, ChannelsCore, State};
use crate::error::RemoteError;

impl SessionClient for ChannelsCore {
    type State = State;

    fn session(&self) -> &network_core::session::Session<State> {
        &self.session
    }

    async fn carry_out(core: &Arc<Self>, action: Action) {
        match action {
            Action::Nothing => {}
            // Waits while a stream is full (backpressure); a dropped stream is skipped.
            Action::Deliver { targets, data } => fan_out(targets, data).await,
            Action::Handle { handler, id, data, session } => {
                // Waits for a free slot: handlers cannot pile up without bound.
                let Ok(slot) = core.handler_slots.clone().acquire_owned().await else {
                    return;
                };
                let core = core.clone();
                tokio::spawn(async move {
                    let run = AssertUnwindSafe(async move { handler(data).await });
                    let result = run.catch_unwind().await.unwrap_or_else(|_| {
                        tracing::error!(id, "a channels handler panicked");
                        Err(RemoteError::internal("the handler panicked"))
                    });
                    drop(slot);
                    core.answer(id, session, result);
                });
            }
        }
    }
}
