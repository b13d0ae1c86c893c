//! The collection helper: `start` subscribes with a snapshot (the list), then `add`, `change` and
//! `remove` pushes are applied by id in insertion order, idempotently, with invalid items
//! reported; `changes()` tells what each message did.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use serde::Deserialize;
use serde_json::json;
use sync::Op;
use sync::client::{Collection, CollectionChange, InvalidItem, SyncClientConfig};
use sync::protocol::Frame;

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Book {
    id: serde_json::Value,
    title: String,
}

fn titles(books: &Collection<Book>) -> Vec<String> {
    books.items().into_iter().map(|book| book.title).collect()
}

#[tokio::test]
async fn start_gets_the_list_with_its_sub_then_pushes_apply_by_id() {
    let mut server = FakeServer::start().await;
    let (client, sync, connection) = connected(&mut server, SyncClientConfig::default()).await;
    let books = sync.collection::<Book>("/api/books").unwrap();
    let mut changes = books.changes();
    assert!(books.is_empty());

    // One `sub` with a snapshot, no separate read.
    let list = json!([{"id": 1, "title": "Dune"}, {"id": "b", "title": "Emma"}]);
    let (started, path) = tokio::join!(within(books.start()), server.accept_snapshot_sub(0, list));
    assert_eq!(path, "/api/books");
    started.unwrap();
    // Current as soon as `start` returns.
    assert_eq!(titles(&books), ["Dune", "Emma"]);
    assert_eq!(books.ids(), ["1", "b"]);
    assert_eq!(books.get("1").unwrap().title, "Dune");
    let initial = within(changes.recv()).await.unwrap();
    assert!(initial.snapshot);
    assert_eq!(summary(&initial), [("added", "1".into()), ("added", "b".into())]);

    // The subscription is versioned: each push carries the next version.
    let pushes = [
        (Op::Add, json!({"id": 3, "title": "Ulysses"})),
        (Op::Change, json!({"id": 1, "title": "Dune Messiah"})),
        // Repeats change nothing and announce nothing.
        (Op::Change, json!({"id": 1, "title": "Dune Messiah"})),
        (Op::Remove, json!({"id": 99, "title": "unknown"})),
        (Op::Remove, json!({"id": "b", "title": "Emma"})),
        // An `add` of a known id replaces it in place; a `change` of an unknown id appends it.
        (Op::Add, json!({"id": 3, "title": "Ulysses (2nd ed.)"})),
        (Op::Change, json!({"id": 4, "title": "Walden"})),
        // Invalid items are reported and not applied.
        (Op::Add, json!({"title": "no id"})),
        (Op::Change, json!({"id": 4, "title": ["not", "a", "title"]})),
    ];
    for (version, (op, data)) in (1..).zip(pushes) {
        send(&connection, &versioned_push("/api/books", op, version, data));
    }

    let mut seen = Vec::new();
    for _ in 0..7 {
        let event = within(changes.recv()).await.unwrap();
        assert!(!event.snapshot);
        assert_eq!(event.changes.len(), 1);
        seen.extend(summary(&event));
        if let CollectionChange::Changed { id, item, previous } = &event.changes[0]
            && id == "1"
        {
            assert_eq!((item.title.as_str(), previous.title.as_str()), ("Dune Messiah", "Dune"));
        }
        if let CollectionChange::Invalid { data, error } = &event.changes[0] {
            match error {
                InvalidItem::NoId => assert_eq!(data, &json!({"title": "no id"})),
                InvalidItem::Decode(_) => assert_eq!(data["id"], json!(4)),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(
        seen,
        [
            ("added", "3".into()),
            ("changed", "1".into()),
            ("removed", "b".into()),
            ("changed", "3".into()),
            ("added", "4".into()),
            ("invalid", String::new()),
            ("invalid", String::new()),
        ]
    );
    assert_eq!(titles(&books), ["Dune Messiah", "Ulysses (2nd ed.)", "Walden"]);
    assert_eq!(books.len(), 3);
    assert!(books.get("b").is_none());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_replaces_the_contents_and_announces_the_difference() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;
    let books = Collection::<Book>::new(sync.sync("/api/books").unwrap());
    let list = json!([{"id": 1, "title": "a"}, {"id": 2, "title": "b"}, {"id": 3, "title": "c"}]);
    let (started, _) = tokio::join!(within(books.start()), server.accept_snapshot_sub(0, list));
    started.unwrap();
    let mut changes = books.changes();

    let (fetched, ()) = tokio::join!(within(books.subscription().fetch()), async {
        server
            .answer_read(
                "/api/books",
                json!([{"id": 4, "title": "d"}, {"id": 3, "title": "C"}, {"id": 1, "title": "a"}]),
            )
            .await;
    });
    fetched.unwrap();
    assert_eq!(titles(&books), ["d", "C", "a"]);
    let event = within(changes.recv()).await.unwrap();
    assert!(event.snapshot);
    assert_eq!(summary(&event), [("removed", "2".into()), ("added", "4".into()), ("changed", "3".into())]);

    // Nothing changed: the snapshot is still announced, empty.
    let (fetched, ()) = tokio::join!(within(books.subscription().fetch()), async {
        server
            .answer_read(
                "/api/books",
                json!([{"id": 4, "title": "d"}, {"id": 3, "title": "C"}, {"id": 1, "title": "a"}]),
            )
            .await;
    });
    fetched.unwrap();
    let event = within(changes.recv()).await.unwrap();
    assert!(event.snapshot && event.changes.is_empty());

    // A read that is not a list leaves the contents alone.
    let (fetched, ()) = tokio::join!(within(books.subscription().fetch()), async {
        server.answer_read("/api/books", json!({"id": 1})).await;
    });
    fetched.unwrap();
    let event = within(changes.recv()).await.unwrap();
    assert!(matches!(&event.changes[..], [CollectionChange::Invalid { error: InvalidItem::NotAList, .. }]));
    assert_eq!(books.len(), 3);

    // Closing ends the change streams; the items stay.
    let (closed, ()) = tokio::join!(within(books.close()), async {
        let (connection, frame) = server.frame().await;
        let Frame::Unsub { path, id } = frame else { panic!("{frame:?}") };
        send(&connection, &Frame::Unsubscribed { path, id });
    });
    closed.unwrap();
    assert!(within(changes.recv()).await.is_none());
    assert_eq!(books.len(), 3);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn starting_again_sends_one_sub_with_snapshot_and_holds_the_pushes_before_its_answer() {
    let mut server = FakeServer::start().await;
    let (client, sync, connection) = connected(&mut server, SyncClientConfig::default()).await;
    let books = sync.collection::<Book>("/api/books").unwrap();
    let list = json!([{"id": 1, "title": "a"}]);
    let (started, _) = tokio::join!(within(books.start()), server.accept_snapshot_sub(0, list));
    started.unwrap();
    send(&connection, &versioned_push("/api/books", Op::Add, 1, json!({"id": 2, "title": "b"})));
    let mut changes = books.changes();
    assert_eq!(summary(&within(changes.recv()).await.unwrap()), [("added", "2".into())]);

    // The second start: a `sub` with snapshot on the subscribed path, no read. A push made
    // while the server reads (version 2) reaches the client before the answer (version 1).
    let (started, ()) = tokio::join!(within(books.start()), async {
        let (connection, frame) = server.frame().await;
        let Frame::Sub { path, id, snapshot: true } = frame else { panic!("{frame:?}") };
        send(&connection, &versioned_push(&path, Op::Add, 2, json!({"id": 3, "title": "c"})));
        let list = json!([{"id": 1, "title": "a"}, {"id": 2, "title": "B"}]);
        send(&connection, &Frame::Subscribed { path, id, v: Some(1), data: Some(list) });
    });
    started.unwrap();
    let snapshot = within(changes.recv()).await.unwrap();
    assert!(snapshot.snapshot);
    assert_eq!(summary(&snapshot), [("changed", "2".into())]);
    let held = within(changes.recv()).await.unwrap();
    assert!(!held.snapshot);
    assert_eq!(summary(&held), [("added", "3".into())]);
    assert_eq!(titles(&books), ["a", "B", "c"]);
    client.close().await;
    server.shutdown().await;
}
