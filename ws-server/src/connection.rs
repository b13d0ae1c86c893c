//! One connection's task: tungstenite reads and answers control frames, the outbox writes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use network_core::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionMeta, Identity, Message, Text,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Error as WsError};

use crate::outbox::{Outbox, ReaderEvent};
use crate::server::Inner;

/// The stream tungstenite sees: reads come from the socket, writes (pongs, close frames)
/// go through the outbox, in order with the data frames.
struct ReadSide<S> {
    read: ReadHalf<S>,
    outbox: Arc<Outbox<WriteHalf<S>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for ReadSide<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for ReadSide<S> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.outbox.send_control(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The writer shuts the socket down once the queue is drained.
        Poll::Ready(Ok(()))
    }
}

pub(crate) fn websocket_config(config: &crate::ServerConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
}

/// Runs an upgraded connection to its end: `Added`, frames, `Removed`.
///
/// The set-up is synchronous so that the returned future (which lives as long as the
/// connection, in the connection's task) holds no copy of `meta` or `identity`: arguments
/// of an `async fn` keep their slots for the whole body.
pub(crate) fn serve<S>(
    inner: Arc<Inner>,
    io: S,
    id: ConnectionId,
    leftover: Vec<u8>,
    meta: ConnectionMeta,
    identity: Option<Identity>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let shard = inner.flusher.shard(id.as_u64());
    let outbox =
        Arc::new_cyclic(|me| Outbox::new(write, inner.config.outgoing_queue_size, shard, me.clone()));
    // The outbox is the connection's link: sends reach its queue in one pointer.
    let (connection, closed_signal) = Connection::new(id, meta, outbox.clone());
    if let Some(identity) = identity {
        connection.set_identity(identity);
    }
    let socket = ReadSide { read, outbox: outbox.clone() };
    run(inner, socket, leftover, outbox, connection, closed_signal)
}

async fn run<S>(
    inner: Arc<Inner>,
    socket: ReadSide<S>,
    leftover: Vec<u8>,
    outbox: Arc<Outbox<WriteHalf<S>>>,
    connection: Connection,
    closed_signal: ClosedSignal,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &inner.config;
    let mut ws =
        WebSocketStream::from_partially_read(socket, leftover, Role::Server, Some(websocket_config(config)))
            .await;
    tracing::debug!(connection = %connection.id(), remote = ?connection.meta().remote_addr, "connection added");
    Box::pin(inner.hub.connection_added(&connection, false)).await;

    let read_side = async {
        let frame = read_loop(&inner, &mut ws, &connection, &outbox).await;
        outbox.finish();
        // Keep the socket until the queue (close frame included) is written, within bounds.
        let _ = tokio::time::timeout(config.close_timeout, outbox.aborted_signal()).await;
        frame
    };
    let write_side = async {
        outbox.run_writer().await;
        // The writer is done (drained after finish, or aborted): release the reader.
        outbox.abort(CloseFrame::new(CloseCode::ABNORMAL, ""));
    };
    let (frame, ()) = tokio::join!(read_side, write_side);
    drop(ws);

    let id = connection.id();
    // Closed first, rooms second: a router joining a room concurrently either joins
    // before `leave_all` (and is undone by it) or sees `is_closed()` and undoes it.
    closed_signal.fire(frame.clone());
    if let Err(error) = inner.rooms.leave_all(id).await {
        tracing::warn!(connection = %id, %error, "leaving rooms failed");
    }
    tracing::debug!(connection = %id, close = %frame, "connection removed");
    Box::pin(inner.hub.connection_removed(&connection, frame)).await;
}

async fn read_loop<S>(
    inner: &Inner,
    ws: &mut WebSocketStream<ReadSide<S>>,
    connection: &Connection,
    outbox: &Outbox<WriteHalf<S>>,
) -> CloseFrame
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

    // Created once, not per frame: each of these registers a waiter when first polled.
    let outbox_event = outbox.reader_event();
    let server_abort = inner.abort.cancelled();
    let shutdown = inner.shutdown.cancelled();
    tokio::pin!(outbox_event, server_abort, shutdown);

    loop {
        let request = tokio::select! {
            biased;
            event = &mut outbox_event => match event {
                ReaderEvent::Aborted(frame) => return frame,
                ReaderEvent::CloseRequested(frame) => {
                    // Re-armed (at most once: a close is requested once) to hear an abort.
                    outbox_event.set(outbox.reader_event());
                    closing.is_none().then_some(frame)
                }
            },
            () = &mut server_abort => return CloseFrame::new(CloseCode::GOING_AWAY, "server stopped"),
            () = &mut shutdown, if closing.is_none() => {
                Some(CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"))
            }
            () = &mut timer => {
                let now = Instant::now();
                if let Some((frame, deadline)) = &closing
                    && now >= *deadline {
                        return frame.clone();
                    }
                if now >= last_received + idle_timeout {
                    tracing::debug!(connection = %connection.id(), "idle timeout");
                    return CloseFrame::new(CloseCode::ABNORMAL, "idle timeout");
                }
                if now >= next_ping {
                    if closing.is_none() {
                        // Boxed, like the other rare steps below: their futures would
                        // otherwise widen the reader's state for the connection's life.
                        let _ = Box::pin(ws.send(tungstenite::Message::Ping(Bytes::new()))).await;
                    }
                    next_ping = now + config.ping_interval.unwrap_or(far);
                }
                let close_deadline = closing.as_ref().map_or(next_ping, |(_, deadline)| *deadline);
                timer.as_mut().reset(next_ping.min(last_received + idle_timeout).min(close_deadline));
                None
            }
            item = ws.next() => {
                last_received = Instant::now();
                match item {
                    None => return ended(closing, CloseFrame::new(CloseCode::ABNORMAL, "")),
                    Some(Ok(tungstenite::Message::Text(text))) => {
                        if closing.is_none() {
                            // tungstenite validated the UTF-8 already; this cannot fail.
                            match Text::from_utf8(Bytes::from(text)) {
                                Ok(text) => inner.hub.message(connection, Message::Text(text)).await,
                                Err(_) => {
                                    let frame = CloseFrame::new(CloseCode::INVALID_PAYLOAD, "invalid UTF-8");
                                    return Box::pin(violation(ws, outbox, frame)).await;
                                }
                            }
                        }
                        None
                    }
                    Some(Ok(tungstenite::Message::Binary(bytes))) => {
                        if closing.is_none() {
                            inner.hub.message(connection, Message::Binary(bytes)).await;
                        }
                        None
                    }
                    Some(Ok(tungstenite::Message::Close(peer))) => {
                        // tungstenite has queued its reply; no data may follow it.
                        outbox.stop_data();
                        let _ = ws.flush().await;
                        let peer = peer.map(|f| CloseFrame::new(CloseCode(f.code.into()), f.reason.as_str()));
                        return ended(closing, peer.unwrap_or_else(|| CloseFrame::new(CloseCode(1005), "")));
                    }
                    Some(Ok(_)) => None, // ping, pong: tungstenite answers pings itself
                    Some(Err(error)) => {
                        let frame = match error_close_frame(&error) {
                            Some(frame) => frame,
                            None => return ended(closing, CloseFrame::new(CloseCode::ABNORMAL, "")),
                        };
                        tracing::debug!(connection = %connection.id(), %error, close = %frame, "protocol violation");
                        if closing.is_some() {
                            return ended(closing, frame);
                        }
                        return Box::pin(violation(ws, outbox, frame)).await;
                    }
                }
            }
        };
        if let Some(frame) = request
            && closing.is_none()
        {
            outbox.stop_data();
            let _ = Box::pin(ws.close(Some(to_tungstenite(&frame)))).await;
            let deadline = Instant::now() + config.close_timeout;
            closing = Some((frame, deadline));
            if deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
            }
        }
    }
}

/// Closes after the peer broke the protocol: the close frame goes out after what is
/// queued, and the socket is dropped without waiting for a reply.
async fn violation<S>(
    ws: &mut WebSocketStream<ReadSide<S>>,
    outbox: &Outbox<WriteHalf<S>>,
    frame: CloseFrame,
) -> CloseFrame
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    outbox.stop_data();
    let _ = ws.close(Some(to_tungstenite(&frame))).await;
    frame
}

/// The close frame that ends a connection we were closing (ours) or that the peer closed.
fn ended(closing: Option<(CloseFrame, Instant)>, otherwise: CloseFrame) -> CloseFrame {
    closing.map(|(frame, _)| frame).unwrap_or(otherwise)
}

/// The close code for a read error the peer caused; `None` when the socket itself failed.
fn error_close_frame(error: &WsError) -> Option<CloseFrame> {
    match error {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Some(CloseFrame::new(CloseCode::TOO_BIG, format!("message of {size} bytes exceeds {max_size}")))
        }
        WsError::Capacity(_) => Some(CloseFrame::new(CloseCode::TOO_BIG, "message too big")),
        WsError::Utf8(_) => Some(CloseFrame::new(CloseCode::INVALID_PAYLOAD, "invalid UTF-8")),
        // EOF without a close frame: the peer vanished, it did not misbehave.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(error) => Some(CloseFrame::new(CloseCode::PROTOCOL, truncate(error.to_string()))),
        _ => None,
    }
}

fn truncate(mut reason: String) -> String {
    // A close reason has at most 123 bytes.
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

fn to_tungstenite(frame: &CloseFrame) -> tungstenite::protocol::CloseFrame {
    tungstenite::protocol::CloseFrame {
        code: frame.code.0.into(),
        reason: truncate(frame.reason.clone()).into(),
    }
}
