//! Session resume on the wire: the frames of the reserved router `session` and the counting
//! both ends share (PROTOCOL.md section 9).
//!
//! A resumable session numbers the data frames each side sends, 1, 2, 3, ..., across every
//! socket of the session, without putting the numbers on the wire (WebSocket keeps order).
//! Each side acknowledges what it received, cumulatively ([`AckClock`] decides when), and
//! keeps what it sent until acknowledged ([`ReplayBuffer`]). After a drop the client
//! reconnects with the number of frames it received; the server answers with the number it
//! received, and each side re-sends exactly what the other lacks.
//!
//! ```
//! use network_core::resume::{ReplayBuffer, SessionFrame};
//! use network_core::Message;
//!
//! let mut sent = ReplayBuffer::new(usize::MAX);
//! for text in ["a", "b", "c"] {
//!     sent.push(Message::text(text));
//! }
//! sent.ack(1).unwrap();
//! // The peer says it has seen 2 frames: only "c" is sent again.
//! let again: Vec<_> = sent.after(2).unwrap().cloned().collect();
//! assert_eq!(again, [Message::text("c")]);
//! assert_eq!(SessionFrame::Ack { n: 3 }.encode().as_text(), Some(r#"{"$r":"session","d":{"t":"ack","n":3}}"#));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::envelope;
use crate::error::DecodeError;
use crate::message::Message;

/// The reserved router name of session frames.
pub const ROUTER: &str = "session";

/// An `ack` is sent at the latest once this many frames arrived since the last one.
pub const ACK_EVERY: u64 = 64;

/// An `ack` is sent at the latest this long after the first frame not acknowledged.
pub const ACK_DELAY: Duration = Duration::from_secs(1);

/// The query parameter that asks for a session (`new`) or names the one to resume.
pub const QUERY_SESSION: &str = "session";

/// The query parameter that says how many frames the client received (with a resume).
pub const QUERY_SEEN: &str = "seen";

/// One session frame, the body of a `session` envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum SessionFrame {
    /// A new session: the client keeps `token` to resume within `window` milliseconds.
    Welcome {
        /// The opaque, secret resume token.
        token: String,
        /// How long (ms) the server keeps the session after a drop.
        window: u64,
    },
    /// The session is resumed; the server has the client's first `seen` frames.
    Resumed {
        /// Frames the server received from the client on this session.
        seen: u64,
    },
    /// The session cannot be resumed.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// "I have received your first `n` frames of this session."
    Ack {
        /// Frames received.
        n: u64,
    },
}

impl SessionFrame {
    /// The frame as a JSON text message in the `session` envelope.
    pub fn encode(&self) -> Message {
        // Plain strings and integers: serialising cannot fail.
        envelope::json(ROUTER, self).unwrap_or_else(|_| Message::text(""))
    }

    /// Reads a session frame; `None` when `message` is not one (another router's frame,
    /// an application frame, or a binary frame: session frames are JSON text only).
    pub fn decode(message: &Message) -> Option<Result<Self, DecodeError>> {
        is_session_frame(message).then(|| envelope::decode(ROUTER, message))
    }
}

/// Whether `message` is a frame of router `session` (and so is not counted).
pub fn is_session_frame(message: &Message) -> bool {
    matches!(message, Message::Text(_)) && envelope::router_name(message) == Some(ROUTER)
}

/// Why a resume was refused (PROTOCOL.md 9.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Refusal {
    /// No such session on this server.
    Unknown,
    /// The session stayed detached longer than its window.
    Expired,
    /// The frames the client missed no longer fit the replay buffer.
    Overflow,
    /// The session ended for another reason.
    Closed,
    /// The token's secret is wrong.
    Token,
    /// `seen` is lower than what the client acknowledged.
    Behind,
    /// `seen` is higher than what the server sent.
    Ahead,
    /// The server keeps no sessions.
    Disabled,
}

impl Refusal {
    /// Every reason, in the order of PROTOCOL.md 9.4.
    pub const ALL: [Self; 8] = [
        Self::Unknown,
        Self::Expired,
        Self::Overflow,
        Self::Closed,
        Self::Token,
        Self::Behind,
        Self::Ahead,
        Self::Disabled,
    ];

    /// The reason named `name` on the wire, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|refusal| refusal.as_str() == name)
    }

    /// The reason as it travels on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Overflow => "overflow",
            Self::Closed => "closed",
            Self::Token => "token",
            Self::Behind => "behind",
            Self::Ahead => "ahead",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`ReplayBuffer`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The peer acknowledged, or says it saw, more frames than were sent.
    #[error("{claimed} frames acknowledged but only {sent} sent")]
    Ahead {
        /// What the peer claimed.
        claimed: u64,
        /// Frames sent.
        sent: u64,
    },
    /// The peer says it saw fewer frames than it acknowledged before.
    #[error("{claimed} frames seen but {acked} were acknowledged")]
    Behind {
        /// What the peer claimed.
        claimed: u64,
        /// What it acknowledged before.
        acked: u64,
    },
    /// Frames the peer lacks were dropped from the buffer (its bound).
    #[error("frames after {claimed} were dropped from the replay buffer (it holds {first} onwards)")]
    Overflow {
        /// What the peer claimed.
        claimed: u64,
        /// The number of the oldest frame still held.
        first: u64,
    },
}

impl ReplayError {
    /// The refusal a server answers for this error.
    pub fn refusal(self) -> Refusal {
        match self {
            Self::Ahead { .. } => Refusal::Ahead,
            Self::Behind { .. } => Refusal::Behind,
            Self::Overflow { .. } => Refusal::Overflow,
        }
    }
}

/// The capacity (in frames) a [`ReplayBuffer`] keeps after acknowledgements emptied it.
const KEPT_CAPACITY: usize = 16;

/// What a [`ReplayBuffer`]'s bound charges for each frame on top of its payload: the
/// frame's own entry (a `Message`: the kind and a reference to the shared payload).
pub const ENTRY_COST: usize = std::mem::size_of::<Message>();

/// The frames one side sent on a session and the other has not acknowledged, bounded in
/// bytes: each frame's payload plus [`ENTRY_COST`].
///
/// Past the bound the oldest frames are dropped: the connection goes on, and a resume that
/// needs them fails with [`ReplayError::Overflow`]. Payloads are shared (`Bytes`), so a
/// broadcast held by many sessions costs each a reference, not a copy; the entry is each
/// session's own, and the bound counts it, so that it bounds memory even for tiny frames.
#[derive(Debug)]
pub struct ReplayBuffer {
    frames: VecDeque<Message>,
    /// Payload bytes in `frames`.
    bytes: usize,
    /// What the bound counts: `bytes` plus [`ENTRY_COST`] per frame.
    charged: usize,
    max_bytes: usize,
    /// Frames sent so far on the session.
    sent: u64,
    /// The highest acknowledgement.
    acked: u64,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `max_bytes`, each frame counting its payload plus
    /// [`ENTRY_COST`] (a single frame is always held, whatever its size, until the next
    /// one is pushed).
    pub fn new(max_bytes: usize) -> Self {
        Self { frames: VecDeque::new(), bytes: 0, charged: 0, max_bytes, sent: 0, acked: 0 }
    }

    /// Records a frame sent; returns how many older frames the bound dropped.
    pub fn push(&mut self, message: Message) -> usize {
        self.sent += 1;
        self.bytes += message.len();
        self.charged = self.charged.saturating_add(message.len() + ENTRY_COST);
        self.frames.push_back(message);
        let mut dropped = 0;
        while self.charged > self.max_bytes && self.frames.len() > 1 {
            self.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// Forgets frames 1 to `n`: the peer has them. A lower `n` than before changes nothing.
    pub fn ack(&mut self, n: u64) -> Result<(), ReplayError> {
        if n > self.sent {
            return Err(ReplayError::Ahead { claimed: n, sent: self.sent });
        }
        self.acked = self.acked.max(n);
        while self.first() <= self.acked && !self.frames.is_empty() {
            self.pop_front();
        }
        // A burst must not cost its peak for the rest of the session: a `VecDeque` keeps
        // its capacity (40 bytes per frame once held), and `bench resume` measured 42 KB
        // kept by every session after a replay of 1,000 frames. Shrinking only at a
        // quarter full keeps the reallocations amortised.
        if self.frames.capacity() > KEPT_CAPACITY && self.frames.len() <= self.frames.capacity() / 4 {
            self.frames.shrink_to((self.frames.len() * 2).max(KEPT_CAPACITY));
        }
        Ok(())
    }

    /// The frames after the first `seen`, for a peer that says it has those; also
    /// acknowledges them.
    pub fn after(&mut self, seen: u64) -> Result<impl Iterator<Item = &Message>, ReplayError> {
        self.check(seen)?;
        self.ack(seen)?;
        Ok(self.frames.iter())
    }

    /// Whether frames after `seen` can all be sent again.
    pub fn check(&self, seen: u64) -> Result<(), ReplayError> {
        if seen > self.sent {
            Err(ReplayError::Ahead { claimed: seen, sent: self.sent })
        } else if seen < self.acked {
            Err(ReplayError::Behind { claimed: seen, acked: self.acked })
        } else if seen + 1 < self.first() {
            Err(ReplayError::Overflow { claimed: seen, first: self.first() })
        } else {
            Ok(())
        }
    }

    /// Drops every frame and, with them, the ability to resume before `sent`.
    pub fn clear(&mut self) {
        while !self.frames.is_empty() {
            self.pop_front();
        }
    }

    /// Frames sent on the session.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The highest acknowledgement received.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The number of the oldest frame held (`sent() + 1` when empty).
    pub fn first(&self) -> u64 {
        self.sent + 1 - self.frames.len() as u64
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the buffer holds more than its bound (only ever one frame).
    pub fn over_bound(&self) -> bool {
        self.charged > self.max_bytes
    }

    /// Takes every frame held, oldest first, and forgets the numbers they had: the sender
    /// counts from the last acknowledgement again (a client that moves them back to its
    /// queue after `resumed`).
    pub fn take_unacknowledged(&mut self) -> VecDeque<Message> {
        self.sent -= self.frames.len() as u64;
        self.bytes = 0;
        self.charged = 0;
        std::mem::take(&mut self.frames)
    }

    fn pop_front(&mut self) {
        if let Some(frame) = self.frames.pop_front() {
            self.bytes -= frame.len();
            self.charged -= frame.len() + ENTRY_COST;
        }
    }
}

/// When a receiver acknowledges: after [`ACK_EVERY`] frames or [`ACK_DELAY`] after the
/// first frame not acknowledged, whichever comes first.
#[derive(Debug, Default)]
pub struct AckClock {
    received: u64,
    acknowledged: u64,
    /// When the first frame not acknowledged arrived.
    since: Option<Instant>,
}

impl AckClock {
    /// A clock that has received `received` frames, all acknowledged (after a resume).
    pub fn resumed_at(received: u64) -> Self {
        Self { received, acknowledged: received, since: None }
    }

    /// Counts one frame received; returns the `ack` to send now, if one is due.
    pub fn received(&mut self, now: Instant) -> Option<SessionFrame> {
        self.received += 1;
        self.since.get_or_insert(now);
        (self.received - self.acknowledged >= ACK_EVERY).then(|| self.take())
    }

    /// The `ack` due at `now` by the delay, if any.
    pub fn due(&mut self, now: Instant) -> Option<SessionFrame> {
        self.deadline().is_some_and(|deadline| deadline <= now).then(|| self.take())
    }

    /// When the next `ack` falls due, if frames wait for one.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + ACK_DELAY)
    }

    /// Frames received on the session.
    pub fn count(&self) -> u64 {
        self.received
    }

    fn take(&mut self) -> SessionFrame {
        self.acknowledged = self.received;
        self.since = None;
        SessionFrame::Ack { n: self.received }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(buffer: &mut ReplayBuffer, seen: u64) -> Vec<String> {
        buffer.after(seen).unwrap().map(|m| m.as_text().unwrap_or_default().to_owned()).collect()
    }

    #[test]
    fn frames_after_what_the_peer_saw_are_sent_again_once() {
        let mut buffer = ReplayBuffer::new(usize::MAX);
        for n in 1..=5 {
            buffer.push(Message::text(n.to_string()));
        }
        buffer.ack(2).unwrap();
        assert_eq!(buffer.len(), 3);
        assert_eq!(texts(&mut buffer, 3), ["4", "5"]);
        assert_eq!(buffer.acked(), 3);
        assert_eq!(buffer.check(2), Err(ReplayError::Behind { claimed: 2, acked: 3 }));
        assert_eq!(buffer.check(6), Err(ReplayError::Ahead { claimed: 6, sent: 5 }));
        assert_eq!(buffer.ack(9), Err(ReplayError::Ahead { claimed: 9, sent: 5 }));
        // A stale acknowledgement changes nothing.
        buffer.ack(1).unwrap();
        assert_eq!((buffer.acked(), buffer.len()), (3, 2));
    }

    #[test]
    fn acknowledged_bursts_give_their_capacity_back() {
        let mut buffer = ReplayBuffer::new(usize::MAX);
        for n in 1..=1000 {
            buffer.push(Message::text(n.to_string()));
        }
        assert!(buffer.frames.capacity() >= 1000);
        buffer.ack(990).unwrap();
        // Room for twice the 10 frames still held.
        assert!(buffer.frames.capacity() <= 20, "{}", buffer.frames.capacity());
        assert_eq!(texts(&mut buffer, 998), ["999", "1000"]);
        // Under a quarter full only: a buffer that is still busy keeps its room.
        let mut busy = ReplayBuffer::new(usize::MAX);
        for n in 1..=100 {
            busy.push(Message::text(n.to_string()));
        }
        let capacity = busy.frames.capacity();
        busy.ack(50).unwrap();
        assert_eq!(busy.frames.capacity(), capacity);
    }

    #[test]
    fn tiny_frames_are_bounded_by_their_entries_too() {
        let mut buffer = ReplayBuffer::new(100 * (ENTRY_COST + 1));
        for _ in 0..1000 {
            buffer.push(Message::binary(vec![0u8]));
        }
        assert_eq!((buffer.len(), buffer.bytes()), (100, 100));
    }

    #[test]
    fn the_bound_drops_the_oldest_and_a_resume_needing_them_overflows() {
        let mut buffer = ReplayBuffer::new(2 * ENTRY_COST + 10);
        assert_eq!(buffer.push(Message::text("12345")), 0);
        assert_eq!(buffer.push(Message::text("67890")), 0);
        assert_eq!(buffer.push(Message::text("abc")), 1);
        assert_eq!((buffer.first(), buffer.bytes()), (2, 8));
        assert_eq!(buffer.check(0), Err(ReplayError::Overflow { claimed: 0, first: 2 }));
        assert_eq!(texts(&mut buffer, 1), ["67890", "abc"]);
        // One frame bigger than the bound is still held, alone.
        buffer.push(Message::text("x".repeat(2 * ENTRY_COST + 11)));
        assert_eq!((buffer.len(), buffer.over_bound()), (1, true));
    }

    #[test]
    fn unacknowledged_frames_are_handed_back_with_their_numbers() {
        let mut buffer = ReplayBuffer::new(usize::MAX);
        for text in ["a", "b", "c"] {
            buffer.push(Message::text(text));
        }
        buffer.ack(1).unwrap();
        let taken = buffer.take_unacknowledged();
        assert_eq!(taken, [Message::text("b"), Message::text("c")]);
        assert_eq!((buffer.sent(), buffer.first(), buffer.bytes()), (1, 2, 0));
    }

    #[test]
    fn acks_fall_due_after_64_frames_or_one_second() {
        let start = Instant::now();
        let mut clock = AckClock::default();
        for n in 1..ACK_EVERY {
            assert_eq!(clock.received(start), None, "frame {n}");
        }
        assert_eq!(clock.received(start), Some(SessionFrame::Ack { n: 64 }));
        assert_eq!(clock.deadline(), None);
        assert_eq!(clock.received(start), None);
        assert_eq!(clock.due(start + ACK_DELAY / 2), None);
        assert_eq!(clock.due(start + ACK_DELAY), Some(SessionFrame::Ack { n: 65 }));
        assert_eq!(clock.due(start + ACK_DELAY * 5), None);
        let resumed = AckClock::resumed_at(65);
        assert_eq!((resumed.count(), resumed.deadline()), (65, None));
    }

    #[test]
    fn session_frames_round_trip_and_are_told_apart() {
        let frames = [
            SessionFrame::Welcome { token: "7.00ff".into(), window: 120_000 },
            SessionFrame::Resumed { seen: 3 },
            SessionFrame::Refused { reason: Refusal::Expired },
            SessionFrame::Ack { n: 9 },
        ];
        for frame in frames {
            let message = frame.encode();
            assert!(is_session_frame(&message));
            assert_eq!(SessionFrame::decode(&message).unwrap().unwrap(), frame);
        }
        assert_eq!(
            SessionFrame::Refused { reason: Refusal::Overflow }.encode().as_text(),
            Some(r#"{"$r":"session","d":{"t":"refused","reason":"overflow"}}"#)
        );
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::from_name(refusal.as_str()), Some(refusal));
            let frame = SessionFrame::Refused { reason: refusal }.encode();
            assert_eq!(
                SessionFrame::decode(&frame).unwrap().unwrap(),
                SessionFrame::Refused { reason: refusal }
            );
        }
        assert_eq!(Refusal::from_name("nope"), None);
        assert!(SessionFrame::decode(&Message::text(r#"{"$r":"hb","d":{}}"#)).is_none());
        assert!(
            SessionFrame::decode(&Message::text(r#"{"$r":"session","d":{"t":"nope"}}"#)).unwrap().is_err()
        );
        assert!(!is_session_frame(&Message::binary(r#"{"$r":"session","d":{}}"#.as_bytes().to_vec())));
    }
}
