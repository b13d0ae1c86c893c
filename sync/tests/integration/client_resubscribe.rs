//! Server restart: pending requests fail with `Closed`; on the new connection the client
//! sends a `sub` with `snapshot` for every subscription, before the frames queued while
//! the link was down; the answers' values come back as snapshots, so the user sees the
//! current state (a collection replaces its contents and announces the difference), and
//! the pushes sent before an answer are applied after it when they are newer; refused
//! re-subscribes and version gaps (which resync) are reported on `errors()`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::support::*;
use serde::Deserialize;
use serde_json::{Value, json};
use sync::client::{BackgroundError, CollectionChange, RequestError, SyncClientConfig};
use sync::protocol::{Frame, Method};
use sync::{Op, RemoteError};
use ws_client::ClientEvent;

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Book {
    id: u64,
    title: String,
}

/// Polls `future` once: a request sends its frame on the first poll, then waits.
async fn poll_once<T>(future: &mut Pin<Box<impl Future<Output = T>>>) {
    std::future::poll_fn(|cx| {
        assert!(future.as_mut().poll(cx).is_pending(), "the request waits for its reply");
        Poll::Ready(())
    })
    .await;
}

/// The next `n` frames, with the connection they came on.
async fn frames(server: &mut FakeServer, n: usize) -> (network_core::Connection, Vec<Frame>) {
    let mut frames = Vec::new();
    let mut connection = None;
    for _ in 0..n {
        let (from, frame) = server.frame().await;
        connection = Some(from);
        frames.push(frame);
    }
    (connection.unwrap(), frames)
}

fn sub_path(frame: &Frame) -> &str {
    match frame {
        Frame::Sub { path, .. } => path,
        other => panic!("expected a sub, got {other:?}"),
    }
}

/// The path of a `sub` with `snapshot`.
fn snapshot_sub_path(frame: &Frame) -> &str {
    match frame {
        Frame::Sub { path, snapshot: true, .. } => path,
        other => panic!("expected a sub with snapshot, got {other:?}"),
    }
}

fn snapshot_answer(frame: &Frame, v: u64, data: Value) -> Frame {
    let Frame::Sub { path, id, .. } = frame else { panic!("expected a sub, got {frame:?}") };
    Frame::Subscribed { path: path.clone(), id: *id, v: Some(v), data: Some(data) }
}

fn read_path(frame: &Frame) -> &str {
    match frame {
        Frame::Request { method: Method::Read, path, .. } => path,
        other => panic!("expected a read, got {other:?}"),
    }
}

#[tokio::test]
async fn restart_resubscribes_with_snapshots_before_the_queue() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let (client, sync, mut lifecycle) = client(&server.url(), SyncClientConfig::default());
    server.connection().await;

    // A model and a collection, both current.
    let book = sync.sync("/api/book/1").unwrap();
    let mut messages = book.typed::<Book>();
    let (subscribed, _) = tokio::join!(within(book.connect()), server.accept_sub());
    subscribed.unwrap();
    let books = sync.collection::<Book>("/api/books").unwrap();
    let list = json!([{"id": 1, "title": "Dune"}, {"id": 2, "title": "Emma"}]);
    let (started, _) = tokio::join!(within(books.start()), server.accept_snapshot_sub(0, list));
    started.unwrap();
    let mut changes = books.changes();

    // A request the server never answers: the link drops first.
    let body = json!({"title": "lost"});
    let (lost, _) = tokio::join!(within(sync.update::<_, Book>("/api/book/1", &body)), async {
        let frame = server.frame().await;
        server.shutdown().await;
        frame
    });
    assert!(matches!(lost, Err(RequestError::Closed)), "{lost:?}");
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    assert!(!book.is_subscribed());

    // While the link is down, a request waits in the client's queue.
    let body = json!({"title": "queued"});
    let mut queued = Box::pin(sync.update::<_, Book>("/api/book/1", &body));
    poll_once(&mut queued).await;
    assert_eq!(client.queued(), 1);

    // Back on the same port: subs with snapshots in path order, then the queue.
    let mut server = FakeServer::start_at(addr).await;
    let (connection, restore) = frames(&mut server, 3).await;
    assert_eq!(snapshot_sub_path(&restore[0]), "/api/book/1");
    assert_eq!(snapshot_sub_path(&restore[1]), "/api/books");
    let Frame::Request { method: Method::Update, data, id: update_id, .. } = &restore[2] else {
        panic!("expected the queued update, got {:?}", restore[2])
    };
    assert_eq!(data, &json!({"title": "queued"}));

    // The catch-up race, as the real server writes it: while the book's snapshot was
    // read, version 1 (already in the snapshot) and version 2 (a newer change, made after
    // the read took its value) were pushed, and reach the client before the answer,
    // which says version 1 with the older value. Then the queued update and its push.
    send(&connection, &versioned_push("/api/book/1", Op::Change, 1, json!({"id": 1, "title": "Dune I"})));
    send(&connection, &versioned_push("/api/book/1", Op::Change, 2, json!({"id": 1, "title": "Dune III"})));
    send(&connection, &snapshot_answer(&restore[0], 1, json!({"id": 1, "title": "Dune II"})));
    let shelf = json!([{"id": 1, "title": "Dune II"}, {"id": 3, "title": "Ulysses"}]);
    send(&connection, &snapshot_answer(&restore[1], 0, shelf));
    send(&connection, &reply(*update_id, Ok(json!({"id": 1, "title": "queued"}))));
    send(&connection, &versioned_push("/api/book/1", Op::Change, 3, json!({"id": 1, "title": "queued"})));

    assert_eq!(within(queued).await.unwrap(), Book { id: 1, title: "queued".into() });
    assert!(book.is_subscribed());

    // The model's stream: the snapshot, the newer held push after it (the older one is
    // dropped), the next push; the newest value wins.
    let seen: Vec<(String, bool)> = {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let message = within(messages.recv()).await.unwrap().unwrap();
            assert_eq!(message.op, Op::Change);
            seen.push((message.data.title, message.snapshot));
        }
        seen
    };
    assert_eq!(seen, [("Dune II".into(), true), ("Dune III".into(), false), ("queued".into(), false)]);

    // The collection: replaced by the snapshot, the difference announced in one event.
    let event = within(changes.recv()).await.unwrap();
    assert!(event.snapshot);
    let difference: Vec<(&str, String)> = event
        .changes
        .iter()
        .map(|change| match change {
            CollectionChange::Removed { id, .. } => ("removed", id.clone()),
            CollectionChange::Added { id, .. } => ("added", id.clone()),
            CollectionChange::Changed { id, item, previous } => {
                assert_eq!((previous.title.as_str(), item.title.as_str()), ("Dune", "Dune II"));
                ("changed", id.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(difference, [("removed", "2".into()), ("changed", "1".into()), ("added", "3".into())]);
    let titles: Vec<String> = books.items().into_iter().map(|book| book.title).collect();
    assert_eq!(titles, ["Dune II", "Ulysses"]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn refused_resubscribes_and_version_gaps_are_reported() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let (client, sync, mut lifecycle) = client(&server.url(), SyncClientConfig::default());
    server.connection().await;
    let mut errors = sync.errors();
    let [a, b] = ["/a", "/b"].map(|path| sync.sync(path).unwrap());
    let mut a_messages = a.messages();
    let mut b_messages = b.messages();
    for subscription in [&a, &b] {
        let (subscribed, _) = tokio::join!(within(subscription.connect()), server.accept_sub());
        subscribed.unwrap();
    }

    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    let mut server = FakeServer::start_at(addr).await;
    let (connection, restore) = frames(&mut server, 2).await;
    assert_eq!([snapshot_sub_path(&restore[0]), snapshot_sub_path(&restore[1])], ["/a", "/b"]);
    send(&connection, &error(RemoteError::forbidden("banned"), Some(id_of(&restore[0])), Some("/a")));
    send(&connection, &snapshot_answer(&restore[1], 0, json!({"id": "b"})));

    assert_eq!(
        within(errors.recv()).await.unwrap(),
        BackgroundError::ResubscribeRefused { path: "/a".into(), error: RemoteError::forbidden("banned") }
    );
    // `/a` is forgotten: its stream ended.
    assert!(within(a_messages.recv()).await.is_none());
    assert!(!a.is_subscribed());
    // `/b` is subscribed again, with its snapshot, then its pushes.
    let snapshot = within(b_messages.recv()).await.unwrap();
    assert!(snapshot.snapshot && snapshot.data == json!({"id": "b"}));
    assert!(b.is_subscribed());
    send(&connection, &versioned_push("/b", Op::Change, 1, json!({"id": "b", "n": 1})));
    let message = within(b_messages.recv()).await.unwrap();
    assert!(!message.snapshot && message.data["n"] == 1);

    // Version 2 never came: the client reports the gap and asks for a new snapshot.
    send(&connection, &versioned_push("/b", Op::Change, 3, json!({"id": "b", "n": 3})));
    assert_eq!(
        within(errors.recv()).await.unwrap(),
        BackgroundError::Resync { path: "/b".into(), last: 1, received: 3 }
    );
    let (_, resync) = server.frame().await;
    assert_eq!(snapshot_sub_path(&resync), "/b");
    send(&connection, &snapshot_answer(&resync, 3, json!({"id": "b", "n": 3})));
    let snapshot = within(b_messages.recv()).await.unwrap();
    assert!(snapshot.snapshot && snapshot.data["n"] == 3);
    send(&connection, &versioned_push("/b", Op::Remove, 4, Value::Null));
    let message = within(b_messages.recv()).await.unwrap();
    assert!(!message.snapshot && message.op == Op::Remove);

    // The next restart subscribes to `/b` only.
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    let mut server = FakeServer::start_at(addr).await;
    let (_, restore) = frames(&mut server, 1).await;
    assert_eq!(snapshot_sub_path(&restore[0]), "/b");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn without_read_after_resubscribe_only_the_subs_go_out() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let config = SyncClientConfig::default().read_after_resubscribe(false);
    let (client, sync, mut lifecycle) = client(&server.url(), config);
    server.connection().await;
    let book = sync.sync("/api/book/1").unwrap();
    let (subscribed, _) = tokio::join!(within(book.connect()), server.accept_sub());
    subscribed.unwrap();

    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    let mut queued = Box::pin(sync.read::<u32>("/marker"));
    poll_once(&mut queued).await;
    let mut server = FakeServer::start_at(addr).await;
    let (connection, restore) = frames(&mut server, 2).await;
    assert!(matches!(&restore[0], Frame::Sub { snapshot: false, .. }), "{:?}", restore[0]);
    assert_eq!(sub_path(&restore[0]), "/api/book/1");
    assert_eq!(read_path(&restore[1]), "/marker");
    send(&connection, &reply(id_of(&restore[1]), Ok(json!(1))));
    assert_eq!(within(queued).await.unwrap(), 1);
    client.close().await;
    server.shutdown().await;
}
