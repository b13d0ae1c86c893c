//! Deferred writes of broadcasts, shared by every connection of a server.
//!
//! A broadcast queues its frame in each member's [`Outbox`](crate::outbox::Outbox) and
//! hands the outbox to a flusher instead of waking the connection's own task: one task wake
//! per burst for the whole server, rather than one per member, and no poll of the
//! connection's reader for a write it has nothing to do with. The flusher runs once the
//! broadcasting task yields, so a burst of broadcasts still reaches each connection as one
//! write. A socket that cannot take everything now is handed to its connection's writer,
//! which waits for it to become writable; the flusher never waits for one peer.
//!
//! There is one shard per runtime worker (connections are spread over them by id), so a
//! multi-threaded runtime writes in parallel. Each shard's list holds an outbox at most once
//! (the outbox remembers that it is scheduled), so it is bounded by the number of
//! connections.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Outboxes a shard visits before it yields to the runtime's other tasks.
const VISITS_PER_YIELD: usize = 256;

/// Something with queued frames to write without waiting.
pub(crate) trait Flush: Send + Sync {
    /// Writes what the socket takes now; hands the rest to the connection's writer.
    fn flush_scheduled(&self);
}

/// One flushing task and its list of outboxes with frames to write.
pub(crate) struct Shard {
    scheduled: Mutex<Vec<Arc<dyn Flush>>>,
    wake: Notify,
    buffers: TailBuffers,
}

/// The least a new tail buffer holds (see [`TailBuffers::take`] for more).
const TAIL_CAPACITY: usize = 512;
/// The largest buffer kept for reuse (one that grew past it, in a large burst, is freed).
const MAX_KEPT_CAPACITY: usize = 16 * 1024;
/// The most buffer bytes a shard keeps for reuse.
const MAX_KEPT_BYTES: usize = 8 << 20;

/// The outboxes' tail buffers (see `outbox::Frames`), kept for reuse by the outboxes of
/// one shard.
///
/// An outbox gives its buffer back when its queue drains, so that an idle connection holds
/// none. Allocating one per burst and freeing it after the write made the allocator hand
/// pages back to the kernel after every burst and fault them in again at the next
/// (glibc's heap trimming: 11-15 % of a fan-out's CPU time); buffers that come back here are
/// reused instead (last in, first out: the warmest first). Bounded: past
/// [`MAX_KEPT_BYTES`] of capacity, or for a buffer larger than [`MAX_KEPT_CAPACITY`], the
/// buffer is freed. Buffers keep the capacity a burst gave them, so a steady stream of
/// bursts stops allocating. When none is kept, a new buffer gets the capacity of the last
/// one given back: in a run of bursts to more members than the pool holds, it is then
/// allocated once at the size a burst needs, not grown by doubling from 512 bytes (at
/// 10,000 members, a fifth of the fan-out's time went to that chain of reallocations),
/// while a server whose connections receive a frame now and then keeps its small buffers
/// (4 KiB ones there cost 600 bytes per idle connection in the heap).
#[derive(Default)]
pub(crate) struct TailBuffers {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    buffers: Vec<Vec<u8>>,
    /// The sum of their capacities.
    bytes: usize,
    /// The capacity of the last buffer given back (within [`MAX_KEPT_CAPACITY`]).
    last_capacity: usize,
}

impl TailBuffers {
    /// An empty buffer with room for a burst of small frames.
    pub(crate) fn take(&self) -> Vec<u8> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        match kept.buffers.pop() {
            Some(buffer) => {
                kept.bytes -= buffer.capacity();
                buffer
            }
            None => Vec::with_capacity(kept.last_capacity.max(TAIL_CAPACITY)),
        }
    }

    /// Keeps `buffer` for reuse, within the bounds.
    pub(crate) fn give(&self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0 {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.last_capacity = capacity.min(MAX_KEPT_CAPACITY);
        if capacity <= MAX_KEPT_CAPACITY && kept.bytes + capacity <= MAX_KEPT_BYTES {
            buffer.clear();
            kept.bytes += capacity;
            kept.buffers.push(buffer);
        }
    }
}

impl Shard {
    /// The tail buffers of this shard's outboxes.
    pub(crate) fn buffers(&self) -> &TailBuffers {
        &self.buffers
    }

    /// Adds `outbox` to the next pass (the caller guarantees it is not already listed).
    pub(crate) fn schedule(&self, outbox: Arc<dyn Flush>) {
        let mut scheduled = self.scheduled.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = scheduled.is_empty();
        scheduled.push(outbox);
        drop(scheduled);
        if was_empty {
            self.wake.notify_one();
        }
    }

    async fn run(self: Arc<Self>, stopped: CancellationToken) {
        let mut batch: Vec<Arc<dyn Flush>> = Vec::new();
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = stopped.cancelled() => return,
            }
            loop {
                // Swap, so schedulers push into the spare while this pass writes.
                std::mem::swap(
                    &mut batch,
                    &mut *self.scheduled.lock().unwrap_or_else(PoisonError::into_inner),
                );
                if batch.is_empty() {
                    break;
                }
                for (visited, outbox) in batch.drain(..).enumerate() {
                    outbox.flush_scheduled();
                    if (visited + 1) % VISITS_PER_YIELD == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
    }
}

/// The shards of one server, started on first use (inside the runtime that serves).
pub(crate) struct Flusher {
    shards: std::sync::OnceLock<Box<[Arc<Shard>]>>,
    stopped: CancellationToken,
}

impl Flusher {
    pub(crate) fn new() -> Self {
        Self { shards: std::sync::OnceLock::new(), stopped: CancellationToken::new() }
    }

    /// The shard for connection number `id`. Must be called inside a tokio runtime.
    pub(crate) fn shard(&self, id: u64) -> Arc<Shard> {
        let shards = self.shards.get_or_init(|| {
            let workers = tokio::runtime::Handle::current().metrics().num_workers().max(1);
            (0..workers)
                .map(|_| {
                    let shard = Arc::new(Shard {
                        scheduled: Mutex::new(Vec::new()),
                        wake: Notify::new(),
                        buffers: TailBuffers::default(),
                    });
                    // Unconstrained: tokio's cooperative budget would otherwise make the
                    // 129th socket of a pass look unwritable.
                    tokio::spawn(tokio::task::unconstrained(shard.clone().run(self.stopped.clone())));
                    shard
                })
                .collect()
        });
        let index = usize::try_from(id % shards.len() as u64).unwrap_or(0);
        shards[index].clone()
    }

    /// Ends the flushing tasks (after the server's connections are gone).
    pub(crate) fn stop(&self) {
        self.stopped.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_buffers_take_the_capacity_of_the_last_one_given_back() {
        let buffers = TailBuffers::default();
        assert_eq!(buffers.take().capacity(), TAIL_CAPACITY);
        let mut grown = buffers.take();
        grown.extend_from_slice(&[0; 3000]);
        let grown_capacity = grown.capacity();
        buffers.give(grown);
        // The kept buffer comes back first, emptied; the next new one is as large.
        let reused = buffers.take();
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), grown_capacity);
        assert_eq!(buffers.take().capacity(), grown_capacity);
        // A buffer past the largest kept size is freed, and new ones stop at that size.
        buffers.give(Vec::with_capacity(4 * MAX_KEPT_CAPACITY));
        assert_eq!(buffers.take().capacity(), MAX_KEPT_CAPACITY);
    }
}
