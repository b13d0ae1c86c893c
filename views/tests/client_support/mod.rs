//! A scripted fake of the views server (router `views` on a real `ws_server::Server`),
//! the real reconnecting client with the views client attached, and bounded waits.
//!
//! The fake reports everything a client sends to the test, which answers by hand: that
//! way each test states exactly the exchange of `docs/PROTOCOL.md` section 6 it relies on.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use network_core::{Connection, Message, Network, NetworkEvent, Router, envelope};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use views::client::{ChangeStream, ViewChange, ViewsClient, ViewsClientConfig};
use views::protocol::{Frame, ROUTER};
use views::{Member, UserCount, ViewInfo};
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

    pub async fn shutdown(&self) {
        within(self.server.shutdown()).await;
    }
}

/// Sends `frame` to a client.
pub fn send(connection: &Connection, frame: &Frame) {
    connection.send(envelope::json(ROUTER, frame).unwrap()).unwrap();
}

/// Sends raw text or bytes to a client.
pub fn send_raw(connection: &Connection, message: impl Into<Message>) {
    connection.send(message.into()).unwrap();
}

/// Reconnects fast, so that restarts take milliseconds.
pub fn client_config() -> ClientConfig {
    ClientConfig::default()
        .min_reconnection_delay(Duration::from_millis(20))
        .max_reconnection_delay(Duration::from_millis(100))
}

/// A reconnecting client for `url` with the views client attached, and its lifecycle.
pub fn client(
    url: &str,
    client_config: ClientConfig,
    config: ViewsClientConfig,
) -> (Client, ViewsClient, broadcast::Receiver<ClientEvent>) {
    let client = Client::connect(url, client_config).unwrap();
    let lifecycle = client.lifecycle();
    let views = ViewsClient::attach(&client, config).unwrap();
    (client, views, lifecycle)
}

/// A client connected to `server`, whose connection the server has seen.
pub async fn connected(
    server: &mut FakeServer,
    config: ViewsClientConfig,
) -> (Client, ViewsClient, Connection) {
    let (client, views, mut lifecycle) = client(&server.url(), client_config(), config);
    let connection = server.connection().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Open)).await;
    (client, views, connection)
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

/// Reads the id of a request frame.
pub fn id_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Open { id: Some(id), .. } | Frame::Close { id: Some(id), .. } | Frame::Info { id, .. } => *id,
        other => panic!("no id in {other:?}"),
    }
}

/// Expects the next frame to be an `open` of `view`; returns its connection and id.
pub async fn expect_open(server: &mut FakeServer, view: &str) -> (Connection, u64) {
    let (connection, frame) = server.frame().await;
    match &frame {
        Frame::Open { view: opened, id: Some(id) } if opened == view => (connection, *id),
        other => panic!("expected an open of {view:?}, got {other:?}"),
    }
}

/// Opens `view` on `views`, answering with a `state` of `members`.
pub async fn open(
    server: &mut FakeServer,
    views: &ViewsClient,
    view: &str,
    members: Vec<Member>,
) -> views::client::View {
    let (opened, ()) = tokio::join!(within(views.open(view)), async {
        let (connection, id) = expect_open(server, view).await;
        send(&connection, &state(view, members, Some(id)));
    });
    opened.unwrap()
}

pub fn state(view: &str, members: Vec<Member>, id: Option<u64>) -> Frame {
    Frame::State { view: view.into(), members, id }
}

pub fn diff(view: &str, joins: Vec<Member>, leaves: &[&str]) -> Frame {
    Frame::Diff { view: view.into(), joins, leaves: leaves.iter().map(|key| (*key).to_owned()).collect() }
}

pub fn error(code: &str, message: &str, id: Option<u64>, view: Option<&str>) -> Frame {
    Frame::Error { code: code.into(), message: message.into(), id, view: view.map(str::to_owned) }
}

pub fn user(name: &str, clients: u32) -> Member {
    Member {
        key: format!("u:{name}"),
        user: Some(name.into()),
        clients,
        data: Value::Null,
        connections: None,
    }
}

pub fn anonymous(id: u64) -> Member {
    Member { key: format!("c:{id}"), user: None, clients: 1, data: Value::Null, connections: None }
}

pub fn info(view: &str, users: &[(&str, u32)], anonymous: u32) -> ViewInfo {
    let users: Vec<UserCount> = users
        .iter()
        .map(|(user, clients)| UserCount { user: (*user).into(), clients: *clients, connections: None })
        .collect();
    let clients = users.iter().map(|user| user.clients).sum::<u32>() + anonymous;
    ViewInfo { view: view.into(), clients, users, anonymous }
}

/// The next change of `changes`.
pub async fn next_change(changes: &mut ChangeStream) -> ViewChange {
    within(changes.recv()).await.expect("the change stream ended")
}

/// The keys of `members`.
pub fn keys(members: &[Member]) -> Vec<&str> {
    members.iter().map(|member| member.key.as_str()).collect()
}
