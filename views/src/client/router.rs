//! The thin async layer: what the router carries out, without the lock, after a frame was
//! applied to the state. The router itself is `network_core::session`'s.

use std::sync::Arc;

use network_core::client::fan_out;
use network_core::session::{Session, SessionClient};

use super::state::{Action, State, ViewsCore};

impl SessionClient for ViewsCore {
    type State = State;

    fn session(&self) -> &Session<State> {
        &self.session
    }

    async fn carry_out(_core: &Arc<Self>, action: Action) {
        if let Action::Deliver { targets, change } = action {
            // Waits while a stream is full (backpressure); a dropped stream is skipped.
            fan_out(targets, change).await;
        }
    }
}
