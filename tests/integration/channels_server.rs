//! The channels router on the server, spoken to by plain WebSocket clients that send the
//! JSON frames of docs/PROTOCOL.md section 5: joins and refusals, identity rooms, room
//! fan-out without duplicates, acknowledgements both ways, timeouts, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use futures_util::SinkExt;
use realtime::channels::{AckError, Channel, ChannelsConfig, Messenger, RemoteError};
use realtime::network_core::Identity;
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A server whose handshake takes `?user=U&session=S` as the identity, with channels:
/// `/` (default), `/chat` (event `say` broadcasts to room `lobby`, `add` answers a sum,
/// `fail` answers an error, `boom` panics) and the private `/admin`.
async fn channels_server() -> (Server, Messenger<Server>) {
    let hook = HandshakeHook::new(|request| async move {
        let mut accept = Accept::new();
        if let Some(user) = request.query_param("user") {
            let mut identity = Identity::user(user);
            if let Some(session) = request.query_param("session") {
                identity = identity.session_id(session);
            }
            accept = accept.identity(identity);
        }
        Ok(accept)
    });
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().handshake(hook)).await.unwrap();
    let chat = Channel::new()
        .on_join(|ctx| async move {
            ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string()))?;
            Ok(())
        })
        .on("say", |ctx, text: String| async move {
            ctx.broadcast_to_room("lobby", "said", &text)
                .await
                .map_err(|e| RemoteError::internal(e.to_string()))?;
            Ok(())
        })
        .on("add", |_ctx, (a, b): (i64, i64)| async move { Ok(a + b) })
        .on("fail", |_ctx, _: Value| async move {
            Err::<(), _>(RemoteError::new("out_of_stock", "no more books"))
        })
        .on("boom", |_ctx, _: Value| async move {
            if true {
                panic!("handler bug");
            }
            Ok(())
        });
    let admin = Channel::new().on_join(|ctx| async move {
        match ctx.identity().and_then(|i| i.user_id.clone()).as_deref() {
            Some("root") => Ok(()),
            _ => Err(RemoteError::forbidden("admins only")),
        }
    });
    let config = ChannelsConfig::default()
        .channel("/chat", chat)
        .channel("/admin", admin)
        .ack_timeout(Duration::from_millis(300));
    let messenger = config.attach(&server).unwrap();
    (server, messenger)
}

async fn connect(server: &Server, query: &str) -> RawClient {
    let mut ws = raw_client(&format!("{}?{query}", url(server))).await;
    // The root channel is joined without a frame; a round trip makes sure it is done.
    send_frame(&mut ws, json!({"t": "join", "ch": "/", "id": 0})).await;
    assert_eq!(next_frame(&mut ws).await, json!({"t": "joined", "ch": "/", "id": 0}));
    ws
}

async fn send_frame(ws: &mut RawClient, frame: Value) {
    let text = json!({"$r": "ch", "d": frame}).to_string();
    ws.send(WsMessage::text(text)).await.unwrap();
}

async fn next_frame(ws: &mut RawClient) -> Value {
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected a text frame") };
    let mut envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["$r"], "ch", "{text}");
    envelope["d"].take()
}

/// Asserts that nothing arrives on `ws` within a short time.
async fn nothing_more(ws: &mut RawClient) {
    let more = tokio::time::timeout(Duration::from_millis(200), next_data(ws)).await;
    assert!(more.is_err(), "unexpected frame: {more:?}");
}

#[tokio::test]
async fn joins_are_answered_and_private_channels_refuse() {
    let (server, _messenger) = channels_server().await;
    let mut ws = connect(&server, "user=ada").await;
    send_frame(&mut ws, json!({"t": "join", "ch": "/chat", "id": 1})).await;
    assert_eq!(next_frame(&mut ws).await, json!({"t": "joined", "ch": "/chat", "id": 1}));
    send_frame(&mut ws, json!({"t": "join", "ch": "/admin", "id": 2})).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"t": "error", "code": "forbidden", "message": "admins only", "id": 2, "ch": "/admin"})
    );
    send_frame(&mut ws, json!({"t": "join", "ch": "/nope", "id": 3})).await;
    let refusal = next_frame(&mut ws).await;
    assert_eq!((refusal["code"].as_str(), refusal["id"].as_u64()), (Some("unknown_channel"), Some(3)));

    let mut root = connect(&server, "user=root").await;
    send_frame(&mut root, json!({"t": "join", "ch": "/admin", "id": 9})).await;
    assert_eq!(next_frame(&mut root).await, json!({"t": "joined", "ch": "/admin", "id": 9}));
    send_frame(&mut root, json!({"t": "leave", "ch": "/admin", "id": 10})).await;
    assert_eq!(next_frame(&mut root).await, json!({"t": "left", "ch": "/admin", "id": 10}));
}

#[tokio::test]
async fn a_user_with_three_tabs_gets_each_emit_three_times_once_per_tab() {
    let (server, messenger) = channels_server().await;
    let mut tabs = Vec::new();
    for session in ["s1", "s2", "s3"] {
        tabs.push(connect(&server, &format!("user=ada&session={session}")).await);
    }
    let mut other = connect(&server, "user=bob").await;
    let reached = messenger.emit_to_user("ada", "notify", &json!({"form": 7})).await.unwrap();
    assert_eq!(reached, 3);
    for tab in &mut tabs {
        assert_eq!(
            next_frame(tab).await,
            json!({"t": "emit", "ch": "/", "ev": "notify", "data": {"form": 7}})
        );
    }
    assert_eq!(messenger.emit_to_session("s2", "only", &1).await.unwrap(), 1);
    assert_eq!(next_frame(&mut tabs[1]).await["ev"], "only");
    // An offline user: nothing, and no error.
    assert_eq!(messenger.emit_to_user("nobody", "notify", &0).await.unwrap(), 0);
    // Several users, overlapping: each connection once.
    assert_eq!(messenger.emit_to_users(&["ada", "bob", "ada"], "all", &0).await.unwrap(), 4);
    assert_eq!(messenger.emit_to_everyone("hello", &0).await.unwrap(), 4);
    for tab in &mut tabs {
        assert_eq!(next_frame(tab).await["ev"], "all");
        assert_eq!(next_frame(tab).await["ev"], "hello");
        nothing_more(tab).await;
    }
    assert_eq!(next_frame(&mut other).await["ev"], "all");
    assert_eq!(next_frame(&mut other).await["ev"], "hello");
}

#[tokio::test]
async fn room_fan_out_counts_each_member_once_and_only_in_its_channel() {
    let (server, messenger) = channels_server().await;
    let mut a = connect(&server, "user=a").await;
    let mut b = connect(&server, "user=b").await;
    let c = connect(&server, "user=c").await;
    for ws in [&mut a, &mut b] {
        send_frame(ws, json!({"t": "join", "ch": "/chat", "id": 1})).await;
        assert_eq!(next_frame(ws).await["t"], "joined");
    }
    let chat = messenger.channel("/chat");
    let members = chat.room_members("lobby").await.unwrap();
    assert_eq!(members.len(), 2);
    chat.join_room(members[0], "red").await.unwrap();
    // `lobby` and `red` overlap in one connection: it receives the emit once.
    assert_eq!(chat.emit_to_rooms(&["lobby", "red"], "x", &1).await.unwrap(), 2);
    // The same room name on channel `/` is another room.
    assert_eq!(messenger.emit_to_room("lobby", "x", &1).await.unwrap(), 0);
    assert_eq!(next_frame(&mut a).await["ev"], "x");
    assert_eq!(next_frame(&mut b).await["ev"], "x");

    // A client event broadcast to the room except its sender.
    send_frame(&mut a, json!({"t": "emit", "ch": "/chat", "ev": "say", "data": "hi all"})).await;
    assert_eq!(next_frame(&mut b).await, json!({"t": "emit", "ch": "/chat", "ev": "said", "data": "hi all"}));
    nothing_more(&mut a).await;
    drop(c);
}

#[tokio::test]
async fn client_acks_are_error_first_and_handlers_never_hang_the_caller() {
    let (server, _messenger) = channels_server().await;
    let mut ws = connect(&server, "user=ada").await;
    send_frame(&mut ws, json!({"t": "join", "ch": "/chat"})).await;
    assert_eq!(next_frame(&mut ws).await["t"], "joined");

    send_frame(&mut ws, json!({"t": "emit", "ch": "/chat", "ev": "add", "data": [2, 40], "id": 5})).await;
    assert_eq!(next_frame(&mut ws).await, json!({"t": "ack", "id": 5, "data": 42}));
    send_frame(&mut ws, json!({"t": "emit", "ch": "/chat", "ev": "fail", "id": 6})).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"t": "ack", "id": 6, "err": {"code": "out_of_stock", "message": "no more books"}})
    );
    send_frame(&mut ws, json!({"t": "emit", "ch": "/chat", "ev": "boom", "id": 7})).await;
    let crashed = next_frame(&mut ws).await;
    assert_eq!((crashed["id"].as_u64(), crashed["err"]["code"].as_str()), (Some(7), Some("internal")));
    send_frame(&mut ws, json!({"t": "emit", "ch": "/chat", "ev": "add", "data": "two", "id": 8})).await;
    assert_eq!(next_frame(&mut ws).await["err"]["code"], "bad_request");
    send_frame(&mut ws, json!({"t": "emit", "ch": "/chat", "ev": "unknown", "id": 9})).await;
    assert_eq!(next_frame(&mut ws).await["err"]["code"], "no_handler");
    send_frame(&mut ws, json!({"t": "emit", "ch": "/admin", "ev": "add", "data": [1, 1], "id": 10})).await;
    assert_eq!(next_frame(&mut ws).await["err"]["code"], "not_joined");
    // Without an id, a failure comes back as an error frame naming the channel.
    send_frame(&mut ws, json!({"t": "emit", "ch": "/chat", "ev": "fail"})).await;
    let error = next_frame(&mut ws).await;
    assert_eq!(
        (error["t"].as_str(), error["code"].as_str(), error["ch"].as_str()),
        (Some("error"), Some("out_of_stock"), Some("/chat"))
    );
}

#[tokio::test]
async fn server_acks_round_trip_time_out_and_report_remote_errors() {
    let (server, messenger) = channels_server().await;
    let mut ws = connect(&server, "user=ada").await;
    let id = server_connection_of(&messenger, "ada").await;

    let asking = tokio::spawn({
        let messenger = messenger.clone();
        async move { messenger.emit_with_ack::<String, _>(id, "confirm", &"delete?").await }
    });
    let request = next_frame(&mut ws).await;
    assert_eq!((request["ev"].as_str(), request["data"].as_str()), (Some("confirm"), Some("delete?")));
    let ack_id = request["id"].as_u64().unwrap();
    send_frame(&mut ws, json!({"t": "ack", "id": ack_id, "data": "yes"})).await;
    assert_eq!(within(asking).await.unwrap().unwrap(), "yes");

    let asking = tokio::spawn({
        let messenger = messenger.clone();
        async move { messenger.emit_with_ack::<String, _>(id, "confirm", &"again?").await }
    });
    let ack_id = next_frame(&mut ws).await["id"].as_u64().unwrap();
    send_frame(&mut ws, json!({"t": "ack", "id": ack_id, "err": {"code": "no", "message": "refused"}})).await;
    match within(asking).await.unwrap() {
        Err(AckError::Remote(error)) => assert_eq!(error, RemoteError::new("no", "refused")),
        other => panic!("expected a remote error, got {other:?}"),
    }

    // No answer: the caller gets a timeout (ack_timeout is 300 ms), and the late answer
    // is refused with unknown_ack.
    let started = tokio::time::Instant::now();
    let silent = messenger.emit_with_ack::<String, _>(id, "confirm", &"anyone?");
    let (result, request) = tokio::join!(silent, next_frame(&mut ws));
    assert!(matches!(result, Err(AckError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    send_frame(&mut ws, json!({"t": "ack", "id": request["id"], "data": "late"})).await;
    assert_eq!(next_frame(&mut ws).await["code"], "unknown_ack");
}

#[tokio::test]
async fn bad_input_gets_error_frames_and_the_connection_stays_up() {
    let (server, _messenger) = channels_server().await;
    let mut ws = connect(&server, "user=ada").await;
    for (body, code) in [
        (json!({"t": "fly"}), "malformed"),
        (json!({"t": "emit", "ch": "/chat"}), "malformed"),
        (json!("just a string"), "malformed"),
        (json!({"t": "joined", "ch": "/"}), "unexpected"),
        (json!({"t": "ack", "id": 12345, "data": 1}), "unknown_ack"),
    ] {
        send_frame(&mut ws, body.clone()).await;
        assert_eq!(next_frame(&mut ws).await["code"], code, "{body}");
    }
    send_frame(&mut ws, json!({"t": "join", "ch": "/chat", "id": 1})).await;
    assert_eq!(next_frame(&mut ws).await["t"], "joined");
}

/// The server-side id of user `user`'s (only) connection.
async fn server_connection_of(
    messenger: &Messenger<Server>,
    user: &str,
) -> realtime::network_core::ConnectionId {
    use realtime::network_core::Network;
    messenger
        .network()
        .connections()
        .into_iter()
        .find(|c| c.identity().and_then(|i| i.user_id.clone()).as_deref() == Some(user))
        .map(|c| c.id())
        .unwrap()
}
