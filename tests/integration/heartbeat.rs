//! The browser heartbeat of docs/PROTOCOL.md section 3.1, over real sockets: every server
//! answers `{"$r":"hb","d":{"t":"ping","id":N}}` with a `pong` itself (no router attached,
//! JSON or MessagePack in, JSON out), without waiting for the routers' work on earlier
//! frames; bad bodies get `malformed` with their id when it can be read; answers are not
//! answered; heartbeats never reach the application; `hb` is a reserved router name; and
//! the Rust client answers a ping as the server does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{AttachError, Network, NetworkEvent, Router, envelope};
use realtime::sync::{Route, SyncConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn next_json(ws: &mut RawClient) -> Value {
    match next_data(ws).await {
        WsMessage::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn ping(ws: &mut RawClient, id: u64) {
    send_text(ws, &json!({"$r": "hb", "d": {"t": "ping", "id": id}}).to_string()).await;
}

#[tokio::test]
async fn a_server_without_routers_answers_pings_and_keeps_them_from_the_application() {
    // The application echoes every frame it gets: a heartbeat reaching it would come back.
    let server = echo_server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;

    ping(&mut ws, 1).await;
    let pong = next_data(&mut ws).await;
    // Byte for byte what a browser client parses.
    assert_eq!(pong, WsMessage::text(r#"{"$r":"hb","d":{"t":"pong","id":1}}"#));

    // The largest id JavaScript holds exactly, and one past 2^53 (echoed too: the server
    // takes any unsigned 64-bit id).
    for id in [9_007_199_254_740_991_u64, 9_007_199_254_740_993, u64::MAX] {
        ping(&mut ws, id).await;
        assert_eq!(next_json(&mut ws).await, json!({"$r": "hb", "d": {"t": "pong", "id": id}}));
    }

    // MessagePack in, JSON out, as the routers answer.
    let packed = envelope::msgpack("hb", &json!({"t": "ping", "id": 7})).unwrap();
    within(ws.send(WsMessage::binary(packed.payload().clone()))).await.unwrap();
    assert_eq!(next_json(&mut ws).await, json!({"$r": "hb", "d": {"t": "pong", "id": 7}}));

    // The next frame is the echo of an application frame: no heartbeat was echoed.
    send_text(&mut ws, "hello").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("hello"));
}

#[tokio::test]
async fn bad_bodies_get_malformed_with_their_id_and_answers_get_no_answer() {
    let server = echo_server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    for (body, id) in [
        (json!({"t": "ping"}), None),
        (json!({"t": "ping", "id": "5"}), None),
        (json!({"t": "ping", "id": -5}), None),
        (json!({"t": "ping", "id": 1.5}), None),
        (json!({"t": "pang", "id": 5}), Some(5)),
        (json!({"id": 6}), Some(6)),
        (json!("ping"), None),
        (json!([1, 2]), None),
    ] {
        send_text(&mut ws, &json!({"$r": "hb", "d": body}).to_string()).await;
        let answer = next_json(&mut ws).await;
        assert_eq!(answer["$r"], "hb", "{body}");
        let d = &answer["d"];
        assert_eq!((d["t"].as_str(), d["code"].as_str()), (Some("error"), Some("malformed")), "{body}");
        assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(d["id"].as_u64(), id, "{body}");
        assert_eq!(d.get("id").is_some(), id.is_some(), "no id key without an id: {body}");
    }
    // A pong or an error sent to the server is an answer: nothing comes back, so two of
    // our peers cannot answer each other's errors for ever.
    send_text(&mut ws, r#"{"$r":"hb","d":{"t":"pong","id":8}}"#).await;
    send_text(&mut ws, r#"{"$r":"hb","d":{"t":"error","code":"malformed","message":"x","id":8}}"#).await;
    ping(&mut ws, 9).await;
    assert_eq!(next_json(&mut ws).await, json!({"$r": "hb", "d": {"t": "pong", "id": 9}}));
    // The connection is still an ordinary one.
    send_text(&mut ws, "still here").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("still here"));
}

#[tokio::test]
async fn a_pong_does_not_wait_for_the_routers_work_on_earlier_frames() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let release = Arc::new(Notify::new());
    let held = release.clone();
    let route = Route::new().read(move |_request| {
        let held = held.clone();
        async move {
            held.notified().await;
            Ok(json!("slow"))
        }
    });
    let _sync = SyncConfig::default().route("/slow", route).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;

    send_text(&mut ws, r#"{"$r":"sync","d":{"t":"request","method":"read","path":"/slow","id":1}}"#).await;
    ping(&mut ws, 2).await;
    // Answered while the read is still held by its handler.
    assert_eq!(next_json(&mut ws).await, json!({"$r": "hb", "d": {"t": "pong", "id": 2}}));
    release.notify_one();
    assert_eq!(next_json(&mut ws).await, json!({"$r": "sync", "d": {"t": "reply", "id": 1, "data": "slow"}}));
}

/// A router that wants the reserved name.
struct Impostor;

impl Router<Server> for Impostor {
    fn name(&self) -> &str {
        "hb"
    }

    async fn on_event(&mut self, _network: &Server, _event: NetworkEvent) {}
}

#[tokio::test]
async fn hb_is_a_reserved_router_name() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    match server.attach(Impostor) {
        Err(AttachError::Reserved(name)) => assert_eq!(name, "hb"),
        other => panic!("expected Reserved, got {other:?}"),
    }
    // Refused before anything was registered: pings are still the core's.
    assert!(!server.hub().router_names().iter().any(|name| name == "hb"));
    let mut ws = raw_client(&url(&server)).await;
    ping(&mut ws, 3).await;
    assert_eq!(next_json(&mut ws).await, json!({"$r": "hb", "d": {"t": "pong", "id": 3}}));
}

#[tokio::test]
async fn the_rust_client_answers_a_servers_ping_and_keeps_it_from_the_application() {
    // A bare WebSocket server stands for a peer that pings our client (rule 5).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::connect(format!("ws://{addr}"), ClientConfig::default()).unwrap();
    let mut application = client.events().expect("the first take of the events");
    let (socket, _) = within(listener.accept()).await.unwrap();
    let mut peer = within(tokio_tungstenite::accept_async(MaybeTlsStream::Plain(socket))).await.unwrap();

    ping(&mut peer, 41).await;
    send_text(&mut peer, "after the ping").await;
    assert_eq!(next_data(&mut peer).await, WsMessage::text(r#"{"$r":"hb","d":{"t":"pong","id":41}}"#));
    // The application sees the frame sent after the ping and nothing of the heartbeat.
    loop {
        match next_event(&mut application).await {
            NetworkEvent::Added(_) => continue,
            NetworkEvent::Message { message, .. } => {
                assert_eq!(message.as_text(), Some("after the ping"));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // An answer sent to the client is not answered.
    send_text(&mut peer, r#"{"$r":"hb","d":{"t":"pong","id":8}}"#).await;
    ping(&mut peer, 42).await;
    assert_eq!(next_json(&mut peer).await, json!({"$r": "hb", "d": {"t": "pong", "id": 42}}));
    client.close().await;
}
