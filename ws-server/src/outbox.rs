//! The write path of one connection.
//!
//! Every frame for a connection goes through its [`Outbox`]: data frames from
//! [`Connection::send`](network_core::Connection::send) and broadcasts, and the control
//! frames tungstenite writes (pongs, close replies). A broadcast appends the frame (a header
//! and the shared payload) to a bounded queue; the first frame into an empty queue wakes the
//! connection's writer, which drains everything queued meanwhile with vectored writes, so a
//! burst of broadcasts costs each connection one write for all of it. A reply to one
//! connection is written straight to the socket when nothing is queued (a non-blocking
//! attempt; on a short write the rest is queued), which saves a task switch per reply.
//!
//! Policies:
//! - Past `max_queued_bytes` the connection is a slow consumer: the send fails with
//!   [`SendError::Full`] and the connection is aborted (its `Removed` event says 1008
//!   "outgoing queue full"). Skipping messages silently is never an option.
//! - Once a close frame is queued, data frames are refused with [`SendError::Closed`], and
//!   the socket stays open until what was queued before the close frame is written.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use network_core::{CloseCode, CloseFrame, Message, SendError};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::frame::Header;

/// Slices handed to one vectored write (two per frame: header and payload).
const MAX_IO_SLICES: usize = 64;

struct Chunk {
    header: Header,
    payload: Bytes,
}

impl Chunk {
    fn len(&self) -> usize {
        self.header.as_slice().len() + self.payload.len()
    }
}

struct State<W> {
    io: W,
    queue: VecDeque<Chunk>,
    queued_bytes: usize,
    /// Bytes of the front chunk already written.
    front_written: usize,
    needs_flush: bool,
    accepting_data: bool,
    /// Why the connection was aborted, if it was.
    aborted: Option<CloseFrame>,
    /// A close the application asked for, not yet taken by the connection task.
    close_request: Option<CloseFrame>,
    /// Whether a close was ever requested (only the first request counts).
    close_requested: bool,
    finishing: bool,
}

pub(crate) struct Outbox<W> {
    state: Mutex<State<W>>,
    wake_writer: Notify,
    wake_closer: Notify,
    abort: CancellationToken,
    max_queued_bytes: usize,
}

impl<W: AsyncWrite + Unpin + Send> Outbox<W> {
    pub(crate) fn new(io: W, max_queued_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                io,
                queue: VecDeque::new(),
                queued_bytes: 0,
                front_written: 0,
                needs_flush: false,
                accepting_data: true,
                aborted: None,
                close_request: None,
                close_requested: false,
                finishing: false,
            }),
            wake_writer: Notify::new(),
            wake_closer: Notify::new(),
            abort: CancellationToken::new(),
            max_queued_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one data frame: with `direct`, written to the socket at once when nothing is
    /// queued (a reply: lowest latency, no task switch); otherwise queued for the writer
    /// (a broadcast: a burst coalesces into one write per connection).
    pub(crate) fn send(&self, message: Message, direct: bool) -> Result<(), SendError> {
        let mut state = self.lock();
        if !state.accepting_data || state.aborted.is_some() {
            return Err(SendError::Closed(message));
        }
        let chunk = Chunk { header: Header::for_message(&message), payload: message.payload().clone() };
        if direct && state.queue.is_empty() {
            match try_write_direct(&mut state.io, &chunk) {
                Ok((written, flushed)) if written == chunk.len() => {
                    if !flushed {
                        state.needs_flush = true;
                        self.wake_writer.notify_one();
                    }
                    return Ok(());
                }
                Ok((written, _)) => state.front_written = written,
                Err(error) => {
                    tracing::debug!(%error, "write failed");
                    self.abort_locked(&mut state, CloseFrame::new(CloseCode::ABNORMAL, "write failed"));
                    return Err(SendError::Closed(message));
                }
            }
        }
        match self.push(&mut state, chunk) {
            Ok(()) => Ok(()),
            Err(()) => Err(SendError::Full(message)),
        }
    }

    /// Queues bytes that tungstenite wrote (control frames); they obey the same bound.
    pub(crate) fn send_control(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        if state.aborted.is_some() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let chunk = Chunk { header: Header::EMPTY, payload: Bytes::copy_from_slice(bytes) };
        self.push(&mut state, chunk).map_err(|()| io::ErrorKind::BrokenPipe.into())
    }

    fn push(&self, state: &mut State<W>, chunk: Chunk) -> Result<(), ()> {
        let was_empty = state.queue.is_empty();
        // One frame may always be queued, whatever its size; past that, the bound applies.
        if !was_empty && state.queued_bytes + chunk.len() > self.max_queued_bytes {
            tracing::warn!(queued = state.queued_bytes, "outgoing queue full: dropping slow consumer");
            self.abort_locked(state, CloseFrame::new(CloseCode::POLICY, "outgoing queue full"));
            return Err(());
        }
        state.queued_bytes += chunk.len();
        state.queue.push_back(chunk);
        if was_empty {
            // A non-empty queue means the writer is already awake or draining.
            self.wake_writer.notify_one();
        }
        Ok(())
    }

    /// Refuses data frames from now on (a close frame is about to be queued).
    pub(crate) fn stop_data(&self) {
        self.lock().accepting_data = false;
    }

    /// Records the application's request to close with `frame` and refuses data frames
    /// from now on. Only the first request counts.
    pub(crate) fn request_close(&self, frame: CloseFrame) {
        let mut state = self.lock();
        state.accepting_data = false;
        if !state.close_requested {
            state.close_requested = true;
            state.close_request = Some(frame);
            self.wake_closer.notify_one();
        }
    }

    /// Waits for a close request and takes it.
    ///
    /// # Cancel safety
    /// Cancel safe: the request stays recorded until a call returns it.
    pub(crate) async fn close_requested(&self) -> CloseFrame {
        loop {
            let woken = self.wake_closer.notified();
            if let Some(frame) = self.lock().close_request.take() {
                return frame;
            }
            woken.await;
        }
    }

    /// Aborts the connection: the writer stops at once and the reader ends.
    pub(crate) fn abort(&self, frame: CloseFrame) {
        let mut state = self.lock();
        self.abort_locked(&mut state, frame);
    }

    fn abort_locked(&self, state: &mut State<W>, frame: CloseFrame) {
        state.accepting_data = false;
        state.aborted.get_or_insert(frame);
        self.abort.cancel();
    }

    /// Why the connection was aborted, if it was.
    pub(crate) fn aborted(&self) -> Option<CloseFrame> {
        self.lock().aborted.clone()
    }

    /// Resolves when the connection is aborted.
    pub(crate) async fn aborted_signal(&self) {
        self.abort.cancelled().await;
    }

    /// Asks the writer to write what is queued, shut the socket down and stop.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        state.accepting_data = false;
        state.finishing = true;
        self.wake_writer.notify_one();
    }

    /// Drives the queue until [`finish`](Self::finish) (then the socket is shut down once
    /// the queue is empty) or an abort.
    pub(crate) async fn run_writer(&self) {
        // Created once: a fresh `cancelled()` per wake-up registers with the token each time.
        let aborted = self.abort.cancelled();
        tokio::pin!(aborted);
        loop {
            let woken = self.wake_writer.notified();
            let drained = tokio::select! {
                result = poll_fn(|cx| self.poll_drain(cx)) => result,
                () = &mut aborted => return,
            };
            if let Err(error) = drained {
                tracing::debug!(%error, "write failed");
                self.abort(CloseFrame::new(CloseCode::ABNORMAL, "write failed"));
                return;
            }
            if self.lock().finishing {
                let _ = poll_fn(|cx| Pin::new(&mut self.lock().io).poll_shutdown(cx)).await;
                return;
            }
            tokio::select! {
                () = woken => {}
                () = &mut aborted => return,
            }
        }
    }

    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.lock();
        let state = &mut *guard;
        loop {
            if state.queue.is_empty() {
                if state.needs_flush {
                    ready!(Pin::new(&mut state.io).poll_flush(cx))?;
                    state.needs_flush = false;
                }
                return Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
            let count = fill_slices(&state.queue, state.front_written, &mut slices);
            let written = ready!(Pin::new(&mut state.io).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            state.needs_flush = true;
            advance(state, written);
        }
    }
}

/// One non-blocking write attempt of a whole frame. Returns the bytes written (0 when the
/// socket would block) and whether the stream is flushed.
fn try_write_direct<W: AsyncWrite + Unpin>(io: &mut W, chunk: &Chunk) -> io::Result<(usize, bool)> {
    // A no-op waker: if the socket is not writable the frame is queued and the writer
    // task, which polls with a real waker, takes over.
    let mut cx = Context::from_waker(Waker::noop());
    let header = chunk.header.as_slice();
    let slices = [IoSlice::new(header), IoSlice::new(&chunk.payload)];
    let mut written = match Pin::new(&mut *io).poll_write_vectored(&mut cx, &slices) {
        Poll::Ready(result) => result?,
        Poll::Pending => return Ok((0, false)),
    };
    // Rare: a short write of a big frame. Finish it here if the socket takes it.
    while written < chunk.len() {
        let rest = if written < header.len() {
            [IoSlice::new(&header[written..]), IoSlice::new(&chunk.payload)]
        } else {
            [IoSlice::new(&chunk.payload[written - header.len()..]), IoSlice::new(&[])]
        };
        match Pin::new(&mut *io).poll_write_vectored(&mut cx, &rest) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(more)) => written += more,
            Poll::Ready(Err(error)) => return Err(error),
            Poll::Pending => break,
        }
    }
    // Plain TCP flushes nothing; TLS or hyper streams may buffer. If the flush cannot finish
    // now, the writer task finishes it.
    let flushed =
        written == chunk.len() && matches!(Pin::new(&mut *io).poll_flush(&mut cx), Poll::Ready(Ok(())));
    Ok((written, flushed))
}

fn fill_slices<'a>(queue: &'a VecDeque<Chunk>, front_written: usize, slices: &mut [IoSlice<'a>]) -> usize {
    let mut count = 0;
    let mut skip = front_written;
    for chunk in queue {
        for part in [chunk.header.as_slice(), &chunk.payload[..]] {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            if count == slices.len() {
                return count;
            }
            slices[count] = IoSlice::new(&part[skip..]);
            skip = 0;
            count += 1;
        }
    }
    count
}

fn advance<W>(state: &mut State<W>, mut written: usize) {
    while written > 0 {
        let Some(front) = state.queue.front() else { return };
        let remaining = front.len() - state.front_written;
        if written >= remaining {
            written -= remaining;
            state.queued_bytes -= front.len();
            state.front_written = 0;
            state.queue.pop_front();
        } else {
            state.front_written += written;
            return;
        }
    }
}
