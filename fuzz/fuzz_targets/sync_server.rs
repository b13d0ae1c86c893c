//! The sync router as a server runs it, fed a script of frames from four peers (anonymous;
//! user `ada` twice; user `bob`) through the hub into the real router on an in-memory
//! network (see `common/mod.rs` for the input format). Its routes have models, a
//! collection, every kind of handler and an authorization hook.
//!
//! Never panics; in addition, every frame the router sends is a JSON envelope for `sync`
//! holding a valid sync frame, the router never closes a connection, and once every
//! connection has closed no path subscribed in the script has a subscriber or a model left
//! (docs/PROTOCOL.md, 7.3 rules 6 and 7).
#![no_main]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Net, Peer};
use libfuzzer_sys::fuzz_target;
use network_core::{Identity, Message, envelope};
use serde_json::json;
use sync::protocol::{Frame, ROUTER};
use sync::{Model, RemoteError, Route, SyncConfig};

fuzz_target!(|data: &[u8]| common::run(session(data)));

fn check(message: &Message) {
    assert!(message.is_text(), "the server answers in JSON: {message:?}");
    assert_eq!(envelope::router_name(message), Some(ROUTER), "{message:?}");
    if let Err(error) = envelope::decode::<Frame>(ROUTER, message) {
        panic!("the server sent an invalid frame {message:?}: {error}");
    }
}

struct Book;

impl Model for Book {}

fn sync() -> SyncConfig<Net> {
    let book = Route::new()
        .collection("/api/books")
        .model(|ctx| async move {
            match ctx.params.get("id").map(String::as_str) {
                Some("404") => Err(RemoteError::not_found("no such book")),
                _ => {
                    let room = ctx.room().also_at("/api/featured");
                    let _ = room.sync_data(&json!({"id": ctx.params.get("id"), "title": "Dune"})).await;
                    Ok(Book)
                }
            }
        })
        .authorize(|access| async move {
            if access.params.get("id").is_some_and(|id| id == "secret")
                && access.connection.identity().is_none()
            {
                Err("log in first".to_owned())
            } else {
                Ok(())
            }
        })
        .read(|request| async move { Ok(json!({"id": request.params.get("id"), "title": "Dune"})) })
        .update(|request| async move {
            if request.data.is_object() {
                Ok(request.data)
            } else {
                Err(RemoteError::bad_request("an object"))
            }
        })
        .delete(|request| async move { Ok(json!({"id": request.params.get("id")})) });
    let books = Route::new().create(|request| async move {
        let _ = request.sync.push("/api/featured", sync::Op::Add, &request.data).await;
        Ok(request.data)
    });
    SyncConfig::default()
        .max_queued_frames(16)
        .route("/api/book/:id", book)
        .route("/api/books", books)
        .route("/api/shelf/:shelf/books", Route::new())
        .route("/api/featured", Route::new())
}

async fn session(data: &[u8]) {
    let net = Net::new();
    let handle = sync().attach(&net).expect("a valid config");
    let check: common::Check = Arc::new(check);
    let identities = [
        None,
        Some(Identity::user("ada").session_id("s1")),
        Some(Identity::user("ada").session_id("s2")),
        Some(Identity::user("bob")),
    ];
    let mut peers: Vec<Peer> =
        identities.into_iter().map(|identity| Peer::new(identity, check.clone())).collect();
    let mut subscribed = BTreeSet::new();
    for step in common::steps(data) {
        let peer = &mut peers[step.peer];
        if step.reconnect {
            peer.close(&net).await;
        }
        let connection = peer.open(&net, false).await;
        let frame = common::frame(ROUTER, &step);
        if let Ok(Frame::Sub { path, .. }) = envelope::decode::<Frame>(ROUTER, &frame) {
            subscribed.insert(path);
        }
        net.driver().message(&connection, frame).await;
        common::settle(Duration::from_millis(if step.wait { 100 } else { 1 })).await;
    }
    common::settle(Duration::from_millis(100)).await;
    for peer in &mut peers {
        peer.close(&net).await;
    }
    common::settle(Duration::from_millis(100)).await;
    for peer in &peers {
        assert!(!peer.closed_by_router.load(Ordering::Relaxed), "the router closed a connection");
    }
    for path in &subscribed {
        assert!(
            handle.subscribers(path).is_empty(),
            "{path:?} has subscribers after every connection closed"
        );
        assert!(handle.model(path).is_none(), "{path:?} has a model after every connection closed");
    }
}
