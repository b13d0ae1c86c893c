//! The channels router (`ch`) as a client runs it, fed a script of frames as the server's:
//! the real client router (`channels::client::ChannelsClient`) on an in-memory network with
//! one connection, while the application joins channels, emits with and without
//! acknowledgement, reads event streams and answers the server's requests (see
//! `common/mod.rs` for the input format; the peer bits are ignored).
//!
//! Never panics; in addition, every frame the client sends is a JSON envelope for `ch`
//! holding a valid channels frame, and once the network closes every application call
//! has returned and every stream has ended.
#![no_main]

mod common;

use std::time::Duration;

use channels::RemoteError;
use channels::client::{ChannelsClient, ChannelsClientConfig};
use channels::protocol::{Frame, ROUTER};
use testkit::memory::RawPeer;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| common::run(session(data)));

async fn session(data: &[u8]) {
    let net = common::network();
    let config = ChannelsClientConfig::default()
        .ack_timeout(Duration::from_millis(50))
        .join_timeout(Duration::from_millis(200))
        .event_queue_capacity(2)
        .error_queue_capacity(2)
        .max_pending_acks(4)
        .max_concurrent_handlers(2);
    let client = ChannelsClient::attach(&net, config).expect("attached");
    let mut peer = RawPeer::new(None, common::client_check::<Frame>(ROUTER));
    peer.open(&net, true).await;

    let root = client.root();
    let chat = client.channel("/chat").expect("a valid path");
    let game = client.channel("/game/42").expect("a valid path");
    root.handle("question", |value: Value| async move { Ok::<_, RemoteError>(value) });
    chat.handle("count", |n: u64| async move { Ok::<_, RemoteError>(n.wrapping_add(1)) });
    chat.handle("fail", |_: Value| async move { Err::<(), _>(RemoteError::new("nope", "as asked")) });
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn({
        let chat = chat.clone();
        async move {
            if chat.join().await.is_ok() {
                let _ = chat.emit("say", "hi");
                let _ = chat.emit_with_ack::<String, _>("say", "hello").await;
            }
        }
    }));
    tasks.push(tokio::spawn({
        let root = root.clone();
        async move {
            let _ = root.emit_with_ack::<Value, _>("echo", &json!({"n": 1})).await;
            let _ = root.emit_with_ack::<(), _>("fail", &()).await;
        }
    }));
    tasks.push(tokio::spawn(async move {
        if game.join().await.is_ok() {
            let _ = game.leave().await;
        }
    }));
    let mut said = chat.on::<String>("said");
    tasks.push(tokio::spawn(async move { while said.recv().await.is_some() {} }));
    let mut news = root.on::<Value>("news");
    tasks.push(tokio::spawn(async move { while news.recv().await.is_some() {} }));
    let mut errors = client.errors();
    tasks.push(tokio::spawn(async move { while errors.recv().await.is_some() {} }));

    common::drive_client(&net, &mut peer, ROUTER, data, tasks).await;
}
