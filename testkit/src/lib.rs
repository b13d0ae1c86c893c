//! Test scaffolding shared by the tests of the router crates (`channels`, `views`, `sync`)
//! and the fuzz targets. Dev-only: it is never published, and only `[dev-dependencies]`
//! (and the fuzz crate) use it.
//!
//! # Without sockets: the memory network
//! [`memory`] connects a server-side [`MemoryNetwork`] and client-side [`MemoryClient`]s
//! without sockets, built only from network-core's public pieces (the same `Hub` and
//! `LocalAdapter` that `ws-server` and `ws-client` use). Routers attach to either side
//! unchanged; the test opens, ends and reopens the link by hand and scripts faults on it:
//! a frame dropped, frames delayed, frames of an old connection arriving after the new one
//! opened, a connection refused. Under tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`) these tests are deterministic and take no
//! wall-clock time waiting:
//!
//! ```
//! use network_core::{Network, NetworkEvent, envelope};
//! use testkit::{MemoryClient, MemoryNetwork, within};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let server = MemoryNetwork::new();
//! let mut frames = server.events().unwrap(); // no router on the server: the test reads
//! let client = MemoryClient::new(&server);
//! client.connection().send(envelope::json("echo", &1).unwrap()).unwrap(); // queued offline
//! let id = client.connect().await.unwrap();
//! assert!(matches!(within(frames.recv()).await, Some(NetworkEvent::Added(c)) if c.id() == id));
//! assert!(matches!(within(frames.recv()).await, Some(NetworkEvent::Message { .. })));
//! client.disconnect().await;
//! assert!(matches!(within(frames.recv()).await, Some(NetworkEvent::Removed { .. })));
//! # }
//! ```
//!
//! [`RawPeer`] is a connection of a [`MemoryNetwork`] whose frames the test writes itself
//! and whose outgoing frames it checks: the fuzz targets feed routers that way.
//!
//! # Over real sockets: the fake server
//! With the default feature `sockets`, a test describes its router once with [`Protocol`]
//! and then drives a [`FakeServer`] (a real `ws_server::Server`) by hand: the fake reports
//! every connection and frame to the test, which answers with [`send`] or [`send_raw`], so
//! each test states exactly the exchange of `docs/PROTOCOL.md` it relies on.
//!
//! # Over real sockets: the fault proxy
//! With `sockets`, [`FaultProxy`] is a TCP proxy on 127.0.0.1:0 between a client and a
//! real server that adds latency, resets connections (also in the middle of a frame),
//! half-opens them (stops forwarding without closing) and blackholes new ones; see
//! [`proxy`].
//!
//! Everything panics on failure, as test code should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod memory;
#[cfg(feature = "sockets")]
pub mod proxy;
mod redis;

pub use memory::{Direction, MemoryClient, MemoryNetwork, RawPeer, Refused, settle, tagged};
#[cfg(feature = "sockets")]
pub use proxy::{Admission, FaultProxy, Flow, ProxiedConnection, ProxyStats};
pub use redis::RedisServer;

use std::fmt::Debug;
use std::future::Future;
#[cfg(feature = "sockets")]
use std::marker::PhantomData;
#[cfg(feature = "sockets")]
use std::net::SocketAddr;
use std::time::Duration;

use network_core::{Connection, Message, envelope};
#[cfg(feature = "sockets")]
use network_core::{Network, NetworkEvent, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
#[cfg(feature = "sockets")]
use tokio::sync::{broadcast, mpsc};
#[cfg(feature = "sockets")]
use ws_client::{ClientConfig, ClientEvent};
#[cfg(feature = "sockets")]
use ws_server::{Server, ServerConfig};

/// Every wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("timed out")
}

/// The router a [`FakeServer`] stands in for.
pub trait Protocol: Send + 'static {
    /// The router's name in the envelope (`"$r"`).
    const ROUTER: &'static str;

    /// The frames clients send, decoded by the fake.
    type Frame: DeserializeOwned + Debug + Send + 'static;

    /// Called when a client connects, before the test hears of it (to greet it as the
    /// real server does). Does nothing by default.
    fn on_added(_connection: &Connection) {}
}

/// What the fake server saw, in order.
#[derive(Debug)]
pub enum Seen<F> {
    /// A client connected.
    Added(Connection),
    /// A client sent a frame to the router.
    Frame(Connection, F),
    /// A client disconnected.
    Removed,
}

#[cfg(feature = "sockets")]
struct Script<P: Protocol> {
    seen: mpsc::Sender<Seen<P::Frame>>,
}

#[cfg(feature = "sockets")]
impl<P: Protocol> Router<Server> for Script<P> {
    fn name(&self) -> &str {
        P::ROUTER
    }

    async fn on_event(&mut self, _server: &Server, event: NetworkEvent) {
        let seen = match event {
            NetworkEvent::Added(connection) => {
                P::on_added(&connection);
                Seen::Added(connection)
            }
            NetworkEvent::Message { connection, message } => {
                let frame =
                    envelope::decode::<P::Frame>(P::ROUTER, &message).expect("the client sent a valid frame");
                Seen::Frame(connection, frame)
            }
            NetworkEvent::Removed { .. } => Seen::Removed,
            _ => return,
        };
        let _ = self.seen.send(seen).await;
    }
}

#[cfg(feature = "sockets")]
/// A scripted fake of the server of router `P`, on a real `ws_server::Server`.
pub struct FakeServer<P: Protocol> {
    /// The real server underneath.
    pub server: Server,
    seen: mpsc::Receiver<Seen<P::Frame>>,
    protocol: PhantomData<fn() -> P>,
}

#[cfg(feature = "sockets")]
impl<P: Protocol> FakeServer<P> {
    /// A fake server on a free loopback port.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// A fake server on `addr` (to restart one on the same port).
    pub async fn start_at(addr: SocketAddr) -> Self {
        let server = Server::bind(addr, ServerConfig::default()).await.expect("bind");
        let (tx, seen) = mpsc::channel(1024);
        server.attach(Script::<P> { seen: tx }).unwrap();
        Self { server, seen, protocol: PhantomData }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr().unwrap()
    }

    /// The `ws://` URL of the server.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr())
    }

    /// The next thing seen.
    pub async fn next(&mut self) -> Seen<P::Frame> {
        within(self.seen.recv()).await.expect("the fake server stopped")
    }

    /// Waits for the next connection.
    pub async fn connection(&mut self) -> Connection {
        loop {
            if let Seen::Added(connection) = self.next().await {
                return connection;
            }
        }
    }

    /// The next frame from a client, skipping connections added and removed.
    pub async fn frame(&mut self) -> (Connection, P::Frame) {
        loop {
            if let Seen::Frame(connection, frame) = self.next().await {
                return (connection, frame);
            }
        }
    }

    /// Nothing more has been seen so far.
    pub fn nothing_seen(&mut self) -> bool {
        self.seen.try_recv().is_err()
    }

    /// Shuts the server down, within [`WAIT`].
    pub async fn shutdown(&self) {
        within(self.server.shutdown()).await;
    }
}

/// Sends `frame` to a client in the envelope of `router`.
pub fn send(router: &str, connection: &Connection, frame: &impl Serialize) {
    connection.send(envelope::json(router, frame).unwrap()).unwrap();
}

/// Sends raw text or bytes to a client.
pub fn send_raw(connection: &Connection, message: impl Into<Message>) {
    connection.send(message.into()).unwrap();
}

#[cfg(feature = "sockets")]
/// Reconnects fast, so that restarts take milliseconds.
pub fn client_config() -> ClientConfig {
    ClientConfig::default()
        .min_reconnection_delay(Duration::from_millis(20))
        .max_reconnection_delay(Duration::from_millis(100))
}

#[cfg(feature = "sockets")]
/// Waits for the next lifecycle event matching `wanted`.
pub async fn lifecycle_until(
    lifecycle: &mut broadcast::Receiver<ClientEvent>,
    wanted: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    loop {
        let event = within(lifecycle.recv()).await.expect("lifecycle");
        if wanted(&event) {
            return event;
        }
    }
}
