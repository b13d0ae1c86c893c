//! Per-connection ordered work: one connection's items run one at a time, in order;
//! different connections run concurrently; the total waiting is bounded.
//!
//! Routers whose handlers are async (a join hook, a CRUD handler) need this: running
//! handlers inline in the router task lets one slow handler stall every connection, and a
//! task per item lets a connection's items race each other (an event sent right after a
//! join handled before it).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connection::ConnectionId;
use crate::sync::lock;

type Handler<W> = Box<dyn Fn(ConnectionId, W) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Queue<W> {
    items: VecDeque<(W, OwnedSemaphorePermit)>,
    /// A task is running this connection's items.
    running: bool,
}

struct Inner<W> {
    queues: Mutex<HashMap<ConnectionId, Queue<W>>>,
    permits: Arc<Semaphore>,
    handler: Handler<W>,
}

/// Runs work items per connection, in order, with at most `max_queued` waiting or running
/// in total. A task runs for a connection only while it has items, so idle connections
/// cost nothing.
pub struct OrderedExecutor<W> {
    inner: Arc<Inner<W>>,
}

impl<W> Clone for OrderedExecutor<W> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<W> std::fmt::Debug for OrderedExecutor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedExecutor").field("available", &self.inner.permits.available_permits()).finish()
    }
}

impl<W: Send + 'static> OrderedExecutor<W> {
    /// An executor running `handler` for each item; `max_queued` (at least 1) bounds the
    /// items accepted but not yet finished.
    pub fn new<F, Fut>(max_queued: usize, handler: F) -> Self
    where
        F: Fn(ConnectionId, W) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                queues: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(max_queued.max(1))),
                handler: Box::new(move |key, work| Box::pin(handler(key, work))),
            }),
        }
    }

    /// Queues `work` behind `key`'s earlier items. Waits while `max_queued` items are in
    /// flight, which is how a router passes backpressure on to the sockets.
    ///
    /// # Cancel safety
    /// If the future is dropped before it returns, `work` is dropped and not run.
    pub async fn push(&self, key: ConnectionId, work: W) {
        let Ok(permit) = self.inner.permits.clone().acquire_owned().await else { return };
        let start = {
            let mut queues = lock(&self.inner.queues);
            let queue = queues.entry(key).or_insert_with(|| Queue { items: VecDeque::new(), running: false });
            queue.items.push_back((work, permit));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(drain(self.inner.clone(), key));
        }
    }
}

/// Runs `key`'s items until its queue is empty, then forgets the queue.
async fn drain<W: Send + 'static>(inner: Arc<Inner<W>>, key: ConnectionId) {
    loop {
        let next = {
            let mut queues = lock(&inner.queues);
            let Some(queue) = queues.get_mut(&key) else { return };
            match queue.items.pop_front() {
                Some(next) => next,
                None => {
                    queues.remove(&key);
                    return;
                }
            }
        };
        // The permit is released when the item is done, not when it is taken.
        let (work, _permit) = next;
        if AssertUnwindSafe((inner.handler)(key, work)).catch_unwind().await.is_err() {
            tracing::error!(connection = %key, "a handler panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn items_of_one_connection_run_in_order_and_connections_run_concurrently() {
        let (tx, mut rx) = mpsc::channel(64);
        let executor = OrderedExecutor::new(16, move |key: ConnectionId, (item, delay): (u32, u64)| {
            let tx = tx.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                tx.send((key.as_u64(), item)).await.unwrap();
            }
        });
        let (a, b) = (ConnectionId::from_u64(1), ConnectionId::from_u64(2));
        // a's first item is slow: its second must still come after it; b is not held up.
        executor.push(a, (1, 50)).await;
        executor.push(a, (2, 0)).await;
        executor.push(b, (1, 0)).await;
        let order: Vec<_> =
            [rx.recv().await, rx.recv().await, rx.recv().await].into_iter().flatten().collect();
        assert_eq!(order, vec![(2, 1), (1, 1), (1, 2)]);
    }

    #[tokio::test]
    async fn a_panicking_item_does_not_stop_the_queue() {
        let (tx, mut rx) = mpsc::channel(8);
        let executor = OrderedExecutor::new(4, move |_key, item: u32| {
            let tx = tx.clone();
            async move {
                assert!(item != 1, "boom");
                tx.send(item).await.unwrap();
            }
        });
        let key = ConnectionId::from_u64(9);
        executor.push(key, 1).await;
        executor.push(key, 2).await;
        assert_eq!(rx.recv().await, Some(2));
    }
}
