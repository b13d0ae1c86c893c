//! TLS (feature `tls`): the handshake of a socket accepted by [`Server::bind`] when
//! [`ServerConfig::tls`](crate::ServerConfig::tls) is set, and, with `axum` too, a listener
//! whose sockets reach the app decrypted.
//!
//! A TLS handshake is a pending handshake like an HTTP upgrade: it counts towards
//! `max_pending_handshakes` (the oldest is evicted past it) and must complete within
//! `handshake_timeout`; the request head then gets the same limits again.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::server::Inner;

/// Completes the TLS handshake of `stream`, or `None` when it failed, timed out or was
/// evicted by newer handshakes.
pub(crate) async fn accept(
    inner: &Arc<Inner>,
    tls: Arc<rustls::ServerConfig>,
    stream: TcpStream,
) -> Option<TlsStream<TcpStream>> {
    // Writes are coalesced by the outbox; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    let remote_addr = stream.peer_addr().ok();
    let pending = inner.admit_handshake();
    let handshake = tokio::time::timeout(inner.config.handshake_timeout, async {
        tokio::select! {
            accepted = TlsAcceptor::from(tls).accept(stream) => Some(accepted),
            () = pending.evicted() => None,
        }
    });
    match handshake.await {
        Ok(Some(Ok(stream))) => Some(stream),
        Ok(Some(Err(error))) => {
            tracing::debug!(?remote_addr, %error, "tls handshake failed");
            crate::metrics::handshake_refused("tls");
            None
        }
        Ok(None) => {
            tracing::debug!(?remote_addr, "pending tls handshake evicted by newer connections");
            crate::metrics::handshake_refused("evicted");
            None
        }
        Err(_) => {
            tracing::debug!(?remote_addr, "tls handshake timed out");
            crate::metrics::handshake_refused("timeout");
            None
        }
    }
}

#[cfg(feature = "axum")]
pub use listener::TlsListener;

#[cfg(feature = "axum")]
mod listener {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use network_core::Adapter;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio_rustls::server::TlsStream;

    use crate::guarded::GuardedStream;
    use crate::server::Server;

    /// Sockets whose TLS handshake is done and not yet taken by `axum::serve`; past it the
    /// handshakes wait (and time out if axum stays behind).
    const READY_CAPACITY: usize = 64;

    impl<A: Adapter> Server<A> {
        /// Wraps `listener` for `axum::serve` with TLS (features `axum` and `tls`): as
        /// [`axum_listener`](Self::axum_listener), with each socket's TLS handshake done
        /// first, in a task of its own (a slow client does not hold the others back),
        /// under the server's handshake limits. Serve the app with
        /// `into_make_service_with_connect_info::<RemoteAddr>()`.
        pub fn axum_tls_listener(
            &self,
            listener: TcpListener,
            tls: Arc<rustls::ServerConfig>,
        ) -> io::Result<TlsListener> {
            let local_addr = listener.local_addr()?;
            let (ready, incoming) = mpsc::channel(READY_CAPACITY);
            let inner = self.inner().clone();
            let accepting = tokio::spawn(async move {
                loop {
                    let (stream, remote_addr) = match listener.accept().await {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors, or a peer that reset before accept:
                            // back off briefly so a full table can drain.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let (inner, tls, ready) = (inner.clone(), tls.clone(), ready.clone());
                    tokio::spawn(async move {
                        if let Some(stream) = super::accept(&inner, tls, stream).await {
                            let _ = ready.send((GuardedStream::new(stream, &inner), remote_addr)).await;
                        }
                    });
                }
            });
            Ok(TlsListener { incoming, local_addr, accepting })
        }
    }

    /// A TCP listener whose sockets reach `axum::serve` after their TLS handshake, with the
    /// handshake limits of [`GuardedListener`](crate::GuardedListener) on their first
    /// request head. Made by [`Server::axum_tls_listener`]; implements
    /// `axum::serve::Listener`. Dropping it stops accepting.
    pub struct TlsListener {
        incoming: mpsc::Receiver<(GuardedStream<TlsStream<TcpStream>>, SocketAddr)>,
        local_addr: SocketAddr,
        accepting: tokio::task::JoinHandle<()>,
    }

    impl std::fmt::Debug for TlsListener {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TlsListener").field("local_addr", &self.local_addr).finish_non_exhaustive()
        }
    }

    impl Drop for TlsListener {
        fn drop(&mut self) {
            self.accepting.abort();
        }
    }

    impl axum::serve::Listener for TlsListener {
        type Io = GuardedStream<TlsStream<TcpStream>>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            match self.incoming.recv().await {
                Some(accepted) => accepted,
                // The accepting task holds a sender for as long as it runs, and it runs
                // until this listener is dropped.
                None => std::future::pending().await,
            }
        }

        fn local_addr(&self) -> io::Result<Self::Addr> {
            Ok(self.local_addr)
        }
    }

    impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
        for crate::RemoteAddr
    {
        fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
            Self(*stream.remote_addr())
        }
    }
}
