//! Small pieces that the client sides of routers share: handing a value to several bounded
//! streams with backpressure ([`fan_out`]), the `errors()` streams that never block the
//! router ([`ErrorSubscribers`], [`ErrorStream`]), and the entry of a resource the
//! application wants from the server across reconnects ([`Wanted`]) with the wait for its
//! answer ([`answer_within`]). Their session lifecycle (the link to the server, reconnects,
//! close) is [`session`](crate::session).
//!
//! Nothing here knows about sockets or about any one router's protocol.

use std::fmt::Debug;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

/// Hands `value` to each of `senders` in turn, waiting while one is full (backpressure);
/// a closed receiver is skipped. Clones for all but the last.
///
/// # Cancel safety
/// Not cancel safe: when dropped, the senders not reached yet do not get `value`.
pub async fn fan_out<T: Clone>(mut senders: Vec<mpsc::Sender<T>>, value: T) {
    let last = senders.pop();
    for sender in senders {
        let _ = sender.send(value.clone()).await;
    }
    if let Some(sender) = last {
        let _ = sender.send(value).await;
    }
}

/// The senders of a router's `errors()` streams: problems no caller waits for.
///
/// [`report`](Self::report) never waits: a full stream loses the **newest** error (with a
/// warning), and an error reported while no stream exists is only logged.
#[derive(Debug)]
pub struct ErrorSubscribers<E> {
    /// Names the router in the logs (`"{router} error"`).
    router: &'static str,
    subscribers: Vec<mpsc::Sender<E>>,
}

impl<E: Clone + Debug> ErrorSubscribers<E> {
    /// No streams yet; `router` names the router in the logs.
    pub fn new(router: &'static str) -> Self {
        Self { router, subscribers: Vec::new() }
    }

    /// Adds a stream, forgetting those whose receiver was dropped.
    pub fn add(&mut self, sender: mpsc::Sender<E>) {
        self.subscribers.retain(|subscriber| !subscriber.is_closed());
        self.subscribers.push(sender);
    }

    /// Takes every sender out (to drop them without a lock held): the streams end once
    /// drained.
    pub fn take(&mut self) -> Vec<mpsc::Sender<E>> {
        std::mem::take(&mut self.subscribers)
    }

    /// Hands `error` to every stream without waiting; a full stream loses it.
    pub fn report(&mut self, error: E) {
        let router = self.router;
        self.subscribers.retain(|subscriber| !subscriber.is_closed());
        if self.subscribers.is_empty() {
            tracing::warn!(?error, "{router} error (nobody listens on errors())");
            return;
        }
        tracing::debug!(?error, "{router} error");
        for subscriber in &self.subscribers {
            if let Err(mpsc::error::TrySendError::Full(error)) = subscriber.try_send(error.clone()) {
                tracing::warn!(?error, "an errors() stream is full: this error is dropped for it");
            }
        }
    }
}

/// The receiving end of a router's `errors()` stream: problems that no caller waits for,
/// fed by [`ErrorSubscribers::report`]. It ends when the router is gone (the network
/// closed for good).
#[derive(Debug)]
pub struct ErrorStream<E> {
    receiver: mpsc::Receiver<E>,
}

impl<E> ErrorStream<E> {
    /// The stream of `receiver`, whose sender was handed to [`ErrorSubscribers::add`].
    pub fn new(receiver: mpsc::Receiver<E>) -> Self {
        Self { receiver }
    }

    /// The next error; `None` once the network has closed for good.
    ///
    /// # Cancel safety
    /// Cancel safe: an error is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<E> {
        self.receiver.recv().await
    }

    /// The next error if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<E> {
        self.receiver.try_recv().ok()
    }
}

impl<E> Stream for ErrorStream<E> {
    type Item = E;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<E>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

/// A resource the application wants from the server (a channel joined, a path subscribed,
/// a view open), kept across reconnects: whether the server granted it on the current
/// connection, the id of the request for it in flight, and the callers waiting for the
/// answer.
///
/// The waiters survive reconnects: the request is sent again on the next connection and
/// its answer settles them. What the router does with the answer beyond that (and which
/// answers are its own) stays with the router.
#[derive(Debug)]
pub struct Wanted<E> {
    /// The server granted the resource on the current connection.
    pub active: bool,
    /// The id of the request in flight on the current connection.
    pub request: Option<u64>,
    /// The callers waiting for the answer; `Ok(())` once granted, `Err` when refused or
    /// given up.
    pub waiters: Vec<oneshot::Sender<Result<(), E>>>,
}

impl<E> Default for Wanted<E> {
    fn default() -> Self {
        Self { active: false, request: None, waiters: Vec::new() }
    }
}

impl<E> Wanted<E> {
    /// Records `request_id` as the request in flight for the resource.
    pub fn begin(&mut self, request_id: u64) {
        self.request = Some(request_id);
    }

    /// A new waiter for the answer (waiters whose caller stopped waiting are forgotten).
    pub fn wait(&mut self) -> oneshot::Receiver<Result<(), E>> {
        self.waiters.retain(|waiter| !waiter.is_closed());
        let (reply, answer) = oneshot::channel();
        self.waiters.push(reply);
        answer
    }

    /// The connection ended: the server forgot the resource and its request in flight.
    pub fn reset(&mut self) {
        self.active = false;
        self.request = None;
    }

    /// The server granted the resource in an answer carrying `id`: the request in flight
    /// is done when `id` is its id, and every waiter gets `Ok(())`.
    pub fn grant(&mut self, id: Option<u64>) {
        if id.is_some() && self.request == id {
            self.request = None;
        }
        self.active = true;
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
    }

    /// Hands each waiter `error()` (the resource is no longer wanted); returns whether
    /// any of them still waited.
    pub fn fail(&mut self, error: impl Fn() -> E) -> bool {
        let mut told = false;
        for waiter in self.waiters.drain(..) {
            told |= waiter.send(Err(error())).is_ok();
        }
        told
    }
}

/// Waits at most `limit` for `answer`, the router's reply to a request: a dropped sender
/// (the router is gone, or the connection closed first) gives `dropped`, the time limit
/// `timed_out(limit)`.
///
/// # Cancel safety
/// Cancel safe as a wait: dropping the future loses nothing but the answer, which the
/// router sends into a closed channel.
pub async fn answer_within<T, E>(
    limit: Duration,
    answer: oneshot::Receiver<Result<T, E>>,
    dropped: Result<T, E>,
    timed_out: impl FnOnce(Duration) -> E,
) -> Result<T, E> {
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => dropped,
        Err(_) => Err(timed_out(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fan_out_reaches_every_open_stream_in_order() {
        let (a, mut a_rx) = mpsc::channel(1);
        let (b, b_rx) = mpsc::channel(1);
        let (c, mut c_rx) = mpsc::channel(1);
        drop(b_rx);
        fan_out(vec![a, b, c], 7).await;
        assert_eq!(a_rx.try_recv().ok(), Some(7));
        assert_eq!(c_rx.try_recv().ok(), Some(7));
    }

    #[test]
    fn a_full_stream_loses_the_newest_error() {
        let mut errors = ErrorSubscribers::new("test");
        let (sender, mut receiver) = mpsc::channel(1);
        errors.add(sender);
        errors.report(1);
        errors.report(2);
        assert_eq!(receiver.try_recv().ok(), Some(1));
        assert!(receiver.try_recv().is_err());
        assert_eq!(errors.take().len(), 1);
    }

    #[tokio::test]
    async fn a_wanted_resource_settles_its_waiters() {
        let mut wanted = Wanted::<&str>::default();
        let first = wanted.wait();
        wanted.begin(3);
        wanted.grant(Some(2));
        assert_eq!(wanted.request, Some(3));
        assert!(wanted.active);
        assert_eq!(first.await.ok(), Some(Ok(())));
        let second = wanted.wait();
        wanted.reset();
        assert!(!wanted.active && wanted.request.is_none());
        assert!(wanted.fail(|| "refused"));
        assert_eq!(second.await.ok(), Some(Err("refused")));
        assert!(!wanted.fail(|| "again"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_awaited_within_its_limit() {
        let limit = Duration::from_secs(1);
        let (reply, answer) = oneshot::channel::<Result<u8, Duration>>();
        let _ = reply.send(Ok(4));
        assert_eq!(answer_within(limit, answer, Err(Duration::ZERO), |limit| limit).await, Ok(4));
        let (reply, answer) = oneshot::channel::<Result<u8, Duration>>();
        drop(reply);
        assert_eq!(answer_within(limit, answer, Ok(0), |limit| limit).await, Ok(0));
        let (_reply, answer) = oneshot::channel::<Result<u8, Duration>>();
        assert_eq!(answer_within(limit, answer, Ok(0), |limit| limit).await, Err(limit));
    }

    #[tokio::test]
    async fn an_error_stream_ends_with_its_senders() {
        let (sender, receiver) = mpsc::channel(1);
        let mut stream = ErrorStream::new(receiver);
        let _ = sender.try_send(5);
        assert_eq!(stream.try_recv(), Some(5));
        drop(sender);
        assert_eq!(stream.recv().await, None);
    }
}
