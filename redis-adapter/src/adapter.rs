//! The adapter handles: [`RedisCluster`] (joining) and [`RedisAdapter`] (the server's
//! adapter).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use network_core::{
    Adapter, AdapterError, AdapterFactory, ClusterInbox, ConnectionId, LocalAdapter, Message, NodeId,
    Registry, Room, Target,
};
use tokio::sync::broadcast;
use tokio::time::timeout;

use crate::commands::Commands;
use crate::config::RedisConfig;
use crate::error::{PublishError, RedisAdapterError};
use crate::lease;
use crate::node::{self, ClusterEvent, ClusterNode};
use crate::packet::{Answer, Body, Op, broadcast_body};

/// A node that has joined its cluster: connected to Redis, holding a node number, and
/// subscribed. Hand it to the server, which builds its adapter from it:
///
/// ```no_run
/// use redis_adapter::{RedisCluster, RedisConfig};
/// use ws_server::{Server, ServerConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = RedisCluster::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let server = Server::bind_with("127.0.0.1:0", ServerConfig::default(), cluster).await?;
/// // ... attach routers, serve ...
/// server.shutdown().await; // also leaves the cluster
/// # Ok(()) }
/// ```
///
/// Dropped without being handed to a server (the server could not bind, say), it leaves
/// the cluster: its tasks stop, and the others drop it after its heartbeat timeout.
#[derive(Debug)]
pub struct RedisCluster {
    shared: Arc<ClusterNode>,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // Built means a server's adapter holds the node now (its shutdown leaves).
        if self.shared.local.get().is_none() {
            self.shared.stop.cancel();
        }
    }
}

impl RedisCluster {
    /// Joins the cluster: connects to Redis, claims a free node number, subscribes to the
    /// node's channels and says hello. Fails if Redis cannot be reached within the command
    /// timeout; once joined, the node rides out Redis outages by itself.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisAdapterError> {
        config.validate()?;
        let client = redis::Client::open(config.url.as_str())?;
        let within = config.command_timeout;
        let commands = Commands::connect(client.clone(), &config).await?;
        let incarnation = node::random_u64();
        let node = timeout(within, lease::claim(&mut commands.get(), &config, incarnation))
            .await
            .map_err(|_| RedisAdapterError::Timeout)??;
        let subscription = timeout(within, node::subscribe(&client, &config, node))
            .await
            .map_err(|_| RedisAdapterError::Timeout)??;
        let (shared, queue) = ClusterNode::new(config, node, incarnation, commands);
        let shared = Arc::new(shared);
        shared.tasks.spawn(node::run_publisher(shared.clone(), queue));
        shared.tasks.spawn(node::run_subscriber(shared.clone(), client, subscription));
        shared.tasks.spawn(node::run_heartbeat(shared.clone()));
        tracing::info!(%node, "joined the cluster");
        Ok(Self { shared })
    }

    /// This node's number.
    pub fn node(&self) -> NodeId {
        self.shared.node
    }

    /// This node's cluster events, from now on (see [`RedisAdapter::events`]).
    pub fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.shared.events()
    }
}

impl AdapterFactory for RedisCluster {
    type Adapter = RedisAdapter;

    fn build(self, registry: Registry) -> RedisAdapter {
        let local = LocalAdapter::new(registry);
        // A `RedisCluster` is consumed here, so this is the only server it serves.
        let shared = self.shared.clone();
        let _ = shared.local.set(local.clone());
        RedisAdapter { local: Some(local), shared }
    }
}

/// Rooms shared by every node of a cluster over Redis.
///
/// Each node keeps its own connections' rooms in memory (a [`LocalAdapter`]); what
/// crosses nodes goes over Redis pub/sub:
/// - a broadcast is delivered to this node's members at once and published once; every
///   other node delivers it to its own members (each connection once);
/// - `members` asks every live node, `rooms_of`, `join` and `leave` of another node's
///   connection ask that node (its number is in the id);
/// - heartbeats tell who is alive; a node silent for `heartbeat_timeout` is dropped.
///
/// Throughput: a broadcast's future delivers locally and queues the publish on its first
/// poll, then waits for Redis's receipt (one round trip, shared by up to 64 queued
/// publishes). Awaiting each broadcast before making the next bounds one emitter to a
/// broadcast per round trip (measured: 0.07x the single-node fan-out rate); polling each
/// once and awaiting the receipts out of line keeps the order and ran at 0.96x
/// (`docs/BENCHMARKS.md`, "Fan-out across nodes").
///
/// Guarantees: broadcasts from one node reach the others in the order that node made
/// them; a broadcast that could not be published (Redis away, publish queue full) fails
/// with [`AdapterError::NotPublished`] after reaching this node's members; nothing is
/// replayed later (at most once across an outage).
#[derive(Clone, Debug)]
pub struct RedisAdapter {
    /// `None` only inside a [`RedisCluster`] not yet handed to a server.
    local: Option<LocalAdapter>,
    shared: Arc<ClusterNode>,
}

impl RedisAdapter {
    /// The live nodes, this one included, in number order.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes = self.shared.peers();
        nodes.push(self.shared.node);
        nodes.sort_unstable();
        nodes
    }

    /// Whether this node hears the cluster now (its subscription is in place).
    pub fn is_connected(&self) -> bool {
        self.shared.is_subscribed()
    }

    /// This node's cluster events from now on: nodes up and down, this node's
    /// subscription lost and back. The queue holds the last 256; a reader further behind
    /// gets `Lagged` and misses the oldest.
    pub fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.shared.events()
    }

    fn local(&self) -> Result<&LocalAdapter, AdapterError> {
        self.local
            .as_ref()
            .ok_or_else(|| AdapterError::Unavailable("adapter not built by a server".to_owned()))
    }

    fn is_mine(&self, id: ConnectionId) -> bool {
        id.node() == self.shared.node
    }

    /// Runs `op` on the node owning `id`.
    async fn ask_owner(&self, id: ConnectionId, op: Op) -> Result<Answer, AdapterError> {
        let owner = id.node();
        let answers = self.shared.request(Some(owner), op).await?;
        answers
            .into_iter()
            .next()
            .map(|(_, answer)| answer)
            .ok_or(AdapterError::Timeout { missing: vec![owner] })
    }
}

impl Adapter for RedisAdapter {
    fn node(&self) -> NodeId {
        self.shared.node
    }

    async fn join(&self, id: ConnectionId, room: Room) -> Result<(), AdapterError> {
        if self.is_mine(id) {
            self.local()?.join_now(id, room);
            return Ok(());
        }
        self.ask_owner(id, Op::Join { id: id.as_u64(), room: room.to_string() }).await.map(drop)
    }

    async fn leave(&self, id: ConnectionId, room: &str) -> Result<(), AdapterError> {
        if self.is_mine(id) {
            self.local()?.leave_now(id, room);
            return Ok(());
        }
        self.ask_owner(id, Op::Leave { id: id.as_u64(), room: room.to_owned() }).await.map(drop)
    }

    async fn leave_all(&self, id: ConnectionId) -> Result<(), AdapterError> {
        if self.is_mine(id) {
            self.local()?.leave_all_now(id);
            return Ok(());
        }
        self.ask_owner(id, Op::LeaveAll { id: id.as_u64() }).await.map(drop)
    }

    async fn rooms_of(&self, id: ConnectionId) -> Result<Vec<Room>, AdapterError> {
        if self.is_mine(id) {
            return Ok(self.local()?.rooms_of_now(id));
        }
        match self.ask_owner(id, Op::RoomsOf { id: id.as_u64() }).await? {
            Answer::Rooms(rooms) => Ok(rooms.into_iter().map(Room::from).collect()),
            _ => {
                Err(AdapterError::Unavailable(format!("{} answered rooms_of with something else", id.node())))
            }
        }
    }

    async fn members(&self, room: &str) -> Result<Vec<ConnectionId>, AdapterError> {
        let mut members: HashSet<ConnectionId> = self.local()?.members_now(room).into_iter().collect();
        for (_, answer) in self.shared.request(None, Op::Members { room: room.to_owned() }).await? {
            if let Answer::Ids(ids) = answer {
                members.extend(ids.into_iter().map(ConnectionId::from_u64));
            }
        }
        Ok(members.into_iter().collect())
    }

    fn local_members(&self, room: &str) -> Vec<ConnectionId> {
        self.local.as_ref().map(|local| local.members_now(room)).unwrap_or_default()
    }

    fn local_rooms(&self) -> Vec<(Room, usize)> {
        self.local.as_ref().map(LocalAdapter::rooms_now).unwrap_or_default()
    }

    fn peers(&self) -> Vec<NodeId> {
        self.shared.peers()
    }

    /// Returns how many of *this node's* connections accepted it (the other nodes' counts
    /// would cost a round trip each).
    async fn broadcast(&self, target: &Target, message: Message) -> Result<usize, AdapterError> {
        let local = self.local()?;
        if target.local_only {
            return Ok(local.broadcast_now(target, &message));
        }
        let (delivered_locally, queued) =
            self.shared.queue_shared(broadcast_body(target, &message), message.payload(), || {
                local.broadcast_now(target, &message)
            });
        let published = match queued {
            Ok(receipt) => receipt.await.unwrap_or(Err(PublishError::Stopped)),
            Err(error) => Err(error),
        };
        match published {
            Ok(()) => Ok(delivered_locally),
            Err(error) => {
                metrics::counter!("realtime_redis_publish_failures_total").increment(1);
                Err(AdapterError::NotPublished { delivered_locally, reason: error.to_string() })
            }
        }
    }

    async fn publish(&self, topic: &str, to: Option<NodeId>, payload: Bytes) -> Result<(), AdapterError> {
        let body = Body::Topic { topic: topic.to_owned() };
        let queued = match to {
            Some(node) => self.shared.queue_to(node, body, &payload),
            None => self.shared.queue_shared(body, &payload, || ()).1,
        };
        let published = match queued {
            Ok(receipt) => receipt.await.unwrap_or(Err(PublishError::Stopped)),
            Err(error) => Err(error),
        };
        if published.is_err() {
            metrics::counter!("realtime_redis_publish_failures_total").increment(1);
        }
        Ok(published?)
    }

    fn subscribe(&self, topic: &str) -> Option<ClusterInbox> {
        Some(self.shared.subscribe_topic(topic))
    }

    async fn shutdown(&self) {
        let shared = &self.shared;
        if shared.stop.is_cancelled() {
            return;
        }
        // Say goodbye so that the others drop this node now rather than after a timeout.
        if let Ok(receipt) = shared.queue_bye() {
            let _ = timeout(shared.config.command_timeout, receipt).await;
        }
        let mut commands = shared.commands();
        let _ = timeout(shared.config.command_timeout, lease::release(&mut commands, shared)).await;
        shared.close_topics();
        shared.stop.cancel();
        shared.tasks.close();
        shared.tasks.wait().await;
        tracing::info!(node = %shared.node, "left the cluster");
    }
}
