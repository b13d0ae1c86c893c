//! The sync router as a client runs it, fed a script of frames as the server's: the real
//! client router (`sync::client::SyncClient`) on an in-memory network with one connection,
//! while the application subscribes to a model and a collection, reads their streams and
//! makes requests (see `common/mod.rs` for the input format; the peer bits are ignored).
//!
//! Never panics; in addition, every frame the client sends is a JSON envelope for `sync`
//! holding a valid sync frame, and once the network closes every application call has
//! returned and every stream has ended.
#![no_main]

mod common;

use std::time::Duration;

use testkit::memory::RawPeer;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sync::client::{SyncClient, SyncClientConfig};
use sync::protocol::{Frame, ROUTER};

fuzz_target!(|data: &[u8]| common::run(session(data)));

async fn session(data: &[u8]) {
    let net = common::network();
    let config = SyncClientConfig::default()
        .request_timeout(Duration::from_millis(200))
        .message_queue_capacity(2)
        .max_pending_requests(4)
        .error_queue_capacity(2)
        .read_after_resubscribe(true);
    let client = SyncClient::attach(&net, config).expect("attached");
    let mut peer = RawPeer::new(None, common::client_check::<Frame>(ROUTER));
    peer.open(&net, true).await;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn({
        let client = client.clone();
        async move {
            let Ok(book) = client.sync("/api/book/7") else { return };
            let mut messages = book.typed::<Value>();
            if book.connect().await.is_ok() {
                while messages.recv().await.is_some() {}
            }
        }
    }));
    tasks.push(tokio::spawn({
        let client = client.clone();
        async move {
            let Ok(books) = client.collection::<Value>("/api/books") else { return };
            let mut changes = books.changes();
            if books.start().await.is_ok() {
                while changes.recv().await.is_some() {
                    let items = books.items();
                    assert_eq!(items.len(), books.len());
                    assert_eq!(books.ids().len(), books.len());
                }
            }
        }
    }));
    tasks.push(tokio::spawn({
        let client = client.clone();
        async move {
            let _ = client.read::<Value>("/api/book/7").await;
            let _ = client.update::<_, Value>("/api/book/7", &json!({"title": "Dune"})).await;
            let _ = client.create::<_, Value>("/api/books", &json!({"title": "Emma"})).await;
            let _ = client.delete::<()>("/api/book/7").await;
        }
    }));
    let mut errors = client.errors();
    tasks.push(tokio::spawn(async move { while errors.recv().await.is_some() {} }));

    common::drive_client(&net, &mut peer, ROUTER, data, tasks).await;
}
