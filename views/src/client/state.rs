//! The state the handles and the router task share, and the protocol logic on it.
//!
//! The session lifecycle (the lock, reconnects, adopting the connection, the close) is
//! `network_core::session`'s; [`State`] is this router's part of it. Everything here is synchronous: the lock is never held across an `.await`. What the
//! router must await (a full change stream) comes back as an [`Action`] for the router to
//! carry out after the lock is released.

use std::collections::BTreeMap;
use std::sync::Arc;

use network_core::client::Wanted;
use network_core::session::{Requests, ServerLink, Session, SessionRequest, SessionState};
use tokio::sync::{mpsc, oneshot};

use super::change::{MemberMap, ViewChange};
use super::config::ViewsClientConfig;
use super::error::{CloseError, InfoError, OpenError, RemoteError};
use super::matches::InfoMatches;
use crate::protocol::{Frame, Member, ROUTER, ViewInfo, codes};

/// The outcome of an open; a dropped sender means that the router is gone.
pub(super) type OpenAnswer = oneshot::Receiver<Result<(), OpenError>>;
type CloseReply = oneshot::Sender<Result<(), CloseError>>;
/// The outcome of a close; a dropped sender means that the connection closed first (which
/// closes every view).
pub(super) type CloseAnswer = oneshot::Receiver<Result<(), CloseError>>;
type InfoReply = oneshot::Sender<Result<InfoMatches, InfoError>>;
/// The answer to an info request; a dropped sender means that the connection closed first.
pub(super) type InfoAnswer = oneshot::Receiver<Result<InfoMatches, InfoError>>;

/// A request of ours that waits for the server's answer, by id.
pub(super) enum Request {
    /// Its waiters live in the view's [`Entry`].
    Open {
        view: Arc<str>,
    },
    Close {
        reply: CloseReply,
    },
    Info {
        reply: InfoReply,
    },
}

impl SessionRequest for Request {
    fn session_ended(self) {
        match self {
            // The next connection sends the open again.
            Self::Open { .. } => {}
            // A new connection has no views open: the close is done.
            Self::Close { reply } => {
                let _ = reply.send(Ok(()));
            }
            // Dropping the sender fails the waiter with `InfoError::Closed`.
            Self::Info { reply } => drop(reply),
        }
    }
}

/// A view the application wants open.
pub(super) struct Entry {
    /// Tells this entry from an earlier one of the same name, so that the handles of a view
    /// that was closed do not see a later one.
    generation: u64,
    members: MemberMap,
    /// This connection's own member key, from the latest `state`.
    you: Option<String>,
    /// `active` once a `state` arrived on the current connection (the members are current
    /// and diffs apply); the open in flight; the `open()` calls waiting for the first
    /// `state`.
    open: Wanted<OpenError>,
    subscribers: Vec<Subscriber>,
}

impl Entry {
    fn new(generation: u64) -> Self {
        Self {
            generation,
            members: MemberMap::default(),
            you: None,
            open: Wanted::default(),
            subscribers: Vec::new(),
        }
    }

    /// Hands `change` to the subscribers, unless it changes nothing.
    fn deliver(&mut self, change: ViewChange) -> Action {
        self.subscribers.retain(|subscriber| !subscriber.sender.is_closed());
        if change.is_empty() || self.subscribers.is_empty() {
            return Action::Nothing;
        }
        Action::Deliver {
            targets: self.subscribers.iter().map(|subscriber| subscriber.sender.clone()).collect(),
            change,
        }
    }
}

struct Subscriber {
    id: u64,
    sender: mpsc::Sender<ViewChange>,
}

/// What the router must do, without the lock, after a frame was applied to the state.
pub(super) enum Action {
    Nothing,
    /// Hand `change` to each of these streams, waiting while one is full.
    Deliver {
        targets: Vec<mpsc::Sender<ViewChange>>,
        change: ViewChange,
    },
}

pub(super) struct State {
    /// The connection, its session, and the request ids.
    link: ServerLink,
    next_generation: u64,
    next_subscriber: u64,
    /// Sorted, so that re-opens go out in a stable order.
    views: BTreeMap<Arc<str>, Entry>,
    requests: Requests<Request>,
}

impl SessionState for State {
    type Frame = Frame;
    type Action = Action;
    type Request = Request;
    type Taken = (BTreeMap<Arc<str>, Entry>, Requests<Request>);

    fn link(&mut self) -> &mut ServerLink {
        &mut self.link
    }

    fn requests(&mut self) -> &mut Requests<Request> {
        &mut self.requests
    }

    /// Sends `open` for every wanted view.
    fn session_started(&mut self) {
        let names: Vec<Arc<str>> = self.views.keys().cloned().collect();
        for name in names {
            self.send_open(&name);
        }
    }

    /// The server forgot this connection's views: every view waits for its re-open (its
    /// members stay as last known until the next `state`).
    fn session_ended(&mut self) {
        for entry in self.views.values_mut() {
            entry.open.reset();
        }
    }

    fn apply(&mut self, frame: Frame) -> Action {
        match frame {
            Frame::State { view, members, you, id } => self.on_state(&view, members, you, id),
            Frame::Diff { view, joins, leaves } => self.on_diff(&view, joins, leaves),
            Frame::Closed { view, id } => {
                self.on_closed(&view, id);
                Action::Nothing
            }
            Frame::Info { id, views, truncated, .. } => {
                self.on_info(id, views, truncated);
                Action::Nothing
            }
            Frame::Error { code, message, id, view } => {
                self.on_error(RemoteError { code, message }, id, view)
            }
            Frame::Open { .. } | Frame::Close { .. } => {
                tracing::warn!(?frame, "the server sent a views frame only clients send; ignored");
                Action::Nothing
            }
        }
    }

    fn take_all(&mut self) -> Self::Taken {
        (std::mem::take(&mut self.views), std::mem::take(&mut self.requests))
    }

    /// Every open waiter hears `Closed`, every stream ends; dropped replies: info
    /// requests fail with `Closed`, closes succeed (a closed connection has no views).
    fn end_taken((views, requests): Self::Taken) {
        for mut entry in views.into_values() {
            entry.open.fail(|| OpenError::Closed);
        }
        drop(requests);
    }
}

/// Shared by every handle and the router task: the session and what is read without its
/// lock.
pub(super) struct ViewsCore {
    pub(super) config: ViewsClientConfig,
    pub(super) session: Session<State>,
}

/// A view's counts, read under one lock.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counts {
    pub(super) members: usize,
    pub(super) users: usize,
    pub(super) clients: usize,
}

impl ViewsCore {
    pub(super) fn new(config: ViewsClientConfig) -> Arc<Self> {
        let state = State {
            link: ServerLink::new(ROUTER),
            next_generation: 1,
            next_subscriber: 1,
            views: BTreeMap::new(),
            requests: Requests::default(),
        };
        Arc::new(Self { config, session: Session::new(state) })
    }

    // ---- the handles' requests ---------------------------------------------------------

    /// Wants `name` open. Returns the entry's generation, and the answer to wait for unless
    /// the view is open and current already. While the link is down (or before the first
    /// connection) nothing is sent: the next `Added` sends the open.
    pub(super) fn open(&self, name: &str) -> Result<(u64, Option<OpenAnswer>), OpenError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(OpenError::Closed);
        }
        if let Some(entry) = state.views.get(name) {
            let generation = entry.generation;
            if entry.open.active {
                return Ok((generation, None));
            }
            if state.link.is_online() && entry.open.request.is_none() {
                // The last attempt to send the open failed (a full queue): try again.
                state.try_open(name)?;
            }
            let (reply, answer) = oneshot::channel();
            if let Some(entry) = state.views.get_mut(name) {
                entry.open.waiters.retain(|waiter| !waiter.is_closed());
                entry.open.waiters.push(reply);
            }
            return Ok((generation, Some(answer)));
        }
        if state.link.is_online() && state.requests.len() >= self.config.max_pending_requests {
            return Err(OpenError::TooManyPending);
        }
        let name: Arc<str> = name.into();
        let generation = state.next_generation;
        state.next_generation += 1;
        let mut entry = Entry::new(generation);
        if state.link.is_online() {
            entry.open.begin(state.try_open(&name)?);
        }
        let answer = entry.open.wait();
        state.views.insert(name, entry);
        Ok((generation, Some(answer)))
    }

    /// Forgets view `name` (when `generation` is that of its entry, or is `None`) and
    /// sends `close` if the link is up. `None` when there is nothing to wait for.
    pub(super) fn close_view(
        &self,
        name: &str,
        generation: Option<u64>,
    ) -> Result<Option<(u64, CloseAnswer)>, CloseError> {
        let mut state = self.session.lock();
        let current = state.views.get(name).map(|entry| entry.generation);
        if state.link.is_closed()
            || current.is_none()
            || generation.is_some_and(|generation| Some(generation) != current)
        {
            // Not open (or that handle's view was closed already): nothing to close.
            return Ok(None);
        }
        state.forget(name);
        if !state.link.is_online() {
            // A new connection has no views: there is nothing to tell the server.
            return Ok(None);
        }
        if state.requests.len() >= self.config.max_pending_requests {
            return Err(CloseError::TooManyPending);
        }
        let id = state.link.allocate_id();
        state.link.send(&Frame::Close { view: name.to_owned(), id: Some(id) }).map_err(CloseError::Send)?;
        let (reply, answer) = oneshot::channel();
        state.requests.insert(id, Request::Close { reply });
        Ok(Some((id, answer)))
    }

    /// Registers info request `id` and sends `frame` (which carries it), both under the
    /// lock so that a disconnect sees either neither or both.
    pub(super) fn start_info(&self, id: u64, frame: &Frame) -> Result<InfoAnswer, InfoError> {
        let mut state = self.session.lock();
        if state.link.is_closed() {
            return Err(InfoError::Closed);
        }
        if state.requests.len() >= self.config.max_pending_requests {
            return Err(InfoError::TooManyPending);
        }
        state.link.send(frame).map_err(InfoError::Send)?;
        let (reply, answer) = oneshot::channel();
        state.requests.insert(id, Request::Info { reply });
        Ok(answer)
    }

    /// Reads view `name` when `generation` is still its entry's.
    fn with_view<R>(&self, name: &str, generation: u64, read: impl FnOnce(&Entry) -> R) -> Option<R> {
        let state = self.session.lock();
        state.views.get(name).filter(|entry| entry.generation == generation).map(read)
    }

    pub(super) fn is_open(&self, name: &str, generation: u64) -> bool {
        self.with_view(name, generation, |_| ()).is_some()
    }

    pub(super) fn is_synced(&self, name: &str, generation: u64) -> bool {
        self.with_view(name, generation, |entry| entry.open.active).unwrap_or(false)
    }

    pub(super) fn you(&self, name: &str, generation: u64) -> Option<String> {
        self.with_view(name, generation, |entry| entry.you.clone()).flatten()
    }

    pub(super) fn members(&self, name: &str, generation: u64) -> Vec<Member> {
        self.with_view(name, generation, |entry| entry.members.members()).unwrap_or_default()
    }

    pub(super) fn counts(&self, name: &str, generation: u64) -> Counts {
        self.with_view(name, generation, |entry| Counts {
            members: entry.members.len(),
            users: entry.members.users(),
            clients: entry.members.clients(),
        })
        .unwrap_or_default()
    }

    /// A new subscriber of view `name`; the receiver ends at once when that view is not
    /// open any more.
    pub(super) fn subscribe(&self, name: &str, generation: u64) -> (u64, mpsc::Receiver<ViewChange>) {
        let (sender, receiver) = mpsc::channel(self.config.change_queue_capacity);
        let mut state = self.session.lock();
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        if let Some(entry) = state.views.get_mut(name).filter(|entry| entry.generation == generation) {
            entry.subscribers.retain(|subscriber| !subscriber.sender.is_closed());
            entry.subscribers.push(Subscriber { id, sender });
        }
        // Otherwise the sender is dropped here: the stream ends at once.
        (id, receiver)
    }

    pub(super) fn unsubscribe(&self, name: &str, generation: u64, id: u64) {
        let mut state = self.session.lock();
        if let Some(entry) = state.views.get_mut(name).filter(|entry| entry.generation == generation) {
            entry.subscribers.retain(|subscriber| subscriber.id != id);
        }
    }
}

impl State {
    /// Sends `open` for `name` with a new id and registers the request; returns the id.
    /// The caller records it in the view's entry.
    fn try_open(&mut self, name: &str) -> Result<u64, OpenError> {
        let id = self.link.allocate_id();
        self.link.send(&Frame::Open { view: name.to_owned(), id: Some(id) }).map_err(OpenError::Send)?;
        self.requests.insert(id, Request::Open { view: name.into() });
        if let Some(entry) = self.views.get_mut(name) {
            entry.open.begin(id);
        }
        Ok(id)
    }

    /// (Re-)sends the open of a wanted view, logging a failure: the next `Added`, or the
    /// next `open()` call, tries again.
    fn send_open(&mut self, name: &Arc<str>) {
        if let Some(entry) = self.views.get_mut(name) {
            entry.open.reset();
        }
        if let Err(error) = self.try_open(name) {
            tracing::warn!(view = %name, %error, "cannot re-open a view; tried again on the next reconnect");
        }
    }

    /// Forgets view `name`: its open waiters fail with `Cancelled`, its streams end.
    fn forget(&mut self, name: &str) {
        let Some(mut entry) = self.views.remove(name) else { return };
        if let Some(id) = entry.open.request {
            self.requests.remove(id);
        }
        entry.open.fail(|| OpenError::Cancelled);
    }

    /// Takes the open request `id`, leaving any other kind of request in place.
    fn take_open(&mut self, id: u64) -> Option<Arc<str>> {
        self.requests.take_kind(id, |request| match request {
            Request::Open { view } => Ok(view),
            other => Err(other),
        })
    }

    fn on_state(&mut self, view: &str, members: Vec<Member>, you: Option<String>, id: Option<u64>) -> Action {
        if let Some(id) = id {
            self.take_open(id);
        }
        let Some(entry) = self.views.get_mut(view) else {
            tracing::debug!(view, "state of a view that is not open (closed meanwhile); ignored");
            return Action::Nothing;
        };
        if let (Some(id), Some(current)) = (id, entry.open.request)
            && id != current
        {
            // It answers an open that a close and a newer open superseded.
            tracing::debug!(view, id, "state answering a superseded open; ignored");
            return Action::Nothing;
        }
        let change = entry.members.replace(members);
        // Replaced by every state: a reconnect gives an anonymous client a new key.
        entry.you = you;
        // `id` is the open in flight, or none is (checked above).
        entry.open.grant(id);
        entry.deliver(change)
    }

    fn on_diff(&mut self, view: &str, joins: Vec<Member>, leaves: Vec<String>) -> Action {
        let Some(entry) = self.views.get_mut(view) else {
            tracing::debug!(view, "diff of a view that is not open; ignored");
            return Action::Nothing;
        };
        if !entry.open.active {
            // The `state` that answers the (re-)open replaces the members anyway.
            tracing::debug!(view, "diff before the view's state on this connection; ignored");
            return Action::Nothing;
        }
        let change = entry.members.apply(joins, leaves);
        entry.deliver(change)
    }

    fn on_closed(&mut self, view: &str, id: Option<u64>) {
        let close = |request| match request {
            Request::Close { reply } => Ok(reply),
            other => Err(other),
        };
        if let Some(reply) = id.and_then(|id| self.requests.take_kind(id, close)) {
            let _ = reply.send(Ok(()));
            return;
        }
        // Not the answer to a close we wait for: the server says it does not have the view
        // open for us (it closed it, or a close queued before a reconnect reached it after
        // the re-open). A view we want, current and with no open in flight, is opened again.
        let reopen = self.link.is_online()
            && self.views.get(view).is_some_and(|entry| entry.open.active && entry.open.request.is_none());
        if reopen {
            tracing::info!(view, "the server closed a view that is still wanted; opening it again");
            if let Some((name, _)) = self.views.get_key_value(view) {
                let name = name.clone();
                self.send_open(&name);
            }
        } else {
            tracing::debug!(view, ?id, "closed for a view that is not open, or answering a forgotten close");
        }
    }

    fn on_info(&mut self, id: u64, views: Option<Vec<ViewInfo>>, truncated: bool) {
        match self.requests.remove(id) {
            Some(Request::Info { reply }) => {
                let _ = reply.send(Ok(InfoMatches::new(views.unwrap_or_default(), truncated)));
            }
            Some(other) => {
                tracing::warn!(id, "the server answered an open or close with info; ignored");
                self.requests.insert(id, other);
            }
            None => tracing::debug!(id, "info answer nobody waits for (timed out or cancelled)"),
        }
    }

    fn on_error(&mut self, error: RemoteError, id: Option<u64>, view: Option<String>) -> Action {
        if let Some(id) = id {
            match self.requests.remove(id) {
                Some(Request::Open { view }) => return self.open_refused(&view, id, error),
                Some(Request::Close { reply }) => {
                    let result =
                        if error.code == codes::NOT_OPEN { Ok(()) } else { Err(CloseError::Refused(error)) };
                    let _ = reply.send(result);
                    return Action::Nothing;
                }
                Some(Request::Info { reply }) => {
                    let _ = reply.send(Err(InfoError::Refused(error)));
                    return Action::Nothing;
                }
                None => {}
            }
        }
        tracing::warn!(%error, ?id, ?view, "views error from the server that answers no request");
        Action::Nothing
    }

    /// The server refused the open `id` of `view`: the view is forgotten; its waiters hear
    /// why, and so do its streams (a re-open after a reconnect), with a last change.
    fn open_refused(&mut self, view: &str, id: u64, error: RemoteError) -> Action {
        if self.views.get(view).is_none_or(|entry| entry.open.request != Some(id)) {
            tracing::debug!(view, %error, "open refused for a view no longer wanted");
            return Action::Nothing;
        }
        let Some(mut entry) = self.views.remove(view) else { return Action::Nothing };
        if entry.open.active || !entry.subscribers.is_empty() {
            tracing::warn!(view, %error, "re-opening a view was refused; it is closed");
        }
        let is_limit = error.code == codes::LIMIT;
        entry.open.fail(|| {
            if is_limit { OpenError::Limit(error.clone()) } else { OpenError::Refused(error.clone()) }
        });
        entry.deliver(ViewChange::refused(error))
    }
}
