//! The push API: [`SyncHandle`] pushes to the subscribers of paths, from anywhere.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use network_core::{Adapter, Connection, ConnectionId, Network, Room, Target, envelope};
use serde::Serialize;

use super::routes::Model;
use super::state::SyncState;
use crate::protocol::{Op, ROUTER, valid_path};

/// A push could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The payload could not be serialised.
    #[error("cannot encode the payload")]
    Encode(#[from] network_core::EncodeError),
    /// The room adapter failed (a backend spanning nodes is unreachable).
    #[error("room adapter failed")]
    Adapter(#[from] network_core::AdapterError),
    /// The path is not valid.
    #[error("invalid path {0:?}")]
    InvalidPath(String),
}

/// Pushes to subscribers from anywhere (a model, an HTTP handler, a job): cheap to clone,
/// `Send + Sync`. Every push is encoded once per path and fanned out through the
/// network's adapter.
pub struct SyncHandle<N: Network> {
    pub(super) network: N,
    pub(super) state: Arc<SyncState<N>>,
}

impl<N: Network> Clone for SyncHandle<N> {
    fn clone(&self) -> Self {
        Self { network: self.network.clone(), state: self.state.clone() }
    }
}

impl<N: Network> fmt::Debug for SyncHandle<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncHandle").field("paths", &self.state.lock().paths.len()).finish()
    }
}

/// An outgoing `data` frame, serialised straight from the caller's payload.
#[derive(Serialize)]
struct DataOut<'a, T: ?Sized> {
    t: &'static str,
    path: &'a str,
    op: Op,
    data: &'a T,
}

pub(super) fn room(path: &str) -> Room {
    format!("sync:{path}").into()
}

impl<N: Network> SyncHandle<N> {
    /// Pushes `data` with `op` to the subscribers of `path`.
    pub async fn push<T: Serialize + ?Sized>(
        &self,
        path: &str,
        op: Op,
        data: &T,
    ) -> Result<usize, PushError> {
        self.push_to(&[path], op, data).await
    }

    /// Pushes to the subscribers of several paths (one model living at several paths):
    /// each connection receives it once, naming the first of the paths it subscribed to.
    pub async fn push_to<T: Serialize + ?Sized>(
        &self,
        paths: &[&str],
        op: Op,
        data: &T,
    ) -> Result<usize, PushError> {
        let adapter = self.network.adapter();
        let mut count = 0;
        for (index, path) in paths.iter().enumerate() {
            let message = encode(path, op, data)?;
            // Subscribers of an earlier path already have it, on whatever node they are.
            let target = paths[..index]
                .iter()
                .fold(Target::room(room(path)), |target, earlier| target.except_room(room(earlier)));
            count += adapter.broadcast(&target, message).await?;
        }
        Ok(count)
    }

    /// Pushes to the subscribers of `paths` that `accept` says yes to, each once. The
    /// predicate runs on this node's connections: in a cluster, only this node's
    /// subscribers are reached (a closure cannot travel to other nodes).
    pub async fn push_filtered<T: Serialize + ?Sized>(
        &self,
        paths: &[&str],
        op: Op,
        data: &T,
        accept: impl Fn(&Connection) -> bool,
    ) -> Result<usize, PushError> {
        let adapter = self.network.adapter();
        let mut reached = HashSet::new();
        let mut count = 0;
        for path in paths {
            let message = encode(path, op, data)?;
            for id in adapter.local_members(&room(path)) {
                if !reached.insert(id) {
                    continue;
                }
                let Some(connection) = self.network.connection(id) else { continue };
                if accept(&connection) && connection.send_batched(message.clone()).is_ok() {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// The connections subscribed to `path`.
    pub fn subscribers(&self, path: &str) -> Vec<ConnectionId> {
        self.state
            .lock()
            .paths
            .get(path)
            .map(|entry| entry.subscribers.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The model instance serving `path`, while it has subscribers.
    pub fn model(&self, path: &str) -> Option<Arc<dyn Model>> {
        self.state.lock().paths.get(path).and_then(|entry| entry.model.clone())
    }

    /// The network it pushes through.
    pub fn network(&self) -> &N {
        &self.network
    }
}

pub(super) fn encode<T: Serialize + ?Sized>(
    path: &str,
    op: Op,
    data: &T,
) -> Result<network_core::Message, PushError> {
    if !valid_path(path) {
        return Err(PushError::InvalidPath(path.to_owned()));
    }
    Ok(envelope::json(ROUTER, &DataOut { t: "data", path, op, data })?)
}
