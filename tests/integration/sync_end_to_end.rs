//! The Rust sync client against the real server: a watcher follows a book and the
//! collection while an editor changes them, and after a server restart the watcher
//! re-subscribes and catches up on a change made while it was away.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use realtime::sync::client::{SyncClient, SyncClientConfig};
use realtime::sync::{Op, Route, SyncConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Book {
    id: String,
    title: String,
}

async fn start(addr: SocketAddr, store: &Books) -> Server {
    let server = Server::bind(addr, ServerConfig::default()).await.unwrap();
    let (list, create) = (store.clone(), store.clone());
    let book = book_route(store).collection("/api/books");
    let books = Route::new()
        .read(move |_request| {
            let store = list.clone();
            async move { Ok(Value::Array(store.lock().unwrap().values().cloned().collect())) }
        })
        .create(move |request| {
            let store = create.clone();
            async move {
                let id = (store.lock().unwrap().len() + 1).to_string();
                let book = json!({"id": id, "title": request.data["title"]});
                store.lock().unwrap().insert(id, book.clone());
                Ok(book)
            }
        });
    SyncConfig::default().route("/api/book/:id", book).route("/api/books", books).attach(&server).unwrap();
    server
}

fn client(addr: SocketAddr) -> (Client, SyncClient) {
    let config = ClientConfig::default()
        .min_reconnection_delay(Duration::from_millis(20))
        .max_reconnection_delay(Duration::from_millis(100));
    let client = Client::connect(format!("ws://{addr}"), config).unwrap();
    let sync = SyncClient::attach(&client, SyncClientConfig::default()).unwrap();
    (client, sync)
}

#[tokio::test]
async fn a_watcher_follows_edits_and_catches_up_after_a_restart() {
    let store: Books =
        Arc::new(Mutex::new(BTreeMap::from([("1".into(), json!({"id": "1", "title": "Dune"}))])));
    let server = start("127.0.0.1:0".parse().unwrap(), &store).await;
    let addr = server.local_addr().unwrap();
    let (watcher_client, watcher) = client(addr);
    let (editor_client, editor) = client(addr);

    let book = watcher.sync("/api/book/1").unwrap();
    let mut changes = book.typed::<Book>();
    within(book.connect()).await.unwrap();
    let shelf = watcher.collection::<Book>("/api/books").unwrap();
    within(shelf.start()).await.unwrap();
    assert_eq!(shelf.items(), [Book { id: "1".into(), title: "Dune".into() }]);

    let renamed: Book =
        within(editor.update("/api/book/1", &json!({"title": "Dune Messiah"}))).await.unwrap();
    assert_eq!(renamed.title, "Dune Messiah");
    let change = within(changes.recv()).await.unwrap().unwrap();
    assert_eq!((change.op, change.data.title.as_str(), change.snapshot), (Op::Change, "Dune Messiah", false));
    let created: Book = within(editor.create("/api/books", &json!({"title": "Emma"}))).await.unwrap();
    let mut shelf_changes = shelf.changes();
    while shelf.len() < 2 {
        within(shelf_changes.recv()).await.unwrap();
    }
    assert_eq!(shelf.get(&created.id).unwrap().title, "Emma");
    assert_eq!(shelf.get("1").unwrap().title, "Dune Messiah");
    match within(editor.read::<Book>("/api/book/9")).await {
        Err(realtime::sync::client::RequestError::Remote(error)) => assert_eq!(error.code, "not_found"),
        other => panic!("expected not_found, got {other:?}"),
    }

    // The server goes away; the book changes meanwhile (nobody is connected to hear it).
    server.shutdown().await;
    store.lock().unwrap().insert("1".into(), json!({"id": "1", "title": "Children of Dune"}));
    let restarted = start(addr, &store).await;
    // After re-subscribing, the watcher reads the book again: the change is not missed.
    loop {
        let message = within(changes.recv()).await.unwrap().unwrap();
        if message.data.title == "Children of Dune" {
            assert!(message.snapshot, "the catch-up read, not a push");
            break;
        }
    }
    while shelf.get("1").map(|book| book.title) != Some("Children of Dune".into()) {
        within(shelf_changes.recv()).await.unwrap();
    }
    // And live pushes flow again.
    let _: Book = within(editor.update("/api/book/1", &json!({"title": "Dune"}))).await.unwrap();
    loop {
        let message = within(changes.recv()).await.unwrap().unwrap();
        if !message.snapshot && message.data.title == "Dune" {
            break;
        }
    }
    watcher_client.close().await;
    editor_client.close().await;
    restarted.shutdown().await;
}
