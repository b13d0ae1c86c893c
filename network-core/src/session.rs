//! The session lifecycle of a router's client side, written once.
//!
//! A router client (the client sides of `channels`, `views` and `sync`) keeps state that
//! lives across reconnects (what the application wants: channels joined, views open, paths
//! subscribed) and state that lives for one *session*, from the link's `Added` to its
//! `Removed` (the server's grants, the ids of requests in flight). Its handles and its
//! router task share that state behind one mutex. This module holds everything about that
//! which does not depend on the router's protocol:
//!
//! - [`ServerLink`]: the network's connection, whether the link is up, the session number,
//!   whether the router is gone, and the router's request ids;
//! - [`SessionState`]: the trait a router client implements over its own protocol state:
//!   what a session start re-sends, which grants a session end loses, what the router's
//!   close takes out, how a frame from the server is applied;
//! - [`Requests`] and [`SessionRequest`]: the requests in flight by id, and how a session
//!   end settles each kind (re-sent by the next session, done, or failed);
//! - [`Session`]: the lock around that state, the ready flag, and the lifecycle driven by
//!   the network's events;
//! - [`SessionClient`] and [`attach`]: the client's shared handle type, and attaching the
//!   generic router that feeds its session (event dispatch, envelope decoding, close on
//!   drop).
//!
//! # Invariants kept here
//! - **Adopt after attach.** A network connected before the router was attached sent its
//!   `Added` to nobody: [`attach`] learns the connection from the registry afterwards. If
//!   the router saw an `Added` first (the connection opened between the two), the adoption
//!   is ignored, so a session never starts twice for one `Added`.
//! - **`Added` without `Removed`** ends the old session before the new one starts: the
//!   server forgot the old connection's requests whichever way it went.
//! - **A stale `Removed`** (of a connection that is not the current one, or after the
//!   session ended) is ignored.
//! - **Nothing of user code runs under the lock.** [`SessionState`]'s methods run under it
//!   and must only touch the state; what must await or may run user code (a full stream, a
//!   handler) comes back as an [`Action`](SessionState::Action) that the router carries
//!   out without the lock.
//! - **Dropping outside the lock.** When the router is dropped (the network closed for
//!   good), everything the state holds is taken out under the lock and ended without it
//!   ([`SessionState::end_taken`]): a handler closure may own a handle whose drop locks.
//! - **After close nothing is accepted**: no `Added`, adoption or frame reaches the state,
//!   and [`Session::ready`] answers `false`. The client's own methods check
//!   [`ServerLink::is_closed`] under the lock.
//!
//! # Where session resume plugs in
//! Today a `Removed` ends the session at once ([`SessionState::session_ended`]) and the
//! next `Added` starts a new one ([`SessionState::session_started`]). A resumed session
//! would instead suspend at `Removed` (link down, session number and [`Requests`] kept) and
//! decide at the next `Added` whether the server resumed it (nothing to re-send, requests
//! in flight still answered) or started afresh (end the old session, then start). That decision belongs in
//! `Session::disconnected` and `Session::connected`, and nowhere in the clients.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::sync::lock;
use crate::{AttachError, Connection, ConnectionId, Network, NetworkEvent, Router, SendError, envelope};

/// A router client's link to the server: the network's one connection, whether it is up,
/// which session this is, whether the router is gone, and the ids of the router's requests.
///
/// The connection is known from the first `Added` (or from the registry at attach time)
/// and kept afterwards, since a client's connection survives reconnects and queues frames
/// while the link is down. Only the [`Session`] changes the lifecycle fields.
#[derive(Debug)]
pub struct ServerLink {
    connection: Option<Connection>,
    online: bool,
    session: u64,
    closed: bool,
    /// The router's name, for its envelope and its logs.
    router: &'static str,
    next_id: u64,
}

impl ServerLink {
    /// No connection yet; frames go out in the envelope of `router`; ids start at 1.
    pub fn new(router: &'static str) -> Self {
        Self { connection: None, online: false, session: 0, closed: false, router, next_id: 1 }
    }

    /// The router's name (its envelope's `$r`).
    pub fn router(&self) -> &'static str {
        self.router
    }

    /// The network's connection, once known (it stays known while the link is down).
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// Between `Added` and `Removed`, as the router has seen them: the server knows this
    /// session's requests and grants.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// The number of the current session: how many sessions ended before it. An answer to
    /// a request of the server's is sent only in the session the request came in (its ids
    /// are per connection).
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The router is gone (the network closed for good): accept nothing more.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A new request id: 1, 2, 3, ...
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends `frame` as JSON in the router's envelope (queued by the client while the link
    /// is down). A frame that does not encode is logged and dropped: router frames hold
    /// strings, numbers and JSON values, so that does not happen in practice.
    ///
    /// # Errors
    /// [`SendError::Closed`] before the connection is known, or what
    /// [`Connection::send`] returns.
    pub fn send<F: Serialize>(&self, frame: &F) -> Result<(), SendError> {
        let message = match envelope::json(self.router, frame) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "cannot encode a {} frame", self.router);
                return Ok(());
            }
        };
        match &self.connection {
            Some(connection) => connection.send(message),
            None => Err(SendError::Closed(message)),
        }
    }

    /// Whether `id` is the connection and the link is up (a `Removed` for it ends the
    /// session).
    fn is_current(&self, id: ConnectionId) -> bool {
        self.online && self.connection.as_ref().is_some_and(|connection| connection.id() == id)
    }
}

/// A request of a router client's that waits for the server's answer.
pub trait SessionRequest: Send {
    /// The session ended before the answer: the server will never send it (its ids are
    /// per connection). Settle the request (an undo, such as a leave, is done: a new
    /// connection starts without what it undid) or drop it (its waiter hears `Closed`).
    /// A request that the next session sends again (a join, an open, a subscription) is
    /// dropped here and re-sent by [`SessionState::session_started`].
    fn session_ended(self);
}

/// The requests of a router client waiting for the server's answers, by id. They live for
/// one session: [`Session`] ends them when it ends.
#[derive(Debug)]
pub struct Requests<R> {
    by_id: HashMap<u64, R>,
}

impl<R> Default for Requests<R> {
    fn default() -> Self {
        Self { by_id: HashMap::new() }
    }
}

impl<R> Requests<R> {
    /// Registers `request` under `id`.
    pub fn insert(&mut self, id: u64, request: R) {
        self.by_id.insert(id, request);
    }

    /// Takes request `id` out.
    pub fn remove(&mut self, id: u64) -> Option<R> {
        self.by_id.remove(&id)
    }

    /// Takes request `id` out when `kind` accepts it (`Ok`), leaving a request of another
    /// kind (`Err`) in place: an answer of one kind never settles a request of another.
    pub fn take_kind<T>(&mut self, id: u64, kind: impl FnOnce(R) -> Result<T, R>) -> Option<T> {
        match kind(self.by_id.remove(&id)?) {
            Ok(taken) => Some(taken),
            Err(other) => {
                self.by_id.insert(id, other);
                None
            }
        }
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl<R: SessionRequest> Requests<R> {
    /// The session ended: every request is settled or dropped
    /// ([`SessionRequest::session_ended`]).
    fn end_session(&mut self) {
        for (_, request) in self.by_id.drain() {
            request.session_ended();
        }
    }
}

/// A router client's own protocol state, driven by a [`Session`] that holds it under its
/// lock.
///
/// Every method runs under that lock: it must only change the state and send frames
/// ([`ServerLink::send`] queues without waiting), never await, and never run or drop user
/// code (see the [module docs](self)).
pub trait SessionState: Send + 'static {
    /// The frames the server sends this router, decoded from its envelope.
    type Frame: DeserializeOwned + Send;
    /// What the router carries out, without the lock, after a frame was applied (deliver
    /// to streams with backpressure, run a handler): see [`SessionClient::carry_out`].
    type Action: Send;
    /// A request waiting for the server's answer, by id.
    type Request: SessionRequest;
    /// What the router's close takes out of the state, to end without the lock.
    type Taken: Send;

    /// The link to the server, a field of the state.
    fn link(&mut self) -> &mut ServerLink;

    /// A session started (the link is up): send again what the application wants (joins,
    /// opens, subscriptions). On a reconnect the router runs this while its network
    /// restores, so these frames go out before the client's offline queue.
    fn session_started(&mut self);

    /// The requests waiting for the server's answers, a field of the state.
    fn requests(&mut self) -> &mut Requests<Self::Request>;

    /// The session ended (the link is down, the session number is bumped already, every
    /// request was ended by [`SessionRequest::session_ended`]): the server forgot this
    /// session's grants. Mark them lost; keep what the next session sends again.
    fn session_ended(&mut self);

    /// Applies a frame from the server; returns what the router must do without the lock.
    fn apply(&mut self, frame: Self::Frame) -> Self::Action;

    /// Takes request `id` out (its caller stopped waiting: answer, timeout or
    /// cancellation); it is dropped without the lock.
    fn remove_request(&mut self, id: u64) -> Option<Self::Request> {
        self.requests().remove(id)
    }

    /// The router is gone: take out everything that waits or streams (requests, waiters,
    /// subscribers, handlers), to end without the lock.
    fn take_all(&mut self) -> Self::Taken;

    /// Ends what [`take_all`](Self::take_all) took, without the lock: every waiter hears
    /// `Closed`, every stream ends. The default drops it.
    fn end_taken(taken: Self::Taken) {
        drop(taken);
    }
}

/// A router client's session: its [`SessionState`] under one lock, and the ready flag.
///
/// The network's events (through the router [`attach`] attaches) drive its lifecycle;
/// the client's handles [`lock`](Self::lock) it for their requests.
pub struct Session<S> {
    router: &'static str,
    state: Mutex<S>,
    /// `true` once the connection is known or the router is gone.
    ready: watch::Sender<bool>,
}

impl<S> fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("router", &self.router).finish_non_exhaustive()
    }
}

impl<S: SessionState> Session<S> {
    /// A session over `state`, whose link knows no connection yet.
    pub fn new(mut state: S) -> Self {
        let router = state.link().router();
        Self { router, state: Mutex::new(state), ready: watch::channel(false).0 }
    }

    /// Locks the state. Never hold the guard across an `.await` or while user code runs.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        // Nothing panics while the lock is held (user code never runs under it); if
        // something did, the state is still structurally valid.
        lock(&self.state)
    }

    /// Waits until the connection is known: at once when it is, else until the first
    /// connection opens. `false` if the router is gone.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self) -> bool {
        let mut ready = self.ready.subscribe();
        // The sender lives in `self`: this only ends when the flag is set.
        let _ = ready.wait_for(|ready| *ready).await;
        let mut state = self.lock();
        let link = state.link();
        !link.is_closed() && link.connection().is_some()
    }

    /// The network's connection, once known.
    pub fn connection(&self) -> Option<Connection> {
        self.lock().link().connection().cloned()
    }

    /// A new request id.
    pub fn allocate_id(&self) -> u64 {
        self.lock().link().allocate_id()
    }

    /// Whether the router is gone.
    pub fn is_closed(&self) -> bool {
        self.lock().link().is_closed()
    }

    /// A guard that forgets request `id` when dropped: hold it while waiting for the
    /// answer, so that a timeout or a cancelled wait leaves nothing behind.
    pub fn pending(&self, id: u64) -> PendingRequest<'_, S> {
        PendingRequest { session: self, id }
    }

    /// The network already had its connection open when the router was attached: it is
    /// taken unless the router learned a connection from an `Added` meanwhile.
    fn adopt(&self, connection: Connection) {
        let mut state = self.lock();
        let link = state.link();
        if link.closed || link.connection.is_some() {
            return;
        }
        link.connection = Some(connection);
        link.online = true;
        state.session_started();
        drop(state);
        self.ready.send_replace(true);
    }

    /// `Added`: the link (re)opened.
    fn connected(&self, connection: Connection) {
        let mut state = self.lock();
        if state.link().closed {
            return;
        }
        if state.link().online {
            // `Added` without `Removed` (another connection?): end the old session first.
            end_session(&mut *state);
        }
        let link = state.link();
        link.connection = Some(connection);
        link.online = true;
        state.session_started();
        drop(state);
        self.ready.send_replace(true);
    }

    /// `Removed` of connection `id`: ends the session when `id` is the current link.
    fn disconnected(&self, id: ConnectionId) {
        let mut state = self.lock();
        if state.link().is_current(id) {
            end_session(&mut *state);
        }
    }

    /// Applies a frame from the server; `None` once the router is gone.
    fn apply(&self, frame: S::Frame) -> Option<S::Action> {
        let mut state = self.lock();
        if state.link().closed {
            return None;
        }
        Some(state.apply(frame))
    }

    /// The router is gone (the network closed for good): every waiter hears it, every
    /// stream ends, nothing more is accepted.
    fn close(&self) {
        let taken = {
            let mut state = self.lock();
            let link = state.link();
            link.closed = true;
            link.online = false;
            state.take_all()
        };
        // Ended without the lock: a handler's closure may own a handle whose drop locks.
        S::end_taken(taken);
        self.ready.send_replace(true);
    }
}

/// The link closed: the server forgets this session's requests and grants.
fn end_session<S: SessionState>(state: &mut S) {
    let link = state.link();
    link.online = false;
    link.session += 1;
    state.requests().end_session();
    state.session_ended();
}

/// Forgets its request when dropped; made by [`Session::pending`].
#[must_use = "the request is forgotten when the guard is dropped"]
pub struct PendingRequest<'a, S: SessionState> {
    session: &'a Session<S>,
    id: u64,
}

impl<S: SessionState> fmt::Debug for PendingRequest<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRequest").field("id", &self.id).finish()
    }
}

impl<S: SessionState> Drop for PendingRequest<'_, S> {
    fn drop(&mut self) {
        // The guard is released at the end of the statement, before the request drops.
        let removed = self.session.lock().remove_request(self.id);
        drop(removed);
    }
}

/// What the handles of a router client share with its router: their [`Session`], and how
/// to carry out what applying a frame asks for.
pub trait SessionClient: Send + Sync + 'static {
    /// The client's protocol state.
    type State: SessionState;

    /// The session the router drives.
    fn session(&self) -> &Session<Self::State>;

    /// Carries out `action`, without the lock: deliver to streams (waiting while one is
    /// full, which holds back the network's reads: backpressure), spawn a handler. The
    /// router waits for it before the next event.
    fn carry_out(
        client: &Arc<Self>,
        action: <Self::State as SessionState>::Action,
    ) -> impl Future<Output = ()> + Send;
}

/// Attaches to `network` the router that feeds `client`'s session, then adopts the
/// network's connection if it has exactly one already (its `Added` came before the router).
///
/// Dropping the router (the network detaches its routers when it closes for good) closes
/// the session. Needs a tokio runtime (the router runs in a task of its own).
///
/// # Errors
/// What [`Network::attach`] returns: a router of that name is attached already.
pub fn attach<N: Network, C: SessionClient>(network: &N, client: Arc<C>) -> Result<(), AttachError> {
    network.attach(SessionRouter { client: client.clone() })?;
    // Attached after the connection opened: the router will not see its `Added`, so it
    // learns the connection from the registry. Adopting after attaching, not before,
    // leaves no window in which an `Added` reaches nobody.
    if let [connection] = network.connections().as_slice() {
        client.session().adopt(connection.clone());
    }
    Ok(())
}

/// The router of a [`SessionClient`]: the thin async layer over its session.
struct SessionRouter<C: SessionClient> {
    client: Arc<C>,
}

impl<C: SessionClient> Drop for SessionRouter<C> {
    fn drop(&mut self) {
        self.client.session().close();
    }
}

impl<N: Network, C: SessionClient> Router<N> for SessionRouter<C> {
    fn name(&self) -> &str {
        self.client.session().router
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        let session = self.client.session();
        match event {
            NetworkEvent::Added(connection) => session.connected(connection),
            NetworkEvent::Removed { connection, .. } => session.disconnected(connection.id()),
            NetworkEvent::Message { message, .. } => {
                match envelope::decode::<<C::State as SessionState>::Frame>(session.router, &message) {
                    Ok(frame) => {
                        if let Some(action) = session.apply(frame) {
                            C::carry_out(&self.client, action).await;
                        }
                    }
                    Err(error) => {
                        let router = session.router;
                        tracing::warn!(?error, ?message, "malformed {router} frame from the server ignored");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::{
        CloseCode, CloseFrame, ConnectionMeta, Hub, HubConfig, HubDriver, LocalAdapter, Message,
        UntakenEvents,
    };

    /// A transport that keeps what routers send.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<Message>>);

    impl crate::Link for Recorded {
        fn send(&self, message: Message) -> Result<(), SendError> {
            lock(&self.0).push(message);
            Ok(())
        }

        fn close(&self, _frame: CloseFrame) {}
    }

    fn connection() -> (Connection, Arc<Recorded>) {
        let sent = Arc::new(Recorded::default());
        let (connection, _signal) =
            Connection::new(ConnectionId::next(), ConnectionMeta::new("/"), sent.clone());
        (connection, sent)
    }

    /// The frames `sent` holds, decoded from the test router's envelope.
    fn frames(sent: &Recorded) -> Vec<u64> {
        lock(&sent.0).iter().filter_map(|message| envelope::decode(ROUTER, message).ok()).collect()
    }

    #[derive(Clone)]
    struct Net {
        driver: HubDriver,
        adapter: LocalAdapter,
    }

    impl Net {
        fn new() -> Self {
            let driver = HubDriver::new(HubConfig::default(), UntakenEvents::Discard);
            let adapter = LocalAdapter::new(driver.hub().registry().clone());
            Self { driver, adapter }
        }
    }

    impl Network for Net {
        type Adapter = LocalAdapter;

        fn hub(&self) -> &Hub {
            self.driver.hub()
        }

        fn adapter(&self) -> &LocalAdapter {
            &self.adapter
        }
    }

    const ROUTER: &str = "test";

    /// Tells, when dropped, whether the session's lock was free.
    struct LockProbe {
        client: Weak<Client>,
        free: Arc<Mutex<Option<bool>>>,
    }

    impl Drop for LockProbe {
        fn drop(&mut self) {
            if let Some(client) = self.client.upgrade() {
                *lock(&self.free) = Some(client.session.state.try_lock().is_ok());
            }
        }
    }

    /// Records the lifecycle; wants every number in `wanted` (sent again at each session
    /// start); a frame `n` is answered by the action `n`.
    struct State {
        link: ServerLink,
        log: Vec<String>,
        wanted: Vec<u64>,
        requests: Requests<Answer>,
        probe: Option<LockProbe>,
        /// Dropped at close: tells the test that the router closed the session.
        closing: Option<oneshot::Sender<()>>,
    }

    /// A request whose answer is awaited on `answer`.
    struct Answer(oneshot::Sender<()>);

    impl SessionRequest for Answer {
        fn session_ended(self) {
            let _ = self.0.send(());
        }
    }

    impl SessionState for State {
        type Frame = u64;
        type Action = u64;
        type Request = Answer;
        type Taken = (Requests<Answer>, Option<LockProbe>, Option<oneshot::Sender<()>>);

        fn link(&mut self) -> &mut ServerLink {
            &mut self.link
        }

        fn session_started(&mut self) {
            self.log.push(format!("started {}", self.link.session()));
            for frame in &self.wanted {
                let _ = self.link.send(frame);
            }
        }

        fn session_ended(&mut self) {
            self.log.push(format!("ended, now {}", self.link.session()));
        }

        fn apply(&mut self, frame: u64) -> u64 {
            self.log.push(format!("frame {frame}"));
            frame
        }

        fn requests(&mut self) -> &mut Requests<Answer> {
            &mut self.requests
        }

        fn take_all(&mut self) -> Self::Taken {
            self.log.push("closed".into());
            (std::mem::take(&mut self.requests), self.probe.take(), self.closing.take())
        }
    }

    struct Client {
        session: Session<State>,
        /// The actions carried out, and whether the lock was free meanwhile.
        carried: Mutex<Vec<(u64, bool)>>,
    }

    impl SessionClient for Client {
        type State = State;

        fn session(&self) -> &Session<State> {
            &self.session
        }

        async fn carry_out(client: &Arc<Self>, action: u64) {
            let free = client.session.state.try_lock().is_ok();
            lock(&client.carried).push((action, free));
        }
    }

    fn client(wanted: &[u64]) -> (Arc<Client>, oneshot::Receiver<()>) {
        let (closing, closed) = oneshot::channel();
        let state = State {
            link: ServerLink::new(ROUTER),
            log: Vec::new(),
            wanted: wanted.to_vec(),
            requests: Requests::default(),
            probe: None,
            closing: Some(closing),
        };
        (Arc::new(Client { session: Session::new(state), carried: Mutex::new(Vec::new()) }), closed)
    }

    fn log(client: &Client) -> Vec<String> {
        client.session.lock().log.clone()
    }

    async fn within<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(5), future).await.expect("in time")
    }

    #[tokio::test]
    async fn a_network_connected_before_attach_is_adopted_after_it() {
        let net = Net::new();
        let (connection, sent) = connection();
        net.driver.connection_added(&connection, false).await;
        let (client, _closed) = client(&[7]);
        attach(&net, client.clone()).expect("attached");
        assert!(within(client.session.ready()).await);
        assert_eq!(log(&client), ["started 0"]);
        assert_eq!(frames(&sent), [7], "a session start sends what is wanted");
        assert!(client.session.lock().link.is_online());
    }

    #[tokio::test]
    async fn an_adoption_after_the_routers_own_added_is_ignored() {
        let (client, _closed) = client(&[7]);
        let (connection, sent) = connection();
        client.session.connected(connection.clone());
        client.session.adopt(connection);
        assert_eq!(log(&client), ["started 0"]);
        assert_eq!(frames(&sent), [7]);
    }

    #[tokio::test]
    async fn an_added_without_removed_ends_the_old_session_first() {
        let (client, _closed) = client(&[]);
        let ((first, _), (second, _)) = (connection(), connection());
        client.session.connected(first);
        client.session.connected(second.clone());
        assert_eq!(log(&client), ["started 0", "ended, now 1", "started 1"]);
        assert_eq!(client.session.connection().map(|connection| connection.id()), Some(second.id()));
    }

    #[tokio::test]
    async fn a_removed_of_a_stale_connection_is_ignored() {
        let (client, _closed) = client(&[]);
        let ((first, _), (second, _)) = (connection(), connection());
        client.session.connected(first.clone());
        client.session.connected(second.clone());
        client.session.disconnected(first.id());
        assert!(client.session.lock().link.is_online(), "the first connection is not the link any more");
        client.session.disconnected(second.id());
        client.session.disconnected(second.id());
        assert_eq!(log(&client), ["started 0", "ended, now 1", "started 1", "ended, now 2"]);
        assert!(!client.session.lock().link.is_online());
        // The connection stays known: a client's connection queues frames while down.
        assert!(client.session.connection().is_some());
    }

    #[tokio::test]
    async fn the_close_ends_what_it_took_without_the_lock() {
        let (client, _closed) = client(&[]);
        let free = Arc::new(Mutex::new(None));
        client.session.lock().probe = Some(LockProbe { client: Arc::downgrade(&client), free: free.clone() });
        client.session.close();
        assert_eq!(*lock(&free), Some(true), "dropped with the lock free");
    }

    #[tokio::test]
    async fn after_close_nothing_is_accepted() {
        let (client, _closed) = client(&[7]);
        client.session.close();
        let (connection, sent) = connection();
        client.session.adopt(connection.clone());
        client.session.connected(connection.clone());
        client.session.disconnected(connection.id());
        assert!(client.session.apply(3).is_none());
        assert_eq!(log(&client), ["closed"]);
        assert!(frames(&sent).is_empty());
        assert!(client.session.is_closed());
        assert!(!within(client.session.ready()).await, "a closed session is never ready");
    }

    #[tokio::test]
    async fn ready_waits_for_the_first_connection() {
        let (client, _closed) = client(&[]);
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { client.session.ready().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        client.session.connected(connection().0);
        assert!(within(waiting).await.expect("not panicked"));
    }

    #[test]
    fn a_server_link_numbers_requests_and_refuses_to_send_before_its_connection() {
        let mut link = ServerLink::new(ROUTER);
        assert_eq!((link.allocate_id(), link.allocate_id()), (1, 2));
        assert!(matches!(link.send(&1), Err(SendError::Closed(_))));
        assert!(!link.is_online() && !link.is_closed() && link.session() == 0);
    }

    /// Registers requests 1 and 2 of `client`; returns how each ends.
    fn two_requests(client: &Client) -> [oneshot::Receiver<()>; 2] {
        let mut state = client.session.lock();
        [1, 2].map(|id| {
            let (ended, answer) = oneshot::channel();
            state.requests.insert(id, Answer(ended));
            answer
        })
    }

    #[tokio::test]
    async fn a_pending_request_is_forgotten_with_its_guard() {
        let (client, _closed) = client(&[]);
        let [mut first, _second] = two_requests(&client);
        drop(client.session.pending(1));
        assert_eq!(first.try_recv(), Err(oneshot::error::TryRecvError::Closed), "dropped, not ended");
        assert_eq!(client.session.lock().requests.len(), 1);
    }

    #[tokio::test]
    async fn a_session_end_ends_every_request() {
        let (client, _closed) = client(&[]);
        client.session.connected(connection().0);
        let [first, second] = two_requests(&client);
        let id = client.session.connection().map(|connection| connection.id());
        client.session.disconnected(id.expect("known"));
        assert_eq!((within(first).await, within(second).await), (Ok(()), Ok(())));
        assert!(client.session.lock().requests.is_empty());
    }

    #[test]
    fn an_answer_of_another_kind_leaves_a_request_in_place() {
        let mut requests = Requests::default();
        requests.insert(1, "join");
        let leave = |request: &'static str| if request == "leave" { Ok(()) } else { Err(request) };
        assert_eq!(requests.take_kind(1, leave), None);
        assert_eq!(requests.take_kind(1, Ok::<_, &str>), Some("join"));
        assert!(requests.is_empty());
    }

    #[tokio::test]
    async fn the_router_dispatches_events_and_closes_the_session_when_dropped() {
        let net = Net::new();
        let (client, closed) = client(&[7]);
        attach(&net, client.clone()).expect("attached");
        let (connection, sent) = connection();
        net.driver.connection_added(&connection, true).await;
        assert_eq!(frames(&sent), [7]);
        let frame = |body: &str| Message::text(format!(r#"{{"$r":"{ROUTER}","d":{body}}}"#));
        net.driver.message(&connection, frame("3")).await;
        net.driver.message(&connection, frame(r#""not a number""#)).await;
        net.driver.message(&connection, frame("4")).await;
        net.driver.connection_removed(&connection, CloseFrame::new(CloseCode::ABNORMAL, "")).await;
        net.driver.detach_all();
        within(closed).await.expect_err("the router dropped the sender at close");
        assert_eq!(log(&client), ["started 0", "frame 3", "frame 4", "ended, now 1", "closed"]);
        assert_eq!(*lock(&client.carried), [(3, true), (4, true)], "carried out without the lock");
    }
}
