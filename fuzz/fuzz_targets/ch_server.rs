//! The channels router (`ch`) as a server runs it, fed a script of frames from four peers
//! (anonymous; user `ada` twice, two sessions; user `bob`): every frame goes through the
//! hub's envelope routing into the real router, attached to an in-memory network (see
//! `common/mod.rs` for the input format).
//!
//! Never panics; in addition, every frame the router sends is a JSON envelope for `ch`
//! holding a valid channels frame, and the router never closes a connection (bad input
//! gets an `error` frame, the connection stays open: docs/PROTOCOL.md, 5.3 rule 7).
#![no_main]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use channels::protocol::{Frame, ROUTER};
use channels::{Channel, ChannelsConfig, RemoteError};
use common::{Net, Peer};
use libfuzzer_sys::fuzz_target;
use network_core::{Identity, Message, envelope};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| common::run(session(data)));

fn check(message: &Message) {
    assert!(message.is_text(), "the server answers in JSON: {message:?}");
    assert_eq!(envelope::router_name(message), Some(ROUTER), "{message:?}");
    if let Err(error) = envelope::decode::<Frame>(ROUTER, message) {
        panic!("the server sent an invalid frame {message:?}: {error}");
    }
}

fn channels() -> ChannelsConfig<Net> {
    let root = Channel::new()
        .on("echo", |_, value: Value| async move { Ok(value) })
        .on("count", |_, n: u32| async move { Ok(n.checked_add(1)) })
        .on("fail", |_, _: Value| async move { Err::<(), _>(RemoteError::new("nope", "as asked")) })
        .on("enter", |ctx, room: String| async move {
            ctx.join_room(&room).await.map_err(|error| RemoteError::bad_request(error.to_string()))?;
            let _ = ctx.broadcast_to_room(&room, "entered", &room).await;
            Ok(())
        })
        .on("exit", |ctx, room: String| async move {
            ctx.leave_room(&room).await.map_err(|error| RemoteError::bad_request(error.to_string()))
        })
        .on("ask", |ctx, question: Value| async move {
            // The server asks the client back, and waits for its ack in the background.
            let messenger = ctx.messenger().clone();
            let id = ctx.connection().id();
            tokio::spawn(async move {
                let _ = messenger.emit_with_ack::<Value, _>(id, "question", &question).await;
            });
            Ok(())
        })
        .on("everyone", |ctx, value: Value| async move {
            let _ = ctx.messenger().emit_to_everyone("all", &value).await;
            let _ = ctx.messenger().emit_to_user("ada", "for-ada", &value).await;
            Ok(())
        });
    let chat = Channel::new()
        .on_join(|ctx| async move {
            match ctx.identity().and_then(|identity| identity.user_id.clone()) {
                Some(_) => {
                    ctx.join_room("lobby").await.map_err(|error| RemoteError::internal(error.to_string()))
                }
                None => Err(RemoteError::forbidden("log in first")),
            }
        })
        .on("say", |ctx, text: String| async move {
            let _ = ctx.broadcast_to_room("lobby", "said", &text).await;
            Ok(json!({"said": text}))
        });
    let closed = Channel::new().on_join(|_| async move { Err(RemoteError::forbidden("closed")) });
    ChannelsConfig::default()
        .ack_timeout(Duration::from_millis(50))
        .max_pending_acks(4)
        .max_queued_frames(16)
        .channel("/", root)
        .channel("/chat", chat)
        .channel("/closed/x", closed)
}

async fn session(data: &[u8]) {
    let net = Net::new();
    let _messenger = channels().attach(&net).expect("a valid config");
    let check: common::Check = Arc::new(check);
    let identities = [
        None,
        Some(Identity::user("ada").session_id("s1")),
        Some(Identity::user("ada").session_id("s2").data(json!({"name": "Ada"}))),
        Some(Identity::user("bob")),
    ];
    let mut peers: Vec<Peer> =
        identities.into_iter().map(|identity| Peer::new(identity, check.clone())).collect();
    for step in common::steps(data) {
        let peer = &mut peers[step.peer];
        if step.reconnect {
            peer.close(&net).await;
        }
        let connection = peer.open(&net, false).await;
        net.driver().message(&connection, common::frame(ROUTER, &step)).await;
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
}
