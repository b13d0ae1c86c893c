//! The client's handles are `Send + Sync` and its futures `Send`, so they can be shared
//! and spawned freely.
#![allow(clippy::unwrap_used, missing_docs)]

use sync::client::{
    Collection, CollectionChanges, ErrorStream, Subscription, SyncClient, SyncStream, TypedSyncStream,
};

fn send_sync<T: Send + Sync>(_: &T) {}
fn send<T: Send>(_: &T) {}

#[derive(Clone, serde::Deserialize)]
struct Book {
    _title: String,
}

#[allow(dead_code, clippy::diverging_sub_expression)]
fn handles_and_futures(
    sync: SyncClient,
    subscription: Subscription,
    collection: Collection<Book>,
    mut messages: SyncStream,
    mut typed: TypedSyncStream<Book>,
    mut changes: CollectionChanges<Book>,
    mut errors: ErrorStream,
) {
    send_sync(&sync);
    send_sync(&subscription);
    send_sync(&collection);
    send_sync(&messages);
    send_sync(&typed);
    send_sync(&changes);
    send_sync(&errors);
    send(&sync.ready());
    send(&sync.create::<_, serde_json::Value>("/api/books", &serde_json::json!({})));
    send(&sync.read::<Book>("/api/book/1"));
    send(&sync.update::<_, Book>("/api/book/1", "x"));
    send(&sync.delete::<()>("/api/book/1"));
    send(&subscription.connect());
    send(&subscription.close());
    send(&subscription.fetch());
    send(&collection.start());
    send(&collection.close());
    send(&messages.recv());
    send(&typed.recv());
    send(&changes.recv());
    send(&errors.recv());
}

#[test]
fn compiles() {}
