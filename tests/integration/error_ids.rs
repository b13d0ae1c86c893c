//! Errors echo the request's `id` (docs/PROTOCOL.md section 2.3), for every router, over
//! real sockets: a frame that is JSON (or MessagePack) but not a valid frame of its router
//! (an unknown `t`, a missing or mistyped field, a frame only the server sends) is answered
//! with an `error` carrying the frame's `id` whenever that is an unsigned integer; and the
//! channels `ack`, whose id is the server's, is referred to as `ack`, never as `id`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::SinkExt;
use realtime::channels::{Channel, ChannelsConfig};
use realtime::network_core::envelope;
use realtime::sync::{Route, SyncConfig};
use realtime::views::ViewsConfig;
use realtime::ws_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A server with the three routers.
async fn all_routers() -> Server {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let chat = Channel::new().on("add", |_ctx, (a, b): (i64, i64)| async move { Ok(a + b) });
    ChannelsConfig::default().channel("/chat", chat).attach(&server).unwrap();
    ViewsConfig::default().attach(&server).unwrap();
    let route = Route::new().read(|_request| async move { Ok(json!({"id": 1})) });
    SyncConfig::default().route("/api/book/:id", route).attach(&server).unwrap();
    server
}

async fn next_json(ws: &mut RawClient) -> Value {
    match next_data(ws).await {
        WsMessage::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends `body` to `router` and returns the body of the answer, checking it is an error
/// of the same router with `code`.
async fn answer_to(ws: &mut RawClient, router: &str, body: Value, code: &str) -> Value {
    send_text(ws, &json!({"$r": router, "d": body}).to_string()).await;
    let answer = next_json(ws).await;
    assert_eq!(answer["$r"], router, "{body}");
    let d = answer["d"].clone();
    assert_eq!((d["t"].as_str(), d["code"].as_str()), (Some("error"), Some(code)), "{body} got {d}");
    d
}

#[tokio::test]
async fn channels_errors_echo_the_id_and_name_acks_as_ack() {
    let server = all_routers().await;
    let mut ws = raw_client(&url(&server)).await;
    for (body, code, id) in [
        (json!({"t": "join", "ch": 5, "id": 3}), "malformed", Some(3)),
        (json!({"t": "fly", "id": 4}), "malformed", Some(4)),
        (json!({"t": "emit", "ch": "/chat", "id": 6}), "malformed", Some(6)),
        (json!({"t": "joined", "ch": "/", "id": 5}), "unexpected", Some(5)),
        (json!({"t": "error", "code": "x", "message": "y", "id": 7}), "unexpected", Some(7)),
        (json!({"t": "join", "ch": 5, "id": -1}), "malformed", None),
        (json!({"t": "join", "ch": 5, "id": "3"}), "malformed", None),
        (json!({"t": "join", "ch": 5}), "malformed", None),
    ] {
        let d = answer_to(&mut ws, "ch", body.clone(), code).await;
        assert_eq!(d["id"].as_u64(), id, "{body}");
        assert!(d.get("ack").is_none(), "{body}");
    }
    // An `ack` names an id of the server's: a bad one is echoed as `ack`, never as `id`.
    let d = answer_to(&mut ws, "ch", json!({"t": "ack", "id": 8, "err": "not an object"}), "malformed").await;
    assert_eq!((d.get("id"), d["ack"].as_u64()), (None, Some(8)));
    let d = answer_to(&mut ws, "ch", json!({"t": "ack", "id": 9, "data": 1}), "unknown_ack").await;
    assert_eq!((d.get("id"), d["ack"].as_u64()), (None, Some(9)));

    // MessagePack in, JSON out, the id read all the same.
    let packed = envelope::msgpack("ch", &json!({"t": "join", "id": 10})).unwrap();
    within(ws.send(WsMessage::binary(packed.payload().clone()))).await.unwrap();
    let answer = next_json(&mut ws).await;
    assert_eq!((answer["d"]["code"].as_str(), answer["d"]["id"].as_u64()), (Some("malformed"), Some(10)));

    // The connection still works.
    send_text(&mut ws, r#"{"$r":"ch","d":{"t":"join","ch":"/chat","id":11}}"#).await;
    assert_eq!(next_json(&mut ws).await["d"], json!({"t": "joined", "ch": "/chat", "id": 11}));
}

#[tokio::test]
async fn views_errors_echo_the_id() {
    let server = all_routers().await;
    let mut ws = raw_client(&url(&server)).await;
    for (body, code, id) in [
        (json!({"t": "open", "view": 7, "id": 3}), "malformed", Some(3)),
        (json!({"t": "open", "id": 4}), "malformed", Some(4)),
        (json!({"t": "nope", "id": 5}), "malformed", Some(5)),
        (json!({"t": "info", "id": 6}), "bad_request", Some(6)),
        (json!({"t": "state", "view": "x", "members": [], "id": 7}), "unexpected", Some(7)),
        (json!({"t": "error", "code": "x", "message": "y", "id": 8}), "unexpected", Some(8)),
        (json!({"t": "diff", "view": "x"}), "unexpected", None),
        (json!({"t": "open", "view": 7, "id": 1.5}), "malformed", None),
        (json!({"t": "open", "view": "x", "id": "3"}), "malformed", None),
    ] {
        let d = answer_to(&mut ws, "views", body.clone(), code).await;
        assert_eq!(d["id"].as_u64(), id, "{body}");
    }
    send_text(&mut ws, r#"{"$r":"views","d":{"t":"open","view":"doc","id":9}}"#).await;
    assert_eq!(next_json(&mut ws).await["d"]["t"], "state");
}

#[tokio::test]
async fn sync_errors_echo_the_id_so_a_bad_request_fails_at_once() {
    let server = all_routers().await;
    let mut ws = raw_client(&url(&server)).await;
    for (body, code, id) in [
        // A request the server cannot read is answered with an error frame, not a reply.
        (json!({"t": "request", "method": "patch", "path": "/api/book/1", "id": 9}), "malformed", Some(9)),
        (json!({"t": "request", "method": "read", "id": 10}), "malformed", Some(10)),
        (json!({"t": "request", "method": "read", "path": "/api/book/1"}), "malformed", None),
        (json!({"t": "sub", "path": 5, "id": 11}), "malformed", Some(11)),
        (json!({"t": "reply", "id": 12, "data": 1}), "unexpected", Some(12)),
        (json!({"t": "subscribed", "path": "/a", "id": 13}), "unexpected", Some(13)),
        (json!({"t": "data", "path": "/a", "op": "change", "data": 1}), "unexpected", None),
    ] {
        let d = answer_to(&mut ws, "sync", body.clone(), code).await;
        assert_eq!(d["id"].as_u64(), id, "{body}");
    }
    send_text(&mut ws, r#"{"$r":"sync","d":{"t":"request","method":"read","path":"/api/book/1","id":14}}"#)
        .await;
    assert_eq!(next_json(&mut ws).await["d"], json!({"t": "reply", "id": 14, "data": {"id": 1}}));
}
