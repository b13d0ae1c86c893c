//! The diffs: changes to a view are sent to its openers as one diff per `diff_interval`.

use std::sync::{Arc, Weak};

use network_core::{Adapter, Network, Target, envelope};
use tokio::sync::Notify;

use super::cluster;
use super::state::ViewsState;
use crate::protocol::{Frame, ROUTER};

/// The adapter room of a view's members (channel rooms start with `/`, so no clash).
pub(super) fn view_room(name: &str) -> network_core::Room {
    format!("views:{name}").into()
}

/// Sends the pending diffs every `diff_interval` while there are changes; ends when the
/// router is gone.
pub(super) async fn flusher<N: Network>(network: N, shared: Weak<ViewsState>, wake: Arc<Notify>) {
    loop {
        let dirty = wake.notified();
        tokio::pin!(dirty);
        // Registered before checking, so a change made meanwhile is not missed.
        dirty.as_mut().enable();
        let Some(strong) = shared.upgrade() else { return };
        let interval = strong.config.diff_interval;
        let pending = {
            let state = strong.lock();
            !state.dirty.is_empty() || state.replication.is_pending()
        };
        drop(strong);
        if !pending {
            dirty.await;
        }
        tokio::time::sleep(interval).await;
        let Some(strong) = shared.upgrade() else { return };
        let _gate = strong.flush_gate.lock().await;
        let (diffs, replication) = {
            let mut state = strong.lock();
            (state.take_diffs(), state.replication.take())
        };
        if let Some(update) = replication {
            cluster::send(&network, &strong, update, None).await;
        }
        for frame in diffs {
            let Frame::Diff { view, .. } = &frame else { continue };
            // Every node holds every node's members and diffs its own openers.
            let target = Target::room(view_room(view)).local_only();
            match envelope::json(ROUTER, &frame) {
                Ok(message) => {
                    if let Err(error) = network.adapter().broadcast(&target, message).await {
                        tracing::warn!(%error, "views diff not delivered");
                    }
                }
                Err(error) => tracing::error!(%error, "cannot encode a views diff"),
            }
        }
    }
}
