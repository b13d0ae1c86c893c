//! The collection helper: `start` subscribes and reads the list, then `add`, `change` and
//! `remove` pushes are applied by id in insertion order, idempotently, with invalid items
//! reported; `changes()` tells what each message did.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use serde::Deserialize;
use serde_json::json;
use sync::Op;
use sync::client::{Collection, CollectionChange, CollectionEvent, InvalidItem, SyncClientConfig};
use sync::protocol::Frame;

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Book {
    id: serde_json::Value,
    title: String,
}

fn titles(books: &Collection<Book>) -> Vec<String> {
    books.items().into_iter().map(|book| book.title).collect()
}

/// `(kind, id)` of each change.
fn summary(event: &CollectionEvent<Book>) -> Vec<(&'static str, String)> {
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

#[tokio::test]
async fn start_reads_the_list_then_pushes_apply_by_id() {
    let mut server = FakeServer::start().await;
    let (client, sync, connection) = connected(&mut server, SyncClientConfig::default()).await;
    let books = sync.collection::<Book>("/api/books").unwrap();
    let mut changes = books.changes();
    assert!(books.is_empty());

    let (started, ()) = tokio::join!(within(books.start()), async {
        assert_eq!(server.accept_sub().await, "/api/books");
        server
            .answer_read("/api/books", json!([{"id": 1, "title": "Dune"}, {"id": "b", "title": "Emma"}]))
            .await;
    });
    started.unwrap();
    // Current as soon as `start` returns.
    assert_eq!(titles(&books), ["Dune", "Emma"]);
    assert_eq!(books.ids(), ["1", "b"]);
    assert_eq!(books.get("1").unwrap().title, "Dune");
    let initial = within(changes.recv()).await.unwrap();
    assert!(initial.snapshot);
    assert_eq!(summary(&initial), [("added", "1".into()), ("added", "b".into())]);

    let path = "/api/books";
    send(&connection, &push(path, Op::Add, json!({"id": 3, "title": "Ulysses"})));
    send(&connection, &push(path, Op::Change, json!({"id": 1, "title": "Dune Messiah"})));
    // Repeats change nothing and announce nothing.
    send(&connection, &push(path, Op::Change, json!({"id": 1, "title": "Dune Messiah"})));
    send(&connection, &push(path, Op::Remove, json!({"id": 99, "title": "unknown"})));
    send(&connection, &push(path, Op::Remove, json!({"id": "b", "title": "Emma"})));
    // An `add` of a known id replaces it in place; a `change` of an unknown id appends it.
    send(&connection, &push(path, Op::Add, json!({"id": 3, "title": "Ulysses (2nd ed.)"})));
    send(&connection, &push(path, Op::Change, json!({"id": 4, "title": "Walden"})));
    // Invalid items are reported and not applied.
    send(&connection, &push(path, Op::Add, json!({"title": "no id"})));
    send(&connection, &push(path, Op::Change, json!({"id": 4, "title": ["not", "a", "title"]})));

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
    let (started, ()) = tokio::join!(within(books.start()), async {
        server.accept_sub().await;
        server
            .answer_read(
                "/api/books",
                json!([{"id": 1, "title": "a"}, {"id": 2, "title": "b"}, {"id": 3, "title": "c"}]),
            )
            .await;
    });
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
