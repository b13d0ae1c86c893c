//! The state shared by the handles, the connection's link and the background task:
//! the outgoing queue, the phase of the link, and requests from the handles.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use network_core::{CloseFrame, ConnectionId, Link, Message, SendError, hub};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use crate::event::ClientEvent;
use crate::offline::{Offline, Sent};
use crate::resume::{ClientSession, Incoming};

/// Where the link stands, as the senders see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No socket: sends are queued.
    Offline,
    /// A socket is open and routers handle `Added`: only their frames are written.
    Restoring,
    /// A socket is open: the queue is written in order.
    Open,
    /// Closed for good: sends fail.
    Closed,
}

/// A request from a handle to the background task.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Control {
    Close(CloseFrame),
    Reconnect,
}

/// What the socket task should write next.
pub(crate) enum Outgoing {
    Ping,
    Data(Message),
}

/// How long a queued message is kept, from its [`Offline`] policy.
enum Hold {
    /// Until written.
    Keep,
    /// Until the link that was open when it was sent closes.
    Volatile,
    /// Until written or replaced by a later message with this key.
    Latest(String),
    /// Until written or this instant, whichever comes first.
    Until(Instant),
}

struct Entry {
    message: Message,
    hold: Hold,
}

#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl Queue {
    /// Queues `message` at the end, removing the queued message with the same key for
    /// [`Hold::Latest`]. Past a bound, discards the expired messages and tries again.
    fn push(&mut self, message: Message, hold: Hold, limits: Limits) -> Result<Pushed, SendError> {
        let mut expired = 0;
        if !self.fits(&message, &hold, limits) {
            expired = self.discard_expired(Instant::now());
            if expired == 0 || !self.fits(&message, &hold, limits) {
                return Err(SendError::Full(message));
            }
        }
        let replaced = self.position(&hold).and_then(|index| self.remove(index)).is_some();
        self.bytes += message.len();
        self.entries.push_back(Entry { message, hold });
        Ok(Pushed { sent: if replaced { Sent::Replaced } else { Sent::Queued }, expired })
    }

    /// Whether `message` fits, counting the room its replaced message leaves.
    fn fits(&self, message: &Message, hold: &Hold, limits: Limits) -> bool {
        let freed = self.position(hold).map(|index| self.entries[index].message.len());
        let messages = self.entries.len() - usize::from(freed.is_some());
        let bytes = self.bytes - freed.unwrap_or(0);
        messages < limits.messages && bytes.saturating_add(message.len()) <= limits.bytes
    }

    /// Where the message that `hold` replaces is (at most one per key is queued).
    fn position(&self, hold: &Hold) -> Option<usize> {
        let Hold::Latest(key) = hold else { return None };
        self.entries.iter().position(|entry| matches!(&entry.hold, Hold::Latest(queued) if queued == key))
    }

    fn remove(&mut self, index: usize) -> Option<Message> {
        let entry = self.entries.remove(index)?;
        self.bytes -= entry.message.len();
        Some(entry.message)
    }

    /// The first message still to be written, and how many expired ones were skipped.
    fn pop(&mut self, now: Instant) -> (Option<Message>, usize) {
        let mut expired = 0;
        while let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.message.len();
            match entry.hold {
                Hold::Until(deadline) if deadline <= now => expired += 1,
                _ => return (Some(entry.message), expired),
            }
        }
        (None, expired)
    }

    fn discard_expired(&mut self, now: Instant) -> usize {
        self.discard(|hold| matches!(hold, Hold::Until(deadline) if *deadline <= now))
    }

    fn discard(&mut self, mut drop_it: impl FnMut(&Hold) -> bool) -> usize {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|entry| {
            let dropped = drop_it(&entry.hold);
            if dropped {
                freed += entry.message.len();
            }
            !dropped
        });
        self.bytes -= freed;
        before - self.entries.len()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn clear(&mut self) -> usize {
        let dropped = self.entries.len();
        self.entries.clear();
        self.bytes = 0;
        dropped
    }
}

/// The queue's bounds.
#[derive(Clone, Copy)]
struct Limits {
    messages: usize,
    bytes: usize,
}

/// What a push did.
struct Pushed {
    sent: Sent,
    /// Expired messages discarded to make room.
    expired: usize,
}

/// The part behind the mutex.
struct LockedState {
    phase: Phase,
    /// Application frames, in order; written while `Open`.
    queue: Queue,
    /// Frames routers sent while restoring; written first. Discarded when the socket they
    /// were meant for closes: the next `Added` restores again.
    restore: Queue,
    /// Frames taken by the socket task and not yet flushed to the OS.
    unflushed: usize,
    ping_due: bool,
    close_request: Option<CloseFrame>,
    reconnect_request: bool,
    /// Retries exhausted or reconnection declined: nothing will be written until a
    /// reconnect.
    stopped: bool,
    /// Messages dropped by `terminate`, for `flush()`.
    lost: usize,
    /// Session resume: counts, frames not acknowledged, the token.
    session: ClientSession,
}

/// What the handles, the connection's link and the background task share.
pub(crate) struct ClientState {
    pub(crate) id: ConnectionId,
    limits: Limits,
    state: Mutex<LockedState>,
    /// Wakes the socket task's writer (single waiter; `notify_one` keeps a permit).
    writer: Notify,
    /// Wakes the background task for a `Control` (single waiter; keeps a permit).
    control: Notify,
    /// Wakes every `flush()` waiter when the queue drains or the phase changes.
    progress: Notify,
    events: broadcast::Sender<ClientEvent>,
    /// The receiver made with the channel, handed to the first `lifecycle()` caller so that
    /// it sees the events since `connect`.
    first_receiver: Mutex<Option<broadcast::Receiver<ClientEvent>>>,
    /// Set once the background task has finished, with the final close frame.
    pub(crate) terminated: watch::Sender<Option<CloseFrame>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; if one did, the queue is still valid.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Flush progress as seen by a waiter.
pub(crate) enum Drain {
    Done,
    Pending,
    Closed(usize),
    Stopped(usize),
}

impl ClientState {
    pub(crate) fn new(
        id: ConnectionId,
        max_messages: usize,
        max_bytes: usize,
        lifecycle_capacity: usize,
        resume: bool,
    ) -> Self {
        let (events, first) = broadcast::channel(lifecycle_capacity);
        let (terminated, _) = watch::channel(None);
        Self {
            id,
            limits: Limits { messages: max_messages, bytes: max_bytes },
            state: Mutex::new(LockedState {
                phase: Phase::Offline,
                queue: Queue::default(),
                restore: Queue::default(),
                unflushed: 0,
                ping_due: false,
                close_request: None,
                reconnect_request: false,
                stopped: false,
                lost: 0,
                session: ClientSession::new(resume),
            }),
            writer: Notify::new(),
            control: Notify::new(),
            progress: Notify::new(),
            events,
            first_receiver: Mutex::new(Some(first)),
            terminated,
        }
    }

    // ---- senders -------------------------------------------------------------------

    pub(crate) fn send(&self, message: Message, offline: Offline) -> Result<Sent, SendError> {
        let restoring = hub::is_restoring(self.id);
        let hold = match offline {
            Offline::Buffer => Hold::Keep,
            Offline::Volatile => Hold::Volatile,
            Offline::Latest(key) => Hold::Latest(key),
            // A TTL too long for the clock never expires.
            Offline::Expire(ttl) => Instant::now().checked_add(ttl).map_or(Hold::Keep, Hold::Until),
        };
        let mut state = lock(&self.state);
        // Frames kept for a resume count against the same bounds.
        let (held, held_bytes) = state.session.held();
        let limits = Limits {
            messages: self.limits.messages.saturating_sub(held),
            bytes: self.limits.bytes.saturating_sub(held_bytes),
        };
        let (pushed, wake) = match state.phase {
            Phase::Closed => return Err(SendError::Closed(message)),
            // Router frames while restoring: they go first, on this socket only.
            Phase::Restoring if restoring => (state.restore.push(message, hold, limits)?, true),
            Phase::Offline | Phase::Restoring if matches!(hold, Hold::Volatile) => return Ok(Sent::Dropped),
            phase => (state.queue.push(message, hold, limits)?, phase == Phase::Open),
        };
        drop(state);
        if pushed.expired > 0 {
            tracing::debug!(connection = %self.id, expired = pushed.expired, "expired messages dropped to make room");
        }
        if wake {
            self.writer.notify_one();
        }
        Ok(pushed.sent)
    }

    pub(crate) fn queued(&self) -> usize {
        let state = lock(&self.state);
        state.queue.len() + state.restore.len()
    }

    pub(crate) fn phase(&self) -> Phase {
        lock(&self.state).phase
    }

    // ---- handles' requests -----------------------------------------------------------

    /// Closes for good: sends fail from now on. Only the first call counts.
    pub(crate) fn request_close(&self, frame: CloseFrame) {
        let mut state = lock(&self.state);
        if state.phase == Phase::Closed {
            return;
        }
        state.phase = Phase::Closed;
        state.close_request = Some(frame);
        drop(state);
        self.control.notify_one();
        self.progress.notify_waiters();
    }

    pub(crate) fn request_reconnect(&self) {
        let mut state = lock(&self.state);
        if state.phase == Phase::Closed {
            return;
        }
        state.reconnect_request = true;
        drop(state);
        self.control.notify_one();
    }

    /// Takes the pending request: a close wins over a reconnect.
    pub(crate) fn take_control(&self) -> Option<Control> {
        let mut state = lock(&self.state);
        if let Some(frame) = state.close_request.clone() {
            return Some(Control::Close(frame));
        }
        std::mem::take(&mut state.reconnect_request).then_some(Control::Reconnect)
    }

    /// Waits for the next request. Cancel safe: requests are flags, read again on the next
    /// call.
    pub(crate) async fn control(&self) -> Control {
        loop {
            if let Some(control) = self.take_control() {
                return control;
            }
            self.control.notified().await;
        }
    }

    // ---- the background task -----------------------------------------------------------

    /// A socket opened: routers restore first. Returns `false` if the client was closed
    /// meanwhile.
    pub(crate) fn begin_restore(&self) -> bool {
        let mut state = lock(&self.state);
        if state.phase == Phase::Closed {
            return false;
        }
        state.phase = Phase::Restoring;
        state.stopped = false;
        true
    }

    /// Routers have restored: the queue is written from now on.
    pub(crate) fn open(&self) {
        let mut state = lock(&self.state);
        if state.phase == Phase::Restoring {
            state.phase = Phase::Open;
        }
        drop(state);
        self.writer.notify_one();
    }

    /// The socket closed. Frames taken by the writer count as sent (see the crate docs);
    /// restore frames and volatile messages of this socket are dropped. Returns how many
    /// restore frames were dropped.
    pub(crate) fn end_session(&self) -> usize {
        let mut state = lock(&self.state);
        if state.phase != Phase::Closed {
            state.phase = Phase::Offline;
        }
        state.unflushed = 0;
        state.ping_due = false;
        let dropped = state.restore.clear();
        let volatile = state.queue.discard(|hold| matches!(hold, Hold::Volatile));
        drop(state);
        if volatile > 0 {
            tracing::debug!(connection = %self.id, volatile, "volatile messages of a closed socket dropped");
        }
        self.progress.notify_waiters();
        dropped
    }

    /// Reconnection stopped (or resumed): `flush()` waiters must hear of it.
    pub(crate) fn set_stopped(&self, stopped: bool) {
        lock(&self.state).stopped = stopped;
        self.progress.notify_waiters();
    }

    /// The client is finished: drops the queue; returns how many messages were dropped.
    pub(crate) fn terminate(&self, frame: CloseFrame) -> usize {
        let mut state = lock(&self.state);
        state.phase = Phase::Closed;
        let dropped = state.queue.clear() + state.restore.clear();
        state.session.reset();
        state.lost += dropped;
        drop(state);
        self.progress.notify_waiters();
        self.terminated.send_replace(Some(frame));
        dropped
    }

    pub(crate) fn request_ping(&self) {
        lock(&self.state).ping_due = true;
        self.writer.notify_one();
    }

    /// The next frame to write, if any: a ping, then restore frames, then (when open) the
    /// queue.
    pub(crate) fn take_next(&self) -> Option<Outgoing> {
        let mut state = lock(&self.state);
        if std::mem::take(&mut state.ping_due) {
            return Some(Outgoing::Ping);
        }
        if let Some(ack) = state.session.take_ack() {
            return Some(Outgoing::Data(ack));
        }
        if state.phase == Phase::Open
            && let Some(message) = state.session.next_resend()
        {
            state.unflushed += 1;
            return Some(Outgoing::Data(message));
        }
        let now = Instant::now();
        let (message, mut expired) = match state.phase {
            Phase::Restoring | Phase::Open => state.restore.pop(now),
            Phase::Offline | Phase::Closed => (None, 0),
        };
        let message = match message {
            None if state.phase == Phase::Open => {
                let (message, skipped) = state.queue.pop(now);
                expired += skipped;
                message
            }
            message => message,
        };
        if let Some(message) = &message {
            state.unflushed += 1;
            state.session.wrote(message);
        }
        drop(state);
        if expired > 0 {
            tracing::debug!(connection = %self.id, expired, "expired messages dropped");
            // The queue may be empty now without anything written: `flush()` must look.
            self.progress.notify_waiters();
        }
        message.map(Outgoing::Data)
    }

    /// Waits until [`take_next`](Self::take_next) may have something. Cancel safe.
    pub(crate) async fn writable(&self) {
        self.writer.notified().await;
    }

    /// Everything taken so far is in the OS socket.
    pub(crate) fn flushed(&self) {
        let mut state = lock(&self.state);
        state.unflushed = 0;
        let drained = state.queue.is_empty() && state.restore.is_empty();
        drop(state);
        if drained {
            self.progress.notify_waiters();
        }
    }

    // ---- session resume ---------------------------------------------------------------

    /// Whether the client asks for resumable sessions.
    pub(crate) fn resume_enabled(&self) -> bool {
        lock(&self.state).session.enabled()
    }

    /// The query parameters that ask for a session or resume one.
    pub(crate) fn session_query(&self) -> Vec<(String, String)> {
        lock(&self.state).session.query()
    }

    /// Whether the next attempt resumes a session.
    pub(crate) fn session_resuming(&self) -> bool {
        lock(&self.state).session.resuming()
    }

    /// A new session starts on the socket being opened.
    pub(crate) fn session_welcome(&self, token: String) {
        lock(&self.state).session.welcome(token);
    }

    /// The server resumed the session: the link is open again at once (nothing to
    /// restore), frames the server lacked go first. Returns `false` if the client was
    /// closed meanwhile.
    pub(crate) fn session_resumed(&self, seen: u64) -> Result<bool, network_core::resume::ReplayError> {
        let mut state = lock(&self.state);
        state.session.resumed(seen)?;
        if state.phase == Phase::Closed {
            return Ok(false);
        }
        state.phase = Phase::Open;
        state.stopped = false;
        drop(state);
        self.writer.notify_one();
        Ok(true)
    }

    /// The session is over; returns how many sent frames were never acknowledged.
    pub(crate) fn session_reset(&self) -> usize {
        let unconfirmed = lock(&self.state).session.reset();
        self.progress.notify_waiters();
        unconfirmed
    }

    /// The socket was lost: whether the session waits for a resume (routers not told).
    pub(crate) fn session_lost(&self) -> bool {
        lock(&self.state).session.lost()
    }

    /// Whether the routers are still owed the `Removed` of a lost session; clears it.
    pub(crate) fn take_detached(&self) -> bool {
        lock(&self.state).session.take_detached()
    }

    /// Reads a frame from the server for the session (see [`ClientSession::incoming`]).
    pub(crate) fn incoming(&self, message: &Message, now: Instant) -> Incoming {
        let (incoming, wake) = lock(&self.state).session.incoming(message, now);
        if wake {
            self.writer.notify_one();
        }
        if matches!(incoming, Incoming::Handled) {
            // An `ack` releases held frames: a `flush` waiting for them must look again.
            self.progress.notify_waiters();
        }
        incoming
    }

    /// When the next `ack` falls due.
    pub(crate) fn ack_deadline(&self) -> Option<Instant> {
        lock(&self.state).session.ack_deadline()
    }

    /// Writes the `ack` due at `now`, if any.
    pub(crate) fn ack_due(&self, now: Instant) {
        if lock(&self.state).session.ack_due(now) {
            self.writer.notify_one();
        }
    }

    // ---- flush() -----------------------------------------------------------------------

    fn drain_state(&self) -> Drain {
        let state = lock(&self.state);
        let unsent = state.queue.len() + state.restore.len() + state.session.held().0;
        if state.phase == Phase::Closed {
            Drain::Closed(unsent + state.lost)
        } else if unsent == 0 && state.unflushed == 0 {
            Drain::Done
        } else if state.stopped && state.phase == Phase::Offline {
            Drain::Stopped(unsent)
        } else {
            Drain::Pending
        }
    }

    /// Waits until the queue is written, or the client closed or stopped reconnecting.
    pub(crate) async fn drained(&self) -> Drain {
        loop {
            let notified = self.progress.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            match self.drain_state() {
                Drain::Pending => notified.await,
                done => return done,
            }
        }
    }

    // ---- lifecycle events ------------------------------------------------------------

    pub(crate) fn emit(&self, event: ClientEvent) {
        // An error only means that nobody listens.
        let _ = self.events.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        lock(&self.first_receiver).take().unwrap_or_else(|| self.events.subscribe())
    }
}

/// The client's [`Link`]: what its [`Connection`](network_core::Connection) sends through.
pub(crate) struct ClientLink(pub(crate) std::sync::Arc<ClientState>);

impl Link for ClientLink {
    fn send(&self, message: Message) -> Result<(), SendError> {
        self.0.send(message, Offline::Buffer).map(drop)
    }

    fn close(&self, frame: CloseFrame) {
        self.0.request_close(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ClientState {
        ClientState::new(ConnectionId::next(), 16, 1024, 4, false)
    }

    fn taken(state: &ClientState) -> Vec<Message> {
        std::iter::from_fn(|| match state.take_next() {
            Some(Outgoing::Data(message)) => Some(message),
            _ => None,
        })
        .collect()
    }

    #[test]
    fn volatile_messages_do_not_outlive_their_link() {
        let state = state();
        assert!(state.begin_restore());
        assert_eq!(state.send(Message::text("restoring"), Offline::Volatile).unwrap(), Sent::Dropped);
        state.open();
        // Queued while open, behind a buffered message, and the link closes first.
        state.send(Message::text("kept"), Offline::Buffer).unwrap();
        assert_eq!(state.send(Message::text("volatile"), Offline::Volatile).unwrap(), Sent::Queued);
        assert_eq!(state.queued(), 2);
        state.end_session();
        assert_eq!(state.queued(), 1);
        assert!(state.begin_restore());
        state.open();
        assert_eq!(taken(&state), [Message::text("kept")]);
    }

    #[test]
    fn a_latest_message_moves_behind_the_sends_before_it() {
        let state = state();
        state.send(Message::text("a-1"), Offline::latest("a")).unwrap();
        state.send(Message::text("b-1"), Offline::latest("b")).unwrap();
        state.send(Message::text("plain"), Offline::Buffer).unwrap();
        assert_eq!(state.send(Message::text("a-2"), Offline::latest("a")).unwrap(), Sent::Replaced);
        assert!(state.begin_restore());
        state.open();
        let texts = ["b-1", "plain", "a-2"].map(Message::text);
        assert_eq!(taken(&state), texts);
    }
}
