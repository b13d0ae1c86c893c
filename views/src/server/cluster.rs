//! Presence across the nodes of a cluster.
//!
//! Every node holds the members of every node (the Phoenix.Tracker model): its own
//! connections' entries, which it owns and tells the others about, and a replica of each
//! other node's. `info`, `members` and diffs are computed from the whole, so they are the
//! same on every node (up to the propagation delay), and each node sends diffs only to
//! its own openers. Nothing is stored in Redis: a node that dies takes its entries with it
//! when the others drop it.
//!
//! Between nodes (on the adapter's topic `views`, JSON):
//! - `Delta`: this node's opens and closes since its last diff interval, to every node;
//! - `Snapshot`: all of this node's entries, replacing what the receiver held for it;
//!   sent to a node that asks, to a node that comes up, and to everyone in place of the
//!   next delta after one could not be published;
//! - `SnapshotPlease`: sent to every node when this node starts or may have missed
//!   messages (its link to the cluster came back, its inbox overflowed).
//!
//! Applying any of them is idempotent, so a delta that repeats what a snapshot already
//! said changes nothing.

use std::sync::{Arc, Weak};

use network_core::{Adapter, ClusterInbox, ClusterMessage, ConnectionId, Network, NodeId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::{OpenViews, ViewsState};

/// The adapter topic of the views routers.
pub(super) const TOPIC: &str = "views";

/// Changes buffered for one delta; past this the delta is replaced by a snapshot (the
/// buffer is bounded whatever the churn).
const MAX_BUFFERED: usize = 10_000;

/// One connection's entry in a view.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Entry {
    view: String,
    id: u64,
    user: Option<String>,
    data: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum Change {
    Open(Entry),
    Close { view: String, id: u64 },
}

/// What views routers say to each other.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Bus {
    Delta { changes: Vec<Change> },
    Snapshot { entries: Vec<Entry> },
    SnapshotPlease,
}

/// This node's changes waiting for the next diff interval.
#[derive(Default)]
pub(in crate::server) struct Outgoing {
    /// Off on a standalone server: nobody to tell.
    enabled: bool,
    changes: Vec<Change>,
    /// The others' replica of this node may be wrong: send a full snapshot next.
    snapshot: bool,
}

impl Outgoing {
    pub(super) fn enable(&mut self) {
        self.enabled = true;
    }

    pub(super) fn opened(&mut self, view: &str, id: ConnectionId, user: &Option<String>, data: &Value) {
        let entry = Entry { view: view.to_owned(), id: id.as_u64(), user: user.clone(), data: data.clone() };
        self.push(Change::Open(entry));
    }

    pub(super) fn closed(&mut self, view: &str, id: ConnectionId) {
        self.push(Change::Close { view: view.to_owned(), id: id.as_u64() });
    }

    fn push(&mut self, change: Change) {
        if !self.enabled || self.snapshot {
            return;
        }
        if self.changes.len() >= MAX_BUFFERED {
            self.changes.clear();
            self.snapshot = true;
        } else {
            self.changes.push(change);
        }
    }

    /// Whether changes wait for the next diff interval. A pending snapshot alone does not
    /// wake the flusher: it rides with the next change or is made good by a resync, rather
    /// than being retried every interval while Redis is away.
    pub(super) fn is_pending(&self) -> bool {
        !self.changes.is_empty()
    }

    /// What to send at this diff interval: `None` when nothing changed.
    pub(super) fn take(&mut self) -> Option<Update> {
        if std::mem::take(&mut self.snapshot) {
            self.changes.clear();
            return Some(Update::Snapshot);
        }
        (!self.changes.is_empty()).then(|| Update::Delta(std::mem::take(&mut self.changes)))
    }
}

/// What the flusher hands to [`send`].
pub(super) enum Update {
    Delta(Vec<Change>),
    /// Built when sent, from the state at that moment.
    Snapshot,
}

/// Sends `update` to every node (or `to`); a failed delta is made good by a snapshot at
/// the next diff interval.
pub(super) async fn send<N: Network>(network: &N, shared: &ViewsState, update: Update, to: Option<NodeId>) {
    let bus = match update {
        Update::Delta(changes) => Bus::Delta { changes },
        Update::Snapshot => Bus::Snapshot { entries: snapshot(&shared.lock(), network.adapter().node()) },
    };
    publish(network, shared, &bus, to).await;
}

async fn publish<N: Network>(network: &N, shared: &ViewsState, bus: &Bus, to: Option<NodeId>) {
    let payload = match serde_json::to_vec(bus) {
        Ok(payload) => payload,
        Err(error) => return tracing::error!(%error, "cannot encode a views replication message"),
    };
    if let Err(error) = network.adapter().publish(TOPIC, to, payload.into()).await {
        // A snapshot goes with the next change; after an outage the resync on reconnect
        // (every node asks every node for a snapshot) makes it good without one.
        tracing::warn!(%error, "views replication not published; a snapshot follows");
        let mut state = shared.lock();
        if state.replication.enabled {
            state.replication.snapshot = true;
        }
    }
}

/// This node's own entries.
fn snapshot(state: &OpenViews, me: NodeId) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (id, open) in state.open.iter().filter(|(id, _)| id.node() == me) {
        for (view, key) in open {
            let Some(member) = state.views.get(view).and_then(|view| view.members.get(key)) else { continue };
            entries.push(Entry {
                view: view.to_string(),
                id: id.as_u64(),
                user: member.user.clone(),
                data: member.data.clone(),
            });
        }
    }
    entries
}

impl OpenViews {
    /// Drops every entry of `node`'s connections.
    fn remove_node(&mut self, node: NodeId) {
        let gone: Vec<(ConnectionId, Arc<str>)> = self
            .open
            .iter()
            .filter(|(id, _)| id.node() == node)
            .flat_map(|(id, open)| open.iter().map(|(view, _)| (*id, view.clone())))
            .collect();
        for (id, view) in gone {
            self.remove(id, &view);
        }
    }

    /// Applies `entry` if it is `from`'s to give.
    fn apply_open(&mut self, from: NodeId, entry: Entry) {
        let id = ConnectionId::from_u64(entry.id);
        if id.node() == from {
            self.add(id, entry.user, entry.data, &entry.view);
        }
    }
}

/// Keeps this node's replica of the other nodes' entries, and answers their questions,
/// until the router or the adapter is gone.
pub(super) async fn replicate<N: Network>(network: N, shared: Weak<ViewsState>, mut inbox: ClusterInbox) {
    let me = network.adapter().node();
    if let Some(strong) = shared.upgrade() {
        publish(&network, &strong, &Bus::SnapshotPlease, None).await;
    }
    while let Some(message) = inbox.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        match message {
            ClusterMessage::Message { from, payload } => match serde_json::from_slice::<Bus>(&payload) {
                Ok(Bus::Delta { changes }) => {
                    let mut state = shared.lock();
                    for change in changes {
                        match change {
                            Change::Open(entry) => state.apply_open(from, entry),
                            Change::Close { view, id } => {
                                let id = ConnectionId::from_u64(id);
                                if id.node() == from {
                                    state.remove(id, &view);
                                }
                            }
                        }
                    }
                }
                Ok(Bus::Snapshot { entries }) => {
                    let mut state = shared.lock();
                    state.remove_node(from);
                    for entry in entries {
                        state.apply_open(from, entry);
                    }
                }
                Ok(Bus::SnapshotPlease) => send(&network, &shared, Update::Snapshot, Some(from)).await,
                Err(error) => {
                    tracing::warn!(node = %from, %error, "dropping an unreadable views replication message")
                }
            },
            ClusterMessage::NodeUp(node) if node != me => {
                send(&network, &shared, Update::Snapshot, Some(node)).await
            }
            ClusterMessage::NodeDown(node) => shared.lock().remove_node(node),
            ClusterMessage::Resync => publish(&network, &shared, &Bus::SnapshotPlease, None).await,
            _ => {}
        }
        shared.dirty.notify_one();
    }
}
