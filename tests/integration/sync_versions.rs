//! Versioned sync (PROTOCOL.md 7.3, rule 8), spoken by plain WebSocket clients: a `sub`
//! with `snapshot` is answered with a version and the path's value, and pushes to it carry
//! the next versions; a push made while the snapshot is read is sent, with a higher
//! version, before the answer (the catch-up race); a plain `sub` sees no version.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use futures_util::SinkExt;
use realtime::sync::{Op, RemoteError, Route, SyncConfig, SyncHandle};
use realtime::ws_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The book's title, and the gate a read waits at (when `gated`).
#[derive(Default)]
struct Store {
    title: Mutex<String>,
    gated: Mutex<bool>,
    reading: Notify,
    release: Notify,
}

async fn fixture() -> (Server, SyncHandle<Server>, Arc<Store>) {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let store = Arc::new(Store::default());
    *store.title.lock().unwrap() = "Dune".to_owned();
    let (for_read, for_update) = (store.clone(), store.clone());
    let book = Route::new()
        .read(move |_| {
            let store = for_read.clone();
            async move {
                // The value is read first, then the reply waits: another connection's
                // update lands between the read and its reply.
                let title = store.title.lock().unwrap().clone();
                if *store.gated.lock().unwrap() {
                    store.reading.notify_one();
                    store.release.notified().await;
                }
                Ok(json!({"title": title}))
            }
        })
        .update(move |request| {
            let store = for_update.clone();
            async move {
                let title =
                    request.data["title"].as_str().ok_or_else(|| RemoteError::bad_request("title"))?;
                *store.title.lock().unwrap() = title.to_owned();
                Ok(json!({"title": title}))
            }
        });
    let sync = SyncConfig::default()
        .route("/book", book)
        .route("/unreadable", Route::new())
        .attach(&server)
        .unwrap();
    (server, sync, store)
}

async fn send(ws: &mut RawClient, frame: Value) {
    ws.send(WsMessage::text(json!({"$r": "sync", "d": frame}).to_string())).await.unwrap();
}

async fn next(ws: &mut RawClient) -> Value {
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected text") };
    let mut envelope: Value = serde_json::from_str(&text).unwrap();
    envelope["d"].take()
}

#[tokio::test]
async fn a_snapshot_sub_answers_a_version_and_the_value_and_pushes_count_on() {
    let (server, sync, _store) = fixture().await;
    let mut ada = raw_client(&url(&server)).await;
    let mut bob = raw_client(&url(&server)).await;
    send(&mut ada, json!({"t": "sub", "path": "/book", "id": 1, "snapshot": true})).await;
    assert_eq!(
        next(&mut ada).await,
        json!({"t": "subscribed", "path": "/book", "id": 1, "v": 0, "data": {"title": "Dune"}})
    );
    // A plain subscription is answered and pushed to as before: no version.
    send(&mut bob, json!({"t": "sub", "path": "/book", "id": 1})).await;
    assert_eq!(next(&mut bob).await, json!({"t": "subscribed", "path": "/book", "id": 1}));

    sync.push("/book", Op::Change, &json!({"title": "A"})).await.unwrap();
    sync.push_filtered(&["/book"], Op::Change, &json!({"title": "B"}), |_| true).await.unwrap();
    for (v, title) in [(1, "A"), (2, "B")] {
        assert_eq!(
            next(&mut ada).await,
            json!({"t": "data", "path": "/book", "op": "change", "v": v, "data": {"title": title}})
        );
        assert_eq!(
            next(&mut bob).await,
            json!({"t": "data", "path": "/book", "op": "change", "data": {"title": title}})
        );
    }
    // Subscribing again with a snapshot (a resync) answers the current version.
    send(&mut ada, json!({"t": "sub", "path": "/book", "id": 2, "snapshot": true})).await;
    assert_eq!(next(&mut ada).await["v"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_push_made_while_the_snapshot_is_read_comes_first_with_a_higher_version() {
    let (server, _sync, store) = fixture().await;
    let mut ada = raw_client(&url(&server)).await;
    let mut bob = raw_client(&url(&server)).await;
    *store.gated.lock().unwrap() = true;
    send(&mut ada, json!({"t": "sub", "path": "/book", "id": 1, "snapshot": true})).await;
    within(store.reading.notified()).await;
    *store.gated.lock().unwrap() = false;
    send(
        &mut bob,
        json!({"t": "request", "method": "update", "path": "/book", "data": {"title": "Dune II"}, "id": 5}),
    )
    .await;
    assert_eq!(next(&mut bob).await["id"], 5);
    // The update's push reaches ada while her read is held.
    let push = next(&mut ada).await;
    assert_eq!(
        push,
        json!({"t": "data", "path": "/book", "op": "change", "v": 1, "data": {"title": "Dune II"}})
    );
    store.release.notify_one();
    // The stale snapshot says version 0: a client applies the push (version 1) after it.
    assert_eq!(
        next(&mut ada).await,
        json!({"t": "subscribed", "path": "/book", "id": 1, "v": 0, "data": {"title": "Dune"}})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_snapshot_read_refuses_the_subscription() {
    let (server, sync, _store) = fixture().await;
    let mut ada = raw_client(&url(&server)).await;
    send(&mut ada, json!({"t": "sub", "path": "/unreadable", "id": 3, "snapshot": true})).await;
    let answer = next(&mut ada).await;
    assert_eq!(
        (answer["t"].as_str(), answer["code"].as_str(), answer["id"].as_u64()),
        (Some("error"), Some("no_handler"), Some(3))
    );
    assert!(sync.subscribers("/unreadable").is_empty());
    sync.push("/unreadable", Op::Change, &json!(1)).await.unwrap();
    let more = tokio::time::timeout(Duration::from_millis(150), next_data(&mut ada)).await;
    assert!(more.is_err(), "unexpected frame: {more:?}");
    server.shutdown().await;
}

/// Two nodes sharing rooms through Redis (ignored without `redis-server`, unless `CI` is
/// set): each numbers the pushes for its own connections, so a versioned subscriber of one
/// node gets the other node's pushes and its own in one sequence, and a plain subscriber
/// beside it gets each once, without versions.
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn pushes_from_another_node_are_numbered_by_the_subscribers_node() {
    let Some(redis) = testkit::RedisServer::start() else { return };
    let nodes = redis_nodes(&redis.url(), 2).await;
    let mut handles = Vec::new();
    for node in &nodes {
        let route = Route::new().read(|_| async move { Ok(json!({"title": "Dune"})) });
        handles.push(SyncConfig::default().route("/book", route).attach(node).unwrap());
    }
    let address = format!("ws://{}/", nodes[1].local_addr().unwrap());
    let mut ada = raw_client(&address).await;
    let mut bob = raw_client(&address).await;
    send(&mut ada, json!({"t": "sub", "path": "/book", "id": 1, "snapshot": true})).await;
    assert_eq!(next(&mut ada).await["v"], 0);
    send(&mut bob, json!({"t": "sub", "path": "/book", "id": 1})).await;
    assert_eq!(next(&mut bob).await, json!({"t": "subscribed", "path": "/book", "id": 1}));

    handles[0].push("/book", Op::Change, &json!({"title": "from node 0"})).await.unwrap();
    assert_eq!(
        next(&mut ada).await,
        json!({"t": "data", "path": "/book", "op": "change", "v": 1, "data": {"title": "from node 0"}})
    );
    handles[1].push("/book", Op::Change, &json!({"title": "from node 1"})).await.unwrap();
    assert_eq!(
        next(&mut ada).await,
        json!({"t": "data", "path": "/book", "op": "change", "v": 2, "data": {"title": "from node 1"}})
    );
    for title in ["from node 0", "from node 1"] {
        assert_eq!(
            next(&mut bob).await,
            json!({"t": "data", "path": "/book", "op": "change", "data": {"title": title}})
        );
    }
    let more = tokio::time::timeout(Duration::from_millis(150), next_data(&mut ada)).await;
    assert!(more.is_err(), "unexpected frame: {more:?}");
    for node in nodes {
        node.shutdown().await;
    }
}
