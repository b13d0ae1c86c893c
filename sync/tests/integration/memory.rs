//! The sync router, client and server, through testkit's memory network: no sockets,
//! tokio's paused clock, scripted faults (a reply dropped, a reconnect while a request
//! waits, frames of an old connection arriving late, a refused connection). Only the
//! routers' public API is used.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use network_core::Network;
use serde_json::{Value, json};
use sync::client::{RequestError, SubscribeError, SyncClient, SyncClientConfig, SyncMessage, SyncStream};
use sync::protocol::{ROUTER, codes};
use sync::{Op, RemoteError, Route, SyncConfig, SyncHandle};
use testkit::{Direction, MemoryClient, MemoryNetwork, Refused, settle, tagged, within};

type Store = Arc<Mutex<BTreeMap<String, Value>>>;

/// A server keeping books in memory (`/api/books` the collection, `/api/book/:id` each
/// book; `/api/secret` refuses everyone), and two clients, not connected yet.
struct Setup {
    handle: SyncHandle<MemoryNetwork>,
    ada: (MemoryClient, SyncClient),
    bob: (MemoryClient, SyncClient),
}

fn setup() -> Setup {
    let server = MemoryNetwork::new();
    let store = Store::default();
    let books = Route::new()
        .create({
            let store = store.clone();
            move |request| {
                let store = store.clone();
                async move {
                    let id = request.data.get("id").and_then(Value::as_str).map(str::to_owned);
                    let id = id.ok_or_else(|| RemoteError::bad_request("an id"))?;
                    store.lock().unwrap().insert(id, request.data.clone());
                    Ok(request.data)
                }
            }
        })
        .read({
            let store = store.clone();
            move |_| {
                let store = store.clone();
                async move { Ok(Value::Array(store.lock().unwrap().values().cloned().collect())) }
            }
        });
    let book = Route::new()
        .collection("/api/books")
        .read({
            let store = store.clone();
            move |request| {
                let store = store.clone();
                async move {
                    let id = request.params.get("id").cloned().unwrap_or_default();
                    store
                        .lock()
                        .unwrap()
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| RemoteError::not_found("no such book"))
                }
            }
        })
        .update({
            let store = store.clone();
            move |request| {
                let store = store.clone();
                async move {
                    let id = request.params.get("id").cloned().unwrap_or_default();
                    store.lock().unwrap().insert(id, request.data.clone());
                    Ok(request.data)
                }
            }
        })
        .delete(move |request| {
            let store = store.clone();
            async move {
                let id = request.params.get("id").cloned().unwrap_or_default();
                store.lock().unwrap().remove(&id).ok_or_else(|| RemoteError::not_found("no such book"))
            }
        });
    let secret = Route::new().authorize(|_| async move { Err("no".to_owned()) });
    let handle = SyncConfig::default()
        .route("/api/books", books)
        .route("/api/book/:id", book)
        .route("/api/secret", secret)
        .attach(&server)
        .unwrap();
    let client = || {
        let client = MemoryClient::new(&server);
        let config = SyncClientConfig::default().request_timeout(Duration::from_secs(1));
        let sync = SyncClient::attach(client.network(), config).unwrap();
        (client, sync)
    };
    Setup { handle, ada: client(), bob: client() }
}

async fn next(stream: &mut SyncStream) -> SyncMessage {
    within(stream.recv()).await.expect("the stream ended")
}

#[tokio::test(start_paused = true)]
async fn subscribe_create_update_delete_and_pushes() {
    let Setup { handle, ada: (ada, ada_sync), bob: (bob, bob_sync) } = setup();
    let ada_id = ada.connect().await.unwrap();
    bob.connect().await.unwrap();
    let books = ada_sync.sync("/api/books").unwrap();
    let mut pushes = books.messages();
    within(books.connect()).await.unwrap();
    assert!(books.is_subscribed());
    assert_eq!(handle.subscribers("/api/books"), [ada_id]);

    let dune = json!({"id": "1", "title": "Dune"});
    let created: Value = within(bob_sync.create("/api/books", &dune)).await.unwrap();
    assert_eq!(created, dune);
    let pushed = next(&mut pushes).await;
    assert_eq!((pushed.op, &pushed.data, pushed.snapshot), (Op::Add, &dune, false));

    let renamed = json!({"id": "1", "title": "Emma"});
    let _: Value = within(bob_sync.update("/api/book/1", &renamed)).await.unwrap();
    let pushed = next(&mut pushes).await;
    assert_eq!((pushed.op, &pushed.data), (Op::Change, &renamed), "an item's update reaches its collection");
    let read: Value = within(ada_sync.read("/api/book/1")).await.unwrap();
    assert_eq!(read, renamed);

    let _: Value = within(bob_sync.delete("/api/book/1")).await.unwrap();
    assert_eq!(next(&mut pushes).await.op, Op::Remove);

    // The server pushes of its own accord.
    handle.push("/api/books", Op::Add, &json!({"id": "2"})).await.unwrap();
    assert_eq!(next(&mut pushes).await.data, json!({"id": "2"}));

    within(books.close()).await.unwrap();
    assert!(handle.subscribers("/api/books").is_empty());
}

#[tokio::test(start_paused = true)]
async fn refusals_and_remote_errors_reach_the_caller() {
    let Setup { ada: (ada, sync), .. } = setup();
    ada.connect().await.unwrap();
    let missing = within(sync.read::<Value>("/api/book/404")).await;
    assert!(
        matches!(&missing, Err(RequestError::Remote(error)) if error.code == codes::NOT_FOUND),
        "{missing:?}"
    );
    let nowhere = within(sync.read::<Value>("/nowhere")).await;
    assert!(
        matches!(&nowhere, Err(RequestError::Remote(error)) if error.code == codes::NO_ROUTE),
        "{nowhere:?}"
    );
    let no_handler = within(sync.delete::<Value>("/api/books")).await;
    assert!(
        matches!(&no_handler, Err(RequestError::Remote(error)) if error.code == codes::NO_HANDLER),
        "{no_handler:?}"
    );
    let bad = within(sync.create::<_, Value>("/api/books", &json!({"title": "no id"}))).await;
    assert!(matches!(&bad, Err(RequestError::Remote(error)) if error.code == codes::BAD_REQUEST), "{bad:?}");
    let secret = within(sync.sync("/api/secret").unwrap().connect()).await;
    assert!(
        matches!(&secret, Err(SubscribeError::Refused(error)) if error.code == codes::FORBIDDEN),
        "{secret:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_reply_times_out_and_the_next_request_is_answered() {
    let Setup { ada: (ada, sync), .. } = setup();
    ada.connect().await.unwrap();
    ada.drop_next(Direction::ToClient, tagged(ROUTER, "reply"));
    let lost = within(sync.read::<Value>("/api/books")).await;
    assert!(matches!(lost, Err(RequestError::Timeout(limit)) if limit == Duration::from_secs(1)), "{lost:?}");
    assert_eq!(ada.pending_drops(), 0);
    let books: Value = within(sync.read("/api/books")).await.unwrap();
    assert_eq!(books, json!([]));
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_fails_waiting_requests_and_resubscribes_with_a_catch_up_read() {
    let Setup { handle, ada: (ada, ada_sync), bob: (bob, bob_sync) } = setup();
    ada.connect().await.unwrap();
    bob.connect().await.unwrap();
    let books = ada_sync.sync("/api/books").unwrap();
    let mut pushes = books.messages();
    within(books.connect()).await.unwrap();

    // A request waits when the link drops: it fails; its answer arrives late and is ignored.
    ada.hold(Direction::ToClient);
    let waiting = tokio::spawn({
        let sync = ada_sync.clone();
        async move { sync.read::<Value>("/api/books").await }
    });
    settle().await;
    ada.disconnect().await;
    ada.release().await;
    assert!(matches!(within(waiting).await.unwrap(), Err(RequestError::Closed)));
    assert!(!books.is_subscribed());

    // Changed while Ada is away: she gets no push, but the snapshot after her resubscribe.
    let dune = json!({"id": "1", "title": "Dune"});
    let _: Value = within(bob_sync.create("/api/books", &dune)).await.unwrap();
    settle().await;
    assert!(pushes.try_recv().is_none());
    let ada_id = ada.connect().await.unwrap();
    assert!(books.is_subscribed());
    assert_eq!(handle.subscribers("/api/books"), [ada_id]);
    let snapshot = next(&mut pushes).await;
    assert_eq!((snapshot.op, snapshot.snapshot, &snapshot.data), (Op::Change, true, &json!([dune])));
    let emma = json!({"id": "2", "title": "Emma"});
    let _: Value = within(bob_sync.create("/api/books", &emma)).await.unwrap();
    assert_eq!(next(&mut pushes).await.data, emma);
}

#[tokio::test(start_paused = true)]
async fn a_subscribe_waits_through_a_refused_connection() {
    let Setup { handle, ada: (ada, sync), .. } = setup();
    let books = sync.sync("/api/books").unwrap();
    let subscribe = tokio::spawn({
        let books = books.clone();
        async move { books.connect().await }
    });
    ada.refuse_next(1);
    assert_eq!(ada.connect().await, Err(Refused));
    settle().await;
    assert!(!subscribe.is_finished());
    let id = ada.connect().await.unwrap();
    within(subscribe).await.unwrap().unwrap();
    assert_eq!(handle.subscribers("/api/books"), [id]);
}

#[tokio::test(start_paused = true)]
async fn late_frames_of_an_old_connection_leave_no_subscriber_behind() {
    let Setup { handle, ada: (ada, sync), .. } = setup();
    let old = ada.connect().await.unwrap();
    // The old connection's `sub` and its end reach the server after the new connection
    // opened and subscribed in its restore.
    ada.hold(Direction::ToServer);
    let books = sync.sync("/api/books").unwrap();
    let subscribe = tokio::spawn({
        let books = books.clone();
        async move { books.connect().await }
    });
    settle().await;
    ada.disconnect().await;
    let new = ada.connect().await.unwrap();
    within(subscribe).await.unwrap().unwrap();
    ada.release().await;
    settle().await;
    assert!(handle.network().connection(old).is_none());
    assert_eq!(handle.subscribers("/api/books"), [new]);
    let reached = handle.push("/api/books", Op::Add, &json!({"id": "3"})).await.unwrap();
    assert_eq!(reached, 1);
}

#[tokio::test(start_paused = true)]
async fn closing_the_client_ends_calls_and_streams() {
    let Setup { ada: (ada, sync), .. } = setup();
    let books = sync.sync("/api/books").unwrap();
    let mut pushes = books.messages();
    let subscribe = tokio::spawn({
        let books = books.clone();
        async move { books.connect().await }
    });
    settle().await;
    ada.close().await;
    assert!(matches!(within(subscribe).await.unwrap(), Err(SubscribeError::Closed)));
    assert!(within(pushes.recv()).await.is_none());
    assert!(!within(sync.ready()).await);
}
