//! A scripted fake of the views server (router `views`), the real reconnecting client with
//! the views client attached, and bounded waits; the router-independent scaffolding lives
//! in `testkit`.
//!
//! The fake reports everything a client sends to the test, which answers by hand: that
//! way each test states exactly the exchange of `docs/PROTOCOL.md` section 6 it relies on.
#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use network_core::Connection;
use serde_json::Value;
pub use testkit::{WAIT, client_config, lifecycle_until, send_raw, within};
use tokio::sync::broadcast;
use views::client::{ChangeStream, ViewChange, ViewsClient, ViewsClientConfig};
use views::protocol::{Frame, ROUTER};
use views::{Member, UserCount, ViewInfo};
use ws_client::{Client, ClientConfig, ClientEvent};

/// The views router, as the fake server plays it.
pub struct ViewsRouter;

impl testkit::Protocol for ViewsRouter {
    const ROUTER: &'static str = ROUTER;
    type Frame = Frame;
}

/// What the fake server saw, in order.
pub type Seen = testkit::Seen<Frame>;

/// The fake views server.
pub type FakeServer = testkit::FakeServer<ViewsRouter>;

/// Sends `frame` to a client.
pub fn send(connection: &Connection, frame: &Frame) {
    testkit::send(ROUTER, connection, frame);
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
    Frame::State { view: view.into(), members, you: None, id }
}

/// A `state` telling the client that its own member is `you`.
pub fn state_for(view: &str, members: Vec<Member>, you: &str, id: Option<u64>) -> Frame {
    Frame::State { view: view.into(), members, you: Some(you.into()), id }
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
