//! The push API: [`SyncHandle`] pushes to the subscribers of paths, from anywhere.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use network_core::{
    Adapter, ClusterInbox, ClusterMessage, Connection, ConnectionId, Network, Room, Target, envelope,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
/// network's adapter to the plain subscribers; versioned subscribers (a `sub` with
/// `snapshot`) get it encoded with their own version, by the node that owns them.
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
    /// The subscription's version, on versioned subscriptions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<u64>,
    data: &'a T,
}

/// The room of `path`'s plain subscribers, who all receive the same bytes.
pub(super) fn room(path: &str) -> Room {
    format!("sync:{path}").into()
}

/// The room of `path`'s versioned subscribers (`sub` with `snapshot`), whose frames each
/// carry their own subscription's version, so they are encoded per connection.
pub(super) fn versioned_room(path: &str) -> Room {
    format!("syncv:{path}").into()
}

/// The adapter topic under which a node hands its pushes to the other nodes' versioned
/// subscribers (each node numbers the frames of its own connections).
pub(super) const TOPIC: &str = "sync";

/// A push for the other nodes' versioned subscribers.
#[derive(Serialize, Deserialize)]
struct ClusterPush {
    paths: Vec<String>,
    op: Op,
    data: Value,
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
            let message = encode(path, op, data, None)?;
            // Subscribers of an earlier path already have it, on whatever node they are.
            let target = paths[..index].iter().fold(Target::room(room(path)), |target, earlier| {
                target.except_room(room(earlier)).except_room(versioned_room(earlier))
            });
            count += adapter.broadcast(&target, message).await?;
        }
        let data = serde_json::to_value(data).map_err(network_core::EncodeError::Json)?;
        for (index, path) in paths.iter().enumerate() {
            let members = adapter.local_members(&versioned_room(path));
            count += self.send_versioned(path, op, &data, &paths[..index], members);
        }
        if !adapter.peers().is_empty() {
            let push = ClusterPush { paths: paths.iter().map(|path| (*path).to_owned()).collect(), op, data };
            let payload = serde_json::to_vec(&push).map_err(network_core::EncodeError::Json)?;
            adapter.publish(TOPIC, None, payload.into()).await?;
        }
        Ok(count)
    }

    /// Sends `path`'s `data` frame to each of `members` whose versioned subscription of
    /// `path` is still there and who subscribed to none of the `earlier` paths (those
    /// already have it), each with its subscription's next version. Versions are taken
    /// and frames queued under the state's lock, so that a connection's frames leave in
    /// the order of their versions. Returns how many connections accepted it.
    fn send_versioned(
        &self,
        path: &str,
        op: Op,
        data: &Value,
        earlier: &[&str],
        members: impl IntoIterator<Item = ConnectionId>,
    ) -> usize {
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut count = 0;
        for id in members {
            let subscribed = state.subscriptions.get(&id);
            if subscribed.is_some_and(|paths| earlier.iter().any(|earlier| paths.contains(*earlier))) {
                continue;
            }
            let Some(version) = state.versions.get_mut(&id).and_then(|versions| versions.get_mut(path))
            else {
                continue;
            };
            let Some(connection) = self.network.connection(id) else { continue };
            // Counted even when the send fails: the connection is closing, and a client
            // that somehow still reads it sees a gap and resyncs.
            *version += 1;
            match encode(path, op, data, Some(*version)) {
                Ok(message) => {
                    if connection.send_batched(&message).is_ok() {
                        network_core::metrics::sent(&message, 1);
                        count += 1;
                    }
                }
                Err(error) => tracing::error!(path, %error, "cannot encode a versioned push"),
            }
        }
        count
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
        let value = serde_json::to_value(data).map_err(network_core::EncodeError::Json)?;
        for path in paths {
            let message = encode(path, op, data, None)?;
            let mut sent = 0;
            for id in adapter.local_members(&room(path)) {
                if !reached.insert(id) {
                    continue;
                }
                let Some(connection) = self.network.connection(id) else { continue };
                if accept(&connection) && connection.send_batched(&message).is_ok() {
                    sent += 1;
                }
            }
            network_core::metrics::sent(&message, sent);
            count += sent;
            // The predicate is the application's code: it runs before the state's lock
            // is taken (it may ask this handle who subscribes to what).
            let accepted: Vec<ConnectionId> = adapter
                .local_members(&versioned_room(path))
                .into_iter()
                .filter(|id| reached.insert(*id))
                .filter(|id| self.network.connection(*id).is_some_and(|connection| accept(&connection)))
                .collect();
            count += self.send_versioned(path, op, &value, &[], accepted);
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

    /// Every subscribed path with its subscriber count now, in no particular order (for
    /// admin views and metrics).
    pub fn subscriptions(&self) -> Vec<(String, usize)> {
        self.state.lock().paths.iter().map(|(path, entry)| (path.clone(), entry.subscribers.len())).collect()
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
    v: Option<u64>,
) -> Result<network_core::Message, PushError> {
    if !valid_path(path) {
        return Err(PushError::InvalidPath(path.to_owned()));
    }
    Ok(envelope::json(ROUTER, &DataOut { t: "data", path, op, v, data })?)
}

/// Delivers the other nodes' pushes to this node's versioned subscribers; ends when the
/// adapter shuts down.
pub(super) async fn serve_cluster<N: Network>(handle: SyncHandle<N>, mut inbox: ClusterInbox) {
    while let Some(message) = inbox.recv().await {
        match message {
            ClusterMessage::Message { from, payload } => {
                match serde_json::from_slice::<ClusterPush>(&payload) {
                    Ok(push) => {
                        let adapter = handle.network.adapter();
                        let paths: Vec<&str> = push.paths.iter().map(String::as_str).collect();
                        for (index, path) in paths.iter().enumerate() {
                            let members = adapter.local_members(&versioned_room(path));
                            handle.send_versioned(path, push.op, &push.data, &paths[..index], members);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(node = %from, %error, "dropping an unreadable sync cluster push")
                    }
                }
            }
            ClusterMessage::Resync => {
                // Pushes may have been lost: skipping a version makes every versioned
                // subscriber see a gap at its next push, and ask for a new snapshot.
                let mut state = handle.state.lock();
                for version in state.versions.values_mut().flat_map(|versions| versions.values_mut()) {
                    *version += 1;
                }
            }
            _ => {}
        }
    }
}
