//! The background task: connect, run a session, back off, repeat.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use network_core::resume::{Refusal, SessionFrame};
use network_core::{CloseCode, CloseFrame, ClosedSignal, Connection, HubDriver, Message, Text};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as WsCloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::backoff::Backoff;
use crate::config::Settings;
use crate::error::ConnectError;
use crate::event::ClientEvent;
use crate::resume::Incoming;
use crate::state::{ClientState, Control, Outgoing};
use crate::url::{self, UrlSource};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Ws, WsMessage>;
type Stream = SplitStream<Ws>;

/// The read buffer of each socket: small, because a client holds few sockets but may run
/// on small devices; tungstenite grows it for bigger frames up to `max_message_size`.
const READ_BUFFER_SIZE: usize = 8 * 1024;
/// The longest close reason on the wire (RFC 6455: 125 bytes of payload minus the code).
const MAX_CLOSE_REASON: usize = 123;

/// How a session ended.
enum Ending {
    /// The server sent a close frame.
    Remote(CloseFrame),
    /// The socket died (error, end of stream, idle timeout); nothing more can be sent.
    Dropped(CloseFrame),
    /// A frame was bigger than `max_message_size`: the client closes with 1009.
    TooBig,
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
        let mut request = target
            .uri
            .clone()
            .into_client_request()
            .map_err(|err| ConnectError::InvalidUrl { url: target.url.clone(), reason: err.to_string() })?;
        for (name, value) in &config.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        let connector = if target.is_tls() {
            let tls = match &self.tls {
                Some(tls) => tls.clone(),
                None => {
                    let tls = crate::tls::client_config().map_err(|err| ConnectError::Tls(Arc::new(err)))?;
                    self.tls = Some(tls.clone());
                    tls
                }
            };
            Connector::Rustls(tls)
        } else {
            Connector::Plain
        };
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .write_buffer_size(0)
            .max_message_size(Some(config.max_message_size))
            .max_frame_size(Some(config.max_message_size));
        let handshake =
            tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, Some(connector));
        let mut ws = match timeout(limit, handshake).await {
            Err(_) => return Err(ConnectError::Timeout(limit)),
            Ok(Err(err)) => return Err(connect_error(err, &target.url)),
            Ok(Ok((ws, _response))) => ws,
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
        let (mut sink, mut stream) = ws.split();
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
            let _ = timeout(close_timeout, sink.send(WsMessage::Close(Some(ws_close_frame(&frame))))).await;
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
            let writer = write_loop(&state, &mut sink);
            let reader = read_loop(
                &self.hub,
                &self.connection,
                &state,
                &mut stream,
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
                // tungstenite has queued the answer to the server's close frame.
                let _ = timeout(close_timeout, sink.flush()).await;
                (frame.clone(), Outcome::Lost { frame, remote: true })
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
        if timeout_at(deadline, sink.send(WsMessage::Close(Some(ws_close_frame(frame))))).await.is_err() {
            return;
        }
        let drain = async {
            while let Some(Ok(message)) = stream.next().await {
                match message {
                    WsMessage::Close(_) => break,
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
        let message = match ws.next().await {
            None => return Err(ConnectError::SessionStart { reason: "connection lost".to_owned() }),
            Some(Err(err)) => return Err(ConnectError::SessionStart { reason: err.to_string() }),
            Some(Ok(WsMessage::Close(frame))) => {
                let frame =
                    frame.map_or_else(|| CloseFrame::new(CloseCode(1005), ""), |frame| close_frame(&frame));
                return Err(ConnectError::SessionStart { reason: format!("closed by the server: {frame}") });
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

/// Takes frames from the queue and writes them, until the socket fails.
///
/// A frame counts as sent once taken from the queue (the at-most-once point documented in
/// the crate docs): if the socket dies while it sits in a buffer, it is not written again.
async fn write_loop(state: &ClientState, sink: &mut Sink) -> tungstenite::Error {
    loop {
        let mut wrote = false;
        loop {
            if let Err(err) = poll_fn(|cx| sink.poll_ready_unpin(cx)).await {
                return err;
            }
            let frame = match state.take_next() {
                Some(Outgoing::Ping) => WsMessage::Ping(Bytes::new()),
                Some(Outgoing::Data(message)) => ws_message(message),
                None => break,
            };
            if let Err(err) = sink.start_send_unpin(frame) {
                return err;
            }
            wrote = true;
        }
        if wrote {
            if let Err(err) = poll_fn(|cx| sink.poll_flush_unpin(cx)).await {
                return err;
            }
            state.flushed();
        }
        state.writable().await;
    }
}

/// Reads frames and hands them to the hub, until the socket closes or stays silent for
/// `idle`. Pings the server after `ping` of silence.
///
/// A frame being handed over sits in `pending`, so that the caller can finish the handover
/// if this future is dropped in the middle of it.
async fn read_loop(
    hub: &HubDriver,
    connection: &Connection,
    state: &ClientState,
    stream: &mut Stream,
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
            Some(Err(tungstenite::Error::Capacity(err))) => {
                tracing::warn!(connection = %connection.id(), error = %err, "frame from the server too big");
                return Ending::TooBig;
            }
            Some(Err(err)) => return Ending::Dropped(abnormal(&err.to_string())),
            Some(Ok(WsMessage::Close(frame))) => {
                let frame =
                    frame.map_or_else(|| CloseFrame::new(CloseCode(1005), ""), |frame| close_frame(&frame));
                return Ending::Remote(frame);
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

/// A data frame as a core message; `None` for control frames (tungstenite answers pings).
fn data(message: WsMessage) -> Option<Message> {
    match message {
        // tungstenite has checked the UTF-8 already; the check here cannot fail.
        WsMessage::Text(text) => Text::from_utf8(Bytes::from(text)).ok().map(Message::Text),
        WsMessage::Binary(bytes) => Some(Message::Binary(bytes)),
        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Close(_) | WsMessage::Frame(_) => None,
    }
}

fn ws_message(message: Message) -> WsMessage {
    match message {
        Message::Text(text) => {
            let bytes = text.into_bytes();
            // `Text` is valid UTF-8, so this cannot fail (and never copies).
            match Utf8Bytes::try_from(bytes.clone()) {
                Ok(text) => WsMessage::Text(text),
                Err(_) => WsMessage::Binary(bytes),
            }
        }
        Message::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

fn abnormal(reason: &str) -> CloseFrame {
    CloseFrame::new(CloseCode::ABNORMAL, truncate(reason, MAX_CLOSE_REASON))
}

fn close_frame(frame: &WsCloseFrame) -> CloseFrame {
    CloseFrame::new(CloseCode(u16::from(frame.code)), frame.reason.as_str())
}

/// The wire form of `frame`: codes that may not be sent (1005, 1006, 1015, below 1000)
/// become 1000, and the reason is cut to 123 bytes.
fn ws_close_frame(frame: &CloseFrame) -> WsCloseFrame {
    let code = WsCloseCode::from(frame.code.0);
    let code = if code.is_allowed() { code } else { WsCloseCode::Normal };
    WsCloseFrame { code, reason: Utf8Bytes::from(truncate(&frame.reason, MAX_CLOSE_REASON)) }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn connect_error(err: tungstenite::Error, url: &str) -> ConnectError {
    match err {
        tungstenite::Error::Io(io) => {
            // tokio-rustls reports handshake failures as I/O errors wrapping rustls's.
            let is_tls = io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
            if is_tls { ConnectError::Tls(Arc::new(io)) } else { ConnectError::Io(Arc::new(io)) }
        }
        tungstenite::Error::Tls(tls) => ConnectError::Tls(Arc::new(tls)),
        tungstenite::Error::Http(response) => ConnectError::Rejected { status: response.status().as_u16() },
        tungstenite::Error::Url(reason) => {
            ConnectError::InvalidUrl { url: url.to_owned(), reason: reason.to_string() }
        }
        other => ConnectError::Handshake(Arc::new(other)),
    }
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
        let reason = "é".repeat(100);
        let cut = truncate(&reason, MAX_CLOSE_REASON);
        assert!(cut.len() <= MAX_CLOSE_REASON && cut.len() == 122);
        assert_eq!(truncate("short", 123), "short");
    }

    #[test]
    fn unsendable_codes_become_normal() {
        let frame = ws_close_frame(&CloseFrame::new(CloseCode::ABNORMAL, "x"));
        assert_eq!(u16::from(frame.code), 1000);
        let frame = ws_close_frame(&CloseFrame::new(CloseCode(4001), "banned"));
        assert_eq!(u16::from(frame.code), 4001);
    }
}
