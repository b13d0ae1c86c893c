//! Test helpers: a minimal tokio-tungstenite server on 127.0.0.1:0 and bounded waits.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use ws_client::ClientEvent;

pub mod raw;

pub type ServerWs = WebSocketStream<TcpStream>;

/// The bound of every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// An address where nothing listens: connecting is refused at once, for as long as the
/// returned socket lives. It keeps the port bound without listening (and without
/// `SO_REUSEADDR`, so no listener can share the port): the tests of this binary run side by
/// side, and a port merely released could be handed to another test's server, which would
/// then answer this test's attempts.
pub async fn refused_addr() -> (SocketAddr, TcpSocket) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    (socket.local_addr().unwrap(), socket)
}

/// The next lifecycle event (a lagging receiver fails the test).
pub async fn next_event(events: &mut broadcast::Receiver<ClientEvent>) -> ClientEvent {
    within("a lifecycle event", events.recv()).await.expect("lifecycle event")
}

/// Skips events until `pick` returns `Some`.
pub async fn wait_event<T>(
    events: &mut broadcast::Receiver<ClientEvent>,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    loop {
        let event = next_event(events).await;
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

/// What the handshake of one server connection carried.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// Path and query.
    pub uri: String,
    pub headers: tokio_tungstenite::tungstenite::http::HeaderMap,
}

/// A test server: a TCP listener on 127.0.0.1:0 that, while `up`, completes WebSocket
/// handshakes and runs `handler` on each connection, and while down accepts TCP
/// connections and drops them at once (so attempts fail fast).
pub struct Server {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
}

impl Server {
    pub async fn start<H, Fut>(up: bool, handler: H) -> Self
    where
        H: Fn(ServerWs, Handshake) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(up));
        let handler = Arc::new(handler);
        let is_up = up.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if !is_up.load(Ordering::SeqCst) {
                    drop(tcp);
                    continue;
                }
                let handler = handler.clone();
                tokio::spawn(async move {
                    let mut handshake = None;
                    let callback = |request: &Request, response: Response| {
                        handshake = Some(Handshake {
                            uri: request.uri().to_string(),
                            headers: request.headers().clone(),
                        });
                        Ok(response)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                        handler(ws, handshake.unwrap()).await;
                    }
                });
            }
        });
        Self { addr, up }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

type BoxedRun = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A connection handler usable with [`Server::start`].
pub trait Handler: Fn(ServerWs, Handshake) -> BoxedRun + Send + Sync + 'static {}

impl<F: Fn(ServerWs, Handshake) -> BoxedRun + Send + Sync + 'static> Handler for F {}

/// What a recording server saw on a connection.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    Open,
    Text(String),
    Binary(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// A handler that reports every frame to `seen`, and closes with `kick`'s frame when the
/// test sends one.
pub fn recorder(seen: mpsc::Sender<Seen>, kick: broadcast::Sender<(u16, String)>) -> impl Handler {
    move |mut ws, _handshake| {
        let seen = seen.clone();
        let mut kick = kick.subscribe();
        Box::pin(async move {
            let _ = seen.send(Seen::Open).await;
            loop {
                tokio::select! {
                    frame = ws.next() => match frame {
                        Some(Ok(WsMessage::Text(text))) => {
                            let _ = seen.send(Seen::Text(text.to_string())).await;
                        }
                        Some(Ok(WsMessage::Binary(bytes))) => {
                            let _ = seen.send(Seen::Binary(bytes.to_vec())).await;
                        }
                        Some(Ok(WsMessage::Close(frame))) => {
                            let frame = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                            let _ = seen.send(Seen::Close(frame)).await;
                            // Let tungstenite answer the close frame.
                            while let Some(Ok(_)) = ws.next().await {}
                            return;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return,
                    },
                    Ok((code, reason)) = kick.recv() => {
                        let frame = WsCloseFrame { code: code.into(), reason: reason.into() };
                        let _ = ws.close(Some(frame)).await;
                        while let Some(Ok(_)) = ws.next().await {}
                        return;
                    }
                }
            }
        })
    }
}

/// The next thing the recording server saw.
pub async fn next_seen(seen: &mut mpsc::Receiver<Seen>) -> Seen {
    within("the server", seen.recv()).await.expect("server alive")
}
