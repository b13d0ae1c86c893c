//! A listener for `axum::serve` that gives the mounted route the handshake limits of
//! [`Server::bind`] (feature `axum`).
//!
//! axum's `serve` reads request heads without a deadline or a size of ours: a socket that
//! connects and stays silent, or trickles its head a byte at a time, stays open for ever,
//! and enough of them take every file descriptor. A tower layer cannot help, since it only
//! runs once a head is complete. So the limits live in the stream: [`GuardedListener`]
//! wraps each accepted socket, and until the first request head has arrived the socket
//! counts as a pending handshake of the server (capped by `max_pending_handshakes`, oldest
//! evicted), must deliver the whole head within `handshake_timeout`, and may send at most
//! `max_handshake_size` bytes of head (past it: HTTP 431 with the refusal shape of
//! `Server::bind`, and the socket is closed). Later requests on a kept-alive connection
//! are axum's and hyper's business.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::StatusCode;
use network_core::Adapter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::handshake::{Reject, reject_response};
use crate::pending::PendingHandshake;
use crate::server::{Inner, Server};

impl<A: Adapter> Server<A> {
    /// Wraps `listener` for `axum::serve`, so that the app's connections get this server's
    /// handshake limits (see [`GuardedListener`]):
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use ws_server::{Server, ServerConfig};
    /// let server = Server::detached(ServerConfig::default())?;
    /// let app = axum::Router::new().route("/ws", server.axum_route());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// axum::serve(
    ///     server.axum_listener(listener),
    ///     app.into_make_service_with_connect_info::<ws_server::RemoteAddr>(),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub fn axum_listener(&self, listener: TcpListener) -> GuardedListener {
        GuardedListener { listener, inner: self.inner().clone() }
    }
}

/// A TCP listener whose sockets obey a [`Server`]'s handshake limits until their first
/// request head is in: `handshake_timeout` for the whole head, `max_handshake_size` (else
/// 431), and `max_pending_handshakes` (the oldest pending socket is closed past it). Made
/// by [`Server::axum_listener`]; implements `axum::serve::Listener`.
pub struct GuardedListener {
    listener: TcpListener,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GuardedListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedListener").field("listener", &self.listener).finish_non_exhaustive()
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (GuardedStream::new(stream, &self.inner), addr);
                }
                Err(error) => {
                    // Out of file descriptors, or a peer that reset before accept: not
                    // the listener's end. Back off briefly so a full table can drain.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// The peer's address, as axum's `ConnectInfo` for a [`GuardedListener`] (axum implements
/// its `Connected` for `SocketAddr` only on its own listeners, and the orphan rule keeps us
/// from adding it): serve the app with `into_make_service_with_connect_info::<RemoteAddr>()`
/// and handlers extract `ConnectInfo<RemoteAddr>`; the WebSocket route reads it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, GuardedListener>> for RemoteAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, GuardedListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for RemoteAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// A socket accepted by a [`GuardedListener`] (or, decrypted, by a `TlsListener`).
pub struct GuardedStream<S = TcpStream> {
    io: S,
    /// Until the first head is complete. Boxed: it is dropped then, and an upgraded
    /// connection keeps this stream for its whole life.
    head: Option<Box<HeadGuard>>,
}

impl<S> GuardedStream<S> {
    /// `io`, under `inner`'s handshake limits from now until its first request head is in.
    pub(crate) fn new(io: S, inner: &Inner) -> Self {
        let config = &inner.config;
        let head = HeadGuard {
            pending: inner.admit_handshake(),
            evicted: None,
            deadline: Box::pin(tokio::time::sleep(config.handshake_timeout)),
            scanner: HeadScanner::default(),
            max_size: config.max_handshake_size,
        };
        Self { io, head: Some(Box::new(head)) }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for GuardedStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream").field("io", &self.io).finish_non_exhaustive()
    }
}

struct HeadGuard {
    pending: PendingHandshake,
    evicted: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    deadline: Pin<Box<Sleep>>,
    scanner: HeadScanner,
    max_size: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> AsyncRead for GuardedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(head) = &mut this.head {
            let evicted = head.evicted.get_or_insert_with(|| Box::pin(head.pending.evicted()));
            if evicted.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "evicted by newer handshakes",
                )));
            }
            if head.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out")));
            }
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if let Some(head) = &mut this.head {
            match head.scanner.scan(&buf.filled()[before..]) {
                _ if head.scanner.seen > head.max_size => {
                    // Refused like `Server::bind` refuses, written straight to the socket
                    // (a few dozen bytes: a fresh socket's buffer takes them), then the
                    // read fails so hyper drops the connection.
                    let reject =
                        Reject::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large");
                    // Over TLS nothing can be written without polling: the socket just closes.
                    if let Some(tcp) = (&this.io as &dyn std::any::Any).downcast_ref::<TcpStream>() {
                        let _ = tcp.try_write(reject_response(&reject).as_bytes());
                    }
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request head too large",
                    )));
                }
                Scan::Complete => this.head = None,
                Scan::Partial => {}
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Finds the end of an HTTP request head (the first empty line) across reads.
#[derive(Default)]
struct HeadScanner {
    /// How much of `\r\n\r\n` the last bytes matched.
    matched: usize,
    /// Bytes of head seen so far.
    seen: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Complete,
    Partial,
}

impl HeadScanner {
    fn scan(&mut self, bytes: &[u8]) -> Scan {
        const END: &[u8; 4] = b"\r\n\r\n";
        for &byte in bytes {
            self.seen += 1;
            self.matched = if byte == END[self.matched] {
                self.matched + 1
            } else if byte == b'\r' {
                1
            } else {
                0
            };
            if self.matched == END.len() {
                return Scan::Complete;
            }
        }
        Scan::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_first_empty_line_whatever_the_reads() {
        let head = b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\nbody";
        for split in 0..head.len() {
            let mut scanner = HeadScanner::default();
            let first = scanner.scan(&head[..split]);
            let done = first == Scan::Complete || scanner.scan(&head[split..]) == Scan::Complete;
            assert!(done, "split at {split}");
        }
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.scan(b"GET / HTTP/1.1\r\nX: \r\r\n"), Scan::Partial);
        assert_eq!(scanner.scan(b"\r\n"), Scan::Complete);
    }
}
