//! The state the handles and the router task share, and the protocol logic on it.
//!
//! The session lifecycle (the lock, reconnects, adopting the connection, the close) is
//! `network_core::session`'s; [`State`] is this router's part of it. Everything here is
//! synchronous: the lock is never held across an `.await`. What the router must await (a
//! full event stream, a free handler slot) comes back as an [`Action`] for the router to
//! carry out after the lock is released.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use network_core::Message;
use network_core::client::{ErrorSubscribers, Wanted};
use network_core::session::{Requests, ServerLink, Session, SessionRequest, SessionState};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::config::ChannelsClientConfig;
use super::error::{BackgroundError, JoinError, LeaveError};
use crate::error::{AckError, EmitError, RemoteError, codes};
use crate::protocol::{Frame, ROOT, ROUTER};

/// Channel path and event name.
pub(super) type EventKey = (String, String);

/// A type-erased handler: decodes the payload, runs the application's closure, encodes
/// its answer.
pub(super) type Handler = Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value, RemoteError>> + Send + Sync>;

pub(super) type JoinAnswer = oneshot::Receiver<Result<(), JoinError>>;
type LeaveReply = oneshot::Sender<Result<(), LeaveError>>;
pub(super) type LeaveAnswer = oneshot::Receiver<Result<(), LeaveError>>;
/// An ack's outcome; a dropped sender means that the connection closed first.
type AckReply = oneshot::Sender<Result<Value, RemoteError>>;
pub(super) type AckAnswer = oneshot::Receiver<Result<Value, RemoteError>>;

/// A request of ours that waits for the server's answer, by id.
pub(super) enum Request {
    Join { ch: String },
    Leave { reply: LeaveReply },
    Ack { reply: AckReply },
}

impl SessionRequest for Request {
    fn session_ended(self) {
        match self {
            // The next connection sends the join again.
            Self::Join { .. } => {}
            // A new connection is in no channel but `/`: the leave is done.
            Self::Leave { reply } => {
                let _ = reply.send(Ok(()));
            }
            // Dropping the sender fails the waiter with `AckError::Closed`.
            Self::Ack { reply } => drop(reply),
        }
    }
}

/// A channel the application wants to be in (every one but `/`): `active` once the server
/// confirmed the join on the current connection; its waiters are `join()` calls.
type Membership = Wanted<JoinError>;

pub(super) struct Subscriber {
    id: u64,
    sender: mpsc::Sender<Value>,
}

/// What the router must do, without the lock, after a frame was applied to the state.
pub(super) enum Action {
    Nothing,
    /// Hand `data` to each of these event streams, waiting while one is full.
    Deliver {
        targets: Vec<mpsc::Sender<Value>>,
        data: Value,
    },
    /// Run `handler` for the server's request `id`, received in `session`.
    Handle {
        handler: Handler,
        id: u64,
        data: Value,
        session: u64,
    },
}

pub(super) struct State {
    /// The connection, its session, and the request ids.
    link: ServerLink,
    /// Sorted, so that rejoins go out in a stable order.
    memberships: BTreeMap<String, Membership>,
    requests: Requests<Request>,
    pending_acks: usize,
    subscriptions: HashMap<EventKey, Vec<Subscriber>>,
    next_subscriber: u64,
    handlers: HashMap<EventKey, Handler>,
    error_subscribers: ErrorSubscribers<BackgroundError>,
}

impl SessionState for State {
    type Frame = Frame;
    type Action = Action;
    type Request = Request;
    /// What the close takes out, to end without the lock.
    type Taken = (
        Requests<Request>,
        BTreeMap<String, Membership>,
        HashMap<EventKey, Vec<Subscriber>>,
        HashMap<EventKey, Handler>,
        Vec<mpsc::Sender<BackgroundError>>,
    );

    fn link(&mut self) -> &mut ServerLink {
        &mut self.link
    }

    fn requests(&mut self) -> &mut Requests<Request> {
        &mut self.requests
    }

    /// Re-sends `join` for every wanted channel.
    fn session_started(&mut self) {
        let paths: Vec<String> = self.memberships.keys().cloned().collect();
        for path in paths {
            let id = self.link.allocate_id();
            match self.link.send(&Frame::Join { ch: path.clone(), id: Some(id) }) {
                Ok(()) => {
                    self.requests.insert(id, Request::Join { ch: path.clone() });
                    if let Some(membership) = self.memberships.get_mut(&path) {
                        membership.begin(id);
                    }
                }
                Err(error) => {
                    tracing::warn!(channel = %path, %error, "cannot re-join a channel; it is tried again on the next reconnect");
                }
            }
        }
    }

    /// Marks every channel not joined; the wanted channels and the `join()` waiters stay
    /// for the next connection.
    fn session_ended(&mut self) {
        for membership in self.memberships.values_mut() {
            membership.reset();
        }
        self.pending_acks = 0;
    }

    fn apply(&mut self, frame: Frame) -> Action {
        match frame {
            Frame::Joined { ch, id } => self.on_joined(ch, id),
            Frame::Left { ch, id } => self.on_left(ch, id),
            Frame::Ack { id, data, err } => self.on_ack(id, data.unwrap_or_default(), err),
            Frame::Error { code, message, ack: Some(ack), .. } => {
                // About an `ack` we sent: the id is the server's, not one of our requests.
                let error = RemoteError { code, message };
                self.error_subscribers.report(BackgroundError::Ack { ack, error });
            }
            Frame::Error { code, message, id, ch, ack: None } => {
                self.on_error(RemoteError { code, message }, id, ch)
            }
            Frame::Emit { ch, ev, data, id } => return self.on_emit(ch, ev, data, id),
            Frame::Join { .. } | Frame::Leave { .. } => {
                tracing::warn!(?frame, "the server sent a frame only clients send; ignored");
            }
        }
        Action::Nothing
    }

    fn remove_request(&mut self, id: u64) -> Option<Request> {
        let request = self.requests.remove(id)?;
        if matches!(request, Request::Ack { .. }) {
            self.pending_acks -= 1;
        }
        Some(request)
    }

    /// Every waiter gets `Closed`, every stream ends, the handlers are dropped.
    fn take_all(&mut self) -> Self::Taken {
        self.pending_acks = 0;
        (
            std::mem::take(&mut self.requests),
            std::mem::take(&mut self.memberships),
            std::mem::take(&mut self.subscriptions),
            std::mem::take(&mut self.handlers),
            self.error_subscribers.take(),
        )
    }
}

/// Shared by every handle and the router task: the session and what is read without its
/// lock.
pub(super) struct ChannelsCore {
    pub(super) config: ChannelsClientConfig,
    pub(super) session: Session<State>,
    /// Bounds the handlers running at once.
    pub(super) handler_slots: Arc<Semaphore>,
}

impl ChannelsCore {
    pub(super) fn new(config: ChannelsClientConfig) -> Arc<Self> {
        let handler_slots = Arc::new(Semaphore::new(config.max_concurrent_handlers));
        let state = State {
            link: ServerLink::new(ROUTER),
            memberships: BTreeMap::new(),
            requests: Requests::default(),
            pending_acks: 0,
            subscriptions: HashMap::new(),
            next_subscriber: 1,
            handlers: HashMap::new(),
            error_subscribers: ErrorSubscribers::new("channels"),
        };
        Arc::new(Self { config, session: Session::new(state), handler_slots })
    }

    /// Sends a handler's answer, unless the connection changed since the request came.
    pub(super) fn answer(&self, id: u64, session: u64, result: Result<Value, RemoteError>) {
        let state = self.session.lock();
        if !state.link.is_online() || state.link.session() != session {
            tracing::debug!(id, "the connection changed while a handler ran; its answer is dropped");
            return;
        }
        if let Err(error) = state.link.send(&Frame::ack(id, result)) {
            tracing::debug!(id, %error, "cannot send a handler's answer");
        }
    }

    // ---- the handles' requests ---------------------------------------------------------

    pub(super) fn is_joined(&self, path: &str) -> bool {
        let state = self.session.lock();
        if path == ROOT {
            state.link.is_online()
        } else {
            state.memberships.get(path).is_some_and(|membership| membership.active)
        }
    }

    /// Wants `path` and sends its `join` now if the link is up; otherwise the next `Added`
    /// sends it. `None` when it is joined already.
    pub(super) fn join(&self, path: &str) -> Result<Option<JoinAnswer>, JoinError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(JoinError::Closed);
        }
        let existing = state.memberships.get(path);
        if existing.is_some_and(|membership| membership.active) {
            return Ok(None);
        }
        let in_flight = existing.is_some_and(|membership| membership.request.is_some());
        let mut sent = None;
        if state.link.is_online() && !in_flight {
            let id = state.link.allocate_id();
            state.link.send(&Frame::Join { ch: path.to_owned(), id: Some(id) }).map_err(JoinError::Send)?;
            state.requests.insert(id, Request::Join { ch: path.to_owned() });
            sent = Some(id);
        }
        let membership = state.memberships.entry(path.to_owned()).or_default();
        if let Some(id) = sent {
            membership.begin(id);
        }
        Ok(Some(membership.wait()))
    }

    /// Forgets `path` and sends `leave` if the link is up (a new connection starts with
    /// only `/`, so there is nothing to leave otherwise).
    pub(super) fn leave(&self, path: &str) -> Result<Option<(u64, LeaveAnswer)>, LeaveError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(LeaveError::Closed);
        }
        if let Some(mut membership) = state.memberships.remove(path) {
            if let Some(id) = membership.request {
                state.remove_request(id);
            }
            membership.fail(|| JoinError::Left);
        }
        if !state.link.is_online() {
            return Ok(None);
        }
        let id = state.link.allocate_id();
        state.link.send(&Frame::Leave { ch: path.to_owned(), id: Some(id) }).map_err(LeaveError::Send)?;
        let (reply, answer) = oneshot::channel();
        state.requests.insert(id, Request::Leave { reply });
        Ok(Some((id, answer)))
    }

    /// Registers acknowledgement `id` and sends `message` (the emit carrying it), both
    /// under the lock so that a disconnect sees either neither or both.
    pub(super) fn start_ack(&self, id: u64, message: Message) -> Result<AckAnswer, AckError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(AckError::Closed);
        }
        if state.pending_acks >= self.config.max_pending_acks {
            return Err(AckError::TooManyPending);
        }
        let Some(connection) = state.link.connection() else {
            return Err(AckError::Emit(EmitError::NoConnection));
        };
        connection.send(message).map_err(|error| AckError::Emit(EmitError::Send(error)))?;
        let (reply, answer) = oneshot::channel();
        state.requests.insert(id, Request::Ack { reply });
        state.pending_acks += 1;
        Ok(answer)
    }

    pub(super) fn subscribe(&self, key: EventKey) -> (u64, mpsc::Receiver<Value>) {
        let (sender, receiver) = mpsc::channel(self.config.event_queue_capacity);
        let mut state = self.session.lock();
        if state.link.is_closed() {
            // The sender is dropped: the stream ends at once.
            return (0, receiver);
        }
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        state.subscriptions.entry(key).or_default().push(Subscriber { id, sender });
        (id, receiver)
    }

    pub(super) fn unsubscribe(&self, key: &EventKey, id: u64) {
        let mut state = self.session.lock();
        if let Some(subscribers) = state.subscriptions.get_mut(key) {
            subscribers.retain(|subscriber| subscriber.id != id);
            if subscribers.is_empty() {
                state.subscriptions.remove(key);
            }
        }
    }

    pub(super) fn subscribe_errors(&self) -> mpsc::Receiver<BackgroundError> {
        let (sender, receiver) = mpsc::channel(self.config.error_queue_capacity);
        let mut state = self.session.lock();
        if !state.link.is_closed() {
            state.error_subscribers.add(sender);
        }
        receiver
    }

    pub(super) fn set_handler(&self, key: EventKey, handler: Handler) {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return;
        }
        let previous = state.handlers.insert(key, handler);
        drop(state);
        // Dropped without the lock (see `close`).
        drop(previous);
    }

    pub(super) fn remove_handler(&self, key: &EventKey) -> bool {
        let removed = self.session.lock().handlers.remove(key);
        removed.is_some()
    }
}

impl State {
    /// Takes the join request `id`, leaving any other kind of request in place.
    fn take_join(&mut self, id: u64) -> Option<String> {
        self.requests.take_kind(id, |request| match request {
            Request::Join { ch } => Ok(ch),
            other => Err(other),
        })
    }

    fn on_joined(&mut self, ch: String, id: Option<u64>) {
        // The id is authoritative; without a known one, trust the path.
        let path = id.and_then(|id| self.take_join(id)).unwrap_or(ch);
        if path == ROOT {
            tracing::debug!("in the root channel");
            return;
        }
        let Some(membership) = self.memberships.get_mut(&path) else {
            tracing::debug!(channel = %path, "joined a channel that is no longer wanted (left meanwhile)");
            return;
        };
        membership.grant(id);
    }

    fn on_left(&mut self, ch: String, id: Option<u64>) {
        let leave = |request| match request {
            Request::Leave { reply } => Ok(reply),
            other => Err(other),
        };
        if let Some(reply) = id.and_then(|id| self.requests.take_kind(id, leave)) {
            let _ = reply.send(Ok(()));
            return;
        }
        // Not an answer to a leave of ours: the server took the connection out of `ch`.
        // It stays wanted and is joined again on the next reconnect.
        if let Some(membership) = self.memberships.get_mut(&ch) {
            membership.active = false;
        }
        tracing::debug!(channel = %ch, "left a channel");
    }

    fn on_ack(&mut self, id: u64, data: Value, err: Option<RemoteError>) {
        match self.remove_request(id) {
            Some(Request::Ack { reply }) => {
                let _ = reply.send(match err {
                    Some(error) => Err(error),
                    None => Ok(data),
                });
            }
            Some(other) => {
                tracing::warn!(id, "the server sent an ack for a join or leave; ignored");
                self.requests.insert(id, other);
            }
            None => tracing::debug!(id, "ack for a request nobody waits for (timed out or cancelled)"),
        }
    }

    fn on_error(&mut self, error: RemoteError, id: Option<u64>, ch: Option<String>) {
        if let Some(id) = id {
            match self.remove_request(id) {
                Some(Request::Join { ch }) => return self.join_refused(ch, id, error),
                Some(Request::Leave { reply }) => {
                    let result = if error.code == codes::NOT_JOINED {
                        Ok(())
                    } else {
                        Err(LeaveError::Refused(error))
                    };
                    let _ = reply.send(result);
                    return;
                }
                Some(Request::Ack { reply }) => {
                    let _ = reply.send(Err(error));
                    return;
                }
                None => {}
            }
        }
        self.error_subscribers.report(BackgroundError::Server { error, channel: ch });
    }

    /// The server refused the join `id` of `path`: the channel is forgotten, and whoever
    /// waits hears why; when nobody does (a rejoin after a reconnect), `errors()` does.
    fn join_refused(&mut self, path: String, id: u64, error: RemoteError) {
        let Some(mut membership) = self.memberships.remove(&path) else {
            tracing::debug!(channel = %path, %error, "join refused for a channel no longer wanted");
            return;
        };
        if let Some(other) = membership.request.filter(|request| *request != id) {
            self.remove_request(other);
        }
        let is_limit = error.code == codes::LIMIT;
        let told = membership.fail(|| {
            if is_limit { JoinError::Limit(error.clone()) } else { JoinError::Refused(error.clone()) }
        });
        if !told {
            self.error_subscribers.report(BackgroundError::RejoinRefused { channel: path, error });
        }
    }

    fn on_emit(&mut self, ch: String, ev: String, data: Value, id: Option<u64>) -> Action {
        let key = (ch, ev);
        match id {
            Some(id) => match self.handlers.get(&key) {
                Some(handler) => {
                    Action::Handle { handler: handler.clone(), id, data, session: self.link.session() }
                }
                None => {
                    let (ch, ev) = key;
                    let error = RemoteError::new(
                        codes::NO_HANDLER,
                        format!("no handler for event {ev:?} on channel {ch:?}"),
                    );
                    if let Err(error) = self.link.send(&Frame::ack(id, Err(error))) {
                        tracing::debug!(id, %error, "cannot answer no_handler");
                    }
                    Action::Nothing
                }
            },
            None => {
                let targets: Vec<_> = self
                    .subscriptions
                    .get(&key)
                    .map(|subscribers| {
                        subscribers.iter().map(|subscriber| subscriber.sender.clone()).collect()
                    })
                    .unwrap_or_default();
                if targets.is_empty() {
                    tracing::debug!(channel = %key.0, event = %key.1, "event without subscriber dropped");
                    return Action::Nothing;
                }
                Action::Deliver { targets, data }
            }
        }
    }
}
