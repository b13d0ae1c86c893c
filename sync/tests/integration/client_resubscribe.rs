//! Server restart: pending requests fail with `Closed`; on the new connection the client
//! sends `sub` for every subscription and then `read`s each, before the frames queued while
//! the link was down; the reads come back as snapshots, so the user sees the current state
//! (a collection replaces its contents and announces the difference); refused
//! re-subscribes and failed reads are reported on `errors()`.
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

fn read_path(frame: &Frame) -> &str {
    match frame {
        Frame::Request { method: Method::Read, path, .. } => path,
        other => panic!("expected a read, got {other:?}"),
    }
}

#[tokio::test]
async fn restart_resubscribes_and_reads_before_the_queue() {
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
    let (started, ()) = tokio::join!(within(books.start()), async {
        server.accept_sub().await;
        server
            .answer_read("/api/books", json!([{"id": 1, "title": "Dune"}, {"id": 2, "title": "Emma"}]))
            .await;
    });
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

    // Back on the same port: subs in path order, then the reads, then the queue.
    let mut server = FakeServer::start_at(addr).await;
    let (connection, restore) = frames(&mut server, 5).await;
    assert_eq!(sub_path(&restore[0]), "/api/book/1");
    assert_eq!(sub_path(&restore[1]), "/api/books");
    assert_eq!(read_path(&restore[2]), "/api/book/1");
    assert_eq!(read_path(&restore[3]), "/api/books");
    let Frame::Request { method: Method::Update, data, id: update_id, .. } = &restore[4] else {
        panic!("expected the queued update, got {:?}", restore[4])
    };
    assert_eq!(data, &json!({"title": "queued"}));

    // The server answers in order, as the real one handles them: subscribed, a push made
    // once subscribed, the reads (changed while away), then the queued update.
    for frame in &restore[..2] {
        let Frame::Sub { path, id, .. } = frame else { unreachable!() };
        send(&connection, &Frame::Subscribed { path: path.clone(), id: *id, v: None, data: None });
    }
    send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1, "title": "Dune II"})));
    send(&connection, &reply(id_of(&restore[2]), Ok(json!({"id": 1, "title": "Dune II"}))));
    send(
        &connection,
        &reply(id_of(&restore[3]), Ok(json!([{"id": 1, "title": "Dune II"}, {"id": 3, "title": "Ulysses"}]))),
    );
    send(&connection, &reply(*update_id, Ok(json!({"id": 1, "title": "queued"}))));
    send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1, "title": "queued"})));

    assert_eq!(within(queued).await.unwrap(), Book { id: 1, title: "queued".into() });
    assert!(book.is_subscribed());

    // The model's stream: the push, the snapshot with the current state, the next push.
    let seen: Vec<(String, bool)> = {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let message = within(messages.recv()).await.unwrap().unwrap();
            assert_eq!(message.op, Op::Change);
            seen.push((message.data.title, message.snapshot));
        }
        seen
    };
    assert_eq!(seen, [("Dune II".into(), false), ("Dune II".into(), true), ("queued".into(), false)]);

    // The collection: replaced by the read, the difference announced in one event.
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
async fn refused_resubscribes_and_failed_reads_are_reported() {
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
    let (connection, restore) = frames(&mut server, 4).await;
    assert_eq!([sub_path(&restore[0]), sub_path(&restore[1])], ["/a", "/b"]);
    assert_eq!([read_path(&restore[2]), read_path(&restore[3])], ["/a", "/b"]);
    send(&connection, &error(RemoteError::forbidden("banned"), Some(id_of(&restore[0])), Some("/a")));
    let Frame::Sub { path, id, .. } = &restore[1] else { unreachable!() };
    send(&connection, &Frame::Subscribed { path: path.clone(), id: *id, v: None, data: None });
    send(&connection, &reply(id_of(&restore[2]), Ok(json!({"id": "a"}))));
    send(&connection, &reply(id_of(&restore[3]), Err(RemoteError::not_found("deleted meanwhile"))));

    assert_eq!(
        within(errors.recv()).await.unwrap(),
        BackgroundError::ResubscribeRefused { path: "/a".into(), error: RemoteError::forbidden("banned") }
    );
    assert_eq!(
        within(errors.recv()).await.unwrap(),
        BackgroundError::ResyncFailed {
            path: "/b".into(),
            error: RemoteError::not_found("deleted meanwhile")
        }
    );
    // `/a` is forgotten: its stream ended without the read's answer.
    assert!(within(a_messages.recv()).await.is_none());
    assert!(!a.is_subscribed());
    // `/b` is subscribed again, without a snapshot: its pushes arrive.
    assert!(b.is_subscribed());
    send(&connection, &push("/b", Op::Remove, Value::Null));
    let message = within(b_messages.recv()).await.unwrap();
    assert!(!message.snapshot && message.op == Op::Remove);

    // The next restart subscribes to `/b` only.
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    let mut server = FakeServer::start_at(addr).await;
    let (_, restore) = frames(&mut server, 2).await;
    assert_eq!((sub_path(&restore[0]), read_path(&restore[1])), ("/b", "/b"));
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
    assert_eq!(sub_path(&restore[0]), "/api/book/1");
    assert_eq!(read_path(&restore[1]), "/marker");
    send(&connection, &reply(id_of(&restore[1]), Ok(json!(1))));
    assert_eq!(within(queued).await.unwrap(), 1);
    client.close().await;
    server.shutdown().await;
}
