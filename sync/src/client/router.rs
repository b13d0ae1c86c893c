//! The thin async layer: what the router carries out, without the lock, after a frame was
//! applied to the state. The router itself is `network_core::session`'s.

use std::sync::Arc;

use network_core::client::fan_out;
use network_core::session::{Session, SessionClient};

use super::state::{Action, Listener, State, SyncCore, end_listeners};

impl SessionClient for SyncCore {
    type State = State;

    fn session(&self) -> &Session<State> {
        &self.session
    }

    async fn carry_out(_core: &Arc<Self>, action: Action) {
        match action {
            Action::Nothing => {}
            Action::End(listeners) => end_listeners(listeners),
            Action::Deliver { messages, listeners, done } => {
                // Collections apply each message at once; their change streams, like the
                // message streams, are then fed with backpressure.
                let mut done = Some(done);
                for message in messages {
                    let mut streams = Vec::with_capacity(listeners.len());
                    let mut deliveries = Vec::new();
                    for listener in &listeners {
                        match listener {
                            Listener::Stream(sender) => streams.push(sender.clone()),
                            Listener::Mirror(mirror) => deliveries.extend(mirror.apply(&message)),
                        }
                    }
                    for waiter in done.take().into_iter().flatten() {
                        waiter.tell();
                    }
                    fan_out(streams, message).await;
                    for delivery in deliveries {
                        delivery.await;
                    }
                }
            }
        }
    }
}
