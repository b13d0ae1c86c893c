//! The views router on the server, spoken to by plain WebSocket clients that send the JSON
//! frames of docs/PROTOCOL.md section 6: full state then diffs, several tabs of one user,
//! cleanup on close and on drop, regex info, authorization, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::Identity;
use realtime::views::{Presence, ViewsConfig};
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A server taking `?user=U` as the identity, with views; `secret-*` views are refused.
async fn views_server() -> (Server, Presence<Server>) {
    let hook = HandshakeHook::new(|request| async move {
        Ok(match request.query_param("user") {
            Some(user) => {
                Accept::new().identity(Identity::user(user).data(json!({"name": user.to_uppercase()})))
            }
            None => Accept::new(),
        })
    });
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().handshake(hook)).await.unwrap();
    let presence = ViewsConfig::default()
        .diff_interval(Duration::from_millis(10))
        .authorize(|_connection, view| async move {
            if view.starts_with("secret-") { Err("no peeking".to_owned()) } else { Ok(()) }
        })
        .attach(&server)
        .unwrap();
    (server, presence)
}

async fn connect(server: &Server, query: &str) -> RawClient {
    raw_client(&format!("{}?{query}", url(server))).await
}

async fn send(ws: &mut RawClient, frame: Value) {
    ws.send(WsMessage::text(json!({"$r": "views", "d": frame}).to_string())).await.unwrap();
}

async fn next(ws: &mut RawClient) -> Value {
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected text") };
    let mut envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["$r"], "views", "{text}");
    envelope["d"].take()
}

/// Opens `view` and returns the member keys of the answered state.
async fn open(ws: &mut RawClient, view: &str) -> Vec<String> {
    send(ws, json!({"t": "open", "view": view, "id": 1})).await;
    let state = next(ws).await;
    assert_eq!((state["t"].as_str(), state["id"].as_u64()), (Some("state"), Some(1)), "{state}");
    keys(&state["members"])
}

fn keys(members: &Value) -> Vec<String> {
    members.as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap().to_owned()).collect()
}

async fn nothing_more(ws: &mut RawClient) {
    let more = tokio::time::timeout(Duration::from_millis(150), next_data(ws)).await;
    assert!(more.is_err(), "unexpected frame: {more:?}");
}

#[tokio::test]
async fn opening_gives_the_state_then_members_get_diffs() {
    let (server, presence) = views_server().await;
    let mut ada = connect(&server, "user=ada").await;
    let mut bob = connect(&server, "user=bob").await;
    assert_eq!(open(&mut ada, "doc").await, ["u:ada"]);
    // Ada's own join comes back as a (harmless, idempotent) diff.
    let own = next(&mut ada).await;
    assert_eq!(own["t"], "diff");
    assert_eq!(keys(&own["joins"]), ["u:ada"]);

    assert_eq!(open(&mut bob, "doc").await, ["u:ada", "u:bob"]);
    let diff = next(&mut ada).await;
    assert_eq!(
        diff,
        json!({"t": "diff", "view": "doc", "joins": [{"key": "u:bob", "user": "bob", "clients": 1, "data": {"name": "BOB"}}], "leaves": []})
    );
    assert_eq!(keys(&next(&mut bob).await["joins"]), ["u:bob"]);

    send(&mut bob, json!({"t": "close", "view": "doc", "id": 2})).await;
    assert_eq!(next(&mut bob).await, json!({"t": "closed", "view": "doc", "id": 2}));
    assert_eq!(next(&mut ada).await, json!({"t": "diff", "view": "doc", "joins": [], "leaves": ["u:bob"]}));
    nothing_more(&mut bob).await;
    assert_eq!(presence.members("doc").len(), 1);
}

#[tokio::test]
async fn a_user_with_several_tabs_is_one_member_with_a_client_count() {
    let (server, presence) = views_server().await;
    let mut watcher = connect(&server, "user=watcher").await;
    open(&mut watcher, "doc").await;
    next(&mut watcher).await; // own join
    let mut tab1 = connect(&server, "user=ada").await;
    let mut tab2 = connect(&server, "user=ada").await;
    open(&mut tab1, "doc").await;
    let first = next(&mut watcher).await;
    assert_eq!(first["joins"][0]["clients"], 1);
    assert_eq!(open(&mut tab2, "doc").await, ["u:ada", "u:watcher"]);
    let second = next(&mut watcher).await;
    assert_eq!(
        (second["joins"][0]["key"].as_str(), second["joins"][0]["clients"].as_u64()),
        (Some("u:ada"), Some(2))
    );
    let info = presence.info("doc", true).unwrap();
    assert_eq!((info.clients, info.users.len(), info.anonymous), (3, 2, 0));
    assert_eq!(info.users[0].connections.as_ref().map(Vec::len), Some(2));

    // One tab drops abruptly: ada stays, with one client.
    drop(tab1);
    let third = next(&mut watcher).await;
    assert_eq!(
        (third["joins"][0]["key"].as_str(), third["joins"][0]["clients"].as_u64()),
        (Some("u:ada"), Some(1))
    );
    // The other closes cleanly: ada leaves.
    tab2.close(None).await.unwrap();
    assert_eq!(next(&mut watcher).await["leaves"], json!(["u:ada"]));
}

#[tokio::test]
async fn anonymous_connections_are_members_of_their_own() {
    let (server, _presence) = views_server().await;
    let mut a = connect(&server, "x=1").await;
    let mut b = connect(&server, "x=2").await;
    open(&mut a, "lobby").await;
    let members = open(&mut b, "lobby").await;
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|key| key.starts_with("c:")));
}

#[tokio::test]
async fn info_answers_by_name_and_by_regex() {
    let (server, presence) = views_server().await;
    let mut ada = connect(&server, "user=ada").await;
    let mut bob = connect(&server, "user=bob").await;
    let mut anon = connect(&server, "").await;
    for view in ["doc-1", "doc-2", "chat"] {
        open(&mut ada, view).await;
    }
    open(&mut bob, "doc-2").await;
    open(&mut anon, "doc-2").await;

    send(&mut anon, json!({"t": "info", "id": 7, "pattern": "^doc-"})).await;
    let mut answer = next(&mut anon).await;
    while answer["t"] == "diff" {
        answer = next(&mut anon).await;
    }
    assert_eq!(answer["id"], 7);
    let views = answer["views"].as_array().unwrap();
    assert_eq!(views.len(), 2);
    assert_eq!(
        views[1],
        json!({"view": "doc-2", "clients": 3, "users": [{"user": "ada", "clients": 1}, {"user": "bob", "clients": 1}], "anonymous": 1})
    );

    let by_name = presence.info("chat", false).unwrap();
    assert_eq!((by_name.clients, by_name.users.len()), (1, 1));
    assert!(presence.info("nothing", false).is_none());
    assert_eq!(presence.info_matching("^(chat|doc-1)$", false).unwrap().len(), 2);
    assert!(presence.info_matching("(", false).is_err());
    assert_eq!(presence.views(), ["chat", "doc-1", "doc-2"]);
}

#[tokio::test]
async fn refusals_and_bad_input_get_error_frames_and_the_connection_stays() {
    let (server, _presence) = views_server().await;
    let mut ws = connect(&server, "user=eve").await;
    send(&mut ws, json!({"t": "open", "view": "secret-plans", "id": 1})).await;
    assert_eq!(
        next(&mut ws).await,
        json!({"t": "error", "code": "forbidden", "message": "no peeking", "id": 1, "view": "secret-plans"})
    );
    for (frame, code) in [
        (json!({"t": "dance"}), "malformed"),
        (json!({"t": "close", "view": "never-opened", "id": 2}), "not_open"),
        (json!({"t": "info", "id": 3, "pattern": "(unclosed"}), "bad_request"),
        (json!({"t": "info", "id": 4}), "bad_request"),
        (json!({"t": "open", "view": "", "id": 5}), "bad_request"),
        (json!({"t": "state", "view": "x", "members": [], "id": 6}), "unexpected"),
    ] {
        send(&mut ws, frame.clone()).await;
        assert_eq!(next(&mut ws).await["code"], code, "{frame}");
    }
    assert_eq!(open(&mut ws, "public").await, ["u:eve"]);
}
