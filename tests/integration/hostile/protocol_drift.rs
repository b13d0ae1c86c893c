//! Where black-box checks found the code and docs/PROTOCOL.md disagreeing: the syntax of
//! views `info` patterns (section 6.3, rule 5) and the nesting limit of decoded bodies
//! (section 2), checked at the exact boundary in JSON and in MessagePack.

use futures_util::SinkExt;
use realtime::channels::{Channel, ChannelsConfig};
use realtime::sync::{Route, SyncConfig};
use realtime::views::ViewsConfig;
use realtime::ws_server::ServerConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::*;

async fn send(ws: &mut RawClient, router: &str, body: Value) {
    let frame = json!({"$r": router, "d": body}).to_string();
    within(ws.send(WsMessage::text(frame))).await.unwrap();
}

async fn send_msgpack(ws: &mut RawClient, router: &str, body: Value) {
    let frame = rmp_serde::to_vec_named(&json!({"$r": router, "d": body})).unwrap();
    within(ws.send(WsMessage::binary(frame))).await.unwrap();
}

/// The next body of `router` (the server answers in JSON).
async fn next(ws: &mut RawClient, router: &str) -> Value {
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected a text frame") };
    let mut envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["$r"], router, "{text}");
    envelope["d"].take()
}

/// The next views answer that is not a diff.
async fn next_answer(ws: &mut RawClient) -> Value {
    loop {
        let body = next(ws, "views").await;
        if body["t"] != "diff" {
            return body;
        }
    }
}

fn names(answer: &Value) -> Vec<&str> {
    let views = answer["views"].as_array().unwrap_or_else(|| panic!("not an info answer: {answer}"));
    views.iter().map(|view| view["view"].as_str().unwrap()).collect()
}

/// PROTOCOL.md documents Rust `regex` syntax; `\d`, `\w`, `\s`, `\b` and `(?i)` are part of
/// it and must work (the crate was built without the Unicode tables they need), while
/// property classes and patterns over the compiled-size cap are refused as `bad_request`.
#[tokio::test]
async fn info_patterns_accept_perl_classes_and_case_insensitivity() {
    let (server, _events) = server(ServerConfig::default()).await;
    let _presence = ViewsConfig::default().attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    for (id, view) in ["doc-7", "Doc-8", "doc-x", "notes"].into_iter().enumerate() {
        send(&mut ws, "views", json!({"t": "open", "view": view, "id": id})).await;
        assert_eq!(next_answer(&mut ws).await["t"], "state");
    }
    for (id, pattern, expected) in [
        (10, r"^doc-\d$", vec!["doc-7"]),
        (11, r"(?i)^doc-", vec!["Doc-8", "doc-7", "doc-x"]),
        (12, r"^\w+-\w$", vec!["Doc-8", "doc-7", "doc-x"]),
        (13, r"\bnotes\b\s*", vec!["notes"]),
        (14, r"\p{Greek}", vec![]),
    ] {
        send(&mut ws, "views", json!({"t": "info", "id": id, "pattern": pattern})).await;
        let answer = next_answer(&mut ws).await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(names(&answer), expected, "pattern {pattern}: {answer}");
    }
    // Documented as refused: Unicode classes past the 1 MiB cap.
    for (id, pattern) in [(15, r"\w{50}")] {
        send(&mut ws, "views", json!({"t": "info", "id": id, "pattern": pattern})).await;
        let refused = next_answer(&mut ws).await;
        assert_eq!(
            (refused["t"].as_str(), refused["code"].as_str(), refused["id"].as_u64()),
            (Some("error"), Some("bad_request"), Some(id)),
            "pattern {pattern}: {refused}"
        );
    }
}

/// A value of exactly `levels` nested arrays (`[[]]` is 2).
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!([]), |inner, _| json!([inner]))
}

/// A router body nested `levels` deep: the body map is the first level, its `data` the rest.
fn body_with_data(mut body: Value, levels: usize) -> Value {
    body["data"] = nested(levels - 1);
    body
}

/// PROTOCOL.md section 2: a router body nested 126 levels decodes (127 with the envelope
/// map around it), one level more is refused with `malformed`, in JSON and MessagePack
/// alike. A sync `create` carries the payload back in its reply, so an accepted body is
/// seen whole.
#[tokio::test]
async fn sync_bodies_nested_126_levels_are_accepted_and_127_refused() {
    let (server, _events) = server(ServerConfig::default()).await;
    let echo = Route::new().create(|request| async move { Ok(request.data) });
    let _sync = SyncConfig::default().route("/api/items", echo).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    let create = |id: u64| json!({"t": "request", "method": "create", "path": "/api/items", "id": id});
    for msgpack in [false, true] {
        let (accepted, refused) = (body_with_data(create(1), 126), body_with_data(create(2), 127));
        for (body, ok) in [(accepted, true), (refused, false)] {
            let data = body["data"].clone();
            if msgpack {
                send_msgpack(&mut ws, "sync", body).await;
            } else {
                send(&mut ws, "sync", body).await;
            }
            let answer = next(&mut ws, "sync").await;
            if ok {
                assert_eq!(answer["t"], "reply", "msgpack {msgpack}: {answer}");
                assert_eq!((answer["id"].as_u64(), &answer["data"]), (Some(1), &data), "msgpack {msgpack}");
            } else {
                assert_eq!(
                    (answer["t"].as_str(), answer["code"].as_str()),
                    (Some("error"), Some("malformed")),
                    "msgpack {msgpack}: {answer}"
                );
            }
        }
    }
}

/// The same boundary for a channels `emit` payload, acknowledged by an echo handler.
#[tokio::test]
async fn channels_bodies_nested_126_levels_are_accepted_and_127_refused() {
    let (server, _events) = server(ServerConfig::default()).await;
    let root = Channel::new().on("echo", |_ctx, data: Value| async move { Ok(data) });
    let _messenger = ChannelsConfig::default().channel("/", root).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    let emit = |id: u64| json!({"t": "emit", "ch": "/", "ev": "echo", "id": id});
    for msgpack in [false, true] {
        let (accepted, refused) = (body_with_data(emit(1), 126), body_with_data(emit(2), 127));
        for (body, ok) in [(accepted, true), (refused, false)] {
            let data = body["data"].clone();
            if msgpack {
                send_msgpack(&mut ws, "ch", body).await;
            } else {
                send(&mut ws, "ch", body).await;
            }
            let answer = next(&mut ws, "ch").await;
            if ok {
                assert_eq!(answer["t"], "ack", "msgpack {msgpack}: {answer}");
                assert_eq!((answer["id"].as_u64(), &answer["data"]), (Some(1), &data), "msgpack {msgpack}");
            } else {
                assert_eq!(
                    (answer["t"].as_str(), answer["code"].as_str()),
                    (Some("error"), Some("malformed")),
                    "msgpack {msgpack}: {answer}"
                );
            }
        }
    }
}
