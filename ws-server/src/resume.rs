//! Resumable sessions (PROTOCOL.md section 9): a connection that outlives its socket.
//!
//! A session's [`Connection`](network_core::Connection) sends through a [`Resumable`]
//! rather than straight to a socket's outbox. It numbers every frame, keeps it in a
//! [`ReplayBuffer`] until the client acknowledges it, and forwards it to the socket that is
//! attached, if any. When the socket is lost without a close frame the connection task
//! detaches the session and waits, up to the window, for a resume: the handshake of a
//! request carrying the session's token checks it here ([`Sessions::claim`]) and hands the
//! new socket over; the task sends `resumed`, the frames the client missed, and attaches
//! the new socket, all under the session's lock, so no live frame slips in between.
//!
//! Nothing ever waits on a detached session: frames go to its buffer, and a buffer over its
//! bound ends the session (`Removed` with 1008 "session overflow") instead of pausing
//! anyone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::StatusCode;
use network_core::resume::{
    AckClock, QUERY_SEEN, QUERY_SESSION, Refusal, ReplayBuffer, ReplayError, SessionFrame,
};
use network_core::{CloseCode, CloseFrame, ConnectionId, Link, Message, NodeId, SendError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::handshake::{HandshakeRequest, Reject, SocketStart};
use crate::tokens::OneTimeToken;

/// How many ended sessions are remembered, to refuse their resume with the right reason.
const MAX_ENDED: usize = 4096;

/// Any socket a session can move to: TCP, TLS, an axum upgrade.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A socket of a session, whatever its type.
pub(crate) type BoxedIo = Box<dyn Io>;

/// The link of one socket: its outbox, which a session can also drop at once.
pub(crate) trait SocketLink: Link {
    /// Drops the socket without a close frame (its reader ends as "lost").
    fn abort(&self, frame: CloseFrame);

    /// Whether a close handshake has begun (the session ends with this socket).
    fn is_closing(&self) -> bool;
}

/// A socket waiting to take a session over.
pub(crate) struct Handoff {
    pub(crate) socket: HandoffSocket,
    /// Frames the client says it received.
    pub(crate) seen: u64,
}

/// Where the socket of a [`Handoff`] is.
pub(crate) enum HandoffSocket {
    /// On this node.
    Local { io: BoxedIo, start: SocketStart },
    /// On node `node`, which relays it as `relay` (see [`crate::relay`]).
    Relayed { node: NodeId, relay: u64 },
}

/// What ends a detached session's wait.
pub(crate) enum Wake {
    /// A socket resumes it.
    Resume(Handoff),
    /// The session is over, for this reason.
    End(CloseFrame),
}

struct State {
    socket: Option<Arc<dyn SocketLink>>,
    replay: ReplayBuffer,
    acks: AckClock,
    handoff: Option<Handoff>,
    /// Set when the session must end while detached (overflow, the application's close).
    end: Option<(CloseFrame, Refusal)>,
    /// The session is over: sends fail.
    ended: bool,
}

/// One resumable session: the link its connection sends through.
pub(crate) struct Resumable {
    id: ConnectionId,
    token: OneTimeToken,
    state: Mutex<State>,
    /// Wakes the connection task while detached (a handoff, an end).
    wake: Notify,
}

impl Resumable {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token the client resumes with: `<id>.<48 hex digits>`.
    pub(crate) fn token_text(&self) -> String {
        format!("{}.{}", self.id.as_u64(), self.token.encode())
    }

    /// Attaches the session's first socket.
    pub(crate) fn attach(&self, socket: Arc<dyn SocketLink>) {
        self.lock().socket = Some(socket);
    }

    /// Counts a data frame from the client; returns the `ack` to send now, if due, and
    /// when the next one falls due.
    pub(crate) fn received(&self, now: Instant) -> (Option<Message>, Option<Instant>) {
        let mut state = self.lock();
        let ack = state.acks.received(now).map(|frame| frame.encode());
        (ack, state.acks.deadline())
    }

    /// The `ack` due by the delay at `now`, and when the next one falls due.
    pub(crate) fn ack_due(&self, now: Instant) -> (Option<Message>, Option<Instant>) {
        let mut state = self.lock();
        let due = state.acks.due(now).map(|frame| frame.encode());
        (due, state.acks.deadline())
    }

    /// The client acknowledged our first `n` frames.
    pub(crate) fn client_acked(&self, n: u64) -> Result<(), ReplayError> {
        self.lock().replay.ack(n)
    }

    /// The socket was lost: frames go to the buffer only until a resume. Returns the end
    /// already decided, if any.
    pub(crate) fn detach(&self) {
        self.lock().socket = None;
    }

    /// Waits, while detached, for a resume, the window's end, or a reason to end.
    pub(crate) async fn detached(&self, window: Duration, stop: impl Future<Output = CloseFrame>) -> Wake {
        let deadline = Instant::now() + window;
        tokio::pin!(stop);
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some((frame, _)) = &state.end {
                    return Wake::End(frame.clone());
                }
                if let Some(handoff) = state.handoff.take() {
                    return Wake::Resume(handoff);
                }
            }
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(deadline) => {
                    self.lock().end = Some((CloseFrame::new(CloseCode::ABNORMAL, "session expired"), Refusal::Expired));
                }
                frame = &mut stop => return Wake::End(frame),
            }
        }
    }

    /// Resumes on `socket` for a client that received `seen` frames: `resumed`, the frames
    /// it missed, then live traffic. Fails when the frames are no longer all held.
    pub(crate) fn resume(&self, socket: Arc<dyn SocketLink>, seen: u64) -> Result<(), ReplayError> {
        let mut state = self.lock();
        let received = state.acks.count();
        state.acks = AckClock::resumed_at(received);
        let missed = state.replay.after(seen)?;
        // `resumed` is not a counted frame: it goes to the socket, not through the session.
        let _ = socket.send(SessionFrame::Resumed { seen: received }.encode());
        for frame in missed {
            let _ = socket.send_batched(frame);
        }
        state.socket = Some(socket);
        Ok(())
    }

    /// Marks the session over; later sends fail. Returns the reason a resume would be
    /// refused with from now on.
    pub(crate) fn end(&self) -> Refusal {
        let mut state = self.lock();
        state.ended = true;
        state.socket = None;
        state.handoff = None;
        state.replay.clear();
        state.end.as_ref().map_or(Refusal::Closed, |(_, refusal)| *refusal)
    }

    /// Ends a detached session (or one being handed over, or whose resume needed frames
    /// already dropped) whose buffer overflowed.
    fn overflowed(&self, state: &mut State) {
        if state.end.is_none() {
            tracing::debug!(connection = %self.id, "session over its replay bound: ending it");
            state.end = Some((CloseFrame::new(CloseCode::POLICY, "session overflow"), Refusal::Overflow));
            self.wake.notify_one();
        }
    }

    fn send_with(&self, message: Message, batched: bool) -> Result<(), SendError> {
        let mut state = self.lock();
        if state.ended || state.end.is_some() {
            return Err(SendError::Closed(message));
        }
        let dropped = state.replay.push(message.clone());
        match &state.socket {
            // Refused by the socket (lost, or its queue full and so aborted): the frame is
            // in the buffer, and the resume sends it.
            Some(socket) if batched => drop(socket.send_batched(&message)),
            Some(socket) => drop(socket.send(message)),
            None if dropped > 0 || state.replay.over_bound() => self.overflowed(&mut state),
            None => {}
        }
        Ok(())
    }
}

impl Link for Resumable {
    fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_with(message, false)
    }

    fn send_batched(&self, message: &Message) -> Result<(), SendError> {
        self.send_with(message.clone(), true)
    }

    fn close(&self, frame: CloseFrame) {
        let mut state = self.lock();
        match &state.socket {
            Some(socket) => socket.close(frame),
            None if state.end.is_none() => {
                state.end = Some((frame, Refusal::Closed));
                self.wake.notify_one();
            }
            None => {}
        }
    }
}

/// What [`Sessions::claim`] found.
enum Claim {
    /// The session can be resumed; hand it the socket with [`Sessions::hand_over`].
    Resumable(Arc<Resumable>),
    /// It cannot.
    Refused(Refusal),
}

/// The server's sessions, and the reasons recent ones ended.
pub(crate) struct Sessions {
    window: Option<Duration>,
    max_replay_size: usize,
    /// This node; sessions of other nodes are resumed through a relay when `relaying`.
    node: NodeId,
    relaying: bool,
    live: Mutex<HashMap<ConnectionId, Arc<Resumable>>>,
    ended: Mutex<Ended>,
}

#[derive(Default)]
struct Ended {
    reasons: HashMap<ConnectionId, (Refusal, Instant)>,
    order: VecDeque<ConnectionId>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sessions {
    /// Sessions kept `window` after a drop (`None`: no sessions), each buffering at most
    /// `max_replay_size` payload bytes.
    /// `relaying`: whether this node can resume other nodes' sessions (it is in a
    /// cluster whose adapter carries relay messages).
    pub(crate) fn new(
        window: Option<Duration>,
        max_replay_size: usize,
        node: NodeId,
        relaying: bool,
    ) -> Self {
        Self { window, max_replay_size, node, relaying, live: Mutex::default(), ended: Mutex::default() }
    }

    /// The window, when sessions are on.
    pub(crate) fn window(&self) -> Option<Duration> {
        self.window
    }

    /// A new session for connection `id`; `None` when sessions are off.
    pub(crate) fn open(&self, id: ConnectionId) -> Option<Arc<Resumable>> {
        self.window?;
        let session = Arc::new(Resumable {
            id,
            token: OneTimeToken::generate(),
            state: Mutex::new(State {
                socket: None,
                replay: ReplayBuffer::new(self.max_replay_size),
                acks: AckClock::default(),
                handoff: None,
                end: None,
                ended: false,
            }),
            wake: Notify::new(),
        });
        lock(&self.live).insert(id, session.clone());
        Some(session)
    }

    /// The `welcome` of `session`.
    pub(crate) fn welcome(&self, session: &Resumable) -> Message {
        let window = self.window.unwrap_or_default().as_millis().try_into().unwrap_or(u64::MAX);
        SessionFrame::Welcome { token: session.token_text(), window }.encode()
    }

    /// Checks a resume request: the token `text` and the client's `seen`.
    fn claim(&self, text: &str, seen: u64) -> Claim {
        let Some((id, token)) = parse_token(text) else { return Claim::Refused(Refusal::Unknown) };
        let Some(session) = lock(&self.live).get(&id).cloned() else {
            return Claim::Refused(self.ended_reason(id));
        };
        if !(session.token.secret_matches(token.secret()) && session.token.id_hex() == token.id_hex()) {
            return Claim::Refused(Refusal::Token);
        }
        let mut state = session.lock();
        if let Some((_, refusal)) = &state.end {
            return Claim::Refused(*refusal);
        }
        if state.socket.as_ref().is_some_and(|socket| socket.is_closing()) {
            return Claim::Refused(Refusal::Closed);
        }
        if let Err(error) = state.replay.check(seen) {
            if let ReplayError::Overflow { .. } = error {
                // The frames its client lacks are gone, so no resume can succeed: end it now
                // rather than keep it, a ghost in its rooms and views, for the window. A
                // socket the server still holds is dropped, for the task to see the end.
                if let Some(socket) = state.socket.take() {
                    socket.abort(CloseFrame::new(CloseCode::POLICY, "session overflow"));
                }
                session.overflowed(&mut state);
            }
            return Claim::Refused(error.refusal());
        }
        drop(state);
        Claim::Resumable(session)
    }

    /// Hands `handoff` to `session` (claimed just before): its current socket, if the
    /// server had not noticed it was lost, is dropped. `false` when the session can no
    /// longer be resumed (it ended, or overflowed, since the claim).
    pub(crate) fn hand_over(&self, session: &Resumable, handoff: Handoff) -> bool {
        let mut state = session.lock();
        let closing = state.socket.as_ref().is_some_and(|socket| socket.is_closing());
        if state.ended || state.end.is_some() || closing || state.replay.check(handoff.seen).is_err() {
            return false;
        }
        if let Some(socket) = state.socket.take() {
            socket.abort(CloseFrame::new(CloseCode::ABNORMAL, "replaced by a resumed socket"));
        }
        // A newer resume of the same session wins over one not taken yet.
        state.handoff = Some(handoff);
        session.wake.notify_one();
        true
    }

    /// Claims a session of this node for a relay on `node`: hands it over to the relayed
    /// socket, or says why not. `Ok` carries the frames received from the client so far.
    pub(crate) fn claim_for_relay(
        &self,
        text: &str,
        seen: u64,
        node: NodeId,
        relay: u64,
    ) -> Result<u64, Refusal> {
        if self.window.is_none() {
            return Err(Refusal::Disabled);
        }
        match self.claim(text, seen) {
            Claim::Refused(refusal) => Err(refusal),
            Claim::Resumable(session) => {
                let received = session.lock().acks.count();
                let handoff = Handoff { socket: HandoffSocket::Relayed { node, relay }, seen };
                if self.hand_over(&session, handoff) { Ok(received) } else { Err(Refusal::Closed) }
            }
        }
    }

    /// Forgets the ended session `id`, remembering why for a while.
    pub(crate) fn remove(&self, id: ConnectionId, reason: Refusal) {
        lock(&self.live).remove(&id);
        let mut ended = lock(&self.ended);
        let now = Instant::now();
        if ended.order.len() >= MAX_ENDED
            && let Some(oldest) = ended.order.pop_front()
        {
            ended.reasons.remove(&oldest);
        }
        ended.reasons.insert(id, (reason, now));
        ended.order.push_back(id);
    }

    fn ended_reason(&self, id: ConnectionId) -> Refusal {
        let window = self.window.unwrap_or_default();
        lock(&self.ended)
            .reasons
            .get(&id)
            .filter(|(_, at)| at.elapsed() <= window)
            .map_or(Refusal::Unknown, |(reason, _)| *reason)
    }
}

/// A token's connection id and secret part, if `text` is shaped like one.
fn parse_token(text: &str) -> Option<(ConnectionId, OneTimeToken)> {
    let (id, token) = text.split_once('.')?;
    Some((ConnectionId::from_u64(id.parse().ok()?), OneTimeToken::parse(token)?))
}

/// What a handshake asks of sessions, from its query.
enum Asked<'a> {
    New,
    Resume { token: &'a str, id: ConnectionId, seen: u64 },
}

/// Reads `session=` (and `seen=`) from the query: 400 for a resume without a valid `seen`.
/// Only `new` and a value shaped like a token (`<digits>.<48 lowercase hex digits>`) are session
/// requests; any other value of `session` is the application's and is left alone.
fn asked(request: &HandshakeRequest) -> Result<Option<Asked<'_>>, Reject> {
    let Some(session) = request.query_param(QUERY_SESSION) else { return Ok(None) };
    if session == "new" {
        return Ok(Some(Asked::New));
    }
    let Some((id, _)) = parse_token(session) else { return Ok(None) };
    let seen = request
        .query_param(QUERY_SEEN)
        .and_then(|seen| seen.parse().ok())
        .ok_or_else(|| Reject::new(StatusCode::BAD_REQUEST, "a resume needs `seen`, an unsigned integer"))?;
    Ok(Some(Asked::Resume { token: session, id, seen }))
}

/// What a fresh connection gets in the way of a session.
pub(crate) enum Plan {
    /// None asked for.
    Plain,
    /// Asked for while sessions are off: a plain connection that first says `disabled`.
    Disabled,
    /// A new session, after a refused resume (the reason) or not.
    New(Option<Refusal>),
}

/// What the handshake does with a request.
pub(crate) enum Resolution {
    /// Hands the socket to this session, whose client saw this many frames.
    Resume(Arc<Resumable>, u64),
    /// The session is another node's: ask it to resume through this one (the token, the
    /// session's id, `seen`).
    Relay(String, ConnectionId, u64),
    /// Goes on as a new connection (the hook runs).
    Fresh(Plan),
}

impl Sessions {
    /// Decides what a handshake `request` does with sessions.
    pub(crate) fn resolve(&self, request: &HandshakeRequest) -> Result<Resolution, Reject> {
        let plan = match asked(request)? {
            None => Plan::Plain,
            Some(_) if self.window.is_none() => Plan::Disabled,
            Some(Asked::New) => Plan::New(None),
            Some(Asked::Resume { token, id, seen }) => {
                if self.relaying && id.node() != self.node {
                    return Ok(Resolution::Relay(token.to_owned(), id, seen));
                }
                match self.claim(token, seen) {
                    Claim::Resumable(session) => return Ok(Resolution::Resume(session, seen)),
                    Claim::Refused(reason) => {
                        tracing::debug!(%reason, "resume refused");
                        Plan::New(Some(reason))
                    }
                }
            }
        };
        Ok(Resolution::Fresh(plan))
    }
}
