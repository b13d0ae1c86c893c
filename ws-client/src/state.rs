//! The state shared by the handles, the connection's link and the background task:
//! the outgoing queue, the phase of the link, and requests from the handles.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use network_core::{CloseFrame, ConnectionId, Link, Message, SendError, hub};
use tokio::sync::{Notify, broadcast, watch};

use crate::event::ClientEvent;

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

#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
}

impl Queue {
    fn push(&mut self, message: Message, max_messages: usize, max_bytes: usize) -> Result<(), SendError> {
        if self.messages.len() >= max_messages || self.bytes.saturating_add(message.len()) > max_bytes {
            return Err(SendError::Full(message));
        }
        self.bytes += message.len();
        self.messages.push_back(message);
        Ok(())
    }

    fn pop(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.len();
        Some(message)
    }

    fn clear(&mut self) -> usize {
        let dropped = self.messages.len();
        self.messages.clear();
        self.bytes = 0;
        dropped
    }
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
}

/// What the handles, the connection's link and the background task share.
pub(crate) struct ClientState {
    pub(crate) id: ConnectionId,
    max_messages: usize,
    max_bytes: usize,
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
    ) -> Self {
        let (events, first) = broadcast::channel(lifecycle_capacity);
        let (terminated, _) = watch::channel(None);
        Self {
            id,
            max_messages,
            max_bytes,
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

    pub(crate) fn send(&self, message: Message) -> Result<(), SendError> {
        let restoring = hub::is_restoring(self.id);
        let mut state = lock(&self.state);
        let wake = match state.phase {
            Phase::Closed => return Err(SendError::Closed(message)),
            Phase::Restoring if restoring => {
                state.restore.push(message, self.max_messages, self.max_bytes)?;
                true
            }
            phase => {
                state.queue.push(message, self.max_messages, self.max_bytes)?;
                phase == Phase::Open
            }
        };
        drop(state);
        if wake {
            self.writer.notify_one();
        }
        Ok(())
    }

    pub(crate) fn queued(&self) -> usize {
        let state = lock(&self.state);
        state.queue.messages.len() + state.restore.messages.len()
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
    /// restore frames of this socket are dropped. Returns how many were dropped.
    pub(crate) fn end_session(&self) -> usize {
        let mut state = lock(&self.state);
        if state.phase != Phase::Closed {
            state.phase = Phase::Offline;
        }
        state.unflushed = 0;
        state.ping_due = false;
        let dropped = state.restore.clear();
        drop(state);
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
        let message = match state.phase {
            Phase::Restoring => state.restore.pop(),
            Phase::Open => state.restore.pop().or_else(|| state.queue.pop()),
            Phase::Offline | Phase::Closed => None,
        }?;
        state.unflushed += 1;
        Some(Outgoing::Data(message))
    }

    /// Waits until [`take_next`](Self::take_next) may have something. Cancel safe.
    pub(crate) async fn writable(&self) {
        self.writer.notified().await;
    }

    /// Everything taken so far is in the OS socket.
    pub(crate) fn flushed(&self) {
        let mut state = lock(&self.state);
        state.unflushed = 0;
        let drained = state.queue.messages.is_empty() && state.restore.messages.is_empty();
        drop(state);
        if drained {
            self.progress.notify_waiters();
        }
    }

    // ---- flush() -----------------------------------------------------------------------

    fn drain_state(&self) -> Drain {
        let state = lock(&self.state);
        let unsent = state.queue.messages.len() + state.restore.messages.len();
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
        self.0.send(message)
    }

    fn close(&self, frame: CloseFrame) {
        self.0.request_close(frame);
    }
}
