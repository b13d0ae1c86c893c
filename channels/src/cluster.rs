//! Acknowledged emits to a room whose members are on several nodes.
//!
//! The emitting node asks its own members directly and, at the same time, publishes the
//! question on the adapter's topic `ch`; every other node's channels router asks its own
//! members and answers once, with all their replies, when each has answered, failed or
//! timed out. The emitter waits for the nodes that were alive when it asked, up to the
//! acknowledgement timeout plus [`MARGIN`]; a node that goes down meanwhile, or does not
//! answer in time, is reported as unreachable (its members' answers are unknown, not
//! invented). One answer per node rather than one per member keeps Redis traffic to two
//! packets per node whatever the room's size.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use network_core::{Adapter, ClusterInbox, ClusterMessage, ConnectionId, Network, NodeId, RemoteError, Room};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::AckError;

/// The adapter topic of the channels routers.
pub(crate) const TOPIC: &str = "ch";

/// How much longer than the acknowledgement timeout the emitter waits for other nodes
/// (their own waits, plus two trips through Redis).
pub(crate) const MARGIN: Duration = Duration::from_secs(1);

/// Questions from other nodes being answered at once on this node; past it a question is
/// answered at once with every member `Failed` ("busy"), so the asker is never left
/// waiting and memory stays bounded.
const MAX_REMOTE_QUESTIONS: usize = 256;

/// A member's answer as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Ok(Value),
    Remote { code: String, message: String },
    Timeout { ms: u64 },
    Closed,
    Failed(String),
}

#[derive(Debug, Serialize, Deserialize)]
enum Bus {
    AckRoom { req: u64, ch: String, room: String, ev: String, data: Value, timeout_ms: u64 },
    AckReplies { req: u64, replies: Vec<(u64, Reply)> },
}

/// Answers a node is waiting for.
pub(crate) type Answers = Vec<(ConnectionId, Result<Value, AckError>)>;

struct Collector {
    waiting: HashSet<NodeId>,
    replies: Answers,
    unreachable: Vec<NodeId>,
    done: Option<oneshot::Sender<()>>,
}

/// The room questions this node asked and waits on.
#[derive(Default)]
pub(crate) struct Collectors {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Collector>>,
    /// Questions from other nodes being answered now.
    answering: AtomicU64,
}

impl Collectors {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Collector>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, waiting: HashSet<NodeId>) -> (u64, oneshot::Receiver<()>) {
        let req = self.next.fetch_add(1, Ordering::Relaxed);
        let (done, finished) = oneshot::channel();
        self.lock().insert(
            req,
            Collector { waiting, replies: Vec::new(), unreachable: Vec::new(), done: Some(done) },
        );
        (req, finished)
    }

    /// Takes the collected answers; nodes still awaited are unreachable.
    fn finish(&self, req: u64) -> (Answers, Vec<NodeId>) {
        let Some(collector) = self.lock().remove(&req) else { return Default::default() };
        let mut unreachable = collector.unreachable;
        unreachable.extend(collector.waiting);
        unreachable.sort_unstable();
        (collector.replies, unreachable)
    }

    /// Records what `node` answered (`None`: it went down).
    fn settle(&self, req: u64, node: NodeId, replies: Option<Answers>) {
        let mut pending = self.lock();
        let Some(collector) = pending.get_mut(&req) else { return };
        if !collector.waiting.remove(&node) {
            return;
        }
        match replies {
            Some(replies) => collector.replies.extend(replies),
            None => collector.unreachable.push(node),
        }
        if collector.waiting.is_empty()
            && let Some(done) = collector.done.take()
        {
            let _ = done.send(());
        }
    }

    fn node_down(&self, node: NodeId) {
        let reqs: Vec<u64> = self.lock().keys().copied().collect();
        for req in reqs {
            self.settle(req, node, None);
        }
    }
}

/// Asks the other nodes' members of `room` (scoped) of channel `channel`; returns their
/// answers and the nodes that did not report.
pub(crate) async fn ask_room<A: Adapter>(
    adapter: &A,
    collectors: &Collectors,
    channel: &str,
    room: &Room,
    event: &str,
    data: &Value,
    timeout: Duration,
) -> (Answers, Vec<NodeId>) {
    let peers: HashSet<NodeId> = adapter.peers().into_iter().collect();
    if peers.is_empty() {
        return Default::default();
    }
    let (req, finished) = collectors.register(peers);
    let question = Bus::AckRoom {
        req,
        ch: channel.to_owned(),
        room: room.to_string(),
        ev: event.to_owned(),
        data: data.clone(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match serde_json::to_vec(&question) {
        Ok(payload) => match adapter.publish(TOPIC, None, payload.into()).await {
            Ok(()) => {
                let _ = tokio::time::timeout(timeout + MARGIN, finished).await;
            }
            Err(error) => tracing::warn!(%error, "room acknowledgement question not published"),
        },
        Err(error) => tracing::error!(%error, "cannot encode a room acknowledgement question"),
    }
    collectors.finish(req)
}

/// Another node's question, for this node's members of a room to answer.
pub(crate) struct RoomQuestion {
    /// The channel the room belongs to.
    pub(crate) channel: String,
    /// The room, scoped.
    pub(crate) room: Room,
    pub(crate) event: String,
    pub(crate) data: Value,
    /// How long each member has to answer.
    pub(crate) timeout: Duration,
}

/// Answers other nodes' questions (`ask_members` asks this node's members of a room) and
/// collects their answers to ours, until the adapter shuts down.
pub(crate) async fn serve<N, Ask, Asked>(
    network: N,
    collectors: Arc<Collectors>,
    mut inbox: ClusterInbox,
    ask_members: Ask,
) where
    N: Network,
    Ask: Fn(RoomQuestion) -> Asked + Send + Sync + 'static,
    Asked: Future<Output = Answers> + Send + 'static,
{
    while let Some(message) = inbox.recv().await {
        match message {
            ClusterMessage::Message { from, payload } => match serde_json::from_slice::<Bus>(&payload) {
                Ok(Bus::AckReplies { req, replies }) => {
                    let replies = replies
                        .into_iter()
                        .filter(|(id, _)| ConnectionId::from_u64(*id).node() == from)
                        .map(|(id, reply)| (ConnectionId::from_u64(id), decode(reply)))
                        .collect();
                    collectors.settle(req, from, Some(replies));
                }
                Ok(Bus::AckRoom { req, ch, room, ev, data, timeout_ms }) => {
                    let busy =
                        collectors.answering.fetch_add(1, Ordering::AcqRel) >= MAX_REMOTE_QUESTIONS as u64;
                    let room: Room = room.into();
                    let timeout = Duration::from_millis(timeout_ms);
                    let asked = (!busy).then(|| {
                        ask_members(RoomQuestion {
                            channel: ch,
                            room: room.clone(),
                            event: ev,
                            data,
                            timeout,
                        })
                    });
                    let (network, collectors) = (network.clone(), collectors.clone());
                    tokio::spawn(async move {
                        let replies: Vec<(u64, Reply)> = match asked {
                            None => {
                                let ids = network.adapter().local_members(&room);
                                ids.into_iter()
                                    .map(|id| (id.as_u64(), Reply::Failed("node busy".to_owned())))
                                    .collect()
                            }
                            Some(asked) => {
                                let answers = asked.await;
                                answers
                                    .into_iter()
                                    .map(|(id, answer)| (id.as_u64(), encode(answer)))
                                    .collect()
                            }
                        };
                        collectors.answering.fetch_sub(1, Ordering::AcqRel);
                        match serde_json::to_vec(&Bus::AckReplies { req, replies }) {
                            Ok(payload) => {
                                let sent = network.adapter().publish(TOPIC, Some(from), payload.into());
                                if let Err(error) = sent.await {
                                    tracing::warn!(%error, node = %from, "room acknowledgements not sent back");
                                }
                            }
                            Err(error) => tracing::error!(%error, "cannot encode room acknowledgements"),
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(node = %from, %error, "dropping an unreadable channels cluster message")
                }
            },
            ClusterMessage::NodeDown(node) => collectors.node_down(node),
            _ => {}
        }
    }
}

fn encode(answer: Result<Value, AckError>) -> Reply {
    match answer {
        Ok(value) => Reply::Ok(value),
        Err(AckError::Remote(error)) => Reply::Remote { code: error.code, message: error.message },
        Err(AckError::Timeout(after)) => {
            Reply::Timeout { ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX) }
        }
        Err(AckError::Closed) => Reply::Closed,
        Err(other) => Reply::Failed(other.to_string()),
    }
}

fn decode(reply: Reply) -> Result<Value, AckError> {
    match reply {
        Reply::Ok(value) => Ok(value),
        Reply::Remote { code, message } => Err(AckError::Remote(RemoteError { code, message })),
        Reply::Timeout { ms } => Err(AckError::Timeout(Duration::from_millis(ms))),
        Reply::Closed => Err(AckError::Closed),
        Reply::Failed(reason) => Err(AckError::Elsewhere(reason)),
    }
}
