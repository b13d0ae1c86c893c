//! The client side of the in-memory pair: one connection that keeps its id across
//! reconnects, an offline queue, the restore phase, and the scripted faults.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use network_core::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionMeta, Identity, Link, Message,
    Network, SendError, hub,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{MemoryNetwork, transport};

/// Frames a client queues while its link is down (past it, sends fail with `Full`).
const QUEUE_CAPACITY: usize = 1024;
/// Frames on the way in one direction of one connection (past it, sends fail with `Full`).
const PIPE_CAPACITY: usize = 4096;

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Self::ToServer => 0,
            Self::ToClient => 1,
        }
    }
}

/// A connection attempt was refused ([`MemoryClient::refuse_next`]): neither side's
/// routers heard of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused")
    }
}

impl std::error::Error for Refused {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under these locks fails the test anyway; the state is still readable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Matcher = Box<dyn Fn(&Message) -> bool + Send + Sync>;

/// The faults scripted so far. Locked after the link state when both are needed.
#[derive(Default)]
struct Faults {
    /// One-shot rules per direction: the first frame that matches a rule is lost, and the
    /// rule with it.
    drops: [Vec<Matcher>; 2],
    /// Latency per direction, stamped on each frame when it is sent.
    delays: [Duration; 2],
    /// Connection attempts still to refuse.
    refusals: usize,
    /// Frames reaching the client are set aside until `release`.
    hold_to_client: bool,
}

impl Faults {
    /// Whether `message` is lost (consuming the rule that says so), and its latency.
    fn apply(&mut self, direction: Direction, message: &Message) -> (bool, Duration) {
        let rules = &mut self.drops[direction.index()];
        let dropped = match rules.iter().position(|matches| matches(message)) {
            Some(index) => {
                drop(rules.remove(index));
                true
            }
            None => false,
        };
        (dropped, self.delays[direction.index()])
    }
}

enum Item {
    Frame {
        message: Message,
        due: Instant,
    },
    /// The server closed the connection with this frame.
    Close(CloseFrame),
}

/// One direction of one connection: a bounded queue into the task that delivers it.
struct Pipe {
    direction: Direction,
    sender: Mutex<Option<mpsc::Sender<Item>>>,
    faults: Arc<Mutex<Faults>>,
}

impl Pipe {
    fn new(direction: Direction, faults: Arc<Mutex<Faults>>) -> (Self, mpsc::Receiver<Item>) {
        let (sender, receiver) = mpsc::channel(PIPE_CAPACITY);
        (Self { direction, sender: Mutex::new(Some(sender)), faults }, receiver)
    }

    fn push(&self, message: Message) -> Result<(), SendError> {
        let (dropped, delay) = lock(&self.faults).apply(self.direction, &message);
        if dropped {
            // Lost on the wire: the sender cannot tell (the consumed rule can).
            return Ok(());
        }
        let sender = lock(&self.sender);
        let Some(sender) = sender.as_ref() else { return Err(SendError::Closed(message)) };
        let item = Item::Frame { message, due: Instant::now() + delay };
        sender.try_send(item).map_err(|error| match error {
            mpsc::error::TrySendError::Full(Item::Frame { message, .. }) => SendError::Full(message),
            mpsc::error::TrySendError::Closed(Item::Frame { message, .. }) => SendError::Closed(message),
            // Only frames are pushed here.
            _ => SendError::Closed(Message::text("")),
        })
    }

    /// Queues `frame` as the last item and ends the pipe.
    fn close_with(&self, frame: CloseFrame) {
        if let Some(sender) = lock(&self.sender).take() {
            let _ = sender.try_send(Item::Close(frame));
        }
    }

    /// Ends the pipe: what is on the way still arrives, nothing more can be sent.
    fn end(&self) {
        lock(&self.sender).take();
    }

    fn is_ended(&self) -> bool {
        lock(&self.sender).is_none()
    }
}

/// The link of a server-side connection: its frames go down the pipe to the client.
struct ServerEnd(Arc<Pipe>);

impl Link for ServerEnd {
    fn send(&self, message: Message) -> Result<(), SendError> {
        self.0.push(message)
    }

    fn close(&self, frame: CloseFrame) {
        self.0.close_with(frame);
    }
}

/// One connection of the pair, from `connect` to both sides' `Removed`.
struct Session {
    server_id: ConnectionId,
    up: Pipe,
    down: Arc<Pipe>,
    /// Why it ended; the first reason wins.
    end: Mutex<Option<CloseFrame>>,
    /// Frames towards the server wait while set ([`MemoryClient::hold`]).
    up_held: watch::Sender<bool>,
    /// Set once the client's routers were handed `Removed`.
    client_ended: watch::Sender<bool>,
    /// Set once the server's routers were handed `Removed`.
    server_ended: watch::Sender<bool>,
}

impl Session {
    fn set_end(&self, frame: CloseFrame) {
        lock(&self.end).get_or_insert(frame);
    }

    fn end_frame(&self) -> CloseFrame {
        lock(&self.end).clone().unwrap_or_else(|| CloseFrame::new(CloseCode::ABNORMAL, ""))
    }

    async fn ended(flag: &watch::Sender<bool>) {
        let _ = flag.subscribe().wait_for(|ended| *ended).await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Offline,
    Restoring,
    Open,
    Closed,
}

struct LinkState {
    phase: Phase,
    /// Frames sent while offline (or, while restoring, by anyone but the restoring routers).
    queue: VecDeque<Message>,
    current: Option<Arc<Session>>,
    /// Sessions whose frames towards the server are held.
    held: Vec<Arc<Session>>,
    /// Frames towards the client set aside by `hold(ToClient)`.
    set_aside: Vec<Message>,
}

/// What the client's connection sends through: the offline queue, or the current pipe.
struct ClientEnd {
    id: ConnectionId,
    state: Arc<Mutex<LinkState>>,
    client: Weak<Inner>,
}

impl Link for ClientEnd {
    fn send(&self, message: Message) -> Result<(), SendError> {
        let restoring = hub::is_restoring(self.id);
        let mut state = lock(&self.state);
        match (state.phase, &state.current) {
            (Phase::Closed, _) => Err(SendError::Closed(message)),
            (Phase::Open, Some(session)) => session.up.push(message),
            (Phase::Restoring, Some(session)) if restoring => session.up.push(message),
            _ if state.queue.len() >= QUEUE_CAPACITY => Err(SendError::Full(message)),
            _ => {
                state.queue.push_back(message);
                Ok(())
            }
        }
    }

    fn close(&self, frame: CloseFrame) {
        if let Some(inner) = self.client.upgrade() {
            tokio::spawn(async move { MemoryClient { inner }.close_with(frame).await });
        }
    }
}

struct Inner {
    server: MemoryNetwork,
    network: MemoryNetwork,
    connection: Connection,
    signal: ClosedSignal,
    state: Arc<Mutex<LinkState>>,
    faults: Arc<Mutex<Faults>>,
    identity: Mutex<Option<Identity>>,
}

/// A client of a server [`MemoryNetwork`], connected without sockets; see the
/// [module docs](super). Cheap to clone: clones drive the same link.
///
/// Its [`network`](Self::network) is where client-side routers attach; it holds one
/// [`Connection`] that keeps its id across reconnects, queues frames while the link is
/// down, and on every (re)connect lets routers restore before the queue flows, as
/// `ws_client::Client` does. Misuse (connecting twice) panics, as test code should.
#[derive(Clone)]
pub struct MemoryClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("MemoryClient")
            .field("connection", &self.inner.connection.id())
            .field("phase", &state.phase)
            .field("queued", &state.queue.len())
            .finish()
    }
}

impl MemoryClient {
    /// A client of `server`, not connected yet.
    pub fn new(server: &MemoryNetwork) -> Self {
        let state = Arc::new(Mutex::new(LinkState {
            phase: Phase::Offline,
            queue: VecDeque::new(),
            current: None,
            held: Vec::new(),
            set_aside: Vec::new(),
        }));
        let inner = Arc::new_cyclic(|client| {
            let id = ConnectionId::next();
            let link = ClientEnd { id, state: state.clone(), client: client.clone() };
            let (connection, signal) = Connection::new(id, ConnectionMeta::new("/"), Arc::new(link));
            Inner {
                server: server.clone(),
                network: MemoryNetwork::new(),
                connection,
                signal,
                state,
                faults: Arc::default(),
                identity: Mutex::new(None),
            }
        });
        Self { inner }
    }

    /// Sets the identity of the server-side connections opened from now on (what a
    /// handshake hook would attach).
    pub fn set_identity(&self, identity: Identity) {
        *lock(&self.inner.identity) = Some(identity);
    }

    /// The client-side network: attach the client routers here.
    pub fn network(&self) -> &MemoryNetwork {
        &self.inner.network
    }

    /// The server this client connects to.
    pub fn server(&self) -> &MemoryNetwork {
        &self.inner.server
    }

    /// The client's connection (the same across reconnects).
    pub fn connection(&self) -> &Connection {
        &self.inner.connection
    }

    /// The server's side of the current connection, if connected.
    pub fn server_connection(&self) -> Option<Connection> {
        let id = lock(&self.inner.state).current.as_ref()?.server_id;
        self.inner.server.connection(id)
    }

    /// Whether a connection is open (from `connect` to its end).
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.state).current.is_some()
    }

    /// Frames queued on the client while offline, not yet sent.
    pub fn queued(&self) -> usize {
        lock(&self.inner.state).queue.len()
    }

    /// Opens a connection and returns the server side's new id, once the server's routers
    /// have been handed `Added` and the client's routers have handled theirs (restoring).
    /// Frames queued while offline flow from then on.
    ///
    /// Fails when the attempt is refused ([`refuse_next`](Self::refuse_next)). Panics when
    /// connected already or closed.
    pub async fn connect(&self) -> Result<ConnectionId, Refused> {
        let inner = &self.inner;
        {
            let mut faults = lock(&inner.faults);
            if faults.refusals > 0 {
                faults.refusals -= 1;
                return Err(Refused);
            }
        }
        {
            let state = lock(&inner.state);
            assert!(state.current.is_none(), "connect: the client is connected already");
            assert!(state.phase != Phase::Closed, "connect: the client is closed");
        }
        let (down, down_rx) = Pipe::new(Direction::ToClient, inner.faults.clone());
        let (up, up_rx) = Pipe::new(Direction::ToServer, inner.faults.clone());
        let down = Arc::new(down);
        let server_id = ConnectionId::next();
        let (server_connection, server_signal) =
            Connection::new(server_id, ConnectionMeta::new("/"), Arc::new(ServerEnd(down.clone())));
        if let Some(identity) = lock(&inner.identity).clone() {
            server_connection.set_identity(identity);
        }
        let session = Arc::new(Session {
            server_id,
            up,
            down,
            end: Mutex::new(None),
            up_held: watch::Sender::new(false),
            client_ended: watch::Sender::new(false),
            server_ended: watch::Sender::new(false),
        });

        // The server accepts first, as a handshake does; its greeting waits in the pipe
        // until the client has restored.
        let (opened, open) = oneshot::channel();
        let server = inner.server.clone();
        tokio::spawn(serve_server_side(
            server,
            server_connection,
            server_signal,
            session.clone(),
            up_rx,
            opened,
        ));
        let _ = open.await;

        {
            let mut state = lock(&inner.state);
            state.phase = Phase::Restoring;
            state.current = Some(session.clone());
        }
        inner.signal.reset();
        let (opened, open) = oneshot::channel();
        tokio::spawn(serve_client_side(self.inner.clone(), session, down_rx, opened));
        let _ = open.await;
        Ok(server_id)
    }

    /// Ends the connection as a dropped socket does (1006): frames already on the way
    /// arrive, then both sides' routers are handed `Removed`. Returns once they have been
    /// (the server's side only later when its frames are held, see [`hold`](Self::hold)).
    /// Panics when not connected.
    pub async fn disconnect(&self) {
        let session = lock(&self.inner.state).current.clone();
        let Some(session) = session else { panic!("disconnect: the client is not connected") };
        session.set_end(CloseFrame::new(CloseCode::ABNORMAL, ""));
        self.end(&session).await;
    }

    /// [`disconnect`](Self::disconnect), then [`connect`](Self::connect): a reconnect, with
    /// a new server-side connection.
    pub async fn reconnect(&self) -> Result<ConnectionId, Refused> {
        self.disconnect().await;
        self.connect().await
    }

    /// Waits until the current connection (if any) has ended on the client's side, for
    /// a connection the server closes.
    pub async fn disconnected(&self) {
        let session = lock(&self.inner.state).current.clone();
        if let Some(session) = session {
            Session::ended(&session.client_ended).await;
        }
    }

    /// Closes the client for good (1000), as `ws_client::Client::close` does: the
    /// connection ends, sends fail from now on, and the client's routers are detached.
    pub async fn close(&self) {
        self.close_with(CloseFrame::new(CloseCode::NORMAL, "")).await;
    }

    async fn close_with(&self, frame: CloseFrame) {
        let session = {
            let mut state = lock(&self.inner.state);
            if state.phase == Phase::Closed {
                return;
            }
            state.phase = Phase::Closed;
            state.queue.clear();
            state.current.clone()
        };
        if let Some(session) = session {
            session.set_end(frame.clone());
            self.end(&session).await;
        }
        self.inner.signal.fire(frame);
        transport::detach_all(&self.inner.network);
    }

    async fn end(&self, session: &Arc<Session>) {
        session.up.end();
        session.down.end();
        Session::ended(&session.client_ended).await;
        if !*session.up_held.borrow() {
            Session::ended(&session.server_ended).await;
        }
    }

    /// Loses the next frame travelling in `direction` for which `matching` is true (once;
    /// several calls add several rules, tried in order).
    pub fn drop_next(
        &self,
        direction: Direction,
        matching: impl Fn(&Message) -> bool + Send + Sync + 'static,
    ) {
        lock(&self.inner.faults).drops[direction.index()].push(Box::new(matching));
    }

    /// How many [`drop_next`](Self::drop_next) rules have not met their frame yet.
    pub fn pending_drops(&self) -> usize {
        lock(&self.inner.faults).drops.iter().map(Vec::len).sum()
    }

    /// Frames sent in `direction` from now on arrive `latency` later (in order; under the
    /// paused clock this takes no wall-clock time). `Duration::ZERO` ends the delay.
    pub fn delay(&self, direction: Direction, latency: Duration) {
        lock(&self.inner.faults).delays[direction.index()] = latency;
    }

    /// The next `count` connection attempts are refused.
    pub fn refuse_next(&self, count: usize) {
        lock(&self.inner.faults).refusals += count;
    }

    /// Holds back frames in `direction` until [`release`](Self::release):
    ///
    /// - [`Direction::ToServer`]: the frames the current connection sends, and its end: the
    ///   server hears of them only on release, possibly after a reconnect opened a new
    ///   connection (a half-open socket whose end the server notices late). Panics when
    ///   not connected.
    /// - [`Direction::ToClient`]: every frame reaching the client is set aside, and
    ///   handed to the client's routers on release, whichever connection is open then
    ///   (frames of an old connection arriving late).
    pub fn hold(&self, direction: Direction) {
        match direction {
            Direction::ToServer => {
                let mut state = lock(&self.inner.state);
                let Some(session) = state.current.clone() else {
                    panic!("hold: the client is not connected")
                };
                session.up_held.send_replace(true);
                state.held.push(session);
            }
            Direction::ToClient => lock(&self.inner.faults).hold_to_client = true,
        }
    }

    /// Ends every [`hold`](Self::hold): the frames set aside for the client are handed
    /// to its routers, and the held frames towards the server flow; returns once the
    /// server has been handed the `Removed` of every held connection that has ended.
    pub async fn release(&self) {
        let (held, set_aside) = {
            let mut state = lock(&self.inner.state);
            (std::mem::take(&mut state.held), std::mem::take(&mut state.set_aside))
        };
        lock(&self.inner.faults).hold_to_client = false;
        for message in set_aside {
            transport::deliver(&self.inner.network, &self.inner.connection, message).await;
        }
        for session in held {
            session.up_held.send_replace(false);
            if session.up.is_ended() {
                Session::ended(&session.server_ended).await;
            }
        }
    }

    /// The session's pipes are done: the link goes offline (unless closed).
    fn session_ended(&self, session: &Arc<Session>) {
        let mut state = lock(&self.inner.state);
        if state.current.as_ref().is_some_and(|current| Arc::ptr_eq(current, session)) {
            state.current = None;
            if state.phase != Phase::Closed {
                state.phase = Phase::Offline;
            }
        }
        drop(state);
        session.up.end();
        session.down.end();
    }

    /// The client's routers have restored: the queue flows, in order, behind their frames.
    fn opened(&self, session: &Arc<Session>) {
        let mut state = lock(&self.inner.state);
        let current = state.current.as_ref().is_some_and(|current| Arc::ptr_eq(current, session));
        if !current || state.phase != Phase::Restoring {
            return;
        }
        state.phase = Phase::Open;
        for message in std::mem::take(&mut state.queue) {
            // The pipe holds more than the queue: this fails only once the pipe ended,
            // and then the frame is lost with the connection, as on a socket.
            let _ = session.up.push(message);
        }
    }
}

/// The server's side of one connection: `Added`, the client's frames in order, then
/// (once the client's side ended the pipe) closed, rooms left, `Removed`.
async fn serve_server_side(
    server: MemoryNetwork,
    connection: Connection,
    signal: ClosedSignal,
    session: Arc<Session>,
    mut frames: mpsc::Receiver<Item>,
    opened: oneshot::Sender<()>,
) {
    transport::added(&server, &connection, false).await;
    let _ = opened.send(());
    let mut held = session.up_held.subscribe();
    while let Some(item) = frames.recv().await {
        let _ = held.wait_for(|held| !*held).await;
        if let Item::Frame { message, due } = item {
            tokio::time::sleep_until(due).await;
            transport::deliver(&server, &connection, message).await;
        }
    }
    let _ = held.wait_for(|held| !*held).await;
    let frame = session.end_frame();
    // Closed first, rooms second, as ws-server does.
    signal.fire(frame.clone());
    server.adapter.leave_all_now(connection.id());
    transport::removed(&server, &connection, frame).await;
    session.server_ended.send_replace(true);
}

/// The client's side of one connection: `Added` while restoring, then the server's frames
/// in order until the connection ends, then `Removed`.
async fn serve_client_side(
    inner: Arc<Inner>,
    session: Arc<Session>,
    mut frames: mpsc::Receiver<Item>,
    opened: oneshot::Sender<()>,
) {
    let client = MemoryClient { inner };
    let inner = &client.inner;
    transport::added(&inner.network, &inner.connection, true).await;
    client.opened(&session);
    let _ = opened.send(());
    while let Some(item) = frames.recv().await {
        match item {
            Item::Frame { message, due } => {
                tokio::time::sleep_until(due).await;
                if lock(&inner.faults).hold_to_client {
                    lock(&inner.state).set_aside.push(message);
                } else {
                    transport::deliver(&inner.network, &inner.connection, message).await;
                }
            }
            Item::Close(frame) => {
                session.set_end(frame);
                break;
            }
        }
    }
    client.session_ended(&session);
    let frame = session.end_frame();
    inner.signal.fire(frame.clone());
    transport::removed(&inner.network, &inner.connection, frame).await;
    session.client_ended.send_replace(true);
}
