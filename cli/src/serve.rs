//! Serving HTTP and WebSocket on one listener, and the relay of application frames (what
//! is not a router envelope) to every other connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use network_core::{Adapter, AdapterError, Events, Network, NetworkEvent, Target};
use tokio::net::TcpListener;
use ws_server::{RemoteAddr, Server};

use crate::Error;

/// What happens to an application frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// To every other connection, on every node of a cluster: a chat relay any
    /// WebSocket client can use.
    Others,
    /// Back to its sender only, unchanged (what the Autobahn conformance cases need).
    Echo,
}

/// Where to serve: a bound TCP listener, with TLS or without.
#[derive(Debug)]
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS for every connection; `None` for plain TCP.
    pub tls: Option<Arc<ws_server::rustls::ServerConfig>>,
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Self { tcp, tls: None }
    }
}

/// Serves `app` (which hands upgrades to `server`) on `listener`, prints the banner, relays
/// application frames as `relay` says until `shutdown` completes or the server stops, then
/// shuts the server down (close 1001 to every client) and gives idle HTTP connections a
/// second to finish.
///
/// The banner is `listening on ws://ADDR` then `listening on http://ADDR`, in one write,
/// once the listener accepts: HTTP and WebSocket share the port.
pub async fn serve<A: Adapter>(
    server: Server<A>,
    listener: impl Into<Listener>,
    app: axum::Router,
    relay: Relay,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let Listener { tcp, tls } = listener.into();
    let addr = tcp.local_addr().map_err(Error::LocalAddr)?;
    let events = server.events().ok_or(Error::EventsTaken)?;
    let (http_done, stop) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop.await;
    };
    // Both listeners give every socket the server's handshake limits until its first
    // request head is in, as `Server::bind` does.
    let http = match &tls {
        Some(tls) => {
            let listener = server.axum_tls_listener(tcp, tls.clone()).map_err(Error::LocalAddr)?;
            tokio::spawn(serve_http(listener, app, stopped))
        }
        None => tokio::spawn(serve_http(server.axum_listener(tcp), app, stopped)),
    };
    print_banner(addr, tls.is_some());
    relay_until(&server, events, relay, shutdown).await;
    server.shutdown().await;
    // The WebSocket connections are closed; idle HTTP connections get a moment to finish.
    let _ = http_done.send(());
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    Ok(())
}

/// Serves `app` on `listener` until `stopped`, then lets open requests finish.
async fn serve_http<L>(listener: L, app: axum::Router, stopped: impl Future<Output = ()> + Send + 'static)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    RemoteAddr: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let service = app.into_make_service_with_connect_info::<RemoteAddr>();
    if let Err(error) = axum::serve(listener, service).with_graceful_shutdown(stopped).await {
        tracing::error!(%error, "the http server stopped");
    }
}

/// Prints `listening on ws://ADDR` and `listening on http://ADDR` (`wss`, `https` with
/// TLS) in one write, and no panic if the reader has gone: a parent that reads the first
/// line and closes the pipe must not kill the server (`println!` would panic).
pub fn print_banner(addr: SocketAddr, tls: bool) {
    let (ws, http) = if tls { ("wss", "https") } else { ("ws", "http") };
    let banner = format!("listening on {ws}://{addr}\nlistening on {http}://{addr}\n");
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// A relay whose outcome is still to come.
type Pending = Pin<Box<dyn Future<Output = Result<usize, AdapterError>> + Send>>;

/// Relays in flight at most; past it the server reads nothing more until some finish.
const MAX_RELAYS_IN_FLIGHT: usize = 1024;

/// Handles `events` until `shutdown` completes or they end.
async fn relay_until<A: Adapter>(
    server: &Server<A>,
    mut events: Events,
    relay: Relay,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // Relays waiting for the cluster to take them (see below); bounded.
    let mut relaying: FuturesUnordered<Pending> = FuturesUnordered::new();
    loop {
        if relaying.len() >= MAX_RELAYS_IN_FLIGHT {
            // Full: wait for the oldest outcomes before reading more (the readers then
            // hold their clients back: TCP backpressure, nothing dropped).
            if let Some(Err(error)) = relaying.next().await {
                tracing::warn!(%error, "relay incomplete");
            }
            continue;
        }
        tokio::select! {
            Some(outcome) = relaying.next(), if !relaying.is_empty() => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "relay incomplete");
                }
            }
            event = events.recv() => match event {
                Some(NetworkEvent::Added(connection)) => {
                    tracing::info!(id = %connection.id(), remote = ?connection.meta().remote_addr, "connected");
                }
                Some(NetworkEvent::Message { connection, message }) if relay == Relay::Echo => {
                    let _ = connection.send(message);
                }
                Some(NetworkEvent::Message { connection, message }) => {
                    // To every other connection, on every node of a cluster. The first poll
                    // delivers here and queues the publish, in arrival order; with a cluster
                    // adapter only Redis's receipt is left, awaited out of line so that one
                    // round trip per relay does not bound the relay rate.
                    let others = Target::everyone().except(connection.id());
                    let server = server.clone();
                    let mut pending: Pending =
                        Box::pin(async move { server.adapter().broadcast(&others, message).await });
                    match futures_util::poll!(pending.as_mut()) {
                        Poll::Ready(Err(error)) => tracing::warn!(%error, "relay incomplete"),
                        Poll::Ready(Ok(_)) => {}
                        Poll::Pending => relaying.push(pending),
                    }
                }
                Some(NetworkEvent::Removed { connection, frame }) => {
                    tracing::info!(id = %connection.id(), close = %frame, "disconnected");
                }
                Some(_) => {}
                None => break,
            },
            () = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
        }
    }
}

/// Completes at Ctrl-C or SIGTERM (Ctrl-C only where there is no SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
