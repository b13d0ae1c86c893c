//! The client's half of session resume (PROTOCOL.md section 9), kept under the client
//! state's lock: the session's token, the frames sent and not acknowledged, the count of
//! frames received and when to acknowledge them.

use std::collections::VecDeque;

use network_core::Message;
use network_core::resume::{AckClock, QUERY_SEEN, QUERY_SESSION, ReplayBuffer, ReplayError, SessionFrame};
use tokio::time::Instant;

/// What to do with a frame read from the server.
pub(crate) enum Incoming {
    /// An application or router frame: hand it to the hub.
    Deliver,
    /// A session frame, handled here.
    Handled,
}

#[derive(Default)]
pub(crate) struct ClientSession {
    /// `ClientConfig::resume`.
    enabled: bool,
    /// The token of the session held, if any.
    token: Option<String>,
    /// Whether the current socket belongs to the session (frames are counted).
    counting: bool,
    /// Frames sent on the session and not acknowledged.
    sent: Option<ReplayBuffer>,
    received: AckClock,
    /// An `ack` waiting to be written (ahead of everything but pings).
    ack: Option<Message>,
    /// Frames the server lacked at a resume, sent again before anything else.
    resend: VecDeque<Message>,
    resend_bytes: usize,
    /// The socket was lost while in a session: routers have not been told (`Removed` is
    /// deferred until the resume is refused or the client closes).
    detached: bool,
}

impl ClientSession {
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled, ..Self::default() }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// The query parameters of the next connection attempt.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        match (&self.token, self.enabled) {
            (_, false) => Vec::new(),
            (None, true) => vec![(QUERY_SESSION.to_owned(), "new".to_owned())],
            (Some(token), true) => vec![
                (QUERY_SESSION.to_owned(), token.clone()),
                (QUERY_SEEN.to_owned(), self.received.count().to_string()),
            ],
        }
    }

    /// Whether the next attempt is a resume.
    pub(crate) fn resuming(&self) -> bool {
        self.enabled && self.token.is_some()
    }

    /// Frames and payload bytes held for the session (they count against the queue's
    /// bounds).
    pub(crate) fn held(&self) -> (usize, usize) {
        let sent = self.sent.as_ref().map_or((0, 0), |sent| (sent.len(), sent.bytes()));
        (sent.0 + self.resend.len(), sent.1 + self.resend_bytes)
    }

    /// A new session starts on this socket.
    pub(crate) fn welcome(&mut self, token: String) {
        self.token = Some(token);
        self.counting = true;
        self.sent = Some(ReplayBuffer::new(usize::MAX));
        self.received = AckClock::default();
        self.ack = None;
        self.clear_resend();
        self.detached = false;
    }

    /// The server resumed the session, having received our first `seen` frames: the rest
    /// are sent again first.
    pub(crate) fn resumed(&mut self, seen: u64) -> Result<(), ReplayError> {
        let sent = self.sent.get_or_insert_with(|| ReplayBuffer::new(usize::MAX));
        sent.check(seen)?;
        sent.ack(seen)?;
        let again = sent.take_unacknowledged();
        self.resend_bytes = again.iter().map(Message::len).sum();
        self.resend = again;
        self.received = AckClock::resumed_at(self.received.count());
        self.ack = None;
        self.counting = true;
        self.detached = false;
        Ok(())
    }

    /// The session is over (refused, closed on purpose, disabled): returns how many sent
    /// frames were never acknowledged (they may or may not have been handled).
    pub(crate) fn reset(&mut self) -> usize {
        let unconfirmed = self.held().0;
        self.token = None;
        self.counting = false;
        self.sent = None;
        self.received = AckClock::default();
        self.ack = None;
        self.clear_resend();
        self.detached = false;
        unconfirmed
    }

    /// The socket was lost without a close frame: the session waits for a resume. Returns
    /// whether the routers' `Removed` is deferred.
    pub(crate) fn lost(&mut self) -> bool {
        self.ack = None;
        if self.counting && self.token.is_some() {
            self.counting = false;
            self.detached = true;
        }
        self.detached
    }

    /// Whether a lost session's `Removed` is still owed to the routers; clears it.
    pub(crate) fn take_detached(&mut self) -> bool {
        std::mem::take(&mut self.detached)
    }

    /// Counts a written frame.
    pub(crate) fn wrote(&mut self, message: &Message) {
        if self.counting
            && let Some(sent) = &mut self.sent
        {
            sent.push(message.clone());
        }
    }

    /// The next frame owed from a resume, counted as written.
    pub(crate) fn next_resend(&mut self) -> Option<Message> {
        let message = self.resend.pop_front()?;
        self.resend_bytes -= message.len();
        self.wrote(&message);
        Some(message)
    }

    /// The `ack` to write now, if any.
    pub(crate) fn take_ack(&mut self) -> Option<Message> {
        self.ack.take()
    }

    /// Reads a frame from the server: session frames are handled, others counted. Returns
    /// whether an `ack` is now waiting, too.
    pub(crate) fn incoming(&mut self, message: &Message, now: Instant) -> (Incoming, bool) {
        match SessionFrame::decode(message) {
            None => {
                let due = self.counting.then(|| self.received.received(now)).flatten();
                let wake = due.is_some();
                if let Some(ack) = due {
                    self.ack = Some(ack.encode());
                }
                (Incoming::Deliver, wake)
            }
            Some(Ok(SessionFrame::Ack { n })) => {
                if let Some(Err(error)) = self.sent.as_mut().map(|sent| sent.ack(n)) {
                    tracing::warn!(%error, "the server acknowledged frames never sent");
                }
                (Incoming::Handled, false)
            }
            Some(frame) => {
                tracing::debug!(?frame, "unexpected session frame ignored");
                (Incoming::Handled, false)
            }
        }
    }

    /// When the next `ack` falls due.
    pub(crate) fn ack_deadline(&self) -> Option<Instant> {
        if self.counting { self.received.deadline() } else { None }
    }

    /// Queues the `ack` due at `now`; returns whether one was.
    pub(crate) fn ack_due(&mut self, now: Instant) -> bool {
        match self.received.due(now) {
            Some(ack) if self.counting => {
                self.ack = Some(ack.encode());
                true
            }
            _ => false,
        }
    }

    fn clear_resend(&mut self) {
        self.resend.clear();
        self.resend_bytes = 0;
    }
}
