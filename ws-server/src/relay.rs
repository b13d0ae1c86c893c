//! Resuming a session on another node of a cluster: the socket moves, the session stays.
//!
//! A session lives on the node that opened it (its owner, named in the high bits of its
//! connection id): its routers' state, rooms and replay buffer are there. When the client
//! comes back through a load balancer to another node (the *relay*), that node asks the
//! owner, over the adapter's `publish`/`subscribe` (topic [`TOPIC`]), to resume the session
//! through it. If the owner agrees, the relay answers the upgrade and pipes frames both
//! ways: client frames go to the owner in batches, the owner's frames come back in
//! batches, and the owner runs the session exactly as for a local socket (counting,
//! acknowledgements, replay). If it refuses, the relay opens a new session of its own and
//! says why (`refused`), as a local refusal would.
//!
//! Cluster messages are at most once (a dropped link to the cluster loses them): any sign
//! of loss (the inbox lagging, a node going down, a relay's queue overflowing) drops the
//! relayed socket without a close frame, the session detaches on its owner, and the client
//! resumes again. Exactly-once delivery never depends on the relay being reliable, only
//! on the counts the owner keeps.
//!
//! Rejected: moving the session (rooms, replay buffer and every router's per-connection
//! state) to the new node. It needs an export/import hook in every router and a directory
//! of where each id lives, consulted on every remote send; the relay needs neither, at the
//! price of one cluster hop per frame for a client until it next connects fresh.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use network_core::resume::Refusal;
use network_core::{
    CloseCode, CloseFrame, ClusterInbox, ClusterMessage, Connection, ConnectionId, Link, Message, NodeId,
    SendError, Text,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite;

use crate::connection::{Ending, session_frame};
use crate::resume::{Resumable, SocketLink};
use crate::server::Inner;

/// The adapter topic of relay messages.
pub(crate) const TOPIC: &str = "ws-session";

/// Batches queued per relayed socket, each way; past it the relay is dropped.
const RELAY_QUEUE: usize = 256;
/// Frames per batch at most.
const BATCH_FRAMES: usize = 256;

/// One relay message.
#[derive(Debug, PartialEq)]
enum Packet {
    /// Relay → owner: resume the session of `token` through me as relay `relay`.
    Claim { relay: u64, token: String, seen: u64 },
    /// Owner → relay: the claim's answer (the frames the owner received from the client).
    Claimed { relay: u64, answer: Result<u64, Refusal> },
    /// Owner → relay: frames for the client.
    ToClient { relay: u64, frames: Vec<Message> },
    /// Relay → owner: frames from the client.
    ToOwner { session: u64, relay: u64, frames: Vec<Message> },
    /// Relay → owner: the client's socket ended (with its close frame, or lost).
    SocketEnded { session: u64, relay: u64, close: Option<CloseFrame> },
    /// Owner → relay: close the socket with this frame, or drop it (`None`).
    Close { relay: u64, close: Option<CloseFrame> },
}

impl Packet {
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Self::Claim { relay, token, seen } => {
                out.put_u8(1);
                out.put_u64(*relay);
                out.put_u64(*seen);
                put_bytes(&mut out, token.as_bytes());
            }
            Self::Claimed { relay, answer } => {
                out.put_u8(2);
                out.put_u64(*relay);
                match answer {
                    Ok(received) => {
                        out.put_u8(0);
                        out.put_u64(*received);
                    }
                    Err(refusal) => {
                        out.put_u8(1);
                        put_bytes(&mut out, refusal.as_str().as_bytes());
                    }
                }
            }
            Self::ToClient { relay, frames } => {
                out.put_u8(3);
                out.put_u64(*relay);
                put_frames(&mut out, frames);
            }
            Self::ToOwner { session, relay, frames } => {
                out.put_u8(4);
                out.put_u64(*session);
                out.put_u64(*relay);
                put_frames(&mut out, frames);
            }
            Self::SocketEnded { session, relay, close } => {
                out.put_u8(5);
                out.put_u64(*session);
                out.put_u64(*relay);
                put_close(&mut out, close.as_ref());
            }
            Self::Close { relay, close } => {
                out.put_u8(6);
                out.put_u64(*relay);
                put_close(&mut out, close.as_ref());
            }
        }
        out.freeze()
    }

    /// Reads a packet; `None` for a malformed one (a node of another version).
    fn decode(mut input: Bytes) -> Option<Self> {
        let input = &mut input;
        let packet = match get_u8(input)? {
            1 => {
                let (relay, seen) = (get_u64(input)?, get_u64(input)?);
                let token = String::from_utf8(get_bytes(input)?.to_vec()).ok()?;
                Self::Claim { relay, token, seen }
            }
            2 => {
                let relay = get_u64(input)?;
                let answer = match get_u8(input)? {
                    0 => Ok(get_u64(input)?),
                    // A reason this node does not know (a newer node): the nearest one.
                    _ => Err(std::str::from_utf8(&get_bytes(input)?)
                        .ok()
                        .and_then(Refusal::from_name)
                        .unwrap_or(Refusal::Unknown)),
                };
                Self::Claimed { relay, answer }
            }
            3 => Self::ToClient { relay: get_u64(input)?, frames: get_frames(input)? },
            4 => {
                Self::ToOwner { session: get_u64(input)?, relay: get_u64(input)?, frames: get_frames(input)? }
            }
            5 => Self::SocketEnded {
                session: get_u64(input)?,
                relay: get_u64(input)?,
                close: get_close(input)?,
            },
            6 => Self::Close { relay: get_u64(input)?, close: get_close(input)? },
            _ => return None,
        };
        input.is_empty().then_some(packet)
    }
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32(bytes.len() as u32);
    out.put_slice(bytes);
}

fn put_frames(out: &mut BytesMut, frames: &[Message]) {
    out.put_u32(frames.len() as u32);
    for frame in frames {
        out.put_u8(u8::from(frame.is_text()));
        put_bytes(out, frame.payload());
    }
}

fn put_close(out: &mut BytesMut, close: Option<&CloseFrame>) {
    match close {
        None => out.put_u8(0),
        Some(frame) => {
            out.put_u8(1);
            out.put_u16(frame.code.0);
            put_bytes(out, frame.reason.as_bytes());
        }
    }
}

fn get_u8(input: &mut Bytes) -> Option<u8> {
    (input.remaining() >= 1).then(|| input.get_u8())
}

fn get_u64(input: &mut Bytes) -> Option<u64> {
    (input.remaining() >= 8).then(|| input.get_u64())
}

fn get_bytes(input: &mut Bytes) -> Option<Bytes> {
    let len = (input.remaining() >= 4).then(|| input.get_u32())? as usize;
    (input.remaining() >= len).then(|| input.split_to(len))
}

fn get_frames(input: &mut Bytes) -> Option<Vec<Message>> {
    let count = (input.remaining() >= 4).then(|| input.get_u32())? as usize;
    // Each frame takes at least 5 bytes: a count beyond that is a lie.
    let mut frames = Vec::with_capacity(count.min(input.remaining() / 5));
    for _ in 0..count {
        let text = get_u8(input)? == 1;
        let payload = get_bytes(input)?;
        frames.push(if text {
            Message::Text(Text::from_utf8(payload).ok()?)
        } else {
            Message::Binary(payload)
        });
    }
    Some(frames)
}

fn get_close(input: &mut Bytes) -> Option<Option<CloseFrame>> {
    match get_u8(input)? {
        0 => Some(None),
        _ => {
            let code = (input.remaining() >= 2).then(|| input.get_u16())?;
            let reason = String::from_utf8(get_bytes(input)?.to_vec()).ok()?;
            Some(Some(CloseFrame::new(CloseCode(code), reason)))
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the owner sends a relay.
pub(crate) enum FromOwner {
    Frames(Vec<Message>),
    /// Close with this frame, or drop the socket (`None`).
    Close(Option<CloseFrame>),
}

/// What a relay sends the owner of a session it carries.
pub(crate) enum FromRelay {
    Frames(Vec<Message>),
    /// The client's socket ended: its close frame, or lost (`None`).
    Ended(Option<CloseFrame>),
}

/// This node's side of relayed sessions, both roles.
pub(crate) struct Relays {
    next_relay: AtomicU64,
    /// As relay: claims waiting for the owner's answer.
    claims: Mutex<HashMap<u64, oneshot::Sender<Result<u64, Refusal>>>>,
    /// As relay: sockets carried for another node's sessions (owner, inbox).
    carried: Mutex<HashMap<u64, (NodeId, mpsc::Sender<FromOwner>)>>,
    /// As owner: sessions reached through another node.
    relayed: Mutex<HashMap<ConnectionId, Route>>,
}

/// How the owner reaches a relayed session's socket.
struct Route {
    node: NodeId,
    relay: u64,
    inbox: mpsc::Sender<FromRelay>,
}

impl Relays {
    pub(crate) fn new() -> Self {
        Self {
            next_relay: AtomicU64::new(1),
            claims: Mutex::default(),
            carried: Mutex::default(),
            relayed: Mutex::default(),
        }
    }
}

/// A relayed socket the owner has accepted: what the relay's connection task needs.
pub(crate) struct Carried {
    inner: Arc<Inner>,
    owner: NodeId,
    session: u64,
    relay: u64,
    inbox: mpsc::Receiver<FromOwner>,
    /// How the client's socket ended (its close frame; `None`: lost or never served).
    ended: Option<CloseFrame>,
}

impl Drop for Carried {
    /// However the carrying ends (the socket's end, the owner's close, an upgrade that
    /// failed after the claim), the owner hears of it: a session attached to a socket that
    /// no longer exists would never detach, and so never expire.
    fn drop(&mut self) {
        lock(&self.inner.relays.carried).remove(&self.relay);
        let packet =
            Packet::SocketEnded { session: self.session, relay: self.relay, close: self.ended.take() };
        let (inner, owner) = (self.inner.clone(), self.owner);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = inner.rooms.publish(TOPIC, Some(owner), packet.encode()).await;
            });
        }
    }
}

/// Asks the owner of the session in `token` to resume it through this node; the answer is
/// the carried socket's inbox, or why not.
pub(crate) async fn claim(
    inner: &Arc<Inner>,
    id: ConnectionId,
    token: &str,
    seen: u64,
) -> Result<Carried, Refusal> {
    let relays = &inner.relays;
    let relay = relays.next_relay.fetch_add(1, Ordering::Relaxed);
    let (answer_tx, answer) = oneshot::channel();
    // Registered before the claim goes out: the owner's frames may overtake its answer.
    let (inbox_tx, inbox) = mpsc::channel(RELAY_QUEUE);
    lock(&relays.claims).insert(relay, answer_tx);
    lock(&relays.carried).insert(relay, (id.node(), inbox_tx));
    let packet = Packet::Claim { relay, token: token.to_owned(), seen };
    let sent = inner.rooms.publish(TOPIC, Some(id.node()), packet.encode()).await;
    let answer = match sent {
        Err(error) => {
            tracing::debug!(%error, owner = %id.node(), "claim not sent");
            Err(Refusal::Unknown)
        }
        // The owner answers promptly, or it is gone: then the session is as good as unknown.
        Ok(()) => match tokio::time::timeout(inner.config.handshake_timeout / 2, answer).await {
            Ok(Ok(answer)) => answer,
            _ => Err(Refusal::Unknown),
        },
    };
    lock(&relays.claims).remove(&relay);
    match answer {
        Ok(_) => Ok(Carried {
            inner: inner.clone(),
            owner: id.node(),
            session: id.as_u64(),
            relay,
            inbox,
            ended: None,
        }),
        Err(refusal) => {
            lock(&relays.carried).remove(&relay);
            Err(refusal)
        }
    }
}

/// Reads the relay topic and dispatches it, until the adapter shuts down.
pub(crate) async fn dispatch(inner: Weak<Inner>, mut inbox: ClusterInbox) {
    while let Some(message) = inbox.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match message {
            ClusterMessage::Message { from, payload } => match Packet::decode(payload) {
                Some(packet) => handle(&inner, from, packet).await,
                None => tracing::warn!(%from, "malformed relay packet ignored"),
            },
            ClusterMessage::NodeDown(node) => drop_relays(&inner.relays, |peer| peer == node),
            // Messages were lost: no relayed stream can be trusted to be complete.
            ClusterMessage::Resync => drop_relays(&inner.relays, |_| true),
            ClusterMessage::NodeUp(_) => {}
            _ => {}
        }
    }
}

/// Drops every relayed socket (as relay and as owner) that involves a node `matching`.
fn drop_relays(relays: &Relays, matching: impl Fn(NodeId) -> bool) {
    lock(&relays.carried).retain(|_, (owner, inbox)| {
        let keep = !matching(*owner);
        if !keep {
            let _ = inbox.try_send(FromOwner::Close(None));
        }
        keep
    });
    lock(&relays.relayed).retain(|_, route| {
        let keep = !matching(route.node);
        if !keep {
            let _ = route.inbox.try_send(FromRelay::Ended(None));
        }
        keep
    });
}

async fn handle(inner: &Arc<Inner>, from: NodeId, packet: Packet) {
    let relays = &inner.relays;
    match packet {
        Packet::Claim { relay, token, seen } => {
            let answer = inner.sessions.claim_for_relay(&token, seen, from, relay);
            let packet = Packet::Claimed { relay, answer };
            if let Err(error) = inner.rooms.publish(TOPIC, Some(from), packet.encode()).await {
                tracing::debug!(%error, relay = %from, "claim answer not sent");
            }
        }
        Packet::Claimed { relay, answer } => {
            if let Some(waiting) = lock(&relays.claims).remove(&relay) {
                let _ = waiting.send(answer);
            }
        }
        Packet::ToClient { relay, frames } => to_carried(relays, relay, FromOwner::Frames(frames)),
        Packet::Close { relay, close } => to_carried(relays, relay, FromOwner::Close(close)),
        Packet::ToOwner { session, relay, frames } => {
            to_relayed(relays, session, relay, FromRelay::Frames(frames))
        }
        Packet::SocketEnded { session, relay, close } => {
            to_relayed(relays, session, relay, FromRelay::Ended(close))
        }
    }
}

fn to_carried(relays: &Relays, relay: u64, message: FromOwner) {
    let mut carried = lock(&relays.carried);
    let Some((_, inbox)) = carried.get(&relay) else { return };
    if inbox.try_send(message).is_err() {
        // Behind by a whole queue (or gone): drop the socket, the client resumes again.
        tracing::debug!(relay, "relayed socket behind: dropping it");
        if let Some((_, inbox)) = carried.remove(&relay) {
            drop(inbox);
        }
    }
}

fn to_relayed(relays: &Relays, session: u64, relay: u64, message: FromRelay) {
    let id = ConnectionId::from_u64(session);
    let mut relayed = lock(&relays.relayed);
    let Some(route) = relayed.get(&id) else { return };
    // A stale relay of this session (the client has moved on since).
    if route.relay != relay {
        return;
    }
    if route.inbox.try_send(message).is_err() {
        tracing::debug!(session = %id, "relayed session behind: detaching it");
        relayed.remove(&id);
    }
}

// ---- the owner's side ------------------------------------------------------------------

/// The link of a session whose socket is on another node: frames are published to it.
pub(crate) struct RemoteSocket {
    state: Mutex<RemoteState>,
    /// Wakes the publisher (frames or an end to publish).
    wake: Notify,
    /// Wakes the reader when the link ends.
    ended: Notify,
    max_queued: usize,
}

#[derive(Default)]
struct RemoteState {
    queue: VecDeque<Message>,
    queued_bytes: usize,
    /// Set by `close` (a frame) or `abort` (none): the end to publish after the queue.
    end: Option<Option<CloseFrame>>,
    closing: bool,
}

impl RemoteSocket {
    fn push(&self, message: Message) -> Result<(), SendError> {
        let mut state = lock(&self.state);
        if state.end.is_some() {
            return Err(SendError::Closed(message));
        }
        if !state.queue.is_empty() && state.queued_bytes + message.len() > self.max_queued {
            // Like a full outgoing queue: the socket is dropped, the session detaches and
            // keeps the frame in its replay buffer.
            drop(state);
            self.end(None, false);
            return Err(SendError::Full(message));
        }
        state.queued_bytes += message.len();
        state.queue.push_back(message);
        self.wake.notify_one();
        Ok(())
    }

    /// The next batch to publish, or the end once everything before it is out.
    fn take(&self) -> Result<Vec<Message>, Option<CloseFrame>> {
        let mut state = lock(&self.state);
        if state.queue.is_empty()
            && let Some(end) = &state.end
        {
            return Err(end.clone());
        }
        let count = state.queue.len().min(BATCH_FRAMES);
        let batch: Vec<Message> = state.queue.drain(..count).collect();
        state.queued_bytes -= batch.iter().map(Message::len).sum::<usize>();
        Ok(batch)
    }

    /// Ends the link (a frame to close with, or none to drop the socket); the first end
    /// counts.
    fn end(&self, end: Option<CloseFrame>, closing: bool) {
        let mut state = lock(&self.state);
        state.closing |= closing;
        state.end.get_or_insert(end);
        drop(state);
        self.wake.notify_one();
        self.ended.notify_waiters();
    }

    /// Waits until the link ends; returns how.
    async fn ended_signal(&self) -> Option<CloseFrame> {
        loop {
            let woken = self.ended.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(end) = lock(&self.state).end.clone() {
                return end;
            }
            woken.await;
        }
    }
}

impl Link for RemoteSocket {
    fn send(&self, message: Message) -> Result<(), SendError> {
        self.push(message)
    }

    fn close(&self, frame: CloseFrame) {
        self.end(Some(frame), true);
    }
}

impl SocketLink for RemoteSocket {
    fn abort(&self, _frame: CloseFrame) {
        self.end(None, false);
    }

    fn is_closing(&self) -> bool {
        lock(&self.state).closing
    }
}

/// The owner's end of a relayed socket: frames from the client, and the link to it.
pub(crate) struct Relayed {
    link: Arc<RemoteSocket>,
    inbox: mpsc::Receiver<FromRelay>,
    node: NodeId,
    relay: u64,
}

impl Relayed {
    /// Registers session `id` as reached through `relay` on `node`.
    pub(crate) fn open(inner: &Inner, id: ConnectionId, node: NodeId, relay: u64) -> Self {
        let (inbox_tx, inbox) = mpsc::channel(RELAY_QUEUE);
        lock(&inner.relays.relayed).insert(id, Route { node, relay, inbox: inbox_tx });
        let link = Arc::new(RemoteSocket {
            state: Mutex::default(),
            wake: Notify::new(),
            ended: Notify::new(),
            max_queued: inner.config.max_outgoing_queue_size,
        });
        Self { link, inbox, node, relay }
    }

    /// The session's link to the relayed socket.
    pub(crate) fn link(&self) -> Arc<dyn SocketLink> {
        self.link.clone()
    }

    /// Runs the relayed socket until it ends: client frames in (counted, acknowledged,
    /// handed to the hub), the session's frames out.
    pub(crate) async fn run(
        &mut self,
        inner: &Inner,
        connection: &Connection,
        session: &Resumable,
    ) -> Ending {
        let link = self.link.clone();
        let publisher = publish(inner, link.clone(), self.node, self.relay);
        let reader = async {
            let ending = self.read(inner, connection, session).await;
            // Nothing more for this socket; a close the application asked for stays the
            // end, published after the frames before it.
            link.abort(ending.frame.clone());
            ending
        };
        let (ending, ()) = tokio::join!(reader, publisher);
        ending
    }

    async fn read(&mut self, inner: &Inner, connection: &Connection, session: &Resumable) -> Ending {
        let mut ack_at: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                end = self.link.ended_signal() => {
                    return match end {
                        Some(frame) => Ending::closed(frame),
                        None => Ending::lost(CloseFrame::new(CloseCode::ABNORMAL, "relay dropped")),
                    };
                }
                item = self.inbox.recv() => match item {
                    Some(FromRelay::Frames(frames)) => {
                        for message in frames {
                            match session_frame(session, &*self.link, &message, Instant::now()) {
                                Ok(None) => {}
                                Ok(Some(deadline)) => {
                                    ack_at = Some(ack_at.map_or(deadline, |at| at.min(deadline)));
                                    inner.hub.message(connection, message).await;
                                }
                                Err(frame) => {
                                    tracing::debug!(connection = %connection.id(), close = %frame, "session violation");
                                    self.link.close(frame.clone());
                                    return Ending::closed(frame);
                                }
                            }
                        }
                    }
                    Some(FromRelay::Ended(Some(frame))) => return Ending::closed(frame),
                    Some(FromRelay::Ended(None)) | None => {
                        return Ending::lost(CloseFrame::new(CloseCode::ABNORMAL, "relayed socket lost"));
                    }
                },
                () = sleep_until(ack_at.unwrap_or_else(Instant::now)), if ack_at.is_some() => {
                    let (due, next) = session.ack_due(Instant::now());
                    if let Some(ack) = due {
                        let _ = self.link.send(ack);
                    }
                    ack_at = next;
                }
            }
        }
    }

    /// Forgets the registration of session `id`, if it is still this relay's.
    pub(crate) fn close(&self, inner: &Inner, id: ConnectionId) {
        let mut relayed = lock(&inner.relays.relayed);
        if relayed.get(&id).is_some_and(|route| route.relay == self.relay) {
            relayed.remove(&id);
        }
    }
}

/// Publishes what the session sends through `link`, in order, until the link ends; then
/// tells the relay to close or drop the socket.
async fn publish(inner: &Inner, link: Arc<RemoteSocket>, node: NodeId, relay: u64) {
    loop {
        let woken = link.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match link.take() {
            Ok(frames) if frames.is_empty() => woken.await,
            Ok(frames) => {
                let packet = Packet::ToClient { relay, frames };
                if let Err(error) = inner.rooms.publish(TOPIC, Some(node), packet.encode()).await {
                    tracing::debug!(%error, "relayed frames not published: dropping the relay");
                    link.abort(CloseFrame::new(CloseCode::ABNORMAL, "relay failed"));
                }
            }
            Err(close) => {
                let _ = inner.rooms.publish(TOPIC, Some(node), Packet::Close { relay, close }.encode()).await;
                return;
            }
        }
    }
}

// ---- the relay's side ------------------------------------------------------------------

/// Carries a client's socket for a session owned by another node until either side ends.
pub(crate) async fn carry<S>(inner: Arc<Inner>, io: S, leftover: Vec<u8>, carried: Carried)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut carried = carried;
    let (owner, session, relay) = (carried.owner, carried.session, carried.relay);
    let inbox = &mut carried.inbox;
    let config = crate::connection::websocket_config(&inner.config);
    let mut ws = tokio_tungstenite::WebSocketStream::from_partially_read(
        io,
        leftover,
        tungstenite::protocol::Role::Server,
        Some(config),
    )
    .await;
    let publish = |packet: Packet| inner.rooms.publish(TOPIC, Some(owner), packet.encode());
    let far = Duration::from_secs(86_400 * 365);
    let idle = inner.config.idle_timeout.unwrap_or(far);
    let ping = inner.config.ping_interval.unwrap_or(far);
    let mut last_received = Instant::now();
    let mut next_ping = Instant::now() + ping;
    let ended: Option<CloseFrame> = loop {
        let deadline = next_ping.min(last_received + idle);
        tokio::select! {
            from_owner = inbox.recv() => match from_owner {
                Some(FromOwner::Frames(frames)) => {
                    let mut written = true;
                    for frame in frames {
                        let message = match frame {
                            Message::Text(text) => tungstenite::Message::Text(text.as_str().into()),
                            Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
                        };
                        if ws.feed(message).await.is_err() {
                            written = false;
                            break;
                        }
                    }
                    if !written || ws.flush().await.is_err() {
                        break None;
                    }
                }
                Some(FromOwner::Close(Some(frame))) => {
                    let _ = tokio::time::timeout(inner.config.close_timeout, ws.close(Some(tungstenite::protocol::CloseFrame {
                        code: frame.code.0.into(),
                        reason: frame.reason.clone().into(),
                    }))).await;
                    return;
                }
                // Dropped by the owner (or behind): no close frame, the client resumes.
                Some(FromOwner::Close(None)) | None => return,
            },
            read = ws.next() => {
                last_received = Instant::now();
                match read {
                    Some(Ok(tungstenite::Message::Text(text))) => {
                        let frames = vec![Message::text(text.as_str().to_owned())];
                        if publish(Packet::ToOwner { session, relay, frames }).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(tungstenite::Message::Binary(bytes))) => {
                        let frames = vec![Message::Binary(bytes)];
                        if publish(Packet::ToOwner { session, relay, frames }).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(tungstenite::Message::Close(frame))) => {
                        let frame = frame.map_or_else(
                            || CloseFrame::new(CloseCode(1005), ""),
                            |frame| CloseFrame::new(CloseCode(frame.code.into()), frame.reason.as_str()),
                        );
                        let _ = ws.flush().await;
                        break Some(frame);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break None,
                }
            }
            () = sleep_until(deadline) => {
                let now = Instant::now();
                if now >= last_received + idle {
                    break None;
                }
                if now >= next_ping {
                    let _ = ws.send(tungstenite::Message::Ping(Bytes::new())).await;
                    next_ping = now + ping;
                }
            }
        }
    };
    // Dropping `carried` tells the owner.
    carried.ended = ended;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_truncations_are_refused() {
        let packets = [
            Packet::Claim { relay: 7, token: "42.abc".into(), seen: 3 },
            Packet::Claimed { relay: 7, answer: Ok(12) },
            Packet::Claimed { relay: 7, answer: Err(Refusal::Expired) },
            Packet::ToClient { relay: 7, frames: vec![Message::text("a"), Message::binary(vec![0u8, 1])] },
            Packet::ToOwner { session: 42, relay: 7, frames: vec![] },
            Packet::SocketEnded { session: 42, relay: 7, close: None },
            Packet::Close { relay: 7, close: Some(CloseFrame::new(CloseCode::POLICY, "bye")) },
        ];
        for packet in packets {
            let bytes = packet.encode();
            assert_eq!(Packet::decode(bytes.clone()), Some(packet));
            for cut in 0..bytes.len() {
                assert_eq!(Packet::decode(bytes.slice(..cut)), None, "cut at {cut}");
            }
        }
        // Invalid UTF-8 in a text frame is refused, not passed on.
        let mut bad = BytesMut::new();
        bad.put_u8(3);
        bad.put_u64(1);
        bad.put_u32(1);
        bad.put_u8(1);
        put_bytes(&mut bad, &[0xff]);
        assert_eq!(Packet::decode(bad.freeze()), None);
    }
}
