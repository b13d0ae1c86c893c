//! Connections still in their handshake: counted, capped, and the oldest evicted.
//!
//! A socket that connects and says nothing costs a file descriptor until the handshake
//! timeout. Refusing new sockets at a cap would let a client that keeps reopening silent
//! ones lock everyone out; evicting the oldest pending one instead lets a real client,
//! whose handshake takes milliseconds, in as long as the flood takes longer than that to
//! cycle through the cap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The set of pending handshakes of one server.
pub(crate) struct PendingHandshakes {
    state: Mutex<State>,
}

struct State {
    next: u64,
    /// By age: the first entry is the oldest.
    entries: BTreeMap<u64, CancellationToken>,
}

impl PendingHandshakes {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State { next: 0, entries: BTreeMap::new() }) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Handshakes pending now.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Registers a new handshake, first evicting the oldest ones while `limit(count)`
    /// says the count (this one included) is too many.
    pub(crate) fn admit(self: &Arc<Self>, too_many: impl Fn(usize) -> bool) -> PendingHandshake {
        let mut state = self.lock();
        while too_many(state.entries.len() + 1) {
            let Some((_, oldest)) = state.entries.pop_first() else { break };
            oldest.cancel();
        }
        let id = state.next;
        state.next += 1;
        let evicted = CancellationToken::new();
        state.entries.insert(id, evicted.clone());
        PendingHandshake { set: self.clone(), id, evicted }
    }
}

/// One pending handshake; dropping it (the upgrade is done or refused) leaves the set.
pub(crate) struct PendingHandshake {
    set: Arc<PendingHandshakes>,
    id: u64,
    evicted: CancellationToken,
}

impl PendingHandshake {
    /// Resolves when a newer connection evicted this one.
    pub(crate) fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.evicted.clone().cancelled_owned()
    }
}

impl Drop for PendingHandshake {
    fn drop(&mut self) {
        self.set.lock().entries.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_evicted_at_the_cap() {
        let set = PendingHandshakes::new();
        let first = set.admit(|count| count > 2);
        let second = set.admit(|count| count > 2);
        assert_eq!(set.lock().entries.len(), 2);
        let third = set.admit(|count| count > 2);
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled());
        assert_eq!(set.lock().entries.len(), 2);
        drop(third);
        drop(second);
        drop(first); // already gone from the set: dropping it is harmless
        assert_eq!(set.lock().entries.len(), 0);
    }
}
