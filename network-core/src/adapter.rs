//! The room/broadcast seam.
//!
//! Routers and applications address groups of connections only through an [`Adapter`].
//! [`LocalAdapter`] keeps rooms in memory for one process; an adapter that spans several
//! server nodes (over Redis) implements the same trait, typically by wrapping a
//! `LocalAdapter` for its own node's connections and publishing what crosses nodes.
//!
//! A server builds its adapter from an [`AdapterFactory`], which hands it the server's
//! [`Registry`]: a closure `FnOnce(Registry) -> A` is one, so `LocalAdapter::new` is the
//! factory of the default adapter.

use std::collections::{HashMap, HashSet};
use std::future::{Future, ready};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::connection::{ConnectionId, Link, NodeId};
use crate::error::AdapterError;
use crate::hub::Registry;
use crate::message::Message;
use crate::sync::{read, write};

/// A room name.
pub type Room = Arc<str>;

/// Who a broadcast goes to: every connection, or the members of some rooms (each
/// connection at most once), minus some connections and the members of some rooms.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Target {
    /// Rooms to reach; empty means every connection.
    pub rooms: Vec<Room>,
    /// Connections to leave out (typically the sender; or, for a push to several paths in
    /// turn, those already reached).
    pub except: HashSet<ConnectionId>,
    /// Leave out the members of these rooms (for a push to several paths in turn, the
    /// rooms already reached: unlike `except`, this needs no member list, so it works the
    /// same across nodes).
    pub except_rooms: Vec<Room>,
    /// Only this node's connections, even on an adapter spanning nodes (for what each
    /// node computes for its own connections, such as presence diffs).
    pub local_only: bool,
}

impl Target {
    /// Every connection.
    pub fn everyone() -> Self {
        Self::default()
    }

    /// The members of `room`.
    pub fn room(room: impl Into<Room>) -> Self {
        Self { rooms: vec![room.into()], ..Self::default() }
    }

    /// The members of any of `rooms`, each once.
    pub fn rooms<R: Into<Room>>(rooms: impl IntoIterator<Item = R>) -> Self {
        Self { rooms: rooms.into_iter().map(Into::into).collect(), ..Self::default() }
    }

    /// Leaves `id` out.
    pub fn except(mut self, id: ConnectionId) -> Self {
        self.except.insert(id);
        self
    }

    /// Leaves out the members of `room`.
    pub fn except_room(mut self, room: impl Into<Room>) -> Self {
        self.except_rooms.push(room.into());
        self
    }

    /// Reaches only this node's connections.
    pub fn local_only(mut self) -> Self {
        self.local_only = true;
        self
    }
}

/// What a router hears from its peers on other nodes (see [`Adapter::subscribe`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClusterMessage {
    /// A payload that the same router on node `from` published.
    Message {
        /// The publishing node.
        from: NodeId,
        /// What it published.
        payload: Bytes,
    },
    /// A node joined (or restarted): it knows nothing of this node's state yet.
    NodeUp(NodeId),
    /// A node left or was declared dead: its connections are gone.
    NodeDown(NodeId),
    /// Messages may have been lost (this node's link to the cluster dropped and came back,
    /// or the inbox overflowed): rebuild what depends on them, typically by asking every
    /// node for a snapshot.
    Resync,
}

/// A router's inbox of [`ClusterMessage`]s. Bounded: a reader that falls too far behind
/// loses the oldest messages and gets [`ClusterMessage::Resync`] instead.
#[derive(Debug)]
pub struct ClusterInbox {
    receiver: broadcast::Receiver<ClusterMessage>,
}

impl ClusterInbox {
    /// An inbox fed by `receiver` (for adapter implementations).
    pub fn new(receiver: broadcast::Receiver<ClusterMessage>) -> Self {
        Self { receiver }
    }

    /// The next message; `None` once the adapter has shut down.
    pub async fn recv(&mut self) -> Option<ClusterMessage> {
        match self.receiver.recv().await {
            Ok(message) => Some(message),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(ClusterMessage::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// Builds a server's adapter once the server's [`Registry`] exists.
///
/// Any `FnOnce(Registry) -> A` is a factory (`LocalAdapter::new` is the default one); a
/// cluster adapter implements it on the value its `connect` returned, having joined the
/// cluster (and learnt its [`NodeId`]) before the server accepts anyone.
pub trait AdapterFactory {
    /// The adapter built.
    type Adapter: Adapter;

    /// The adapter for the connections of `registry`.
    fn build(self, registry: Registry) -> Self::Adapter;
}

impl<F, A> AdapterFactory for F
where
    F: FnOnce(Registry) -> A,
    A: Adapter,
{
    type Adapter = A;

    fn build(self, registry: Registry) -> A {
        self(registry)
    }
}

/// Room membership and fan-out for a network.
///
/// The methods are async so that an adapter spanning nodes can talk to its backend; the
/// local adapter completes at once.
pub trait Adapter: Send + Sync + 'static {
    /// The node this adapter runs on; the server numbers its connections with it (see
    /// [`ConnectionIds`](crate::ConnectionIds)). [`NodeId::STANDALONE`] unless the adapter
    /// spans nodes.
    fn node(&self) -> NodeId {
        NodeId::STANDALONE
    }

    /// Adds connection `id` to `room`.
    fn join(&self, id: ConnectionId, room: Room) -> impl Future<Output = Result<(), AdapterError>> + Send;

    /// Removes connection `id` from `room`.
    fn leave(&self, id: ConnectionId, room: &str) -> impl Future<Output = Result<(), AdapterError>> + Send;

    /// Removes connection `id` from every room (it closed).
    fn leave_all(&self, id: ConnectionId) -> impl Future<Output = Result<(), AdapterError>> + Send;

    /// The rooms connection `id` is in.
    fn rooms_of(&self, id: ConnectionId) -> impl Future<Output = Result<Vec<Room>, AdapterError>> + Send;

    /// The connections in `room`.
    fn members(&self, room: &str) -> impl Future<Output = Result<Vec<ConnectionId>, AdapterError>> + Send;

    /// The connections in `room` that this node owns (all of them, for an adapter that
    /// spans no other nodes). Answered from memory, without asking anyone.
    fn local_members(&self, room: &str) -> Vec<ConnectionId>;

    /// The other live nodes, as this node knows them now; none outside a cluster.
    fn peers(&self) -> Vec<NodeId> {
        Vec::new()
    }

    /// This node's rooms, each with how many of this node's connections are in it, in no
    /// particular order; for admin views and metrics (a copy taken under the lock). The
    /// default is none: an adapter that keeps no rooms in this process.
    fn local_rooms(&self) -> Vec<(Room, usize)> {
        Vec::new()
    }

    /// Sends `message` to `target`; returns how many connections accepted it. The message
    /// is shared between recipients, never re-encoded.
    ///
    /// Implementations deliver to this node's connections and hand the message on to
    /// their backend when the future is first polled, so the order of broadcasts is the
    /// order of their first polls; an adapter spanning nodes may then wait for its
    /// backend's receipt. A caller emitting many messages can therefore poll each once in
    /// turn and await the outcomes afterwards (as `examples/server.rs` relays do) without
    /// reordering and without a backend round trip per message.
    fn broadcast(
        &self,
        target: &Target,
        message: Message,
    ) -> impl Future<Output = Result<usize, AdapterError>> + Send;

    /// Publishes `payload` to the routers that subscribed to `topic` on the other nodes
    /// (every node, or only `to`). A standalone adapter has no other nodes: nothing to do.
    fn publish(
        &self,
        topic: &str,
        to: Option<NodeId>,
        payload: Bytes,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send {
        let _ = (topic, to, payload);
        ready(Ok(()))
    }

    /// The inbox of what other nodes publish under `topic`, with node arrivals and
    /// departures; `None` when the adapter spans no other nodes.
    fn subscribe(&self, topic: &str) -> Option<ClusterInbox> {
        let _ = topic;
        None
    }

    /// Releases what the adapter holds outside the process (a cluster adapter leaves its
    /// cluster). The server calls it at the end of its shutdown; nothing by default.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        ready(())
    }
}

#[derive(Default)]
struct Rooms {
    /// Each room's members with their links, so that a broadcast reaches them without a
    /// registry lookup per member (at 10,000 members the lookups' cache misses cost a
    /// third of the fan-out) and without reading the connection handle's state first
    /// (another cache miss per member: a tenth of a fan-out to 10,000). `None` for an id
    /// that was not registered when it joined.
    members: HashMap<Room, HashMap<ConnectionId, Option<Arc<dyn Link>>>>,
    joined: HashMap<ConnectionId, HashSet<Room>>,
}

/// Rooms in memory, for the connections of one process.
#[derive(Clone)]
pub struct LocalAdapter {
    registry: Registry,
    rooms: Arc<RwLock<Rooms>>,
}

impl std::fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdapter").field("rooms", &read(&self.rooms).members.len()).finish()
    }
}

impl LocalAdapter {
    /// An adapter delivering to the connections of `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry, rooms: Arc::default() }
    }

    /// Every room with its member count now.
    pub fn rooms_now(&self) -> Vec<(Room, usize)> {
        read(&self.rooms).members.iter().map(|(room, members)| (room.clone(), members.len())).collect()
    }

    /// Adds `id` to `room` now.
    pub fn join_now(&self, id: ConnectionId, room: Room) {
        let link = self.registry.get(id).map(|connection| connection.link().clone());
        let mut rooms = write(&self.rooms);
        rooms.members.entry(room.clone()).or_default().insert(id, link);
        rooms.joined.entry(id).or_default().insert(room);
    }

    /// Removes `id` from `room` now.
    pub fn leave_now(&self, id: ConnectionId, room: &str) {
        let mut rooms = write(&self.rooms);
        if let Some(members) = rooms.members.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                rooms.members.remove(room);
            }
        }
        if let Some(joined) = rooms.joined.get_mut(&id) {
            joined.remove(room);
            if joined.is_empty() {
                rooms.joined.remove(&id);
            }
        }
    }

    /// Removes `id` from every room now.
    pub fn leave_all_now(&self, id: ConnectionId) {
        let mut rooms = write(&self.rooms);
        for room in rooms.joined.remove(&id).unwrap_or_default() {
            if let Some(members) = rooms.members.get_mut(&room) {
                members.remove(&id);
                if members.is_empty() {
                    rooms.members.remove(&room);
                }
            }
        }
    }

    /// The rooms `id` is in, now.
    pub fn rooms_of_now(&self, id: ConnectionId) -> Vec<Room> {
        read(&self.rooms).joined.get(&id).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// The members of `room`, now.
    pub fn members_now(&self, room: &str) -> Vec<ConnectionId> {
        read(&self.rooms).members.get(room).map(|m| m.keys().copied().collect()).unwrap_or_default()
    }

    /// Sends `message` to the local connections of `target` now.
    pub fn broadcast_now(&self, target: &Target, message: &Message) -> usize {
        let rooms = read(&self.rooms);
        // Members of the excluded rooms are looked up under the same lock as the members;
        // nothing to build for the usual broadcast that excludes no room.
        let excluded: Option<HashSet<ConnectionId>> = (!target.except_rooms.is_empty()).then(|| {
            target
                .except_rooms
                .iter()
                .filter_map(|room| rooms.members.get(room))
                .flat_map(|members| members.keys().copied())
                .collect()
        });
        // The usual exception is one connection, the sender: compared, not hashed.
        let except_one = match target.except.len() {
            1 => target.except.iter().next().copied(),
            _ => None,
        };
        let is_excepted = |id: ConnectionId| match except_one {
            Some(one) => one == id,
            None => !target.except.is_empty() && target.except.contains(&id),
        };
        let mut accepted = 0;
        let mut send = |id: ConnectionId, link: &dyn Link| {
            if !is_excepted(id)
                && !excluded.as_ref().is_some_and(|excluded| excluded.contains(&id))
                && link.send_batched(message).is_ok()
            {
                accepted += 1;
            }
        };
        if target.rooms.is_empty() {
            drop(rooms);
            self.registry.for_all_links(&mut send);
            crate::metrics::sent(message, accepted);
            return accepted;
        }
        // Several rooms: each connection once, whatever rooms it shares.
        let mut seen = (target.rooms.len() > 1).then(HashSet::new);
        let mut late = Vec::new();
        for members in target.rooms.iter().filter_map(|room| rooms.members.get(room)) {
            for (id, link) in members {
                if seen.as_mut().is_some_and(|seen| !seen.insert(*id)) {
                    continue;
                }
                match link {
                    Some(link) => send(*id, link.as_ref()),
                    None => late.push(*id),
                }
            }
        }
        // Joined before it was registered (a transport's own bookkeeping): look it up.
        self.registry.for_each(late, |connection| send(connection.id(), connection.link().as_ref()));
        crate::metrics::sent(message, accepted);
        accepted
    }
}

impl Adapter for LocalAdapter {
    fn join(&self, id: ConnectionId, room: Room) -> impl Future<Output = Result<(), AdapterError>> + Send {
        self.join_now(id, room);
        ready(Ok(()))
    }

    fn leave(&self, id: ConnectionId, room: &str) -> impl Future<Output = Result<(), AdapterError>> + Send {
        self.leave_now(id, room);
        ready(Ok(()))
    }

    fn leave_all(&self, id: ConnectionId) -> impl Future<Output = Result<(), AdapterError>> + Send {
        self.leave_all_now(id);
        ready(Ok(()))
    }

    fn rooms_of(&self, id: ConnectionId) -> impl Future<Output = Result<Vec<Room>, AdapterError>> + Send {
        ready(Ok(self.rooms_of_now(id)))
    }

    fn members(&self, room: &str) -> impl Future<Output = Result<Vec<ConnectionId>, AdapterError>> + Send {
        ready(Ok(self.members_now(room)))
    }

    fn local_rooms(&self) -> Vec<(Room, usize)> {
        self.rooms_now()
    }

    fn local_members(&self, room: &str) -> Vec<ConnectionId> {
        self.members_now(room)
    }

    fn broadcast(
        &self,
        target: &Target,
        message: Message,
    ) -> impl Future<Output = Result<usize, AdapterError>> + Send {
        ready(Ok(self.broadcast_now(target, &message)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::connection::{CloseFrame, Connection, ConnectionIds, ConnectionMeta};
    use crate::error::SendError;
    use crate::hub::{HubConfig, HubDriver, UntakenEvents};

    /// A link that counts what it was given.
    #[derive(Default)]
    struct Counting(Mutex<usize>);

    impl Link for Counting {
        fn send(&self, _message: Message) -> Result<(), SendError> {
            *self.0.lock().unwrap() += 1;
            Ok(())
        }

        fn close(&self, _frame: CloseFrame) {}
    }

    async fn connections(hub: &HubDriver, count: usize) -> Vec<(ConnectionId, Arc<Counting>)> {
        let ids = ConnectionIds::new(NodeId::new(7), 0);
        let mut out = Vec::new();
        for _ in 0..count {
            let link = Arc::new(Counting::default());
            let id = ids.next().unwrap();
            let (connection, _closed) = Connection::new(id, ConnectionMeta::new("/"), link.clone());
            hub.connection_added(&connection, false).await;
            out.push((id, link));
        }
        out
    }

    fn received(link: &Counting) -> usize {
        *link.0.lock().unwrap()
    }

    #[tokio::test]
    async fn except_rooms_leave_out_their_members_once_each() {
        let hub = HubDriver::new(HubConfig::default(), UntakenEvents::Discard);
        let adapter = LocalAdapter::new(hub.hub().registry().clone());
        let peers = connections(&hub, 4).await;
        let [(a, link_a), (b, link_b), (c, link_c), (d, link_d)] = peers.try_into().ok().unwrap();
        for id in [a, b, c] {
            adapter.join_now(id, "second".into());
        }
        adapter.join_now(a, "first".into());
        adapter.join_now(d, "first".into());

        // A push to "second" after "first": a and d have it already.
        let target = Target::room("second").except_room("first");
        assert_eq!(adapter.broadcast_now(&target, &Message::from("x")), 2);
        assert_eq!([received(&link_a), received(&link_b), received(&link_c)], [0, 1, 1]);

        // Everyone but the members of "second".
        assert_eq!(adapter.broadcast_now(&Target::everyone().except_room("second"), &Message::from("y")), 1);
        assert_eq!(received(&link_d), 1);
    }

    #[test]
    fn cluster_ids_carry_their_node_and_stay_below_two_to_the_53() {
        let ids = ConnectionIds::new(NodeId::new(u16::MAX), u64::MAX);
        let id = ids.next().unwrap();
        assert_eq!(id.node(), NodeId::new(u16::MAX));
        assert!(id.as_u64() < 1 << 53);
        let standalone = ConnectionIds::new(NodeId::STANDALONE, 5).next().unwrap();
        assert_eq!(standalone.node(), NodeId::STANDALONE);
    }
}
