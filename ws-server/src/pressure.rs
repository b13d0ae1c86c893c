//! Server-wide memory budgets and the read-side backpressure built on them.
//!
//! Three things decide whether a connection's socket is read:
//! - **Its fan-out.** Every message read from a connection carries a guard counting its
//!   bytes in the publisher's [`InFlight`]; the guard lives in the payload's [`Bytes`], so it
//!   is released when the last copy is dropped: when every receiver's outbox has written
//!   the frame (a relay or a broadcast shares the payload, it does not copy it). While a
//!   publisher has more than `outgoing_queue_size` bytes still queued somewhere *and* some
//!   receiver is over that soft limit ([`Pressure::congested`]), its socket is not read:
//!   the burst waits in the kernel and in the publisher, not in the receivers' queues.
//! - **The server's outgoing budget.** When the bytes queued in all outboxes pass
//!   `max_total_outgoing_size`, no socket is read until they fall back under it (payloads
//!   a router re-encodes are not attributed to their publisher; this bound catches them).
//!   Outboxes draw on it in slices (`outbox::BUDGET_UNIT`) and give them back when they
//!   drain, so the counter is touched per burst rather than per frame.
//! - **Its rate limit** (see [`crate::RateLimit`]).
//!
//! Incoming partial messages draw on a separate budget, `max_total_incoming_size`: bytes
//! read since a connection's last complete message reserve [`INCOMING_UNIT`]-sized slices
//! of it, released when the message completes; a connection that cannot reserve is closed
//! with 1013, so N connections cannot hold N × `max_message_size`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

/// Incoming bytes are reserved from the server's budget in slices of this size, so that a
/// stream of small messages does not touch the shared counter for each one.
pub(crate) const INCOMING_UNIT: usize = 16 * 1024;

/// The server-wide counters every connection shares.
pub(crate) struct Pressure {
    /// Outboxes whose queue is over their soft limit.
    congested: AtomicUsize,
    /// Bytes queued in every outbox.
    outgoing: AtomicUsize,
    max_outgoing: usize,
    /// Bytes reserved by incoming partial messages.
    incoming: AtomicUsize,
    max_incoming: usize,
    /// Wakes paused readers when congestion clears or the outgoing total falls under its
    /// budget.
    relieved: Notify,
}

impl Pressure {
    pub(crate) fn new(max_outgoing: usize, max_incoming: usize) -> Self {
        Self {
            congested: AtomicUsize::new(0),
            outgoing: AtomicUsize::new(0),
            max_outgoing,
            incoming: AtomicUsize::new(0),
            max_incoming,
            relieved: Notify::new(),
        }
    }

    /// Whether some receiver is over its soft limit.
    pub(crate) fn congested(&self) -> bool {
        self.congested.load(Ordering::Acquire) > 0
    }

    /// Whether the outgoing queues together are over the server's budget.
    pub(crate) fn outgoing_over_budget(&self) -> bool {
        self.outgoing.load(Ordering::Acquire) > self.max_outgoing
    }

    pub(crate) fn congestion_started(&self) {
        self.congested.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn congestion_ended(&self) {
        if self.congested.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.relieved.notify_waiters();
        }
    }

    /// Bytes counted against the outgoing budget now: what every outbox has queued, plus
    /// what their queues drew ahead (at most `outbox::BUDGET_UNIT` each).
    pub(crate) fn outgoing_bytes(&self) -> usize {
        self.outgoing.load(Ordering::Relaxed)
    }

    pub(crate) fn queued(&self, bytes: usize) {
        self.outgoing.fetch_add(bytes, Ordering::AcqRel);
    }

    pub(crate) fn written(&self, bytes: usize) {
        let before = self.outgoing.fetch_sub(bytes, Ordering::AcqRel);
        if before > self.max_outgoing && before - bytes <= self.max_outgoing {
            self.relieved.notify_waiters();
        }
    }

    /// Reserves `bytes` of the incoming budget; `false` when it is exhausted.
    pub(crate) fn reserve_incoming(&self, bytes: usize) -> bool {
        self.incoming
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.max_incoming)
            })
            .is_ok()
    }

    pub(crate) fn release_incoming(&self, bytes: usize) {
        self.incoming.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A connection's share of the incoming budget: the bytes read since its last complete
/// message, beyond one read's worth, reserved in [`INCOMING_UNIT`]s.
pub(crate) struct IncomingShare {
    pressure: Arc<Pressure>,
    since_message: usize,
    reserved: usize,
    /// Bytes a connection may hold without reserving: one read (`read_buffer_size`).
    free: usize,
}

/// The server's incoming budget is spent: the connection is closed with 1013.
#[derive(Debug, thiserror::Error)]
#[error("the server's budget for incoming messages is exhausted")]
pub(crate) struct IncomingBudgetExhausted;

impl IncomingShare {
    pub(crate) fn new(pressure: Arc<Pressure>, free: usize) -> Self {
        Self { pressure, since_message: 0, reserved: 0, free }
    }

    /// Counts `bytes` just read, reserving what they need.
    pub(crate) fn read(&mut self, bytes: usize) -> Result<(), IncomingBudgetExhausted> {
        self.since_message += bytes;
        while self.since_message > self.free + self.reserved {
            if !self.pressure.reserve_incoming(INCOMING_UNIT) {
                return Err(IncomingBudgetExhausted);
            }
            self.reserved += INCOMING_UNIT;
        }
        Ok(())
    }

    /// A message is complete: what its parts reserved goes back to the budget.
    pub(crate) fn message_done(&mut self) {
        self.since_message = 0;
        if self.reserved > 0 {
            self.pressure.release_incoming(std::mem::take(&mut self.reserved));
        }
    }
}

impl Drop for IncomingShare {
    fn drop(&mut self) {
        self.message_done();
    }
}

/// The bytes of one connection's incoming messages that are still referenced somewhere
/// (queued for receivers, held by a router or the application).
pub(crate) struct InFlight {
    bytes: AtomicUsize,
    /// The soft limit: above it the publisher may be paused.
    limit: usize,
    /// Wakes the connection's reader when its bytes in flight fall under the limit.
    drained: Notify,
}

impl InFlight {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { bytes: AtomicUsize::new(0), limit, drained: Notify::new() })
    }

    pub(crate) fn over_limit(&self) -> bool {
        self.bytes.load(Ordering::Acquire) > self.limit
    }

    /// `payload`, counted until its last copy is dropped.
    pub(crate) fn track(self: &Arc<Self>, payload: Bytes) -> Bytes {
        if payload.is_empty() {
            return payload;
        }
        self.bytes.fetch_add(payload.len(), Ordering::AcqRel);
        Bytes::from_owner(Tracked { payload, in_flight: self.clone() })
    }
}

/// A payload whose bytes count in its publisher's [`InFlight`] while it lives.
struct Tracked {
    payload: Bytes,
    in_flight: Arc<InFlight>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.payload
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let len = self.payload.len();
        let before = self.in_flight.bytes.fetch_sub(len, Ordering::AcqRel);
        if before > self.in_flight.limit && before - len <= self.in_flight.limit {
            // The reader is the only waiter; a stored permit covers a wake that comes
            // before it waits.
            self.in_flight.drained.notify_one();
        }
    }
}

/// Whether a reader must stop reading, and the wait for it to resume.
pub(crate) struct ReadGate {
    pressure: Arc<Pressure>,
    /// Made on the first message: most connections of a server are idle, and this saves
    /// them an allocation.
    in_flight: std::sync::OnceLock<Arc<InFlight>>,
    limit: usize,
}

impl ReadGate {
    /// A gate whose connection's messages in flight may reach `limit` bytes.
    pub(crate) fn new(pressure: Arc<Pressure>, limit: usize) -> Self {
        Self { pressure, in_flight: std::sync::OnceLock::new(), limit }
    }

    /// `payload`, read from this connection, counted until its last copy is dropped.
    pub(crate) fn track(&self, payload: Bytes) -> Bytes {
        self.in_flight.get_or_init(|| InFlight::new(self.limit)).track(payload)
    }

    /// Whether reading is paused by the fan-out rule or the outgoing budget.
    pub(crate) fn paused(&self) -> bool {
        (self.in_flight.get().is_some_and(|in_flight| in_flight.over_limit()) && self.pressure.congested())
            || self.pressure.outgoing_over_budget()
    }

    /// Resolves once [`paused`](Self::paused) is false.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits.
    pub(crate) async fn resumed(&self) {
        loop {
            let relieved = self.pressure.relieved.notified();
            let drained = async {
                match self.in_flight.get() {
                    Some(in_flight) => in_flight.drained.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(relieved);
            // Registered before the check, so a relief in between is not missed (the
            // per-connection wake stores a permit, so it cannot be missed either).
            relieved.as_mut().enable();
            if !self.paused() {
                return;
            }
            tokio::select! {
                () = relieved => {}
                () = drained => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_bytes_are_released_with_the_last_copy() {
        let in_flight = InFlight::new(4);
        let payload = in_flight.track(Bytes::from_static(b"hello"));
        let copy = payload.clone();
        assert!(in_flight.over_limit());
        drop(payload);
        assert!(in_flight.over_limit());
        drop(copy);
        assert!(!in_flight.over_limit());
        assert_eq!(in_flight.bytes.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_incoming_budget_refuses_past_its_size() {
        let pressure = Pressure::new(10, 2 * INCOMING_UNIT);
        assert!(pressure.reserve_incoming(INCOMING_UNIT));
        assert!(pressure.reserve_incoming(INCOMING_UNIT));
        assert!(!pressure.reserve_incoming(1));
        pressure.release_incoming(INCOMING_UNIT);
        assert!(pressure.reserve_incoming(INCOMING_UNIT));
    }

    #[tokio::test]
    async fn a_paused_reader_resumes_when_congestion_ends() {
        let pressure = Arc::new(Pressure::new(usize::MAX, 0));
        let gate = ReadGate::new(pressure.clone(), 1);
        let payload = gate.track(Bytes::from_static(b"burst"));
        pressure.congestion_started();
        assert!(gate.paused());
        let resumed = tokio::spawn(async move { gate.resumed().await });
        tokio::task::yield_now().await;
        pressure.congestion_ended();
        tokio::time::timeout(std::time::Duration::from_secs(5), resumed).await.unwrap().unwrap();
        drop(payload);
    }
}
