//! A scripted fake of the sync server (router `sync`), the real reconnecting client, and
//! bounded waits; the router-independent scaffolding lives in `testkit`.
//!
//! The fake reports every connection and frame to the test, which answers by hand: that
//! way each test states exactly the exchange of `docs/PROTOCOL.md` section 7 it relies on.
#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use network_core::Connection;
use serde_json::Value;
use sync::client::{CollectionChange, CollectionEvent, SyncClient, SyncClientConfig};
use sync::protocol::{Frame, Method, Op, ROUTER, RemoteError};
pub use testkit::{WAIT, client_config, lifecycle_until, send_raw, within};
use tokio::sync::broadcast;
use ws_client::{Client, ClientEvent};

/// The sync router, as the fake server plays it.
pub struct SyncRouter;

impl testkit::Protocol for SyncRouter {
    const ROUTER: &'static str = ROUTER;
    type Frame = Frame;
}

/// What the fake server saw, in order.
pub type Seen = testkit::Seen<Frame>;

/// The fake sync server.
pub type FakeServer = testkit::FakeServer<SyncRouter>;

/// Scripted answers of the fake sync server.
#[allow(async_fn_in_trait)]
pub trait Answers {
    /// Answers the next frame, which must be a `sub`, with `subscribed`; returns its path.
    async fn accept_sub(&mut self) -> String;

    /// Answers the next frame, which must be a `sub` with `snapshot` (a collection's
    /// `start`), with `subscribed` at version `v` and `data` as the snapshot; returns its
    /// path.
    async fn accept_snapshot_sub(&mut self, v: u64, data: Value) -> String;

    /// Answers the next frame, which must be a `read` of `path`, with `data`.
    async fn answer_read(&mut self, path: &str, data: Value);
}

impl Answers for FakeServer {
    async fn accept_sub(&mut self) -> String {
        let (connection, frame) = self.frame().await;
        let Frame::Sub { path, id, .. } = frame else { panic!("expected a sub, got {frame:?}") };
        assert!(id.is_some(), "the client numbers its subs");
        send(&connection, &Frame::Subscribed { path: path.clone(), id, v: None, data: None });
        path
    }

    async fn accept_snapshot_sub(&mut self, v: u64, data: Value) -> String {
        let (connection, frame) = self.frame().await;
        let Frame::Sub { path, id, snapshot: true } = frame else {
            panic!("expected a sub with snapshot, got {frame:?}")
        };
        assert!(id.is_some(), "the client numbers its subs");
        send(&connection, &Frame::Subscribed { path: path.clone(), id, v: Some(v), data: Some(data) });
        path
    }

    async fn answer_read(&mut self, path: &str, data: Value) {
        let (connection, frame) = self.frame().await;
        let Frame::Request { method: Method::Read, path: read, id, .. } = frame else {
            panic!("expected a read, got {frame:?}")
        };
        assert_eq!(read, path);
        send(&connection, &reply(id, Ok(data)));
    }
}

/// `(kind, id)` of each change of a collection event (`("invalid", "")` for an invalid
/// item).
pub fn summary<T: std::fmt::Debug>(event: &CollectionEvent<T>) -> Vec<(&'static str, String)> {
    event
        .changes
        .iter()
        .map(|change| match change {
            CollectionChange::Added { id, .. } => ("added", id.clone()),
            CollectionChange::Changed { id, .. } => ("changed", id.clone()),
            CollectionChange::Removed { id, .. } => ("removed", id.clone()),
            CollectionChange::Invalid { .. } => ("invalid", String::new()),
            other => panic!("unknown change {other:?}"),
        })
        .collect()
}

/// Sends `frame` to a client.
pub fn send(connection: &Connection, frame: &Frame) {
    testkit::send(ROUTER, connection, frame);
}

/// A `data` frame.
pub fn push(path: &str, op: Op, data: Value) -> Frame {
    Frame::Data { path: path.into(), op, v: None, data }
}

/// A `data` frame of a versioned subscription, at version `v`.
pub fn versioned_push(path: &str, op: Op, v: u64, data: Value) -> Frame {
    Frame::Data { path: path.into(), op, v: Some(v), data }
}

/// A `reply` frame, error-first.
pub fn reply(id: u64, result: Result<Value, RemoteError>) -> Frame {
    Frame::reply(id, result)
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
