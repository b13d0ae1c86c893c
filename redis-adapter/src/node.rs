//! One node's side of the cluster: its packets out (one publisher task), its subscription
//! in (one subscriber task), heartbeats and the table of live peers, and questions to
//! other nodes waiting for their answers.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use network_core::{AdapterError, ClusterInbox, ClusterMessage, ConnectionId, LocalAdapter, NodeId};
use redis::aio::{ConnectionManager, PubSubStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commands::Commands;
use crate::config::RedisConfig;
use crate::error::PublishError;
use crate::packet::{self, Answer, Body, Header, Op};

/// Something that changed in this node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A node was heard from for the first time (or with a new incarnation: it restarted).
    NodeUp(NodeId),
    /// A node left cleanly, or was not heard from for `heartbeat_timeout`; its
    /// connections are gone.
    NodeDown(NodeId),
    /// This node's subscription is (again) in place: it hears the cluster.
    Connected,
    /// This node's subscription dropped (Redis restarted or is unreachable); it reconnects
    /// by itself. Broadcasts fail with `AdapterError::NotPublished` meanwhile.
    Disconnected,
}

/// How many cluster events a slow [`RedisAdapter::events`](crate::RedisAdapter::events)
/// reader may fall behind before it loses the oldest (it then gets `Lagged`).
const EVENT_CAPACITY: usize = 256;

/// How many messages a router's cluster inbox holds before its reader gets `Resync`.
const TOPIC_CAPACITY: usize = 1024;

/// The subscriber's reconnect delays.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Packets the publisher sends in one pipeline (one Redis round trip).
const BATCH: usize = 64;

/// The receipt of a queued packet: `Ok` once Redis took it.
pub(crate) type Receipt = oneshot::Receiver<Result<(), PublishError>>;

/// A packet waiting for the publisher.
pub(crate) struct Outgoing {
    channel: String,
    packet: Vec<u8>,
    done: oneshot::Sender<Result<(), PublishError>>,
}

struct Peer {
    incarnation: u64,
    last_seen: Instant,
    /// The last sequence number seen on the shared channel (0: none yet).
    last_seq: u64,
    /// Its silence past this is death: its own `heartbeat_timeout`, from its beats.
    timeout: Duration,
}

struct Pending {
    waiting: HashSet<NodeId>,
    answers: Vec<(NodeId, Answer)>,
    done: Option<oneshot::Sender<Vec<(NodeId, Answer)>>>,
}

/// What the adapter handles and the node's tasks share.
pub(crate) struct ClusterNode {
    pub(crate) config: RedisConfig,
    pub(crate) node: NodeId,
    incarnation: u64,
    channel_all: String,
    /// This node's rooms; set once the server has built its adapter.
    pub(crate) local: OnceLock<LocalAdapter>,
    /// The next sequence number on the shared channel. Its lock also covers the local
    /// delivery of a broadcast, so that this node and the others see broadcasts in the
    /// same order.
    order: Mutex<u64>,
    outgoing: mpsc::Sender<Outgoing>,
    peers: Mutex<HashMap<NodeId, Peer>>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_request: AtomicU64,
    events: broadcast::Sender<ClusterEvent>,
    /// Routers' inboxes, by topic.
    topics: Mutex<HashMap<String, broadcast::Sender<ClusterMessage>>>,
    subscribed: AtomicBool,
    /// Set by shutdown: after the goodbye nothing more is sent (a heartbeat after it would
    /// bring this node back to life in the others' tables).
    leaving: AtomicBool,
    /// When this node last heard its own packet: its subscription works end to end.
    own_seen: Mutex<Instant>,
    pub(crate) stop: CancellationToken,
    pub(crate) tasks: TaskTracker,
    /// Commands (PUBLISH pipelines, the lease); replaced when one goes unanswered.
    commands: Commands,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode").field("node", &self.node).field("peers", &self.peers()).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random 64-bit number from the standard library's per-process random keys.
pub(crate) fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

impl ClusterNode {
    /// The node's shared state and the receiving end of its publish queue.
    pub(crate) fn new(
        config: RedisConfig,
        node: NodeId,
        incarnation: u64,
        commands: Commands,
    ) -> (Self, mpsc::Receiver<Outgoing>) {
        let (outgoing, queue) = mpsc::channel(config.publish_queue);
        let shared = Self {
            channel_all: config.channel_all(),
            config,
            node,
            incarnation,
            local: OnceLock::new(),
            order: Mutex::new(0),
            outgoing,
            peers: Mutex::default(),
            pending: Mutex::default(),
            next_request: AtomicU64::new(1),
            events: broadcast::channel(EVENT_CAPACITY).0,
            topics: Mutex::default(),
            subscribed: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
            own_seen: Mutex::new(Instant::now()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            commands,
        };
        (shared, queue)
    }

    /// Queues this node's goodbye, the last packet it sends.
    pub(crate) fn queue_bye(&self) -> Result<Receipt, PublishError> {
        if self.leaving.swap(true, Ordering::AcqRel) {
            return Err(PublishError::Left);
        }
        self.queue_shared(Body::Bye, &[], || ()).1
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.config.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// This node's heartbeat.
    fn heartbeat(&self) -> Body {
        Body::Heartbeat { timeout_ms: self.timeout_ms() }
    }

    /// The command connection (a cheap handle).
    pub(crate) fn commands(&self) -> ConnectionManager {
        self.commands.get()
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// The live nodes other than this one.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = lock(&self.peers).keys().copied().collect();
        peers.sort_unstable();
        peers
    }

    /// Queues a packet on the shared channel, running `local` first under the same lock
    /// (a broadcast's local delivery), so that every node sees this node's packets in the
    /// order this node delivered them.
    pub(crate) fn queue_shared<R>(
        &self,
        body: Body,
        payload: &[u8],
        local: impl FnOnce() -> R,
    ) -> (R, Result<Receipt, PublishError>) {
        let mut seq = lock(&self.order);
        let delivered = local();
        // After the goodbye nothing more: only the goodbye itself passes.
        if self.leaving.load(Ordering::Acquire) && !matches!(body, Body::Bye) {
            return (delivered, Err(PublishError::Leaving));
        }
        let mut header = Header::new(self.node, self.incarnation, body);
        header.s = *seq + 1;
        let queued = self.enqueue(self.channel_all.clone(), packet::encode(&header, payload));
        if queued.is_ok() {
            // Only packets that left count: a receiver sees a gap only when one was lost.
            *seq += 1;
        }
        (delivered, queued)
    }

    /// Queues a packet for `node` alone.
    pub(crate) fn queue_to(&self, node: NodeId, body: Body, payload: &[u8]) -> Result<Receipt, PublishError> {
        if self.leaving.load(Ordering::Acquire) {
            return Err(PublishError::Leaving);
        }
        let mut header = Header::new(self.node, self.incarnation, body);
        header.to = Some(node.as_u16());
        self.enqueue(self.config.channel_of(node.as_u16()), packet::encode(&header, payload))
    }

    /// The inbox of what other nodes publish under `topic`.
    pub(crate) fn subscribe_topic(&self, topic: &str) -> ClusterInbox {
        let mut topics = lock(&self.topics);
        let sender = topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0);
        ClusterInbox::new(sender.subscribe())
    }

    /// Closes every router inbox (the node left the cluster).
    pub(crate) fn close_topics(&self) {
        lock(&self.topics).clear();
    }

    /// Sets the `realtime_cluster_nodes` gauge: this node and its live peers. Not under the
    /// peers' lock.
    fn count_nodes(&self) {
        metrics::gauge!("realtime_cluster_nodes").set((lock(&self.peers).len() + 1) as f64);
    }

    /// Reports a change of the cluster to the event readers and to every router inbox.
    fn announce(&self, event: ClusterEvent) {
        let message = match &event {
            ClusterEvent::NodeUp(node) => Some(ClusterMessage::NodeUp(*node)),
            ClusterEvent::NodeDown(node) => Some(ClusterMessage::NodeDown(*node)),
            ClusterEvent::Connected => Some(ClusterMessage::Resync),
            ClusterEvent::Disconnected => None,
        };
        if let Some(message) = message {
            for sender in lock(&self.topics).values() {
                let _ = sender.send(message.clone());
            }
        }
        let _ = self.events.send(event);
    }

    fn enqueue(&self, channel: String, packet: Vec<u8>) -> Result<Receipt, PublishError> {
        let (done, receipt) = oneshot::channel();
        self.outgoing.try_send(Outgoing { channel, packet, done }).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => PublishError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => PublishError::Stopped,
        })?;
        Ok(receipt)
    }

    /// Asks `to` (one node, or every live node) and collects the answers, or fails with
    /// the nodes that did not answer within `request_timeout`.
    pub(crate) async fn request(
        &self,
        to: Option<NodeId>,
        op: Op,
    ) -> Result<Vec<(NodeId, Answer)>, AdapterError> {
        let waiting: HashSet<NodeId> = match to {
            Some(node) if lock(&self.peers).contains_key(&node) => HashSet::from([node]),
            // Nobody will answer for a node that is not alive.
            Some(node) => return Err(AdapterError::Timeout { missing: vec![node] }),
            None => lock(&self.peers).keys().copied().collect(),
        };
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (done, answers) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if pending.len() >= self.config.max_pending_requests {
                return Err(AdapterError::Unavailable("too many cluster requests in flight".to_owned()));
            }
            pending.insert(id, Pending { waiting, answers: Vec::new(), done: Some(done) });
        }
        let queued = match to {
            Some(node) => self.queue_to(node, Body::Request { id, op }, &[]),
            None => self.queue_shared(Body::Request { id, op }, &[], || ()).1,
        };
        let outcome = timeout(self.config.request_timeout, async {
            queued?.await.unwrap_or(Err(PublishError::Stopped))?;
            answers.await.map_err(|_| AdapterError::from(PublishError::Stopped))
        })
        .await;
        let unanswered =
            || lock(&self.pending).remove(&id).map(|pending| pending.waiting).unwrap_or_default();
        match outcome {
            Ok(Ok(answers)) => Ok(answers),
            Ok(Err(error)) => {
                unanswered();
                Err(error)
            }
            Err(_) => {
                let mut missing: Vec<NodeId> = unanswered().into_iter().collect();
                missing.sort_unstable();
                Err(AdapterError::Timeout { missing })
            }
        }
    }

    /// Handles one packet from the subscription.
    fn receive(&self, packet: &[u8]) {
        let (header, offset) = match packet::decode(packet) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(%error, "dropping an unreadable cluster packet");
                return;
            }
        };
        let from = NodeId::new(header.n);
        if from == self.node {
            if header.i == self.incarnation {
                *lock(&self.own_seen) = Instant::now();
            } else {
                tracing::error!(node = %from, "another process uses this node's number; ignoring its packets");
            }
            return;
        }
        if header.to.is_some_and(|to| to != self.node.as_u16()) {
            return;
        }
        let declared = match &header.b {
            Body::Hello { timeout_ms } | Body::Heartbeat { timeout_ms } => {
                Some(Duration::from_millis(*timeout_ms))
            }
            _ => None,
        };
        self.heard(from, header.i, header.s, declared);
        match header.b {
            Body::Broadcast { rooms, except, except_rooms, binary } => {
                // One copy out of the Redis reply; recipients share it.
                let payload = Bytes::copy_from_slice(&packet[offset..]);
                match packet::broadcast_parts(rooms, except, except_rooms, binary, payload) {
                    Ok((target, message)) => {
                        if let Some(local) = self.local.get() {
                            local.broadcast_now(&target, &message);
                        }
                    }
                    Err(error) => tracing::warn!(node = %from, %error, "dropping a broadcast"),
                }
            }
            Body::Topic { topic } => {
                if let Some(sender) = lock(&self.topics).get(&topic) {
                    let payload = Bytes::copy_from_slice(&packet[offset..]);
                    let _ = sender.send(ClusterMessage::Message { from, payload });
                }
            }
            Body::Hello { .. } => {
                // A node (re)joined: tell it who we are now rather than at our next beat.
                if let Err(error) = self.queue_to(from, self.heartbeat(), &[]) {
                    tracing::debug!(node = %from, %error, "cannot greet a new node");
                }
            }
            Body::Heartbeat { .. } => {}
            Body::Bye => self.remove_peer(from),
            Body::Request { id, op } => {
                let answer = self.answer(op);
                if let Err(error) = self.queue_to(from, Body::Reply { id, answer }, &[]) {
                    tracing::warn!(node = %from, %error, "cannot answer a cluster request");
                }
            }
            Body::Reply { id, answer } => self.settle(id, from, Some(answer)),
        }
    }

    /// Notes that `node` (incarnation `incarnation`) is alive; `seq` is its packet's
    /// number on the shared channel (0 on a node's own channel).
    fn heard(&self, node: NodeId, incarnation: u64, seq: u64, timeout: Option<Duration>) {
        let mut peers = lock(&self.peers);
        let now = Instant::now();
        match peers.get_mut(&node) {
            Some(peer) if peer.incarnation == incarnation => {
                peer.last_seen = now;
                if let Some(timeout) = timeout {
                    peer.timeout = timeout;
                }
                if seq != 0 {
                    if peer.last_seq != 0 && seq != peer.last_seq + 1 {
                        tracing::warn!(%node, expected = peer.last_seq + 1, got = seq, "packets from a node were lost");
                    }
                    peer.last_seq = seq;
                }
            }
            restarted => {
                if restarted.is_some() {
                    tracing::info!(%node, "node restarted");
                    self.announce(ClusterEvent::NodeDown(node));
                } else {
                    tracing::info!(%node, "node up");
                }
                let timeout = timeout.unwrap_or(self.config.heartbeat_timeout);
                peers.insert(node, Peer { incarnation, last_seen: now, last_seq: seq, timeout });
                drop(peers);
                self.count_nodes();
                self.announce(ClusterEvent::NodeUp(node));
            }
        }
    }

    fn remove_peer(&self, node: NodeId) {
        if lock(&self.peers).remove(&node).is_none() {
            return;
        }
        tracing::info!(%node, "node down");
        self.count_nodes();
        self.announce(ClusterEvent::NodeDown(node));
        // Questions waiting on it get on without its answer: its connections are gone.
        let ids: Vec<u64> = lock(&self.pending).keys().copied().collect();
        for id in ids {
            self.settle(id, node, None);
        }
    }

    /// Records `node`'s answer to request `id` (`None`: it will not answer), and completes
    /// the request when nobody else is awaited.
    fn settle(&self, id: u64, node: NodeId, answer: Option<Answer>) {
        let mut pending = lock(&self.pending);
        let Some(request) = pending.get_mut(&id) else { return };
        if !request.waiting.remove(&node) {
            return;
        }
        request.answers.extend(answer.map(|answer| (node, answer)));
        if request.waiting.is_empty()
            && let Some(request) = pending.remove(&id)
            && let Some(done) = request.done
        {
            let _ = done.send(request.answers);
        }
    }

    /// Drops the peers not heard from for `heartbeat_timeout`, unless this node cannot
    /// hear anyone right now (then silence says nothing about them).
    fn expire_peers(&self) {
        if !self.is_subscribed() {
            return;
        }
        let now = Instant::now();
        let expired: Vec<NodeId> = lock(&self.peers)
            .iter()
            .filter(|(_, peer)| now.duration_since(peer.last_seen) > peer.timeout)
            .map(|(node, _)| *node)
            .collect();
        for node in expired {
            self.remove_peer(node);
        }
    }

    /// Carries out a request on this node's connections.
    fn answer(&self, op: Op) -> Answer {
        let Some(local) = self.local.get() else { return Answer::Done };
        match op {
            Op::Members { room } => {
                Answer::Ids(local.members_now(&room).into_iter().map(ConnectionId::as_u64).collect())
            }
            Op::RoomsOf { id } => Answer::Rooms(
                local.rooms_of_now(ConnectionId::from_u64(id)).iter().map(|room| room.to_string()).collect(),
            ),
            Op::Join { id, room } => {
                local.join_now(ConnectionId::from_u64(id), room.into());
                Answer::Done
            }
            Op::Leave { id, room } => {
                local.leave_now(ConnectionId::from_u64(id), &room);
                Answer::Done
            }
            Op::LeaveAll { id } => {
                local.leave_all_now(ConnectionId::from_u64(id));
                Answer::Done
            }
        }
    }

    /// The subscription is in place: say hello, and give every peer a fresh grace period
    /// (while we could not hear them, their silence meant nothing).
    fn on_subscribed(&self) {
        self.subscribed.store(true, Ordering::Release);
        let now = Instant::now();
        *lock(&self.own_seen) = now;
        for peer in lock(&self.peers).values_mut() {
            peer.last_seen = now;
            peer.last_seq = 0;
        }
        let hello = Body::Hello { timeout_ms: self.timeout_ms() };
        if let (_, Err(error)) = self.queue_shared(hello, &[], || ()) {
            tracing::warn!(%error, "cannot say hello to the cluster");
        }
        self.count_nodes();
        self.announce(ClusterEvent::Connected);
    }

    fn on_unsubscribed(&self) {
        self.subscribed.store(false, Ordering::Release);
        metrics::counter!("realtime_redis_disconnects_total").increment(1);
        self.announce(ClusterEvent::Disconnected);
    }

    /// Reads the subscription until it ends, the node stops, or its own packets stop
    /// coming back (a half-open connection that would otherwise look alive).
    async fn read_subscription(&self, mut stream: PubSubStream) {
        loop {
            let silent_until = *lock(&self.own_seen) + self.config.heartbeat_timeout;
            tokio::select! {
                () = self.stop.cancelled() => return,
                message = stream.next() => match message {
                    Some(message) => self.receive(message.get_payload_bytes()),
                    None => {
                        tracing::warn!("redis subscription lost");
                        return;
                    }
                },
                () = sleep_until(silent_until) => {
                    tracing::warn!("this node's own heartbeats stopped coming back; resubscribing");
                    return;
                }
            }
        }
    }
}

/// Opens the node's subscription: one dedicated connection, both of its channels.
pub(crate) async fn subscribe(
    client: &redis::Client,
    config: &RedisConfig,
    node: NodeId,
) -> redis::RedisResult<PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    let all = config.channel_all();
    let mine = config.channel_of(node.as_u16());
    if mine == all {
        pubsub.subscribe(all).await?;
    } else {
        pubsub.subscribe(&[all, mine]).await?;
    }
    Ok(pubsub.into_on_message())
}

/// Keeps the subscription: reads it, and when it drops, resubscribes with backoff.
pub(crate) async fn run_subscriber(shared: Arc<ClusterNode>, client: redis::Client, first: PubSubStream) {
    let mut stream = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        if let Some(current) = stream.take() {
            backoff = MIN_BACKOFF;
            shared.on_subscribed();
            shared.read_subscription(current).await;
            shared.on_unsubscribed();
        }
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match timeout(shared.config.command_timeout, subscribe(&client, &shared.config, shared.node)).await {
            Ok(Ok(resubscribed)) => stream = Some(resubscribed),
            Ok(Err(error)) => tracing::debug!(%error, "resubscribing failed"),
            Err(_) => tracing::debug!("resubscribing timed out"),
        }
    }
}

/// Publishes queued packets in order, a pipeline of up to [`BATCH`] per round trip, and
/// tells each sender whether Redis took it.
pub(crate) async fn run_publisher(shared: Arc<ClusterNode>, mut queue: mpsc::Receiver<Outgoing>) {
    let mut commands = shared.commands();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            () = shared.stop.cancelled() => return,
            received = queue.recv_many(&mut batch, BATCH) => received,
        };
        if received == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        for outgoing in &batch {
            pipe.publish(&outgoing.channel, &outgoing.packet[..]).ignore();
        }
        let result = timeout(shared.config.command_timeout, pipe.query_async::<()>(&mut commands)).await;
        let (outcome, unanswered) = match result {
            Ok(Ok(())) => (Ok(()), false),
            Ok(Err(error)) => {
                let unanswered = error.is_timeout();
                (Err(PublishError::Redis(Arc::new(error))), unanswered)
            }
            Err(_) => (Err(PublishError::Timeout), true),
        };
        if let Err(error) = &outcome {
            tracing::warn!(%error, packets = batch.len(), "publishing to redis failed");
        }
        if unanswered {
            shared.commands.replace().await;
            commands = shared.commands();
        }
        for outgoing in batch.drain(..) {
            let _ = outgoing.done.send(outcome.clone());
        }
    }
}

/// Beats: tells the cluster this node is alive, keeps its node number, and drops silent
/// peers.
pub(crate) async fn run_heartbeat(shared: Arc<ClusterNode>) {
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let (_, Err(error)) = shared.queue_shared(shared.heartbeat(), &[], || ()) {
            tracing::debug!(%error, "heartbeat not queued");
        }
        let mut commands = shared.commands();
        match timeout(shared.config.command_timeout, crate::lease::renew(&mut commands, &shared)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::error!(node = %shared.node, "another process holds this node's number");
            }
            Ok(Err(error)) => tracing::debug!(%error, "renewing the node lease failed"),
            Err(_) => tracing::debug!("renewing the node lease timed out"),
        }
        shared.expire_peers();
    }
}
