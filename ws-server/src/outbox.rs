//! The write path of one connection.
//!
//! Every frame for a connection goes through its [`Outbox`]: data frames from
//! [`Connection::send`](network_core::Connection::send) and broadcasts, and the control
//! frames the task writes (pings, pongs, closes). A broadcast appends the frame (a header
//! and the shared payload) to a bounded queue; the first frame into an empty queue hands the
//! outbox to the server's [flusher](crate::flusher), which writes everything queued
//! meanwhile once the broadcasting task yields, so a burst of broadcasts costs each
//! connection one write for all of it and no task wake of its own. What the socket does not
//! take at once is left to the connection's writer, which waits for writability. A reply to
//! one connection is written straight to the socket when nothing is queued (a non-blocking
//! attempt; on a short write the rest is queued for the writer), which saves a task switch
//! per reply. Small frames are gathered into one buffer for a plain `send` (cheaper in the
//! kernel than `writev` of many small slices); large ones go out as vectored writes of
//! header and shared payload, never copied.
//!
//! Policies (see [`QueueLimits`]):
//! - Over the soft limit the connection is congested: it counts in the server's
//!   [`Pressure`], which pauses the readers of the publishers feeding it, and if its socket
//!   then takes no byte for the slow-consumer timeout it is aborted (1008 "slow
//!   consumer"). A reader that keeps reading is never dropped for being behind.
//! - Past the hard limit the send fails with [`SendError::Full`] and the connection is
//!   aborted (its `Removed` event says 1008 "outgoing queue full"). Skipping messages
//!   silently is never an option.
//! - An aborted outbox drops its queue at once, so its bytes leave the server's budget.
//! - Once a close frame is queued, data frames are refused with [`SendError::Closed`], and
//!   the socket stays open until what was queued before the close frame is written.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker, ready};

use std::time::Duration;

use bytes::Bytes;
use network_core::{CloseCode, CloseFrame, Link, Message, SendError};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use crate::flusher::{Flush, Shard, TailBuffers};
use crate::frame::Header;
use crate::pressure::Pressure;

/// Slices handed to one vectored write (two per frame: header and payload).
const MAX_IO_SLICES: usize = 64;
/// Up to this many bytes of queued frames are copied into one buffer and written with a
/// plain `send` rather than a `writev` of their slices.
const GATHER_BYTES: usize = 4096;
/// Frames with at most this many payload bytes are copied into the queue's tail buffer
/// rather than queued as a shared payload (see [`Frames`]).
const SMALL_FRAME: usize = 512;
/// The server's outgoing budget is drawn in slices of at least this many bytes, and given
/// back when the queue drains (see [`Outbox::push`]).
const BUDGET_UNIT: usize = 4096;

/// What [`Outbox::reader_event`] reports.
pub(crate) enum ReaderEvent {
    /// The connection was aborted, for this reason.
    Aborted(CloseFrame),
    /// The application asked to close with this frame.
    CloseRequested(CloseFrame),
}

struct Chunk {
    header: Header,
    payload: Bytes,
}

impl Chunk {
    fn len(&self) -> usize {
        self.header.as_slice().len() + self.payload.len()
    }
}

/// How an outbox compresses data frames (permessage-deflate negotiated).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compressing {
    /// Smaller payloads go uncompressed.
    pub(crate) min_size: usize,
    /// The window the client agreed to inflate with.
    pub(crate) window_bits: u8,
}

/// The bounds of one outgoing queue (from [`ServerConfig`](crate::ServerConfig)).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueLimits {
    /// Over this many queued bytes the connection is congested.
    pub(crate) soft: usize,
    /// Past this many it is dropped.
    pub(crate) hard: usize,
    /// Congested and not a byte written for this long: dropped.
    pub(crate) stall_timeout: Duration,
}

/// Frames waiting to be written, in order: the chunks, then the tail.
///
/// A large frame is a chunk (its header and the shared payload: a broadcast copies
/// nothing). Small frames are copied into the tail buffer, header and payload, as
/// tungstenite's write buffer does: for the usual small broadcast a delivery is then one
/// copy of a few dozen bytes, where a chunk costs a reference count taken and dropped on
/// the shared payload and a gathering copy when written; and a burst of them is written
/// from one contiguous buffer. A large frame after small ones seals the tail into a chunk
/// first, so the order holds.
#[derive(Default)]
struct Frames {
    chunks: VecDeque<Chunk>,
    tail: Vec<u8>,
    /// Bytes of the front chunk already written (the tail drops what is written at once).
    front_written: usize,
}

impl Frames {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    /// Appends a data frame; returns its length on the wire. A new tail buffer comes
    /// from `buffers`.
    fn push(&mut self, header: Header, payload: &Bytes, buffers: &TailBuffers) -> usize {
        let len = header.as_slice().len() + payload.len();
        if payload.len() <= SMALL_FRAME {
            self.push_small(&[header.as_slice(), payload], buffers);
        } else {
            self.seal_tail();
            self.chunks.push_back(Chunk { header, payload: payload.clone() });
        }
        len
    }

    /// Appends bytes to the tail.
    fn push_small(&mut self, parts: &[&[u8]], buffers: &TailBuffers) {
        if self.tail.capacity() == 0 {
            self.tail = buffers.take();
        }
        for part in parts {
            self.tail.extend_from_slice(part);
        }
    }

    /// Makes the tail a chunk, so that what comes next goes after it.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let tail = Bytes::from(std::mem::take(&mut self.tail));
            self.chunks.push_back(Chunk { header: Header::EMPTY, payload: tail });
        }
    }

    /// The slices to write next, in order, at most `slices.len()`.
    fn fill_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        let mut skip = self.front_written;
        let chunk_parts = self.chunks.iter().flat_map(|chunk| [chunk.header.as_slice(), &chunk.payload[..]]);
        for part in chunk_parts.chain(std::iter::once(&self.tail[..])) {
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
        count
    }

    /// Empties the queue, giving the tail's buffer back to `buffers`.
    fn recycle(&mut self, buffers: &TailBuffers) {
        buffers.give(std::mem::take(&mut self.tail));
        *self = Self::default();
    }

    /// Takes `written` bytes off the front; returns the bytes that leave the queue (whole
    /// chunks, and the written part of the tail).
    fn advance(&mut self, mut written: usize) -> usize {
        let mut popped = 0;
        while written > 0 {
            let Some(front) = self.chunks.front() else { break };
            let remaining = front.len() - self.front_written;
            if written >= remaining {
                written -= remaining;
                popped += front.len();
                self.front_written = 0;
                self.chunks.pop_front();
            } else {
                self.front_written += written;
                return popped;
            }
        }
        if written > 0 {
            // A short write into the tail moves the rest to the front: rare (the socket
            // was full), and it keeps the tail's bytes all unwritten.
            let written = written.min(self.tail.len());
            self.tail.drain(..written);
            popped += written;
        }
        popped
    }
}

struct State<W> {
    io: W,
    queue: Frames,
    queued_bytes: usize,
    /// Bytes drawn from the server's outgoing budget: at least `queued_bytes`, at most a
    /// [`BUDGET_UNIT`] more while frames are queued, none once the queue is empty.
    budget_drawn: usize,
    /// Whether the queue is over the soft limit (and counted in the server's pressure).
    congested: bool,
    /// While congested: when the socket last took bytes (or the congestion began).
    last_progress: Instant,
    needs_flush: bool,
    /// Whether the flusher has this outbox on its list.
    flush_scheduled: bool,
    accepting_data: bool,
    /// Why the connection was aborted, if it was.
    aborted: Option<CloseFrame>,
    /// A close the application asked for, not yet taken by the connection task.
    close_request: Option<CloseFrame>,
    /// Whether a close was ever requested (only the first request counts).
    close_requested: bool,
    /// Whether a close handshake began (the application's, the peer's, or a violation's);
    /// stays set after the socket is gone.
    closing: bool,
    finishing: bool,
}

pub(crate) struct Outbox<W> {
    state: Mutex<State<W>>,
    wake_writer: Notify,
    /// Wakes the reader for a close request or an abort. Notifies rather than
    /// cancellation tokens: no allocation of their own, smaller futures, and one waiter
    /// for both events.
    wake_reader: Notify,
    limits: QueueLimits,
    compressing: Option<Compressing>,
    pressure: Arc<Pressure>,
    flusher: Arc<Shard>,
    /// This outbox, for the flusher's list (the outbox is also the connection's `Link`,
    /// which is called through `&self`).
    me: Weak<Self>,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Link for Outbox<W> {
    fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_data(&message, true)
    }

    fn send_batched(&self, message: &Message) -> Result<(), SendError> {
        self.send_data(message, false)
    }

    fn close(&self, frame: CloseFrame) {
        // Data sent after close() is refused at once; the connection task writes the
        // close frame behind what was queued before.
        self.request_close(frame);
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> crate::resume::SocketLink for Outbox<W> {
    fn abort(&self, frame: CloseFrame) {
        Outbox::abort(self, frame);
    }

    fn is_closing(&self) -> bool {
        self.lock().closing
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Flush for Outbox<W> {
    fn flush_scheduled(&self) {
        let mut state = self.lock();
        state.flush_scheduled = false;
        if state.aborted.is_some() || state.queue.is_empty() {
            return;
        }
        // A no-op waker: what the socket does not take now is the writer's, which polls
        // with a real one.
        let mut cx = Context::from_waker(Waker::noop());
        match self.drain(&mut state, &mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Pending => self.wake_writer.notify_one(),
            Poll::Ready(Err(error)) => {
                tracing::debug!(%error, "write failed");
                self.abort_locked(&mut state, CloseFrame::new(CloseCode::ABNORMAL, "write failed"));
            }
        }
    }
}

impl<W> Drop for Outbox<W> {
    fn drop(&mut self) {
        // What is still queued leaves the server's budget with the outbox.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.pressure.written(state.budget_drawn);
        if state.congested {
            self.pressure.congestion_ended();
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Outbox<W> {
    /// An outbox writing to `io`, scheduled on `flusher`, accounted in `pressure`; made
    /// with `Arc::new_cyclic`, which provides `me`.
    pub(crate) fn new(
        io: W,
        limits: QueueLimits,
        compressing: Option<Compressing>,
        pressure: Arc<Pressure>,
        flusher: Arc<Shard>,
        me: Weak<Self>,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                io,
                queue: Frames::default(),
                queued_bytes: 0,
                budget_drawn: 0,
                congested: false,
                last_progress: Instant::now(),
                needs_flush: false,
                flush_scheduled: false,
                accepting_data: true,
                aborted: None,
                close_request: None,
                close_requested: false,
                closing: false,
                finishing: false,
            }),
            wake_writer: Notify::new(),
            wake_reader: Notify::new(),
            limits,
            compressing,
            pressure,
            flusher,
            me,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one data frame: with `direct`, written to the socket at once when nothing is
    /// queued (a reply: lowest latency, no task switch); otherwise queued for the flusher
    /// (a broadcast: a burst coalesces into one write per connection).
    /// (Errors carry a clone of `message`: the rare path pays for it, not every delivery.)
    fn send_data(&self, message: &Message, direct: bool) -> Result<(), SendError> {
        // Compressed before the lock is taken, so that the writer and the flusher never
        // wait for it; a broadcast's first recipient pays for it, and the others find it
        // done (crate::compress).
        let compressed = self
            .compressing
            .filter(|compressing| message.len() >= compressing.min_size)
            .and_then(|compressing| crate::compress::compressed(message, compressing.window_bits));
        let (header, payload) = match &compressed {
            Some(compressed) => (Header::compressed(message, compressed.len()), compressed),
            None => (Header::for_message(message), message.payload()),
        };
        let mut state = self.lock();
        if !state.accepting_data || state.aborted.is_some() {
            return Err(SendError::Closed(message.clone()));
        }
        if direct && state.queue.is_empty() {
            let chunk = Chunk { header, payload: payload.clone() };
            match try_write_direct(&mut state.io, &chunk) {
                Ok((written, flushed)) if written == chunk.len() => {
                    crate::metrics::handles().socket_bytes_out.increment(written as u64);
                    if !flushed {
                        state.needs_flush = true;
                        self.wake_writer.notify_one();
                    }
                    return Ok(());
                }
                Ok((written, _)) => {
                    crate::metrics::handles().socket_bytes_out.increment(written as u64);
                    // A short write: the writer, which waits for writability, finishes it.
                    return match self.push(&mut state, |frames| {
                        frames.seal_tail();
                        frames.chunks.push_back(chunk);
                        frames.front_written = written;
                        header.as_slice().len() + payload.len()
                    }) {
                        Ok(_) => {
                            self.wake_writer.notify_one();
                            Ok(())
                        }
                        Err(()) => Err(SendError::Full(message.clone())),
                    };
                }
                Err(error) => {
                    tracing::debug!(%error, "write failed");
                    self.abort_locked(&mut state, CloseFrame::new(CloseCode::ABNORMAL, "write failed"));
                    return Err(SendError::Closed(message.clone()));
                }
            }
        }
        match self.push(&mut state, |frames| frames.push(header, payload, self.flusher.buffers())) {
            // A non-empty queue already has an owner: the flusher or the writer.
            Ok(was_empty) => {
                if was_empty
                    && !state.flush_scheduled
                    && let Some(me) = self.me.upgrade()
                {
                    state.flush_scheduled = true;
                    drop(state);
                    self.flusher.schedule(me);
                }
                Ok(())
            }
            Err(()) => Err(SendError::Full(message.clone())),
        }
    }

    /// Queues an encoded control frame (ping, pong, close); it obeys the same bound.
    pub(crate) fn send_control(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        if state.aborted.is_some() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match self.push(&mut state, |frames| {
            frames.push_small(&[bytes], self.flusher.buffers());
            bytes.len()
        }) {
            Ok(was_empty) => {
                if was_empty {
                    self.wake_writer.notify_one();
                }
                Ok(())
            }
            Err(()) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Appends a frame with `append` (which returns the bytes it queued) within the hard
    /// bound; tells whether the queue was empty before.
    ///
    /// The bytes count in the server's outgoing budget, drawn a [`BUDGET_UNIT`] at a time:
    /// the budget's counter is shared by every connection, and an atomic add on it per
    /// delivery was a sixth of a broadcast's cost to 10,000 members (a full barrier, which
    /// also waits for the frame's stores). The budget so reads up to a unit more per
    /// non-empty queue than is queued, which errs on the safe side.
    fn push(&self, state: &mut State<W>, append: impl FnOnce(&mut Frames) -> usize) -> Result<bool, ()> {
        let was_empty = state.queue.is_empty();
        let len = append(&mut state.queue);
        state.queued_bytes += len;
        if state.queued_bytes > state.budget_drawn {
            let draw = (state.queued_bytes - state.budget_drawn).max(BUDGET_UNIT);
            state.budget_drawn += draw;
            self.pressure.queued(draw);
        }
        // One frame may always be queued, whatever its size; past that, the bound applies.
        if !was_empty && state.queued_bytes > self.limits.hard {
            tracing::warn!(queued = state.queued_bytes - len, "outgoing queue full: dropping the connection");
            // The frame just appended goes with the rest of the queue.
            self.abort_locked(state, CloseFrame::new(CloseCode::POLICY, "outgoing queue full"));
            return Err(());
        }
        if !state.congested && state.queued_bytes > self.limits.soft {
            state.congested = true;
            state.last_progress = Instant::now();
            self.pressure.congestion_started();
            // The writer starts the stall clock.
            self.wake_writer.notify_one();
        }
        Ok(was_empty)
    }

    /// Takes `written` bytes off the front of the queue, and the connection out of
    /// congestion once it is back under the soft limit.
    fn advance(&self, state: &mut State<W>, written: usize) {
        let popped = state.queue.advance(written);
        state.queued_bytes -= popped;
        // Back to the budget: everything once the queue is empty, otherwise what exceeds
        // a unit of slack.
        let keep = if state.queued_bytes == 0 { 0 } else { state.queued_bytes + BUDGET_UNIT };
        if state.budget_drawn > keep {
            self.pressure.written(state.budget_drawn - keep);
            state.budget_drawn = keep;
        }
        if state.congested {
            state.last_progress = Instant::now();
            if state.queued_bytes <= self.limits.soft {
                state.congested = false;
                self.pressure.congestion_ended();
            }
        }
    }

    /// Drops whatever is queued (the connection is aborted: nothing more is written).
    fn release(&self, state: &mut State<W>) {
        self.pressure.written(std::mem::take(&mut state.budget_drawn));
        state.queued_bytes = 0;
        state.queue.recycle(self.flusher.buffers());
        if std::mem::take(&mut state.congested) {
            self.pressure.congestion_ended();
        }
    }

    /// Refuses data frames from now on (a close frame is about to be queued).
    pub(crate) fn stop_data(&self) {
        let mut state = self.lock();
        state.accepting_data = false;
        state.closing = true;
    }

    /// Records the application's request to close with `frame` and refuses data frames
    /// from now on. Only the first request counts.
    pub(crate) fn request_close(&self, frame: CloseFrame) {
        let mut state = self.lock();
        state.accepting_data = false;
        state.closing = true;
        if !state.close_requested {
            state.close_requested = true;
            state.close_request = Some(frame);
            self.wake_reader.notify_one();
        }
    }

    /// Waits for what the reader must act on: an abort (always reported, also after a
    /// close request) or the application's close request (taken, so reported once).
    ///
    /// # Cancel safety
    /// Cancel safe: both stay recorded until a call returns them.
    pub(crate) async fn reader_event(&self) -> ReaderEvent {
        loop {
            let woken = self.wake_reader.notified();
            {
                let mut state = self.lock();
                if let Some(frame) = &state.aborted {
                    return ReaderEvent::Aborted(frame.clone());
                }
                if let Some(frame) = state.close_request.take() {
                    return ReaderEvent::CloseRequested(frame);
                }
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
        if state.aborted.is_none() {
            state.aborted = Some(frame);
            self.release(state);
            self.wake_writer.notify_one();
            self.wake_reader.notify_one();
        }
    }

    /// Resolves when the connection is aborted (once the reader has stopped reading
    /// events, it is the only waiter).
    pub(crate) async fn aborted_signal(&self) {
        while !matches!(self.reader_event().await, ReaderEvent::Aborted(_)) {}
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
        loop {
            // Registered before the state is read, so no wake-up in between is lost. An
            // abort wakes it too.
            let woken = self.wake_writer.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let stall_deadline = {
                let state = self.lock();
                if state.aborted.is_some() {
                    return;
                }
                state.congested.then(|| state.last_progress + self.limits.stall_timeout)
            };
            // Boxed and made only while congested: a timer inline would widen every
            // connection's state for the rare stall.
            let mut stall = stall_deadline.map(|deadline| Box::pin(sleep_until(deadline)));
            let drained = tokio::select! {
                biased;
                // New frames or an abort while waiting for the socket: look again.
                () = woken.as_mut() => continue,
                result = poll_fn(|cx| self.poll_drain(cx)) => result,
                () = async { if let Some(stall) = stall.as_mut() { stall.await } }, if stall_deadline.is_some() => {
                    self.abort_if_stalled();
                    continue;
                }
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
            woken.await;
        }
    }

    /// Drops the connection if it is still over the soft limit and its socket has taken
    /// nothing for the stall timeout.
    fn abort_if_stalled(&self) {
        let mut state = self.lock();
        if state.congested && state.last_progress.elapsed() >= self.limits.stall_timeout {
            tracing::warn!(
                queued = state.queued_bytes,
                "slow consumer: nothing written for {:?} over the soft limit",
                self.limits.stall_timeout
            );
            self.abort_locked(&mut state, CloseFrame::new(CloseCode::POLICY, "slow consumer"));
        }
    }

    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        if state.aborted.is_some() {
            return Poll::Ready(Ok(()));
        }
        self.drain(&mut state, cx)
    }

    /// Writes until the queue is empty and flushed, the socket would block, or it fails.
    fn drain(&self, state: &mut State<W>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if state.queue.is_empty() {
                if state.needs_flush {
                    ready!(Pin::new(&mut state.io).poll_flush(cx))?;
                    state.needs_flush = false;
                }
                // Most connections are idle most of the time: give the queue's buffer back
                // (an allocation per burst costs far less than the burst's write).
                state.queue.recycle(self.flusher.buffers());
                return Poll::Ready(Ok(()));
            }
            let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
            let count = state.queue.fill_slices(&mut slices);
            let written = ready!(write_slices(&mut state.io, cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            state.needs_flush = true;
            crate::metrics::handles().socket_bytes_out.increment(written as u64);
            self.advance(state, written);
        }
    }
}

/// One write of `slices`: gathered into one buffer when they are small, else vectored.
fn write_slices<W: AsyncWrite + Unpin>(
    io: &mut W,
    cx: &mut Context<'_>,
    slices: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let total: usize = slices.iter().map(|slice| slice.len()).sum();
    match slices {
        [one] => Pin::new(io).poll_write(cx, one),
        _ if total <= GATHER_BYTES => {
            let mut buffer = [0u8; GATHER_BYTES];
            let mut filled = 0;
            for slice in slices {
                buffer[filled..filled + slice.len()].copy_from_slice(slice);
                filled += slice.len();
            }
            Pin::new(io).poll_write(cx, &buffer[..filled])
        }
        _ => Pin::new(io).poll_write_vectored(cx, slices),
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
    let mut written = match write_slices(&mut *io, &mut cx, &slices) {
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

#[cfg(test)]
mod tests;
