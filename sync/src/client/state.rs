//! The state the handles and the router task share, and the protocol logic on it.
//!
//! The session lifecycle (the lock, reconnects, adopting the connection, the close) is
//! `network_core::session`'s; [`State`] is this router's part of it. Everything here is synchronous: the lock is never held across an `.await` or while
//! user code runs. What the router must await (a full stream) comes back as an [`Action`]
//! for it to carry out after the lock is released.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use network_core::Message;
use network_core::client::{ErrorSubscribers, Wanted};
use network_core::session::{Requests, ServerLink, Session, SessionRequest, SessionState};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::config::SyncClientConfig;
use super::error::{BackgroundError, RequestError, SubscribeError, UnsubscribeError};
use super::stream::SyncMessage;
use crate::protocol::{Frame, Op, ROUTER, RemoteError, codes};

/// The outcome of a request, sent by the router; a dropped sender means that the
/// connection closed first.
pub(super) type Reply<T> = oneshot::Sender<Result<T, RemoteError>>;
pub(super) type SubscribeAnswer = oneshot::Receiver<Result<(), SubscribeError>>;
/// Tells a `connect()` (once granted) or a `connect_with_snapshot()` (once its snapshot is
/// applied) the outcome.
type SubscribeReply = oneshot::Sender<Result<(), SubscribeError>>;
type UnsubscribeReply = oneshot::Sender<Result<(), UnsubscribeError>>;
pub(super) type UnsubscribeAnswer = oneshot::Receiver<Result<(), UnsubscribeError>>;

/// A request of ours that waits for the server's answer, by id.
pub(super) enum Request {
    /// A `sub` of `path`: the application's `connect` or `connect_with_snapshot`, a
    /// re-subscribe after a reconnect, or a resync. Its waiters live in the [`WantedPath`]
    /// entry, since they survive reconnects.
    Sub { path: String },
    /// An `unsub`.
    Unsub { reply: UnsubscribeReply },
    /// A create, read, update or delete of the application's.
    Call { reply: Reply<Value> },
    /// The application's `fetch`: a `read` whose answer goes to the listeners of `path`
    /// as a snapshot, and then to `reply`.
    Fetch { path: String, reply: Reply<()> },
}

impl SessionRequest for Request {
    fn session_ended(self) {
        match self {
            // The next connection sends the `sub` again.
            Self::Sub { .. } => {}
            // A new connection has no subscriptions: the unsubscription is done.
            Self::Unsub { reply } => {
                let _ = reply.send(Ok(()));
            }
            // Dropping the sender fails the waiter with `Closed`.
            Self::Call { reply } => drop(reply),
            Self::Fetch { reply, .. } => drop(reply),
        }
    }
}

/// A path the application wants to be subscribed to.
#[derive(Default)]
pub(super) struct WantedPath {
    /// `active` once the server confirmed the subscription on the current connection; the
    /// `sub` in flight; the `connect()` calls waiting for the answer.
    sub: Wanted<SubscribeError>,
    /// Subscribed on some connection before: subscribed again with a snapshot.
    was_subscribed: bool,
    /// A versioned subscription on the current connection: the version of the last push
    /// applied (or of the snapshot); `None` for a plain one.
    version: Option<u64>,
    /// A `sub` with `snapshot` is in flight: versioned pushes are held until its answer.
    awaiting_snapshot: bool,
    /// The pushes held meanwhile, in arrival order, at most `max_held_pushes`.
    held: Vec<(u64, Op, Value)>,
    /// Pushes were dropped past `max_held_pushes`: resync once the snapshot arrives.
    overflowed: bool,
    /// The `connect_with_snapshot()` calls waiting for a snapshot: told once the mirrors
    /// have applied it. While any waits, every `sub` of the path asks for a snapshot (a
    /// reconnect meanwhile included).
    snapshot_waiters: Vec<SubscribeReply>,
}

impl WantedPath {
    /// The connection ended: what was versioned on it is gone.
    fn reset_versions(&mut self) {
        self.version = None;
        self.awaiting_snapshot = false;
        self.held.clear();
        self.overflowed = false;
    }

    /// A new waiter for the next snapshot (waiters whose caller stopped waiting are
    /// forgotten).
    fn wait_for_snapshot(&mut self) -> SubscribeAnswer {
        self.snapshot_waiters.retain(|waiter| !waiter.is_closed());
        let (reply, answer) = oneshot::channel();
        self.snapshot_waiters.push(reply);
        answer
    }

    /// Whether a caller still waits for a snapshot.
    fn wants_snapshot(&self) -> bool {
        self.snapshot_waiters.iter().any(|waiter| !waiter.is_closed())
    }
}

/// Something a collection keeps up to date from the messages of its path (implemented by
/// [`Collection`](super::Collection) for each item type).
pub(super) trait Mirror: Send + Sync + 'static {
    /// Applies `message` at once; returns the delivery of the resulting event to the
    /// collection's change streams, for the router to await (backpressure).
    fn apply(&self, message: &SyncMessage) -> Option<BoxFuture<'static, ()>>;

    /// The subscription was forgotten or the client closed: the change streams end.
    fn end(&self);
}

/// Who receives the messages of a path.
#[derive(Clone)]
pub(super) enum Listener {
    Stream(mpsc::Sender<SyncMessage>),
    Mirror(Arc<dyn Mirror>),
}

/// A listener and the id it is removed by.
pub(super) struct Registered {
    id: u64,
    listener: Listener,
}

/// Ends `listeners`: stream senders are dropped, mirrors told. Call it without the lock.
pub(super) fn end_listeners(listeners: Vec<Registered>) {
    for registered in listeners {
        if let Listener::Mirror(mirror) = registered.listener {
            mirror.end();
        }
    }
}

/// A caller waiting for a snapshot to be applied.
pub(super) enum Done {
    /// A `fetch`.
    Fetch(Reply<()>),
    /// A `connect_with_snapshot`.
    Subscribe(SubscribeReply),
}

impl Done {
    /// The snapshot was applied: tells the caller.
    pub(super) fn tell(self) {
        // A caller that stopped waiting has dropped its receiver: nothing to tell.
        match self {
            Self::Fetch(reply) => drop(reply.send(Ok(()))),
            Self::Subscribe(reply) => drop(reply.send(Ok(()))),
        }
    }
}

/// What the router must do, without the lock, after a frame was applied to the state.
pub(super) enum Action {
    Nothing,
    /// Hand each of `messages`, in order, to each of `listeners`, waiting while a stream
    /// is full; after the first (a snapshot when `done` is not empty), tell `done` once
    /// the mirrors have applied it.
    Deliver {
        messages: Vec<SyncMessage>,
        listeners: Vec<Listener>,
        done: Vec<Done>,
    },
    /// The path was forgotten (a refused subscription): end these listeners.
    End(Vec<Registered>),
}

/// This router's protocol state, under the session's lock.
pub(super) struct State {
    /// The connection, its session, and the request ids.
    link: ServerLink,
    /// [`SyncClientConfig::read_after_resubscribe`].
    read_after_resubscribe: bool,
    /// [`SyncClientConfig::max_held_pushes`].
    max_held_pushes: usize,
    /// Sorted, so that re-subscribes go out in a stable order.
    wanted: BTreeMap<String, WantedPath>,
    requests: Requests<Request>,
    listeners: HashMap<String, Vec<Registered>>,
    next_listener: u64,
    error_subscribers: ErrorSubscribers<BackgroundError>,
}

impl SessionState for State {
    type Frame = Frame;
    type Action = Action;
    type Request = Request;
    /// What the close takes out, to end without the lock.
    type Taken = (
        Requests<Request>,
        BTreeMap<String, WantedPath>,
        HashMap<String, Vec<Registered>>,
        Vec<mpsc::Sender<BackgroundError>>,
    );

    fn link(&mut self) -> &mut ServerLink {
        &mut self.link
    }

    fn requests(&mut self) -> &mut Requests<Request> {
        &mut self.requests
    }

    /// Sends `sub` for every wanted path: with `read_after_resubscribe`, a path that was
    /// subscribed before asks for a snapshot (a versioned subscription), whose value
    /// catches up on what changed meanwhile; so does a path a `connect_with_snapshot()`
    /// waits for.
    fn session_started(&mut self) {
        let paths: Vec<(String, bool)> = self
            .wanted
            .iter()
            .map(|(path, wanted)| {
                let snapshot =
                    (self.read_after_resubscribe && wanted.was_subscribed) || wanted.wants_snapshot();
                (path.clone(), snapshot)
            })
            .collect();
        for (path, snapshot) in paths {
            if let Err(error) = self.send_sub(&path, snapshot) {
                tracing::warn!(path = %path, %error, "cannot subscribe again; tried again on the next reconnect");
            }
        }
    }

    /// Marks every path not subscribed; the wanted paths and the `connect()` waiters stay
    /// for the next connection.
    fn session_ended(&mut self) {
        for wanted in self.wanted.values_mut() {
            wanted.sub.reset();
            wanted.reset_versions();
        }
    }

    fn apply(&mut self, frame: Frame) -> Action {
        match frame {
            Frame::Subscribed { path, id, v, data } => return self.on_subscribed(path, id, v, data),
            Frame::Unsubscribed { path, id } => self.on_unsubscribed(path, id),
            Frame::Data { path, op, v, data } => return self.on_data(path, op, v, data),
            Frame::Reply { id, data, err } => return self.on_reply(id, data.unwrap_or_default(), err),
            Frame::Error { code, message, id, path } => {
                return self.on_error(RemoteError { code, message }, id, path);
            }
            Frame::Sub { .. } | Frame::Unsub { .. } | Frame::Request { .. } => {
                tracing::warn!(?frame, "the server sent a frame only clients send; ignored");
            }
        }
        Action::Nothing
    }

    fn take_all(&mut self) -> Self::Taken {
        (
            std::mem::take(&mut self.requests),
            std::mem::take(&mut self.wanted),
            std::mem::take(&mut self.listeners),
            self.error_subscribers.take(),
        )
    }

    /// Every waiter gets `Closed`, every stream ends, every collection is told.
    fn end_taken((requests, wanted, listeners, errors): Self::Taken) {
        drop((requests, wanted, errors));
        end_listeners(listeners.into_values().flatten().collect());
    }
}

/// Shared by every handle and the router task: the session and what is read without its
/// lock.
pub(super) struct SyncCore {
    pub(super) config: SyncClientConfig,
    pub(super) session: Session<State>,
}

impl SyncCore {
    pub(super) fn new(config: SyncClientConfig) -> Arc<Self> {
        let state = State {
            link: ServerLink::new(ROUTER),
            read_after_resubscribe: config.read_after_resubscribe,
            max_held_pushes: config.max_held_pushes,
            wanted: BTreeMap::new(),
            requests: Requests::default(),
            listeners: HashMap::new(),
            next_listener: 1,
            error_subscribers: ErrorSubscribers::new("sync"),
        };
        Arc::new(Self { config, session: Session::new(state) })
    }

    // ---- the handles' requests ---------------------------------------------------------

    pub(super) fn is_subscribed(&self, path: &str) -> bool {
        self.session.lock().wanted.get(path).is_some_and(|wanted| wanted.sub.active)
    }

    /// Wants `path` and sends its `sub` now if the link is up; otherwise the next `Added`
    /// sends it. `None` when it is subscribed already.
    ///
    /// With `snapshot`, the answer waited for is a snapshot, applied: a `sub` with
    /// `snapshot` is sent even when the path is subscribed already (the server keeps the
    /// subscription, makes it versioned if it was plain, and answers its current value)
    /// or has a plain `sub` in flight; a `sub` with `snapshot` in flight is joined.
    pub(super) fn subscribe(
        &self,
        path: &str,
        snapshot: bool,
    ) -> Result<Option<SubscribeAnswer>, SubscribeError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(SubscribeError::Closed);
        }
        let existing = state.wanted.get(path);
        if !snapshot && existing.is_some_and(|wanted| wanted.sub.active) {
            return Ok(None);
        }
        let in_flight = existing.is_some_and(|wanted| {
            if snapshot { wanted.awaiting_snapshot } else { wanted.sub.request.is_some() }
        });
        if state.link.is_online() && !in_flight {
            if state.requests.len() >= self.config.max_pending_requests {
                return Err(SubscribeError::TooManyPending);
            }
            // Recorded before the send so that `send_sub` marks it; a failed send leaves
            // nothing behind that was not there.
            let new = !state.wanted.contains_key(path);
            state.wanted.entry(path.to_owned()).or_default();
            if let Err(error) = state.send_sub(path, snapshot) {
                if new {
                    state.wanted.remove(path);
                }
                return Err(SubscribeError::Send(error));
            }
        }
        let wanted = state.wanted.entry(path.to_owned()).or_default();
        Ok(Some(if snapshot { wanted.wait_for_snapshot() } else { wanted.sub.wait() }))
    }

    /// Forgets `path` (its `connect()` waiters get `Cancelled`, its streams end) and sends
    /// `unsub` when the link is up and the path was wanted. `None` when there is nothing
    /// to tell the server (a new connection has no subscriptions).
    pub(super) fn unsubscribe(
        &self,
        path: &str,
    ) -> Result<Option<(u64, UnsubscribeAnswer)>, UnsubscribeError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(UnsubscribeError::Closed);
        }
        let (was_wanted, ended) = state.forget(path, || SubscribeError::Cancelled);
        let result = if !(state.link.is_online() && was_wanted) {
            Ok(None)
        } else if state.requests.len() >= self.config.max_pending_requests {
            Err(UnsubscribeError::TooManyPending)
        } else {
            let id = state.link.allocate_id();
            match state.link.send(&Frame::Unsub { path: path.to_owned(), id: Some(id) }) {
                Ok(()) => {
                    let (reply, answer) = oneshot::channel();
                    state.requests.insert(id, Request::Unsub { reply });
                    Ok(Some((id, answer)))
                }
                Err(error) => Err(UnsubscribeError::Send(error)),
            }
        };
        drop(state);
        end_listeners(ended);
        result
    }

    /// Registers `request` under `id` and sends `message` (the frame carrying the id),
    /// both under the lock so that a disconnect sees either neither or both.
    pub(super) fn start(&self, id: u64, message: Message, request: Request) -> Result<(), RequestError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(RequestError::Closed);
        }
        if state.requests.len() >= self.config.max_pending_requests {
            return Err(RequestError::TooManyPending);
        }
        let Some(connection) = state.link.connection() else {
            // `ready()` was true: only a closed router has no connection.
            return Err(RequestError::Closed);
        };
        connection.send(message).map_err(RequestError::Send)?;
        state.requests.insert(id, request);
        Ok(())
    }

    /// Adds a listener of `path`; `None` (and the listener dropped, so that a stream ends
    /// at once) when the router is gone. Takes the state lock: callers may hold a mirror's
    /// lock (the order is mirror, then state; the state's lock is never held while a
    /// mirror's is taken).
    pub(super) fn add_listener(&self, path: &str, listener: Listener) -> Option<u64> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            drop(state);
            // A stream ends with its sender. A mirror is not told: its owner may hold its
            // lock right now, and checks the closed flag itself.
            drop(listener);
            return None;
        }
        let id = state.next_listener;
        state.next_listener += 1;
        state.listeners.entry(path.to_owned()).or_default().push(Registered { id, listener });
        Some(id)
    }

    pub(super) fn remove_listener(&self, path: &str, id: u64) {
        let mut state = self.session.lock();
        let mut removed = Vec::new();
        if let Some(listeners) = state.listeners.get_mut(path) {
            if let Some(index) = listeners.iter().position(|registered| registered.id == id) {
                removed.push(listeners.remove(index));
            }
            if listeners.is_empty() {
                state.listeners.remove(path);
            }
        }
        drop(state);
        // Dropped without the lock; a removed mirror is not ended (its owner is going).
        drop(removed);
    }

    pub(super) fn subscribe_errors(&self) -> mpsc::Receiver<BackgroundError> {
        let (sender, receiver) = mpsc::channel(self.config.error_queue_capacity);
        let mut state = self.session.lock();
        if !state.link.is_closed() {
            state.error_subscribers.add(sender);
        }
        receiver
    }
}

impl State {
    /// Sends a `sub` of `path` (with `snapshot`, a versioned one) and records it as the
    /// path's request in flight.
    fn send_sub(&mut self, path: &str, snapshot: bool) -> Result<(), network_core::SendError> {
        let id = self.link.allocate_id();
        self.link.send(&Frame::Sub { path: path.to_owned(), id: Some(id), snapshot })?;
        self.requests.insert(id, Request::Sub { path: path.to_owned() });
        if let Some(wanted) = self.wanted.get_mut(path) {
            wanted.sub.begin(id);
            if snapshot {
                wanted.awaiting_snapshot = true;
                wanted.overflowed = false;
            }
        }
        Ok(())
    }

    /// Pushes on `path`'s versioned subscription were missed: reports it and asks for a
    /// new snapshot.
    fn resync(&mut self, path: &str, last: u64, received: u64) {
        self.error_subscribers.report(BackgroundError::Resync { path: path.to_owned(), last, received });
        if let Err(error) = self.send_sub(path, true) {
            tracing::warn!(path = %path, %error, "cannot resync; tried again on the next reconnect");
        }
    }

    /// Forgets `path`: its `connect()` waiters get `error()`, its `sub` in flight is
    /// dropped; returns whether it was wanted, and its listeners, to end without the lock.
    fn forget(&mut self, path: &str, error: impl Fn() -> SubscribeError) -> (bool, Vec<Registered>) {
        let listeners = self.listeners.remove(path).unwrap_or_default();
        let Some(mut wanted) = self.wanted.remove(path) else {
            return (false, listeners);
        };
        if let Some(id) = wanted.sub.request {
            self.requests.remove(id);
        }
        wanted.sub.fail(&error);
        for waiter in wanted.snapshot_waiters.drain(..) {
            let _ = waiter.send(Err(error()));
        }
        (true, listeners)
    }

    /// The current listeners of `path`.
    fn listeners_of(&self, path: &str) -> Vec<Listener> {
        self.listeners
            .get(path)
            .map(|listeners| listeners.iter().map(|registered| registered.listener.clone()).collect())
            .unwrap_or_default()
    }

    /// Takes the `sub` request `id`, leaving any other kind of request in place.
    fn take_sub(&mut self, id: u64) -> Option<String> {
        self.requests.take_kind(id, |request| match request {
            Request::Sub { path } => Ok(path),
            other => Err(other),
        })
    }

    fn on_subscribed(
        &mut self,
        path: String,
        id: Option<u64>,
        v: Option<u64>,
        data: Option<Value>,
    ) -> Action {
        // The id is authoritative; without a known one, trust the path.
        let path = id.and_then(|id| self.take_sub(id)).unwrap_or(path);
        let Some(wanted) = self.wanted.get_mut(&path) else {
            tracing::debug!(path = %path, "subscribed to a path no longer wanted (closed meanwhile)");
            return Action::Nothing;
        };
        wanted.was_subscribed = true;
        wanted.sub.grant(id);
        // A plain answer (to a `sub` sent before a `connect_with_snapshot`): its snapshot
        // waiters wait for the `sub` with `snapshot` that follows it.
        let Some(snapshot_version) = v else { return Action::Nothing };
        let done = wanted.snapshot_waiters.drain(..).map(Done::Subscribe).collect();
        // The snapshot, then the held pushes it does not contain, in version order; a
        // hole among those (or pushes dropped past the cap) asks for a new snapshot.
        wanted.awaiting_snapshot = false;
        let mut last = snapshot_version;
        let mut gap = None;
        let mut messages = vec![SyncMessage {
            path: path.clone(),
            op: Op::Change,
            data: data.unwrap_or_default(),
            snapshot: true,
        }];
        for (version, op, data) in std::mem::take(&mut wanted.held) {
            if version <= last {
                continue;
            }
            if version != last + 1 {
                gap = Some(version);
                break;
            }
            last = version;
            messages.push(SyncMessage { path: path.clone(), op, data, snapshot: false });
        }
        wanted.version = Some(last);
        if std::mem::take(&mut wanted.overflowed) && gap.is_none() {
            gap = Some(last + 2);
        }
        if let Some(received) = gap {
            self.resync(&path, last, received);
        }
        Action::Deliver { listeners: self.listeners_of(&path), messages, done }
    }

    fn on_unsubscribed(&mut self, path: String, id: Option<u64>) {
        let unsub = |request| match request {
            Request::Unsub { reply } => Ok(reply),
            other => Err(other),
        };
        if let Some(reply) = id.and_then(|id| self.requests.take_kind(id, unsub)) {
            let _ = reply.send(Ok(()));
            return;
        }
        // Not an answer to an unsub of ours: the server stopped the subscription. It stays
        // wanted and is renewed on the next reconnect.
        if let Some(wanted) = self.wanted.get_mut(&path) {
            wanted.sub.active = false;
        }
        tracing::debug!(path = %path, "the server stopped a subscription");
    }

    fn on_data(&mut self, path: String, op: Op, v: Option<u64>, data: Value) -> Action {
        if let (Some(version), Some(wanted)) = (v, self.wanted.get_mut(&path)) {
            if wanted.awaiting_snapshot {
                if wanted.held.len() < self.max_held_pushes {
                    wanted.held.push((version, op, data));
                } else {
                    wanted.overflowed = true;
                }
                return Action::Nothing;
            }
            match wanted.version {
                Some(last) if version == last + 1 => wanted.version = Some(version),
                Some(last) if version <= last => {
                    tracing::debug!(path = %path, version, "a push older than the snapshot dropped");
                    return Action::Nothing;
                }
                last => {
                    let last = last.unwrap_or_default();
                    self.resync(&path, last, version);
                    return Action::Nothing;
                }
            }
        }
        let listeners = self.listeners_of(&path);
        if listeners.is_empty() {
            tracing::debug!(path = %path, "push without listener dropped");
            return Action::Nothing;
        }
        Action::Deliver {
            messages: vec![SyncMessage { path, op, data, snapshot: false }],
            listeners,
            done: Vec::new(),
        }
    }

    fn on_reply(&mut self, id: u64, data: Value, err: Option<RemoteError>) -> Action {
        match self.requests.remove(id) {
            Some(Request::Call { reply }) => {
                let _ = reply.send(match err {
                    Some(error) => Err(error),
                    None => Ok(data),
                });
            }
            Some(Request::Fetch { path, reply }) => {
                return self.fetched(path, reply, err.map_or(Ok(data), Err));
            }
            Some(other) => {
                tracing::warn!(id, "the server sent a reply to a sub or unsub; ignored");
                self.requests.insert(id, other);
            }
            None => tracing::debug!(id, "reply to a request nobody waits for (timed out or cancelled)"),
        }
        Action::Nothing
    }

    /// The answer to the `fetch` of `path`: its value goes to the path's listeners.
    fn fetched(&mut self, path: String, reply: Reply<()>, result: Result<Value, RemoteError>) -> Action {
        match result {
            Ok(data) => Action::Deliver {
                listeners: self.listeners_of(&path),
                messages: vec![SyncMessage { path, op: Op::Change, data, snapshot: true }],
                done: vec![Done::Fetch(reply)],
            },
            Err(error) => {
                let _ = reply.send(Err(error));
                Action::Nothing
            }
        }
    }

    fn on_error(&mut self, error: RemoteError, id: Option<u64>, path: Option<String>) -> Action {
        if let Some(id) = id {
            match self.requests.remove(id) {
                Some(Request::Sub { path }) => return self.subscribe_refused(path, id, error),
                Some(Request::Unsub { reply }) => {
                    let result = if error.code == codes::NOT_SUBSCRIBED {
                        Ok(())
                    } else {
                        Err(UnsubscribeError::Refused(error))
                    };
                    let _ = reply.send(result);
                    return Action::Nothing;
                }
                Some(Request::Call { reply }) => {
                    let _ = reply.send(Err(error));
                    return Action::Nothing;
                }
                Some(Request::Fetch { path, reply }) => return self.fetched(path, reply, Err(error)),
                None => {}
            }
        }
        self.error_subscribers.report(BackgroundError::Server { error, path });
        Action::Nothing
    }

    /// The server refused the `sub` `id` of `path`: the path is forgotten, and whoever
    /// waits hears why; when nobody does (a re-subscribe after a reconnect), `errors()`
    /// does.
    fn subscribe_refused(&mut self, path: String, id: u64, error: RemoteError) -> Action {
        if !self.wanted.contains_key(&path) {
            tracing::debug!(path = %path, %error, "subscription refused for a path no longer wanted");
            return Action::Nothing;
        }
        let told = self.wanted.get(&path).is_some_and(|wanted| {
            wanted.sub.waiters.iter().any(|waiter| !waiter.is_closed()) || wanted.wants_snapshot()
        });
        let refusal = error.clone();
        let (_, ended) = self.forget(&path, || {
            if refusal.code == codes::LIMIT {
                SubscribeError::Limit(refusal.clone())
            } else {
                SubscribeError::Refused(refusal.clone())
            }
        });
        if !told {
            self.error_subscribers.report(BackgroundError::ResubscribeRefused { path, error });
        } else {
            tracing::debug!(id, path = %path, %error, "subscription refused");
        }
        Action::End(ended)
    }
}
