//! Versioned sync through testkit's memory network, real client and real server: after a
//! reconnect the client subscribes with a snapshot, so a change another client makes
//! while the snapshot is read reaches it after the (older) snapshot and wins (the catch-up
//! race); a lost push shows as a version gap and the client resyncs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sync::client::{BackgroundError, SyncClient, SyncClientConfig, SyncMessage, SyncStream};
use sync::protocol::ROUTER;
use sync::{Route, SyncConfig};
use testkit::{Direction, MemoryClient, MemoryNetwork, tagged, within};
use tokio::sync::Notify;

/// The book's value, and the gate a read waits at (when `gated`) after taking it.
#[derive(Default)]
struct Book {
    value: Mutex<Value>,
    gated: Mutex<bool>,
    reading: Notify,
    release: Notify,
}

struct Setup {
    book: Arc<Book>,
    ada: (MemoryClient, SyncClient),
    bob: (MemoryClient, SyncClient),
}

fn setup() -> Setup {
    let server = MemoryNetwork::new();
    let book = Arc::new(Book::default());
    *book.value.lock().unwrap() = json!({"title": "Dune"});
    let (for_read, for_update) = (book.clone(), book.clone());
    let route = Route::new()
        .read(move |_| {
            let book = for_read.clone();
            async move {
                let value = book.value.lock().unwrap().clone();
                if *book.gated.lock().unwrap() {
                    book.reading.notify_one();
                    book.release.notified().await;
                }
                Ok(value)
            }
        })
        .update(move |request| {
            let book = for_update.clone();
            async move {
                *book.value.lock().unwrap() = request.data.clone();
                Ok(request.data)
            }
        });
    SyncConfig::default().route("/book", route).attach(&server).unwrap();
    let client = || {
        let client = MemoryClient::new(&server);
        let config = SyncClientConfig::default().request_timeout(Duration::from_secs(1));
        let sync = SyncClient::attach(client.network(), config).unwrap();
        (client, sync)
    };
    Setup { book, ada: client(), bob: client() }
}

async fn next(stream: &mut SyncStream) -> SyncMessage {
    within(stream.recv()).await.expect("the stream ended")
}

/// Ada subscribed to `/book`, dropped and reconnected: her subscription is versioned.
async fn reconnected(setup: &Setup) -> SyncStream {
    let (ada, sync) = &setup.ada;
    ada.connect().await.unwrap();
    setup.bob.0.connect().await.unwrap();
    let book = sync.sync("/book").unwrap();
    let messages = book.messages();
    within(book.connect()).await.unwrap();
    ada.disconnect().await;
    messages
}

#[tokio::test(start_paused = true)]
async fn a_change_made_while_the_snapshot_is_read_wins_over_it() {
    let setup = setup();
    let mut messages = reconnected(&setup).await;
    *setup.book.gated.lock().unwrap() = true;
    setup.ada.0.connect().await.unwrap();
    // The server took the snapshot's value and waits: Bob's change lands now, and its
    // push reaches Ada before the snapshot does.
    within(setup.book.reading.notified()).await;
    *setup.book.gated.lock().unwrap() = false;
    let dune_ii = json!({"title": "Dune II"});
    let _: Value = within(setup.bob.1.update("/book", &dune_ii)).await.unwrap();
    setup.book.release.notify_one();

    let snapshot = next(&mut messages).await;
    assert_eq!((snapshot.snapshot, &snapshot.data), (true, &json!({"title": "Dune"})));
    let push = next(&mut messages).await;
    assert_eq!((push.snapshot, &push.data), (false, &dune_ii), "the newer push comes after the snapshot");
}

#[tokio::test(start_paused = true)]
async fn a_lost_push_is_a_gap_and_the_client_resyncs() {
    let setup = setup();
    let mut messages = reconnected(&setup).await;
    let mut errors = setup.ada.1.errors();
    setup.ada.0.connect().await.unwrap();
    assert!(next(&mut messages).await.snapshot);

    setup.ada.0.drop_next(Direction::ToClient, tagged(ROUTER, "data"));
    for title in ["lost", "after the loss"] {
        let _: Value = within(setup.bob.1.update("/book", &json!({"title": title}))).await.unwrap();
    }
    assert_eq!(
        within(errors.recv()).await.unwrap(),
        BackgroundError::Resync { path: "/book".into(), last: 0, received: 2 }
    );
    let resync = next(&mut messages).await;
    assert_eq!((resync.snapshot, &resync.data), (true, &json!({"title": "after the loss"})));
    let _: Value = within(setup.bob.1.update("/book", &json!({"title": "next"}))).await.unwrap();
    assert_eq!(next(&mut messages).await.data, json!({"title": "next"}));
}
