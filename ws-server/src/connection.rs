//! One connection's task: our frame reader ([`crate::reader`]) reads, the outbox writes
//! (data frames, and the pongs and close frames the reader's events call for).

use futures_util::future::Either;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use network_core::resume::SessionFrame;
use network_core::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionMeta, Identity, Link, Message,
    Text,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use ws_protocol::deflate::Agreement;

use crate::handshake::SocketStart;
use crate::outbox::{Compressing, Outbox, QueueLimits, ReaderEvent};
use crate::pressure::{IncomingShare, ReadGate};
use crate::rate::{Admission, Limiter};
use crate::reader::{Incoming, PING, PONG, Reader, close_frame_bytes, control_frame_bytes};
use crate::relay::Relayed;
use crate::resume::{BoxedIo, Handoff, HandoffSocket, Resumable, Wake};
use crate::server::Inner;

/// After a close for a protocol violation, at most this many bytes are read and discarded
/// while waiting for the peer to finish (see [`violation`]).
const MAX_DISCARD_BYTES: u64 = 64 << 20;

/// The read side of a connection: its socket's read half, parsed by our frame reader.
type ReadSide<S> = Reader<ReadHalf<S>>;

/// The configuration of the tungstenite streams that remain: a relay carrying a client's
/// socket for a session owned by another node ([`crate::relay`]).
pub(crate) fn websocket_config(config: &crate::ServerConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
}

/// A connection the handshake accepted: what its task starts from.
pub(crate) struct Accepted {
    pub(crate) id: ConnectionId,
    /// Bytes read past the upgrade request, and the compression agreed.
    pub(crate) start: SocketStart,
    pub(crate) meta: ConnectionMeta,
    pub(crate) identity: Option<Identity>,
}

/// Runs an upgraded connection to its end: `Added`, frames, `Removed`. `first` frames (a
/// `refused` for a server without sessions) are written before anything else.
///
/// The set-up is synchronous so that the returned future (which lives as long as the
/// connection, in the connection's task) holds no copy of `meta` or `identity`: arguments
/// of an `async fn` keep their slots for the whole body.
pub(crate) fn serve<S>(
    inner: Arc<Inner>,
    io: S,
    accepted: Accepted,
    first: Option<Message>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Accepted { id, start, meta, identity } = accepted;
    let (socket, outbox) = open_socket(&inner, io, id, start.deflate);
    if let Some(frame) = first {
        let _ = outbox.send(frame);
    }
    let span = connection_span(id, &meta, identity.as_ref());
    // The outbox is the connection's link: sends reach its queue in one pointer.
    let (connection, closed_signal) = Connection::new(id, meta, outbox.clone());
    if let Some(identity) = identity {
        connection.set_identity(identity);
    }
    in_span(
        async move {
            let mut reader = frame_reader(&inner, socket, start);
            added(&inner, &connection).await;
            let ending = run_socket(&inner, &mut reader, &outbox, &connection, None).await;
            drop(reader);
            removed(&inner, &connection, &closed_signal, ending.frame).await;
        },
        span,
    )
}

/// Runs a resumable session to its end: like [`serve`], but a socket lost without a close
/// frame detaches the session, which waits for a resume for the window (see
/// [`crate::resume`]). `first` frames (`welcome`, or `refused` then `welcome`) go out
/// before anything else and are not counted.
pub(crate) fn serve_session(
    inner: Arc<Inner>,
    io: BoxedIo,
    accepted: Accepted,
    session: Arc<Resumable>,
    first: Vec<Message>,
) -> impl Future<Output = ()> + Send {
    let Accepted { id, start, meta, identity } = accepted;
    let (socket, outbox) = open_socket(&inner, io, id, start.deflate);
    for frame in first {
        let _ = outbox.send(frame);
    }
    session.attach(outbox.clone());
    let span = connection_span(id, &meta, identity.as_ref());
    let (connection, closed_signal) = Connection::new(id, meta, session.clone());
    if let Some(identity) = identity {
        connection.set_identity(identity);
    }
    in_span(
        async move {
            let reader = frame_reader(&inner, socket, start);
            added(&inner, &connection).await;
            let mut current = Current::Local(reader, outbox);
            let frame = loop {
                let ending = match &mut current {
                    Current::Local(reader, outbox) => {
                        run_socket(&inner, reader, outbox, &connection, Some(&session)).await
                    }
                    Current::Relayed(relayed) => {
                        let ending = Box::pin(relayed.run(&inner, &connection, &session)).await;
                        relayed.close(&inner, id);
                        ending
                    }
                    Current::Gone => break CloseFrame::new(CloseCode::INTERNAL, "no socket"),
                };
                // The socket's file descriptor and buffers go now, not when the session ends.
                current = Current::Gone;
                if !ending.lost {
                    break ending.frame;
                }
                session.detach();
                tracing::debug!(connection = %id, close = %ending.frame, "session detached");
                let window = inner.sessions.window().unwrap_or_default();
                let stop = async {
                    tokio::select! {
                        () = inner.abort.cancelled() => CloseFrame::new(CloseCode::GOING_AWAY, "server stopped"),
                        () = inner.shutdown.cancelled() => CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"),
                    }
                };
                let Handoff { socket, seen } = match Box::pin(session.detached(window, stop)).await {
                    Wake::Resume(handoff) => handoff,
                    Wake::End(frame) => break frame,
                };
                // Checked when handed over: only a bug makes a resume fail here.
                let failed = |error| {
                    tracing::warn!(connection = %id, %error, "resume failed after its check");
                    CloseFrame::new(CloseCode::INTERNAL, "resume failed")
                };
                current = match socket {
                    HandoffSocket::Local { io, start } => {
                        let (socket, outbox) = open_socket(&inner, io, id, start.deflate);
                        if let Err(error) = session.resume(outbox.clone(), seen) {
                            break failed(error);
                        }
                        Current::Local(frame_reader(&inner, socket, start), outbox)
                    }
                    HandoffSocket::Relayed { node, relay } => {
                        let relayed = Relayed::open(&inner, id, node, relay);
                        if let Err(error) = session.resume(relayed.link(), seen) {
                            break failed(error);
                        }
                        Current::Relayed(relayed)
                    }
                };
                tracing::debug!(connection = %id, "session resumed");
            };
            drop(current);
            let reason = session.end();
            inner.sessions.remove(id, reason);
            removed(&inner, &connection, &closed_signal, frame).await;
        },
        span,
    )
}

/// `future` inside `span`, boxed, when the span is enabled; unchanged when it is not (the
/// default), so that the connection task, which every idle connection pays for, does not
/// carry a span it never uses (the `Right` box fits beside the future's own tag).
fn in_span<F>(future: F, span: tracing::Span) -> Either<F, Pin<Box<dyn Future<Output = ()> + Send>>>
where
    F: Future<Output = ()> + Send + 'static,
{
    if span.is_disabled() {
        Either::Left(future)
    } else {
        Either::Right(Box::pin(tracing::Instrument::instrument(future, span)))
    }
}

/// The span every log line of a connection's task sits in: its id, the peer's address and
/// the user, if any. At debug level (`RUST_LOG=ws_server=debug` turns it on), so that by
/// default it costs nothing past its creation.
fn connection_span(id: ConnectionId, meta: &ConnectionMeta, identity: Option<&Identity>) -> tracing::Span {
    let user = identity.and_then(|identity| identity.user_id.as_deref());
    tracing::debug_span!("connection", %id, remote = ?meta.remote_addr, user)
}

/// The socket a session runs on: here, or on another node through a relay.
// The large variant is the common one; boxing it would cost an allocation per socket.
#[allow(clippy::large_enum_variant)]
enum Current {
    Local(ReadSide<BoxedIo>, Arc<Outbox<WriteHalf<BoxedIo>>>),
    Relayed(Relayed),
    /// Between a lost socket and the resume.
    Gone,
}

/// Splits a socket into its read half and our outbox (compressing as `deflate` agreed).
fn open_socket<S>(
    inner: &Arc<Inner>,
    io: S,
    id: ConnectionId,
    deflate: Option<Agreement>,
) -> (ReadHalf<S>, Arc<Outbox<WriteHalf<S>>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let shard = inner.flusher.shard(id.as_u64());
    let limits = QueueLimits {
        soft: inner.config.outgoing_queue_size,
        hard: inner.config.max_outgoing_queue_size,
        stall_timeout: inner.config.slow_consumer_timeout,
    };
    let compression = inner.config.compression.zip(deflate).map(|(compression, agreement)| Compressing {
        min_size: compression.min_size,
        window_bits: agreement.server_window_bits,
    });
    let outbox = Arc::new_cyclic(|me| {
        Outbox::new(write, limits, compression, inner.pressure.clone(), shard, me.clone())
    });
    (read, outbox)
}

/// The frame reader of a socket's read half; bytes read past the upgrade request are
/// parsed first.
fn frame_reader<S>(inner: &Inner, read: ReadHalf<S>, start: SocketStart) -> ReadSide<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &inner.config;
    let incoming = IncomingShare::new(inner.pressure.clone(), config.read_buffer_size);
    let deflate = start.deflate.is_some();
    Reader::new(read, incoming, config.max_message_size, config.read_buffer_size, start.leftover, deflate)
}

async fn added(inner: &Inner, connection: &Connection) {
    tracing::debug!(connection = %connection.id(), remote = ?connection.meta().remote_addr, "connection added");
    Box::pin(inner.hub.connection_added(connection, false)).await;
}

async fn removed(inner: &Inner, connection: &Connection, closed_signal: &ClosedSignal, frame: CloseFrame) {
    let id = connection.id();
    // Closed first, rooms second: a router joining a room concurrently either joins
    // before `leave_all` (and is undone by it) or sees `is_closed()` and undoes it.
    closed_signal.fire(frame.clone());
    if let Err(error) = inner.rooms.leave_all(id).await {
        tracing::warn!(connection = %id, %error, "leaving rooms failed");
    }
    tracing::debug!(connection = %id, close = %frame, "connection removed");
    Box::pin(inner.hub.connection_removed(connection, frame)).await;
}

/// How a socket ended.
pub(crate) struct Ending {
    /// The close frame sent or received, or what stands for it.
    pub(crate) frame: CloseFrame,
    /// Lost without a close frame (reset, end of stream, idle timeout, a write failure,
    /// an abort by the outbox): a session survives it.
    pub(crate) lost: bool,
}

impl Ending {
    /// Ended with a close frame (sent or received).
    pub(crate) fn closed(frame: CloseFrame) -> Self {
        Self { frame, lost: false }
    }

    /// Lost without one.
    pub(crate) fn lost(frame: CloseFrame) -> Self {
        Self { frame, lost: true }
    }
}

/// Runs one socket until it ends: frames in, the writer out, the close within bounds.
async fn run_socket<S>(
    inner: &Inner,
    reader: &mut ReadSide<S>,
    outbox: &Outbox<WriteHalf<S>>,
    connection: &Connection,
    session: Option<&Resumable>,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let read_side = async {
        let ending = read_loop(inner, reader, connection, outbox, session).await;
        if ending.lost && session.is_some() {
            // What was queued is in the session's replay buffer: nothing to wait for.
            outbox.abort(ending.frame.clone());
        } else {
            outbox.finish();
            // Keep the socket until the queue (close frame included) is written, within bounds.
            let _ = tokio::time::timeout(inner.config.close_timeout, outbox.aborted_signal()).await;
        }
        ending
    };
    let write_side = async {
        outbox.run_writer().await;
        // The writer is done (drained after finish, or aborted): release the reader.
        outbox.abort(CloseFrame::new(CloseCode::ABNORMAL, ""));
    };
    let (ending, ()) = tokio::join!(read_side, write_side);
    ending
}

async fn read_loop<S>(
    inner: &Inner,
    reader: &mut ReadSide<S>,
    connection: &Connection,
    outbox: &Outbox<WriteHalf<S>>,
    session: Option<&Resumable>,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &inner.config;
    let far = Duration::from_secs(86_400 * 365);
    let mut last_received = Instant::now();
    let mut next_ping = Instant::now() + config.ping_interval.unwrap_or(far);
    let idle_timeout = config.idle_timeout.unwrap_or(far);
    // One timer for pings, the idle timeout and the close deadline.
    let timer = sleep_until(next_ping.min(last_received + idle_timeout));
    tokio::pin!(timer);
    // Set once we have sent a close frame; we then wait for the peer's reply until the
    // deadline.
    let mut closing: Option<(CloseFrame, Instant)> = None;

    // Backpressure: the socket is not read while this connection's fan-out is congested,
    // the server's outgoing budget is spent, or its rate limit says wait.
    let gate = ReadGate::new(inner.pressure.clone(), config.outgoing_queue_size);
    let mut limiter = config.rate_limit.as_ref().map(|limit| Limiter::new(limit, Instant::now()));
    let mut throttled_until: Option<Instant> = None;
    // Boxed and kept only while paused: it would otherwise widen every reader's state.
    let mut resume: Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = None;

    // Created once, not per frame: each of these registers a waiter when first polled.
    let outbox_event = outbox.reader_event();
    // The server's shutdown, then its abort in the same slot (one future less in every
    // connection's state): `Server::shutdown` cancels the abort only after the shutdown.
    let server_stop = inner.shutdown.cancelled();
    let mut stop_is_abort = false;
    tokio::pin!(outbox_event, server_stop);

    loop {
        let paused = closing.is_none() && (throttled_until.is_some() || gate.paused());
        if !paused {
            resume = None;
        } else if resume.is_none() {
            let gate = &gate;
            resume = Some(Box::pin(async move {
                if let Some(until) = throttled_until {
                    tokio::time::sleep_until(until).await;
                }
                gate.resumed().await;
            }));
        }
        let request = tokio::select! {
            biased;
            event = &mut outbox_event => match event {
                // The outbox dropped the socket (a write failed, a slow consumer, a resume
                // took the session over): lost, unless we were closing anyway.
                ReaderEvent::Aborted(frame) => {
                    // The outbox's policy closes, by their fixed reasons.
                    match frame.reason.as_str() {
                        "slow consumer" => crate::metrics::dropped("slow_consumer"),
                        "outgoing queue full" => crate::metrics::dropped("queue_full"),
                        _ => {}
                    }
                    return Ending { frame, lost: closing.is_none() };
                }
                ReaderEvent::CloseRequested(frame) => {
                    // Re-armed (at most once: a close is requested once) to hear an abort.
                    outbox_event.set(outbox.reader_event());
                    closing.is_none().then_some(frame)
                }
            },
            () = &mut server_stop => {
                if stop_is_abort {
                    return Ending::closed(CloseFrame::new(CloseCode::GOING_AWAY, "server stopped"));
                }
                server_stop.set(inner.abort.cancelled());
                stop_is_abort = true;
                closing.is_none().then(|| CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"))
            }
            () = pending_or(&mut resume), if paused => {
                resume = None;
                throttled_until = None;
                // Time spent paused is not the peer's silence.
                last_received = Instant::now();
                None
            }
            () = &mut timer => {
                let now = Instant::now();
                if let Some((frame, deadline)) = &closing
                    && now >= *deadline {
                        return Ending::closed(frame.clone());
                    }
                if !paused && now >= last_received + idle_timeout {
                    tracing::debug!(connection = %connection.id(), "idle timeout");
                    return ended(closing, CloseFrame::new(CloseCode::ABNORMAL, "idle timeout"));
                }
                let mut ack_deadline = None;
                if let Some(session) = session {
                    let (due, next) = session.ack_due(now);
                    if let Some(ack) = due {
                        let _ = outbox.send(ack);
                    }
                    ack_deadline = next;
                }
                if now >= next_ping {
                    if closing.is_none() {
                        let _ = outbox.send_control(&control_frame_bytes(PING, &[]));
                    }
                    next_ping = now + config.ping_interval.unwrap_or(far);
                }
                let close_deadline = closing.as_ref().map_or(next_ping, |(_, deadline)| *deadline);
                let next = next_ping.min(last_received + idle_timeout).min(close_deadline);
                timer.as_mut().reset(ack_deadline.map_or(next, |ack| next.min(ack)));
                None
            }
            item = reader.next(), if !paused => {
                last_received = Instant::now();
                let metrics = crate::metrics::handles();
                let data = match &item {
                    Some(Ok(Incoming::Text(bytes))) => Some((bytes.len(), &metrics.messages_in_text, &metrics.bytes_in_text)),
                    Some(Ok(Incoming::Binary(bytes))) => Some((bytes.len(), &metrics.messages_in_binary, &metrics.bytes_in_binary)),
                    _ => None,
                };
                if let Some((len, messages_in, bytes_in)) = data {
                    messages_in.increment(1);
                    bytes_in.increment(len as u64);
                    reader.message_done();
                    match limiter.as_mut().zip(config.rate_limit.as_ref()).map(|(limiter, limit)| limiter.admit(limit, len, last_received)) {
                        None | Some(Admission::Go) => {}
                        Some(Admission::WaitUntil(until)) => {
                            crate::metrics::rate_limited();
                            throttled_until = Some(until);
                        }
                        Some(Admission::Close) => {
                            tracing::debug!(connection = %connection.id(), "rate limit exceeded for too long");
                            crate::metrics::dropped("rate_limit");
                            let frame = CloseFrame::new(CloseCode::POLICY, "rate limit exceeded");
                            return Box::pin(violation(reader, outbox, frame, config.close_timeout)).await;
                        }
                    }
                }
                // One place hands frames to the hub: each `.await` on it would add its own
                // state to this future, which every idle connection carries.
                let message = match item {
                    None => return ended(closing, CloseFrame::new(CloseCode::ABNORMAL, "")),
                    Some(Ok(Incoming::Text(text))) if closing.is_none() => {
                        // The reader validated the UTF-8 already; this cannot fail.
                        match Text::from_utf8(gate.track(text)) {
                            Ok(text) => Some(Message::Text(text)),
                            Err(_) => {
                                let frame = CloseFrame::new(CloseCode::INVALID_PAYLOAD, "invalid UTF-8");
                                return Box::pin(violation(reader, outbox, frame, config.close_timeout)).await;
                            }
                        }
                    }
                    Some(Ok(Incoming::Binary(bytes))) if closing.is_none() => {
                        Some(Message::Binary(gate.track(bytes)))
                    }
                    // Data after our close frame: the peer had not read it yet.
                    Some(Ok(Incoming::Text(_) | Incoming::Binary(_))) => None,
                    Some(Ok(Incoming::Close(peer))) => {
                        if closing.is_none() {
                            // The peer began the handshake: our reply echoes its frame, and
                            // no data may follow it.
                            outbox.stop_data();
                            let _ = outbox.send_control(&close_frame_bytes(peer.as_ref()));
                        }
                        let frame = ended(closing, peer.unwrap_or_else(|| CloseFrame::new(CloseCode(1005), ""))).frame;
                        return Ending::closed(frame);
                    }
                    Some(Ok(Incoming::Ping(payload))) => {
                        // No pong after our close frame: nothing may follow it.
                        if closing.is_none() {
                            let _ = outbox.send_control(&control_frame_bytes(PONG, &payload));
                        }
                        None
                    }
                    Some(Ok(Incoming::Pong)) => None,
                    Some(Err(error)) => {
                        let frame = match error.close_frame() {
                            Some(frame) => frame,
                            None => return ended(closing, CloseFrame::new(CloseCode::ABNORMAL, "")),
                        };
                        tracing::debug!(connection = %connection.id(), %error, close = %frame, "protocol violation");
                        if closing.is_some() {
                            return ended(closing, frame);
                        }
                        return Box::pin(violation(reader, outbox, frame, config.close_timeout)).await;
                    }
                };
                if let Some(message) = message {
                    let deliver = match session {
                        None => true,
                        Some(session) => match session_frame(session, outbox, &message, last_received) {
                            Ok(None) => false,
                            Ok(Some(ack_deadline)) => {
                                if ack_deadline < timer.deadline() {
                                    timer.as_mut().reset(ack_deadline);
                                }
                                true
                            }
                            Err(frame) => {
                                tracing::debug!(connection = %connection.id(), close = %frame, "session violation");
                                return Box::pin(violation(reader, outbox, frame, config.close_timeout)).await;
                            }
                        },
                    };
                    if deliver {
                        inner.hub.message(connection, message).await;
                    }
                }
                None
            }
        };
        if let Some(frame) = request
            && closing.is_none()
        {
            outbox.stop_data();
            let _ = outbox.send_control(&close_frame_bytes(Some(&frame)));
            let deadline = Instant::now() + config.close_timeout;
            closing = Some((frame, deadline));
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
            }
        }
    }
}

/// Closes after the peer broke the protocol (or a limit): the close frame goes out after
/// what is queued, followed by our end of the TCP stream, and the peer's bytes are read
/// and discarded until it closes too, [`MAX_DISCARD_BYTES`] have been read, or
/// `close_timeout` passes. Dropping a socket with unread bytes makes the kernel answer with
/// a reset, which can destroy the close frame before the peer reads it (it would see 1006
/// instead of the reason); Node's `ws` drains the same way.
async fn violation<S>(
    reader: &mut ReadSide<S>,
    outbox: &Outbox<WriteHalf<S>>,
    frame: CloseFrame,
    close_timeout: Duration,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::AsyncReadExt;

    outbox.stop_data();
    let _ = outbox.send_control(&close_frame_bytes(Some(&frame)));
    outbox.finish();
    let discard = async {
        let mut buf = [0u8; 8192];
        let mut discarded: u64 = 0;
        while discarded < MAX_DISCARD_BYTES {
            match reader.socket().read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(read) => discarded += read as u64,
            }
        }
    };
    let _ = tokio::time::timeout(close_timeout, discard).await;
    Ending::closed(frame)
}

/// Waits for `future` when there is one; never resolves otherwise.
async fn pending_or(future: &mut Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>>) {
    match future {
        Some(future) => future.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The close frame that ends a connection we were closing (ours) or that the peer closed.
/// Lost when we were not closing (the peer vanished without a close frame).
fn ended(closing: Option<(CloseFrame, Instant)>, otherwise: CloseFrame) -> Ending {
    match closing {
        Some((frame, _)) => Ending::closed(frame),
        None => Ending::lost(otherwise),
    }
}

/// Handles a text frame of a session's client: a `session` frame is read here (`Ok(None)`;
/// `Err` with the close frame of a violation); any other frame is counted, the `ack` sent
/// if due, and `Ok(Some(deadline))` says when the next `ack` falls due (far away when
/// none waits).
pub(crate) fn session_frame(
    session: &Resumable,
    outbox: &dyn Link,
    message: &Message,
    now: Instant,
) -> Result<Option<Instant>, CloseFrame> {
    match SessionFrame::decode(message) {
        None => {
            let (ack, deadline) = session.received(now);
            if let Some(ack) = ack {
                let _ = outbox.send(ack);
            }
            Ok(Some(deadline.unwrap_or(now + Duration::from_secs(86_400))))
        }
        Some(Ok(SessionFrame::Ack { n })) => match session.client_acked(n) {
            Ok(()) => Ok(None),
            Err(_) => Err(CloseFrame::new(CloseCode::POLICY, "session: ack beyond the frames sent")),
        },
        Some(_) => Err(CloseFrame::new(CloseCode::POLICY, "session: malformed frame")),
    }
}
