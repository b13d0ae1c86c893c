//! A scripted fake of the sync server (router `sync` on a real `ws_server::Server`), the
//! real reconnecting client, and bounded waits.
//!
//! The fake reports every connection and frame to the test, which answers by hand: that
//! way each test states exactly the exchange of `docs/PROTOCOL.md` section 7 it relies on.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use network_core::{Connection, Message, Network, NetworkEvent, Router, envelope};
use serde_json::Value;
use sync::client::{SyncClient, SyncClientConfig};
use sync::protocol::{Frame, Method, Op, ROUTER, RemoteError};
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent};
use ws_server::{Server, ServerConfig};

/// Every wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("timed out")
}

/// What the fake server saw, in order.
#[derive(Debug)]
pub enum Seen {
    Added(Connection),
    Frame(Connection, Frame),
    Removed,
}

struct Script {
    seen: mpsc::Sender<Seen>,
}

impl Router<Server> for Script {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, _server: &Server, event: NetworkEvent) {
        let seen = match event {
            NetworkEvent::Added(connection) => Seen::Added(connection),
            NetworkEvent::Message { connection, message } => {
                let frame =
                    envelope::decode::<Frame>(ROUTER, &message).expect("the client sent a valid frame");
                Seen::Frame(connection, frame)
            }
            NetworkEvent::Removed { .. } => Seen::Removed,
            _ => return,
        };
        let _ = self.seen.send(seen).await;
    }
}

pub struct FakeServer {
    pub server: Server,
    seen: mpsc::Receiver<Seen>,
}

impl FakeServer {
    /// A fake server on a free loopback port.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// A fake server on `addr` (to restart one on the same port).
    pub async fn start_at(addr: SocketAddr) -> Self {
        let server = Server::bind(addr, ServerConfig::default()).await.expect("bind");
        let (tx, seen) = mpsc::channel(1024);
        server.attach(Script { seen: tx }).unwrap();
        Self { server, seen }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr().unwrap()
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr())
    }

    /// The next thing seen.
    pub async fn next(&mut self) -> Seen {
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
    pub async fn frame(&mut self) -> (Connection, Frame) {
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

    /// Answers the next frame, which must be a `sub`, with `subscribed`; returns its path.
    pub async fn accept_sub(&mut self) -> String {
        let (connection, frame) = self.frame().await;
        let Frame::Sub { path, id } = frame else { panic!("expected a sub, got {frame:?}") };
        assert!(id.is_some(), "the client numbers its subs");
        send(&connection, &Frame::Subscribed { path: path.clone(), id });
        path
    }

    /// Answers the next frame, which must be a `read` of `path`, with `data`.
    pub async fn answer_read(&mut self, path: &str, data: Value) {
        let (connection, frame) = self.frame().await;
        let Frame::Request { method: Method::Read, path: read, id, .. } = frame else {
            panic!("expected a read, got {frame:?}")
        };
        assert_eq!(read, path);
        send(&connection, &reply(id, Ok(data)));
    }

    pub async fn shutdown(&self) {
        within(self.server.shutdown()).await;
    }
}

/// Sends `frame` to a client.
pub fn send(connection: &Connection, frame: &Frame) {
    connection.send(envelope::json(ROUTER, frame).unwrap()).unwrap();
}

/// Sends a raw frame to a client.
pub fn send_raw(connection: &Connection, message: impl Into<Message>) {
    connection.send(message.into()).unwrap();
}

/// A `data` frame.
pub fn push(path: &str, op: Op, data: Value) -> Frame {
    Frame::Data { path: path.into(), op, data }
}

/// A `reply` frame, error-first.
pub fn reply(id: u64, result: Result<Value, RemoteError>) -> Frame {
    match result {
        Ok(data) => Frame::Reply { id, data, err: None },
        Err(error) => Frame::Reply { id, data: Value::Null, err: Some(error) },
    }
}

/// An `error` frame.
pub fn error(error: RemoteError, id: Option<u64>, path: Option<&str>) -> Frame {
    Frame::Error { code: error.code, message: error.message, id, path: path.map(str::to_owned) }
}

/// The id of a frame that carries one.
pub fn id_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Sub { id: Some(id), .. } | Frame::Unsub { id: Some(id), .. } | Frame::Request { id, .. } => {
            *id
        }
        other => panic!("no id in {other:?}"),
    }
}

/// Reconnects fast, so that restarts take milliseconds.
pub fn client_config() -> ClientConfig {
    ClientConfig::default()
        .min_reconnection_delay(Duration::from_millis(20))
        .max_reconnection_delay(Duration::from_millis(100))
}

/// A reconnecting client for `url` with the sync router attached, and its lifecycle.
pub fn client(url: &str, config: SyncClientConfig) -> (Client, SyncClient, broadcast::Receiver<ClientEvent>) {
    let client = Client::connect(url, client_config()).unwrap();
    let lifecycle = client.lifecycle();
    let sync = SyncClient::attach(&client, config).unwrap();
    (client, sync, lifecycle)
}

/// A client connected to `server`, whose connection the server has seen.
pub async fn connected(
    server: &mut FakeServer,
    config: SyncClientConfig,
) -> (Client, SyncClient, Connection) {
    let (client, sync, _) = client(&server.url(), config);
    let connection = server.connection().await;
    assert!(within(sync.ready()).await);
    (client, sync, connection)
}

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
