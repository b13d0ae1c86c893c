//! The server's pushes reach every stream of their path, raw and typed; a payload that
//! does not decode is reported on the typed stream, not dropped; other paths' pushes do
//! not leak in; `fetch` delivers the read as a snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use sync::Op;
use sync::client::{SyncClientConfig, SyncMessage};
use sync::protocol::{Frame, Method};

#[derive(Debug, PartialEq, Deserialize)]
struct Book {
    id: u64,
    title: String,
}

#[tokio::test]
async fn pushes_reach_raw_and_typed_streams() {
    let mut server = FakeServer::start().await;
    let (client, sync, connection) = connected(&mut server, SyncClientConfig::default()).await;
    let book = sync.sync("/api/book/1").unwrap();
    let other = sync.sync("/api/book/2").unwrap();
    let mut raw = book.messages();
    let mut typed = book.typed::<Book>();
    let mut second = book.messages();
    let mut others = other.messages();
    let (subscribed, _) = tokio::join!(within(book.connect()), server.accept_sub());
    subscribed.unwrap();

    send(&connection, &push("/api/book/2", Op::Change, json!({"id": 2, "title": "elsewhere"})));
    send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1, "title": "Dune"})));
    send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1, "title": 42})));
    send(&connection, &push("/api/book/1", Op::Remove, json!({"id": 1, "title": "Dune"})));

    let first = within(raw.recv()).await.unwrap();
    assert_eq!(first.path, "/api/book/1");
    assert_eq!(first.op, Op::Change);
    assert_eq!(first.data, json!({"id": 1, "title": "Dune"}));
    assert!(!first.snapshot);
    let all: Vec<SyncMessage> = within(second.by_ref().take(3).collect()).await;
    assert_eq!(all[0], first);
    assert_eq!(all[1].data, json!({"id": 1, "title": 42}));
    assert_eq!(all[2].op, Op::Remove);

    let decoded = within(typed.recv()).await.unwrap().unwrap();
    assert_eq!(decoded.data, Book { id: 1, title: "Dune".into() });
    assert_eq!((decoded.op, decoded.snapshot, decoded.path.as_str()), (Op::Change, false, "/api/book/1"));
    // Reported, not skipped; the next one follows.
    assert!(within(typed.recv()).await.unwrap().is_err());
    let removed = within(typed.next()).await.unwrap().unwrap();
    assert_eq!(removed.op, Op::Remove);

    // `/api/book/2` was never subscribed, but its stream listens: the push the server sent
    // anyway reached it, and nothing of `/api/book/1` did.
    let elsewhere = within(others.recv()).await.unwrap();
    assert_eq!(elsewhere.path, "/api/book/2");
    assert!(others.try_recv().is_none());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_stream_does_not_hold_the_others_back() {
    let mut server = FakeServer::start().await;
    let config = SyncClientConfig::default().message_queue_capacity(1);
    let (client, sync, connection) = connected(&mut server, config).await;
    let book = sync.sync("/api/book/1").unwrap();
    let mut kept = book.messages();
    let dropped = book.messages();
    let (subscribed, _) = tokio::join!(within(book.connect()), server.accept_sub());
    subscribed.unwrap();
    drop(dropped);
    for n in 0..5 {
        send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1, "n": n})));
    }
    // With room for one message per stream, the router waits for this reader between
    // pushes (backpressure), and never for the dropped stream.
    for n in 0..5 {
        assert_eq!(within(kept.recv()).await.unwrap().data, json!({"id": 1, "n": n}));
    }
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_delivers_the_read_as_a_snapshot() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;
    let book = sync.sync("/api/book/1").unwrap();
    let mut messages = book.messages();
    let (fetched, ()) = tokio::join!(within(book.fetch()), async {
        let (connection, frame) = server.frame().await;
        assert_eq!(
            frame,
            Frame::Request {
                method: Method::Read,
                path: "/api/book/1".into(),
                data: json!(null),
                id: id_of(&frame)
            }
        );
        send(&connection, &reply(id_of(&frame), Ok(json!({"id": 1, "title": "Dune"}))));
    });
    fetched.unwrap();
    let snapshot = within(messages.recv()).await.unwrap();
    assert!(snapshot.snapshot);
    assert_eq!((snapshot.op, snapshot.data), (Op::Change, json!({"id": 1, "title": "Dune"})));

    // A failed read delivers nothing.
    let (failed, ()) = tokio::join!(within(book.fetch()), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &reply(id_of(&frame), Err(sync::RemoteError::not_found("no book 1"))));
    });
    assert!(matches!(failed, Err(sync::client::RequestError::Remote(error)) if error.code == "not_found"));
    assert!(messages.try_recv().is_none());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn streams_end_when_the_client_closes() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;
    let book = sync.sync("/api/book/1").unwrap();
    let mut messages = book.messages();
    let mut errors = sync.errors();
    let books = sync.collection::<serde_json::Value>("/api/books").unwrap();
    let mut changes = books.changes();
    client.close().await;
    assert!(within(messages.recv()).await.is_none());
    assert!(within(changes.recv()).await.is_none());
    assert!(within(errors.recv()).await.is_none());
    // Handles made afterwards fail or end at once.
    assert!(within(book.messages().recv()).await.is_none());
    assert!(matches!(within(book.connect()).await, Err(sync::client::SubscribeError::Closed)));
    let late = sync.collection::<serde_json::Value>("/api/books").unwrap();
    assert!(within(late.changes().recv()).await.is_none());
    assert!(matches!(
        within(late.start()).await,
        Err(sync::client::StartError::Subscribe(sync::client::SubscribeError::Closed))
    ));
    assert!(matches!(
        within(books.start()).await,
        Err(sync::client::StartError::Subscribe(sync::client::SubscribeError::Closed))
    ));
    assert!(matches!(within(sync.read::<u32>("/x")).await, Err(sync::client::RequestError::Closed)));
    server.shutdown().await;
}
