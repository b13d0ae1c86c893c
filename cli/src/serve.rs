//! Serving HTTP and WebSocket on one listener, and the relay of application frames (what
//! is not a router envelope) to every other connection.

use std::net::SocketAddr;
use std::pin::Pin;
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

/// Serves `app` (which hands upgrades to `server`) on `listener`, prints the banner, relays
/// application frames as `relay` says until `shutdown` completes or the server stops, then
/// shuts the server down (close 1001 to every client) and gives idle HTTP connections a
/// second to finish.
///
/// The banner is `listening on ws://ADDR` then `listening on http://ADDR`, in one write,
/// once the listener accepts: HTTP and WebSocket share the port.
pub async fn serve<A: Adapter>(
    server: Server<A>,
    listener: TcpListener,
    app: axum::Router,
    relay: Relay,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(Error::LocalAddr)?;
    let events = server.events().ok_or(Error::EventsTaken)?;
    let (http_done, stop) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn({
        // `axum_listener` gives every socket the server's handshake limits until its first
        // request head is in, as `Server::bind` does.
        let service = app.into_make_service_with_connect_info::<RemoteAddr>();
        let serving = axum::serve(server.axum_listener(listener), service);
        async move {
            serving
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .await
        }
    });
    print_banner(addr, false);
    relay_until(&server, events, relay, shutdown).await;
    server.shutdown().await;
    // The WebSocket connections are closed; idle HTTP connections get a moment to finish.
    let _ = http_done.send(());
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    Ok(())
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
