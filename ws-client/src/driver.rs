//! The background task: connect, run a session, back off, repeat.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use network_core::resume::{Refusal, SessionFrame};
use network_core::{CloseCode, CloseFrame, ClosedSignal, Connection, HubDriver, Message, Text};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use ws_protocol::frame::{self, Incoming as Frame, MAX_CLOSE_REASON, truncate};

use crate::backoff::Backoff;
use crate::config::Settings;
use crate::error::ConnectError;
use crate::event::ClientEvent;
use crate::frames::{FrameReader, FrameWriter, ReadError};
use crate::resume::Incoming;
use crate::socket;
use crate::state::{ClientState, Control, Outgoing};
use crate::url::{self, UrlSource};

type Sink = FrameWriter;
type Stream = FrameReader;

/// The frames written between two flushes, at most (a flush also follows every batch the
/// queue had ready).
const WRITE_BATCH: usize = 64 * 1024;
/// The pongs owed to the server's pings, at most: past it the oldest is not answered
/// (RFC 6455 5.5.3 lets an endpoint answer only the most recent ping).
const MAX_PENDING_PONGS: usize = 16;

/// How a session ended.
enum Ending {
    /// The server sent a close frame.
    Remote(CloseFrame),
    /// The socket died (error, end of stream, idle timeout); nothing more can be sent.
    Dropped(CloseFrame),
    /// A message was bigger than `max_message_size`, or inflates beyond it: the client
    /// closes with 1009.
    TooBig,
    /// The server broke the protocol (1002) or sent invalid text (1007): the client sends
    /// that close frame and drops the socket without waiting (RFC 6455 7.1.7); the
    /// connection closed abnormally (1006).
    Failed(CloseFrame),
    /// A handle asked to close or reconnect.
    Control(Control),
}

/// What the reconnection loop does after a session.
enum Outcome {
    Close(CloseFrame),
    Reconnect,
    Lost { frame: CloseFrame, remote: bool },
}

pub(crate) struct Driver {
    state: Arc<ClientState>,
    hub: HubDriver,
    connection: Connection,
    signal: ClosedSignal,
    source: UrlSource,
    settings: Settings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Driver {
    pub(crate) fn new(
        state: Arc<ClientState>,
        hub: HubDriver,
        connection: Connection,
        signal: ClosedSignal,
        source: UrlSource,
        settings: Settings,
    ) -> Self {
        let tls = settings.config.tls.clone();
        Self { state, hub, connection, signal, source, settings, tls }
    }

    pub(crate) async fn run(mut self) {
        let frame = self.reconnect_loop().await;
        if self.state.take_detached() {
            // Closed while a session waited for its resume: the routers are owed `Removed`.
            let removed = self.hub.connection_removed(&self.connection, frame.clone());
            if timeout(self.settings.config.close_timeout, removed).await.is_err() {
                tracing::warn!(connection = %self.connection.id(), "hub full while closing: Removed lost");
            }
        }
        // The socket (if any) is closed and `Removed` was reported; finish for good.
        self.signal.fire(frame.clone());
        self.hub.detach_all();
        let dropped = self.state.terminate(frame.clone());
        if dropped > 0 {
            tracing::warn!(connection = %self.connection.id(), dropped, "client closed with messages unsent");
        }
        tracing::debug!(connection = %self.connection.id(), %frame, "client closed");
    }

    /// Connects, runs sessions and backs off until a handle closes the client; returns the
    /// close frame.
    async fn reconnect_loop(&mut self) -> CloseFrame {
        let state = self.state.clone();
        let id = self.connection.id();
        let backoff = self.settings.backoff;
        let jitter = self.settings.config.jitter;
        let max_retries = self.settings.config.max_retries;
        let min_uptime = self.settings.config.min_uptime;
        let mut attempt: u32 = 0;
        if self.settings.config.start_closed
            && let Some(frame) = wait_for_reconnect(&state).await
        {
            return frame;
        }
        loop {
            if attempt > 0 {
                if max_retries.is_some_and(|max| attempt > max) {
                    tracing::info!(connection = %id, "retries exhausted");
                    state.emit(ClientEvent::RetriesExhausted);
                    if let Some(frame) = wait_for_reconnect(&state).await {
                        return frame;
                    }
                    attempt = 0;
                    continue;
                }
                let delay = Backoff::jittered(backoff.delay(attempt), jitter, rand::random::<f64>());
                tracing::info!(connection = %id, attempt, delay_ms = delay.as_millis(), "reconnecting");
                state.emit(ClientEvent::Reconnecting { attempt, delay });
                tokio::select! {
                    () = sleep(delay) => {}
                    control = state.control() => match control {
                        Control::Close(frame) => return frame,
                        Control::Reconnect => {
                            attempt = 0;
                            continue;
                        }
                    },
                }
            }
            tracing::debug!(connection = %id, attempt, "connecting");
            state.emit(ClientEvent::Connecting { attempt });
            let connected = tokio::select! {
                connected = self.connect() => connected,
                control = state.control() => match control {
                    Control::Close(frame) => return frame,
                    Control::Reconnect => {
                        attempt = 0;
                        continue;
                    }
                },
            };
            let (ws, start) = match connected {
                Ok(connected) => connected,
                Err(error) => {
                    let error_chain = ErrorChain(&error);
                    tracing::info!(connection = %id, attempt, error = %error_chain, "attempt failed");
                    state.emit(ClientEvent::Failed { attempt, error });
                    attempt = attempt.saturating_add(1);
                    continue;
                }
            };
            let opened = Instant::now();
            match self.session(ws, start).await {
                Outcome::Close(frame) => return frame,
                Outcome::Reconnect => attempt = 0,
                Outcome::Lost { frame, remote } => {
                    attempt = if opened.elapsed() >= min_uptime { 1 } else { attempt.saturating_add(1) };
                    let declined = remote
                        && self
                            .settings
                            .config
                            .should_reconnect
                            .as_ref()
                            .is_some_and(|decide| !decide(&frame));
                    if declined {
                        tracing::info!(connection = %id, %frame, "should_reconnect declined");
                        state.emit(ClientEvent::ReconnectDeclined);
                        if let Some(frame) = wait_for_reconnect(&state).await {
                            return frame;
                        }
                        attempt = 0;
                    }
                }
            }
        }
    }

    /// One connection attempt: ask the URL, then TCP, TLS and the WebSocket handshake,
    /// each bounded by `connection_timeout`.
    async fn connect(&mut self) -> Result<(Ws, Start), ConnectError> {
        let config = &self.settings.config;
        let limit = config.connection_timeout;
        let raw = timeout(limit, self.source.next()).await.map_err(|_| ConnectError::Timeout(limit))??;
        let mut query = config.query.clone();
        query.extend(self.state.session_query());
        let target =
            url::prepare(&raw, &query).map_err(|(url, reason)| ConnectError::InvalidUrl { url, reason })?;
        let tls = if target.is_tls() {
            Some(match &self.tls {
                Some(tls) => tls.clone(),
                None => {
                    let tls = crate::tls::client_config().map_err(|err| ConnectError::Tls(Arc::new(err)))?;
                    self.tls = Some(tls.clone());
                    tls
                }
            })
        } else {
            None
        };
        let open = socket::open(&target, &config.headers, tls, config.compression.is_some());
        let upgraded = timeout(limit, open).await.map_err(|_| ConnectError::Timeout(limit))??;
        let compress = upgraded.deflate.zip(config.compression);
        if let Some((agreement, _)) = compress {
            tracing::debug!(connection = %self.state.id, ?agreement, "permessage-deflate");
        }
        let (read, write) = tokio::io::split(upgraded.socket);
        let mut ws = Ws {
            sink: FrameWriter::new(write, compress),
            stream: FrameReader::new(read, upgraded.leftover, config.max_message_size, compress.is_some()),
        };
        if !self.state.resume_enabled() {
            return Ok((ws, Start::Plain(None)));
        }
        match timeout(limit, session_start(&mut ws)).await {
            Err(_) => Err(ConnectError::Timeout(limit)),
            Ok(start) => Ok((ws, start?)),
        }
    }

    /// Ends a session the server will not resume (refused, disabled): the routers get the
    /// `Removed` they were owed, and the application a `Reset`.
    async fn session_over(&self, reason: Refusal) {
        let owed = self.state.take_detached();
        let unconfirmed = self.state.session_reset();
        if owed {
            tracing::info!(connection = %self.state.id, %reason, unconfirmed, "session not resumed");
            let frame = CloseFrame::new(CloseCode::ABNORMAL, format!("session not resumed: {reason}"));
            self.signal.fire(frame.clone());
            self.hub.connection_removed(&self.connection, frame).await;
            self.state.emit(ClientEvent::Reset { reason, unconfirmed });
        }
    }

    /// Runs one open socket until it closes, then reports `Removed` (unless the session
    /// waits for a resume).
    async fn session(&mut self, ws: Ws, start: Start) -> Outcome {
        let state = self.state.clone();
        let config = &self.settings.config;
        let close_timeout = config.close_timeout;
        let Ws { mut sink, mut stream } = ws;
        let pongs = Pongs::default();
        let mut early = None;
        let mut resumed = false;
        match start {
            Start::Plain(first) => {
                if state.resume_enabled() {
                    self.session_over(Refusal::Disabled).await;
                }
                early = first;
            }
            Start::Welcome { token, refused } => {
                if let Some(reason) = refused.or(state.session_resuming().then_some(Refusal::Unknown)) {
                    self.session_over(reason).await;
                }
                state.session_welcome(token);
            }
            Start::Resumed { seen } => match state.session_resumed(seen) {
                Ok(open) => resumed = open,
                Err(error) => {
                    // The server's count contradicts ours: the session cannot go on.
                    tracing::warn!(connection = %state.id, %error, "resumed with a wrong count");
                    self.session_over(error.refusal()).await;
                    let frame = CloseFrame::new(CloseCode::POLICY, "session: resumed with a wrong count");
                    self.close_handshake(&mut sink, &mut stream, &frame).await;
                    return Outcome::Lost { frame, remote: false };
                }
            },
        }
        if !resumed && !state.begin_restore() {
            // Closed while the handshake finished: say goodbye without reporting a
            // connection nobody saw open.
            let frame = match state.take_control() {
                Some(Control::Close(frame)) => frame,
                _ => CloseFrame::new(CloseCode::NORMAL, ""),
            };
            sink.push_close(Some(&frame));
            let _ = timeout(close_timeout, sink.flush()).await;
            return Outcome::Close(frame);
        }
        if !resumed {
            self.signal.reset();
        }
        let mut incoming: Option<Message> = None;
        let ending = {
            let mut restored = resumed;
            if resumed {
                tracing::info!(connection = %state.id, "resumed");
                state.emit(ClientEvent::Resumed);
            }
            let added = async {
                if !resumed {
                    self.hub.connection_added(&self.connection, true).await;
                }
            };
            let writer = write_loop(&state, &mut sink, &pongs);
            let reader = read_loop(
                &self.hub,
                &self.connection,
                &state,
                &mut stream,
                &pongs,
                &mut incoming,
                config.idle_timeout,
                config.ping_interval,
            );
            tokio::pin!(added, writer, reader);
            let ending = loop {
                tokio::select! {
                    () = &mut added, if !restored => {
                        restored = true;
                        state.open();
                        tracing::info!(connection = %state.id, "connected");
                        state.emit(ClientEvent::Open);
                        if let Some(message) = early.take() {
                            // A first frame from a server that does not keep sessions.
                            self.hub.message(&self.connection, message).await;
                        }
                    }
                    ending = &mut reader, if restored => break ending,
                    error = &mut writer => break Ending::Dropped(abnormal(&error.to_string())),
                    control = state.control() => break Ending::Control(control),
                }
            };
            if !restored {
                // Every router must have seen `Added` before it sees `Removed`.
                added.await;
            }
            ending
        };

        let dropped = state.end_session();
        if dropped > 0 {
            tracing::debug!(connection = %state.id, dropped, "restore frames of a closed socket dropped");
        }
        let closing = matches!(ending, Ending::Control(Control::Close(_)));
        if let Some(message) = incoming.take() {
            // The reader was interrupted while handing this frame over: finish the job.
            let delivery = self.hub.message(&self.connection, message);
            if closing {
                if timeout(close_timeout, delivery).await.is_err() {
                    tracing::warn!(connection = %state.id, "hub full while closing: frame dropped");
                }
            } else {
                delivery.await;
            }
        }
        let (frame, outcome) = match ending {
            Ending::Remote(frame) => {
                // The answer echoes the server's code (RFC 6455 5.5.1), or carries none.
                let echo = (frame.code.0 != 1005).then(|| CloseFrame::new(frame.code, ""));
                sink.push_close(echo.as_ref());
                let _ = timeout(close_timeout, sink.flush()).await;
                (frame.clone(), Outcome::Lost { frame, remote: true })
            }
            Ending::Failed(sent) => {
                tracing::info!(connection = %state.id, %sent, "the server broke the protocol");
                sink.push_close(Some(&sent));
                let _ = timeout(close_timeout, sink.flush()).await;
                let frame = abnormal(&sent.reason);
                (frame.clone(), Outcome::Lost { frame, remote: false })
            }
            Ending::Dropped(frame) => (frame.clone(), Outcome::Lost { frame, remote: false }),
            Ending::TooBig => {
                let frame = CloseFrame::new(CloseCode::TOO_BIG, "message too big");
                self.close_handshake(&mut sink, &mut stream, &frame).await;
                (frame.clone(), Outcome::Lost { frame, remote: false })
            }
            Ending::Control(Control::Close(frame)) => {
                self.close_handshake(&mut sink, &mut stream, &frame).await;
                (frame.clone(), Outcome::Close(frame))
            }
            Ending::Control(Control::Reconnect) => {
                let frame = CloseFrame::new(CloseCode::NORMAL, "reconnect");
                self.close_handshake(&mut sink, &mut stream, &frame).await;
                (frame, Outcome::Reconnect)
            }
        };
        drop((sink, stream));
        tracing::info!(connection = %state.id, %frame, "disconnected");
        let detached = match outcome {
            // Lost without a close frame: a session waits for its resume.
            Outcome::Lost { remote: false, .. } if frame.code == CloseCode::ABNORMAL => state.session_lost(),
            _ => {
                state.session_reset();
                false
            }
        };
        if detached {
            state.emit(ClientEvent::Closed { frame });
            return outcome;
        }
        self.signal.fire(frame.clone());
        if closing {
            if timeout(close_timeout, self.hub.connection_removed(&self.connection, frame.clone()))
                .await
                .is_err()
            {
                tracing::warn!(connection = %state.id, "hub full while closing: Removed lost");
            }
        } else {
            self.hub.connection_removed(&self.connection, frame.clone()).await;
        }
        state.emit(ClientEvent::Closed { frame });
        outcome
    }

    /// Sends `frame` and waits (up to `close_timeout`) for the server's close frame,
    /// delivering the data frames that arrive meanwhile.
    async fn close_handshake(&self, sink: &mut Sink, stream: &mut Stream, frame: &CloseFrame) {
        let deadline = Instant::now() + self.settings.config.close_timeout;
        sink.push_close(Some(frame));
        if !matches!(timeout_at(deadline, sink.flush()).await, Ok(Ok(()))) {
            return;
        }
        let drain = async {
            while let Some(Ok(frame)) = stream.next().await {
                match frame {
                    Frame::Close(_) => break,
                    other => {
                        if let Some(message) = data(other) {
                            self.hub.message(&self.connection, message).await;
                        }
                    }
                }
            }
        };
        if timeout_at(deadline, drain).await.is_err() {
            tracing::debug!(connection = %self.state.id, "no close frame from the server in time");
        }
    }
}

/// What the server's first frames said about the session (PROTOCOL.md 9.3).
pub(crate) enum Start {
    /// No session: resume is off, or the server does not keep sessions (then its first
    /// frame, if it was not a session frame, is kept for the application).
    Plain(Option<Message>),
    /// A new session, after a refused resume or not.
    Welcome { token: String, refused: Option<Refusal> },
    /// The session is resumed; the server has our first `seen` frames.
    Resumed { seen: u64 },
}

/// Reads the server's first frames on a socket that asked for a session.
async fn session_start(ws: &mut Ws) -> Result<Start, ConnectError> {
    let mut refused = None;
    loop {
        let message = match ws.stream.next().await {
            None => return Err(ConnectError::SessionStart { reason: "connection lost".to_owned() }),
            Some(Err(err)) => return Err(ConnectError::SessionStart { reason: err.to_string() }),
            Some(Ok(Frame::Close(frame))) => {
                let frame = frame.unwrap_or_else(no_status);
                return Err(ConnectError::SessionStart { reason: format!("closed by the server: {frame}") });
            }
            Some(Ok(Frame::Ping(payload))) => {
                ws.sink.push_control(frame::PONG, &payload);
                ws.sink
                    .flush()
                    .await
                    .map_err(|err| ConnectError::SessionStart { reason: err.to_string() })?;
                continue;
            }
            Some(Ok(other)) => match data(other) {
                Some(message) => message,
                None => continue,
            },
        };
        match SessionFrame::decode(&message) {
            Some(Ok(SessionFrame::Welcome { token, .. })) => return Ok(Start::Welcome { token, refused }),
            Some(Ok(SessionFrame::Resumed { seen })) => return Ok(Start::Resumed { seen }),
            Some(Ok(SessionFrame::Refused { reason: Refusal::Disabled })) => return Ok(Start::Plain(None)),
            // A `welcome` follows.
            Some(Ok(SessionFrame::Refused { reason })) => refused = Some(reason),
            Some(Ok(SessionFrame::Ack { .. })) | Some(Err(_)) => {
                tracing::debug!("unexpected session frame before the session started");
            }
            None => {
                tracing::warn!("the server does not answer session requests: resume is off for this socket");
                return Ok(Start::Plain(Some(message)));
            }
        }
    }
}

/// Waits while the client is stopped (start_closed, retries exhausted, reconnection
/// declined): `None` on `reconnect()`, the close frame on `close()`.
async fn wait_for_reconnect(state: &ClientState) -> Option<CloseFrame> {
    state.set_stopped(true);
    let control = state.control().await;
    state.set_stopped(false);
    match control {
        Control::Close(frame) => Some(frame),
        Control::Reconnect => None,
    }
}

/// A socket after the upgrade: the frames out and the frames in.
struct Ws {
    sink: Sink,
    stream: Stream,
}

/// The pongs the reader owes the server, for the writer to send.
#[derive(Default)]
struct Pongs {
    owed: Mutex<VecDeque<Bytes>>,
    added: Notify,
}

impl Pongs {
    /// Owes a pong carrying `payload`; past [`MAX_PENDING_PONGS`] the oldest is forgotten.
    fn owe(&self, payload: Bytes) {
        let mut owed = self.owed.lock().unwrap_or_else(PoisonError::into_inner);
        if owed.len() == MAX_PENDING_PONGS {
            owed.pop_front();
        }
        owed.push_back(payload);
        drop(owed);
        self.added.notify_one();
    }

    /// The oldest pong owed.
    fn take(&self) -> Option<Bytes> {
        self.owed.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }
}

/// Takes frames from the queue (and pongs owed) and writes them, until the socket fails.
///
/// A frame counts as sent once taken from the queue (the at-most-once point documented in
/// the crate docs): if the socket dies while it sits in a buffer, it is not written again.
async fn write_loop(state: &ClientState, sink: &mut Sink, pongs: &Pongs) -> std::io::Error {
    loop {
        let mut wrote = false;
        loop {
            while let Some(payload) = pongs.take() {
                sink.push_control(frame::PONG, &payload);
                wrote = true;
            }
            if sink.buffered() >= WRITE_BATCH
                && let Err(err) = sink.flush().await
            {
                return err;
            }
            match state.take_next() {
                Some(Outgoing::Ping) => sink.push_control(frame::PING, &[]),
                Some(Outgoing::Data(message)) => sink.push_message(&message),
                None => break,
            }
            wrote = true;
        }
        if wrote {
            if let Err(err) = sink.flush().await {
                return err;
            }
            state.flushed();
        }
        tokio::select! {
            () = state.writable() => {}
            () = pongs.added.notified() => {}
        }
    }
}

/// Reads frames and hands them to the hub, until the socket closes or stays silent for
/// `idle`. Pings the server after `ping` of silence, and owes a pong to each ping.
///
/// A frame being handed over sits in `pending`, so that the caller can finish the handover
/// if this future is dropped in the middle of it.
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    hub: &HubDriver,
    connection: &Connection,
    state: &ClientState,
    stream: &mut Stream,
    pongs: &Pongs,
    pending: &mut Option<Message>,
    idle: Duration,
    ping: Option<Duration>,
) -> Ending {
    let mut last = Instant::now();
    let mut pinged = false;
    loop {
        let ping_at = ping.map(|ping| last + ping);
        let ack_at = state.ack_deadline();
        let next = tokio::select! {
            next = stream.next() => next,
            () = sleep_until(ack_at.unwrap_or(last)), if ack_at.is_some() => {
                state.ack_due(Instant::now());
                continue;
            }
            () = sleep_until(ping_at.unwrap_or(last)), if ping_at.is_some() && !pinged => {
                state.request_ping();
                pinged = true;
                continue;
            }
            () = sleep_until(last + idle) => return Ending::Dropped(abnormal("idle timeout")),
        };
        pinged = false;
        let message = match next {
            None => return Ending::Dropped(abnormal("connection lost")),
            Some(Err(ReadError::Io(err))) => return Ending::Dropped(abnormal(&err.to_string())),
            Some(Err(err)) => {
                let code = err.close_code().unwrap_or(CloseCode::PROTOCOL);
                if code == CloseCode::TOO_BIG {
                    tracing::warn!(connection = %connection.id(), error = %err, "message from the server too big");
                    return Ending::TooBig;
                }
                return Ending::Failed(CloseFrame::new(code, truncate(&err.to_string(), MAX_CLOSE_REASON)));
            }
            Some(Ok(Frame::Close(frame))) => return Ending::Remote(frame.unwrap_or_else(no_status)),
            Some(Ok(Frame::Ping(payload))) => {
                pongs.owe(payload);
                None
            }
            Some(Ok(other)) => data(other),
        };
        if let Some(message) = message
            && matches!(state.incoming(&message, Instant::now()), Incoming::Deliver)
        {
            *pending = Some(message.clone());
            hub.message(connection, message).await;
            *pending = None;
        }
        // Time spent waiting for the hub (backpressure) is not silence from the server.
        last = Instant::now();
    }
}

/// A data frame as a core message; `None` for control frames.
fn data(frame: Frame) -> Option<Message> {
    match frame {
        // The parser (or the inflater) has checked the UTF-8 already; this cannot fail.
        Frame::Text(text) => Text::from_utf8(text).ok().map(Message::Text),
        Frame::Binary(bytes) => Some(Message::Binary(bytes)),
        Frame::Ping(_) | Frame::Pong | Frame::Close(_) => None,
    }
}

/// What a close frame without a status code stands for (RFC 6455 7.1.5).
fn no_status() -> CloseFrame {
    CloseFrame::new(CloseCode(1005), "")
}

fn abnormal(reason: &str) -> CloseFrame {
    CloseFrame::new(CloseCode::ABNORMAL, truncate(reason, MAX_CLOSE_REASON))
}

/// Displays an error with its sources, for logs.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_at_a_char_boundary() {
        let frame = abnormal(&"é".repeat(100));
        assert_eq!(frame.reason.len(), 122);
    }
}
