//! The order of a requester's answer and the frames its request causes (docs/PROTOCOL.md
//! sections 5.3 rule 4 and 7.3 rule 5), over real sockets:
//!
//! - sync: the `reply` comes before the automatic pushes of the request's change, also to
//!   a requester subscribed to the path (and its collection), on one node and across two
//!   nodes sharing rooms through Redis (ignored without `redis-server`, unless `CI` is set);
//! - channels: what a handler sends to the emitting connection while it runs comes before
//!   its `ack`.
//!
//! Before this rule the sync server pushed first and replied after, and with the Redis
//! adapter the reply also waited for the push to be published.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::*;
use realtime::channels::{Channel, ChannelsConfig, RemoteError};
use realtime::network_core::Network;
use realtime::sync::{Route, SyncConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde_json::{Value, json};
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Store = Arc<Mutex<BTreeMap<String, Value>>>;

/// Books at `/api/book/:id` (read, update, delete; collection `/api/books`) and creation
/// in `/api/books`, on `server`.
fn attach_books<N: Network>(server: &N, store: &Store) {
    let (update, delete, create) = (store.clone(), store.clone(), store.clone());
    let book = Route::new()
        .collection("/api/books")
        .update(move |request| {
            let store = update.clone();
            async move {
                let book = json!({"id": request.params["id"], "title": request.data["title"]});
                store.lock().unwrap().insert(request.params["id"].clone(), book.clone());
                Ok(book)
            }
        })
        .delete(move |request| {
            let store = delete.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .remove(&request.params["id"])
                    .ok_or_else(|| RemoteError::not_found("gone"))
            }
        });
    let books = Route::new().create(move |request| {
        let store = create.clone();
        async move {
            let mut store = store.lock().unwrap();
            let id = (store.len() + 1).to_string();
            let book = json!({"id": id, "title": request.data["title"]});
            store.insert(id, book.clone());
            Ok(book)
        }
    });
    SyncConfig::default().route("/api/book/:id", book).route("/api/books", books).attach(server).unwrap();
}

async fn next_body(ws: &mut RawClient) -> Value {
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected text") };
    let mut envelope: Value = serde_json::from_str(&text).unwrap();
    envelope["d"].take()
}

async fn sync(ws: &mut RawClient, body: Value) {
    send_text(ws, &json!({"$r": "sync", "d": body}).to_string()).await;
}

async fn subscribe(ws: &mut RawClient, path: &str, id: u64) {
    sync(ws, json!({"t": "sub", "path": path, "id": id})).await;
    assert_eq!(next_body(ws).await, json!({"t": "subscribed", "path": path, "id": id}));
}

/// The requester's update, create and delete, each answered by its reply and then the
/// pushes of its own change, `rounds` times.
async fn requester_sees_reply_then_its_pushes(ws: &mut RawClient, rounds: u64) {
    subscribe(ws, "/api/book/1", 1).await;
    subscribe(ws, "/api/books", 2).await;
    for round in 0..rounds {
        let id = 100 + 3 * round;
        let title = format!("Dune {round}");
        sync(ws, json!({"t": "request", "method": "update", "path": "/api/book/1", "data": {"title": title}, "id": id}))
            .await;
        let book = json!({"id": "1", "title": title});
        assert_eq!(next_body(ws).await, json!({"t": "reply", "id": id, "data": book}), "round {round}");
        assert_eq!(
            next_body(ws).await,
            json!({"t": "data", "path": "/api/book/1", "op": "change", "data": book})
        );
        assert_eq!(
            next_body(ws).await,
            json!({"t": "data", "path": "/api/books", "op": "change", "data": book})
        );

        sync(ws, json!({"t": "request", "method": "create", "path": "/api/books", "data": {"title": "New"}, "id": id + 1}))
            .await;
        let reply = next_body(ws).await;
        assert_eq!((reply["t"].as_str(), reply["id"].as_u64()), (Some("reply"), Some(id + 1)), "{reply}");
        assert_eq!(
            next_body(ws).await,
            json!({"t": "data", "path": "/api/books", "op": "add", "data": reply["data"]})
        );

        let created = reply["data"]["id"].as_str().unwrap().to_owned();
        sync(
            ws,
            json!({"t": "request", "method": "delete", "path": format!("/api/book/{created}"), "id": id + 2}),
        )
        .await;
        let reply = next_body(ws).await;
        assert_eq!((reply["t"].as_str(), reply["id"].as_u64()), (Some("reply"), Some(id + 2)), "{reply}");
        assert_eq!(
            next_body(ws).await,
            json!({"t": "data", "path": "/api/books", "op": "remove", "data": reply["data"]})
        );
    }
}

#[tokio::test]
async fn sync_replies_before_the_requesters_own_pushes() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    attach_books(&server, &Store::default());
    let mut ws = raw_client(&url(&server)).await;
    requester_sees_reply_then_its_pushes(&mut ws, 20).await;
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn sync_replies_before_the_requesters_own_pushes_across_redis_nodes() {
    let Some(redis) = RedisServer::start() else { return };
    let nodes = redis_nodes(&redis.url(), 2).await;
    // One store: the nodes serve the same data, as an application behind a database does.
    let store = Store::default();
    for node in &nodes {
        attach_books(node, &store);
    }
    let mut watcher = raw_client(&format!("ws://{}/", nodes[1].local_addr().unwrap())).await;
    subscribe(&mut watcher, "/api/book/1", 1).await;
    let mut requester = raw_client(&format!("ws://{}/", nodes[0].local_addr().unwrap())).await;
    requester_sees_reply_then_its_pushes(&mut requester, 5).await;
    // The other node's subscriber got every change too (the last one's title).
    let mut last = Value::Null;
    for _ in 0..5 {
        last = next_body(&mut watcher).await;
    }
    assert_eq!(
        last,
        json!({"t": "data", "path": "/api/book/1", "op": "change", "data": {"id": "1", "title": "Dune 4"}})
    );
}

#[tokio::test]
async fn channels_handlers_frames_come_before_their_ack() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let chat = Channel::new()
        .on_join(|ctx| async move {
            ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string()))
        })
        .on("shout", |ctx, text: String| async move {
            ctx.emit("echo", &text).map_err(|e| RemoteError::internal(e.to_string()))?;
            // The room includes the emitter.
            ctx.messenger()
                .emit_to_room("lobby", "heard", &text)
                .await
                .map_err(|e| RemoteError::internal(e.to_string()))?;
            Ok(text.len())
        });
    ChannelsConfig::default().channel("/chat", chat).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    send_text(&mut ws, r#"{"$r":"ch","d":{"t":"join","ch":"/chat","id":1}}"#).await;
    assert_eq!(next_body(&mut ws).await, json!({"t": "joined", "ch": "/chat", "id": 1}));
    for id in 2..12 {
        send_text(
            &mut ws,
            &json!({"$r": "ch", "d": {"t": "emit", "ch": "/chat", "ev": "shout", "data": "hi", "id": id}})
                .to_string(),
        )
        .await;
        assert_eq!(next_body(&mut ws).await, json!({"t": "emit", "ch": "/chat", "ev": "echo", "data": "hi"}));
        assert_eq!(
            next_body(&mut ws).await,
            json!({"t": "emit", "ch": "/chat", "ev": "heard", "data": "hi"})
        );
        assert_eq!(next_body(&mut ws).await, json!({"t": "ack", "id": id, "data": 2}));
    }
}
