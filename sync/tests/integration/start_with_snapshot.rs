//! A collection's `start` (and `Subscription::connect_with_snapshot`) is one `sub` with a
//! snapshot, through testkit's memory network with the real client and server: a push
//! made while the server reads the list reaches the client before the answer, and is
//! applied once, after the snapshot, never reverted by it (the catch-up race of a plain
//! `sub` followed by a `read` is gone); a second `start` asks for a snapshot again on the
//! same subscription; a failed read is a refusal that leaves nothing subscribed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use network_core::ConnectionId;
use serde::Deserialize;
use serde_json::{Value, json};
use sync::client::{
    Collection, CollectionChanges, CollectionEvent, StartError, SubscribeError, SyncClient, SyncClientConfig,
};
use sync::protocol::codes;
use sync::{Route, SyncConfig, SyncHandle};
use testkit::{MemoryClient, MemoryNetwork, settle, within};

use crate::support::summary;
use tokio::sync::Notify;

#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Book {
    id: String,
    title: String,
}

/// The shelf's books, and the gate a read waits at (when `gated`) after taking them.
#[derive(Default)]
struct Shelf {
    books: Mutex<Vec<Value>>,
    gated: Mutex<bool>,
    reading: Notify,
    release: Notify,
}

struct Setup {
    handle: SyncHandle<MemoryNetwork>,
    /// Ada's connection, as the server knows it.
    ada_id: ConnectionId,
    shelf: Arc<Shelf>,
    ada: (MemoryClient, SyncClient),
    bob: (MemoryClient, SyncClient),
}

/// `/api/books` (read gated, create), `/api/notes` (create only: no read), and two
/// connected clients.
async fn setup() -> Setup {
    let server = MemoryNetwork::new();
    let shelf = Arc::new(Shelf::default());
    shelf.books.lock().unwrap().push(json!({"id": "1", "title": "Dune"}));
    let (for_read, for_create) = (shelf.clone(), shelf.clone());
    let books = Route::new()
        .read(move |_| {
            let shelf = for_read.clone();
            async move {
                let books = Value::Array(shelf.books.lock().unwrap().clone());
                if *shelf.gated.lock().unwrap() {
                    shelf.reading.notify_one();
                    shelf.release.notified().await;
                }
                Ok(books)
            }
        })
        .create(move |request| {
            let shelf = for_create.clone();
            async move {
                shelf.books.lock().unwrap().push(request.data.clone());
                Ok(request.data)
            }
        });
    let notes = Route::new().create(|request| async move { Ok(request.data) });
    let handle =
        SyncConfig::default().route("/api/books", books).route("/api/notes", notes).attach(&server).unwrap();
    let client = || {
        let client = MemoryClient::new(&server);
        let config = SyncClientConfig::default().request_timeout(Duration::from_secs(1));
        let sync = SyncClient::attach(client.network(), config).unwrap();
        (client, sync)
    };
    let (ada, bob) = (client(), client());
    let ada_id = ada.0.connect().await.unwrap();
    bob.0.connect().await.unwrap();
    Setup { handle, ada_id, shelf, ada, bob }
}

impl Setup {
    /// Runs `start` while Bob adds `book`: the server has taken the list for the
    /// snapshot and waits while Bob's create and its push to Ada go through.
    async fn start_while_bob_adds(&self, books: &Collection<Book>, book: &Value) {
        *self.shelf.gated.lock().unwrap() = true;
        let (started, ()) = tokio::join!(within(books.start()), async {
            within(self.shelf.reading.notified()).await;
            *self.shelf.gated.lock().unwrap() = false;
            let _: Value = within(self.bob.1.create("/api/books", book)).await.unwrap();
            // Ada's push is queued on her connection ahead of the answer.
            settle().await;
            self.shelf.release.notify_one();
        });
        started.unwrap();
    }
}

fn titles(books: &Collection<Book>) -> Vec<String> {
    books.items().into_iter().map(|book| book.title).collect()
}

async fn next(changes: &mut CollectionChanges<Book>) -> CollectionEvent<Book> {
    within(changes.recv()).await.expect("the change stream ended")
}

#[tokio::test(start_paused = true)]
async fn a_push_made_while_the_snapshot_is_read_is_applied_once_after_it() {
    let setup = setup().await;
    let books = setup.ada.1.collection::<Book>("/api/books").unwrap();
    let mut changes = books.changes();
    let mut messages = books.subscription().messages();
    let mut errors = setup.ada.1.errors();

    let emma = json!({"id": "2", "title": "Emma"});
    setup.start_while_bob_adds(&books, &emma).await;

    // The snapshot (taken before Emma was added), then Emma's push: once, after it.
    let snapshot = next(&mut changes).await;
    assert!(snapshot.snapshot, "the snapshot comes first: {snapshot:?}");
    assert_eq!(summary(&snapshot), [("added", "1".into())]);
    let pushed = next(&mut changes).await;
    assert!(!pushed.snapshot);
    assert_eq!(summary(&pushed), [("added", "2".into())]);
    assert_eq!(titles(&books), ["Dune", "Emma"]);
    let seen: Vec<(bool, Value)> = [within(messages.recv()).await, within(messages.recv()).await]
        .into_iter()
        .map(|message| message.map(|message| (message.snapshot, message.data)).unwrap())
        .collect();
    assert_eq!(seen, [(true, json!([{"id": "1", "title": "Dune"}])), (false, emma)]);

    // The pushes that follow are versioned from the start: no gap, no resync.
    let ulysses = json!({"id": "3", "title": "Ulysses"});
    let _: Value = within(setup.bob.1.create("/api/books", &ulysses)).await.unwrap();
    assert_eq!(summary(&next(&mut changes).await), [("added", "3".into())]);
    settle().await;
    assert!(changes.try_recv().is_none());
    assert!(messages.recv().await.is_some_and(|message| message.data == ulysses));
    assert!(messages.try_recv().is_none());
    assert!(errors.try_recv().is_none(), "no resync");
    assert_eq!(titles(&books), ["Dune", "Emma", "Ulysses"]);
}

#[tokio::test(start_paused = true)]
async fn starting_again_asks_for_a_snapshot_on_the_same_subscription() {
    let setup = setup().await;
    let books = setup.ada.1.collection::<Book>("/api/books").unwrap();
    within(books.start()).await.unwrap();
    let mut changes = books.changes();
    let mut errors = setup.ada.1.errors();

    // Changed on the server without a push: only a new snapshot shows it.
    setup.shelf.books.lock().unwrap().push(json!({"id": "2", "title": "Emma"}));
    let walden = json!({"id": "4", "title": "Walden"});
    setup.start_while_bob_adds(&books, &walden).await;
    let snapshot = next(&mut changes).await;
    assert!(snapshot.snapshot);
    assert_eq!(summary(&snapshot), [("added", "2".into())]);
    assert_eq!(summary(&next(&mut changes).await), [("added", "4".into())]);
    assert_eq!(titles(&books), ["Dune", "Emma", "Walden"]);
    // Still one subscription, whose versions go on.
    assert_eq!(setup.handle.subscribers("/api/books"), [setup.ada_id]);
    let _: Value =
        within(setup.bob.1.create("/api/books", &json!({"id": "5", "title": "Ulysses"}))).await.unwrap();
    assert_eq!(summary(&next(&mut changes).await), [("added", "5".into())]);
    settle().await;
    assert!(changes.try_recv().is_none());
    assert!(errors.try_recv().is_none(), "no resync");
}

#[tokio::test(start_paused = true)]
async fn a_start_whose_read_fails_is_refused_and_subscribes_nothing() {
    let setup = setup().await;
    let notes = setup.ada.1.collection::<Book>("/api/notes").unwrap();
    let started = within(notes.start()).await;
    assert!(
        matches!(&started, Err(StartError::Subscribe(SubscribeError::Refused(error))) if error.code == codes::NO_HANDLER),
        "{started:?}"
    );
    assert!(!notes.subscription().is_subscribed());
    assert!(setup.handle.subscribers("/api/notes").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_asked_for_before_the_connection_comes_with_it() {
    let server = MemoryNetwork::new();
    let read = Route::new().read(|_| async move { Ok(json!({"title": "Dune"})) });
    SyncConfig::default().route("/book", read).attach(&server).unwrap();
    let client = MemoryClient::new(&server);
    let sync = SyncClient::attach(client.network(), SyncClientConfig::default()).unwrap();
    let book = sync.sync("/book").unwrap();
    let mut messages = book.messages();
    let subscribe = tokio::spawn({
        let book = book.clone();
        async move { book.connect_with_snapshot().await }
    });
    settle().await;
    assert!(!subscribe.is_finished());
    client.connect().await.unwrap();
    within(subscribe).await.unwrap().unwrap();
    let snapshot = within(messages.recv()).await.unwrap();
    assert_eq!((snapshot.snapshot, snapshot.data), (true, json!({"title": "Dune"})));
}

#[tokio::test(start_paused = true)]
async fn a_plain_subscription_asked_for_a_snapshot_becomes_versioned() {
    let setup = setup().await;
    let books = setup.ada.1.sync("/api/books").unwrap();
    let mut messages = books.messages();
    let mut errors = setup.ada.1.errors();
    within(books.connect()).await.unwrap();
    within(books.connect_with_snapshot()).await.unwrap();
    let snapshot = within(messages.recv()).await.unwrap();
    assert_eq!((snapshot.snapshot, snapshot.data), (true, json!([{"id": "1", "title": "Dune"}])));
    assert_eq!(setup.handle.subscribers("/api/books"), [setup.ada_id]);
    // Each push once, in order, with no gap seen.
    for id in ["2", "3"] {
        let book = json!({"id": id, "title": id});
        let _: Value = within(setup.bob.1.create("/api/books", &book)).await.unwrap();
        let pushed = within(messages.recv()).await.unwrap();
        assert_eq!((pushed.snapshot, pushed.data), (false, book));
    }
    settle().await;
    assert!(messages.try_recv().is_none());
    assert!(errors.try_recv().is_none(), "no resync");
}
