//! One connection must not grow the server's per-connection state without bound: sync
//! subscriptions, channels joined and rooms joined are capped (views already were), each
//! refusal is an `error` (or error ack) with code `limit`, the request's `id` and what it
//! named, and leaving frees the slot. Every test uses the documented defaults.

use futures_util::SinkExt;
use realtime::channels::{Channel, ChannelsConfig};
use realtime::sync::{Route, SyncConfig};
use realtime::views::ViewsConfig;
use realtime::ws_server::ServerConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::*;

/// Queues a router frame without flushing, so that hundreds go out in a few writes.
async fn feed(ws: &mut RawClient, router: &str, body: Value) {
    within(ws.feed(WsMessage::text(json!({"$r": router, "d": body}).to_string()))).await.unwrap();
}

async fn send(ws: &mut RawClient, router: &str, body: Value) {
    feed(ws, router, body).await;
    within(ws.flush()).await.unwrap();
}

/// The next body of `router`, skipping views diffs (they come on their own schedule).
async fn next(ws: &mut RawClient, router: &str) -> Value {
    loop {
        let WsMessage::Text(text) = next_data(ws).await else { panic!("expected a text frame") };
        let mut envelope: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(envelope["$r"], router, "{text}");
        let body = envelope["d"].take();
        if body["t"] != "diff" {
            return body;
        }
    }
}

#[tokio::test]
async fn sync_subscriptions_are_capped_at_256_and_unsub_frees_a_slot() {
    let (server, _events) = server(ServerConfig::default()).await;
    let _sync = SyncConfig::default().route("/api/item/:id", Route::new()).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    for id in 0..256 {
        feed(&mut ws, "sync", json!({"t": "sub", "path": format!("/api/item/{id}"), "id": id})).await;
    }
    within(ws.flush()).await.unwrap();
    for id in 0..256 {
        let path = format!("/api/item/{id}");
        assert_eq!(next(&mut ws, "sync").await, json!({"t": "subscribed", "path": path, "id": id}));
    }
    send(&mut ws, "sync", json!({"t": "sub", "path": "/api/item/256", "id": 1000})).await;
    assert_eq!(
        next(&mut ws, "sync").await,
        json!({"t": "error", "code": "limit", "message": "at most 256 subscriptions per connection", "id": 1000, "path": "/api/item/256"})
    );
    // Subscribing again to a path it has costs nothing and is still answered.
    send(&mut ws, "sync", json!({"t": "sub", "path": "/api/item/7", "id": 1001})).await;
    assert_eq!(next(&mut ws, "sync").await["t"], "subscribed");

    send(&mut ws, "sync", json!({"t": "unsub", "path": "/api/item/7", "id": 1002})).await;
    assert_eq!(next(&mut ws, "sync").await, json!({"t": "unsubscribed", "path": "/api/item/7", "id": 1002}));
    send(&mut ws, "sync", json!({"t": "sub", "path": "/api/item/256", "id": 1003})).await;
    assert_eq!(next(&mut ws, "sync").await, json!({"t": "subscribed", "path": "/api/item/256", "id": 1003}));

    // The cap is per connection: another one starts empty.
    let mut other = raw_client(&url(&server)).await;
    send(&mut other, "sync", json!({"t": "sub", "path": "/api/item/256", "id": 1})).await;
    assert_eq!(next(&mut other, "sync").await["t"], "subscribed");
}

#[tokio::test]
async fn channels_joined_are_capped_at_64_with_the_root_and_leave_frees_a_slot() {
    let (server, _events) = server(ServerConfig::default()).await;
    let config = (0..64)
        .fold(ChannelsConfig::default(), |config, n| config.channel(&format!("/c{n}"), Channel::new()));
    let _messenger = config.attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    // `/` is the first of the 64.
    for n in 0..63 {
        feed(&mut ws, "ch", json!({"t": "join", "ch": format!("/c{n}"), "id": n})).await;
    }
    within(ws.flush()).await.unwrap();
    for n in 0..63 {
        assert_eq!(next(&mut ws, "ch").await, json!({"t": "joined", "ch": format!("/c{n}"), "id": n}));
    }
    send(&mut ws, "ch", json!({"t": "join", "ch": "/c63", "id": 100})).await;
    assert_eq!(
        next(&mut ws, "ch").await,
        json!({"t": "error", "code": "limit", "message": "at most 64 channels per connection", "id": 100, "ch": "/c63"})
    );
    // A channel it is in is answered `joined`, not `limit`.
    send(&mut ws, "ch", json!({"t": "join", "ch": "/c5", "id": 101})).await;
    assert_eq!(next(&mut ws, "ch").await["t"], "joined");

    send(&mut ws, "ch", json!({"t": "leave", "ch": "/c0", "id": 102})).await;
    assert_eq!(next(&mut ws, "ch").await, json!({"t": "left", "ch": "/c0", "id": 102}));
    send(&mut ws, "ch", json!({"t": "join", "ch": "/c63", "id": 103})).await;
    assert_eq!(next(&mut ws, "ch").await, json!({"t": "joined", "ch": "/c63", "id": 103}));
}

/// Rooms are joined by the application's hooks and handlers (`join_room`), here on a
/// peer's request: the handler's `?` turns the refusal into `limit`, in an error ack for
/// an event and in an `error` frame for a join whose hook was refused.
#[tokio::test]
async fn rooms_are_capped_at_256_and_leaving_a_room_or_its_channel_frees_slots() {
    let (server, _events) = server(ServerConfig::default()).await;
    let game = Channel::new()
        .on("enter", |ctx, room: String| async move {
            ctx.join_room(&room).await?;
            Ok(())
        })
        .on("exit", |ctx, room: String| async move {
            ctx.leave_room(&room).await?;
            Ok(())
        });
    let lobby = Channel::new().on_join(|ctx| async move {
        ctx.join_room("hall").await?;
        Ok(())
    });
    let _messenger =
        ChannelsConfig::default().channel("/game", game).channel("/lobby", lobby).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    send(&mut ws, "ch", json!({"t": "join", "ch": "/game", "id": 1})).await;
    assert_eq!(next(&mut ws, "ch").await["t"], "joined");
    for n in 0..256 {
        let enter = json!({"t": "emit", "ch": "/game", "ev": "enter", "data": format!("r{n}"), "id": 10 + n});
        feed(&mut ws, "ch", enter).await;
    }
    within(ws.flush()).await.unwrap();
    for n in 0..256 {
        assert_eq!(next(&mut ws, "ch").await, json!({"t": "ack", "id": 10 + n, "data": null}));
    }
    send(&mut ws, "ch", json!({"t": "emit", "ch": "/game", "ev": "enter", "data": "r256", "id": 500})).await;
    assert_eq!(
        next(&mut ws, "ch").await,
        json!({"t": "ack", "id": 500, "err": {"code": "limit", "message": "at most 256 rooms per connection"}})
    );
    send(&mut ws, "ch", json!({"t": "join", "ch": "/lobby", "id": 501})).await;
    assert_eq!(
        next(&mut ws, "ch").await,
        json!({"t": "error", "code": "limit", "message": "at most 256 rooms per connection", "id": 501, "ch": "/lobby"})
    );

    send(&mut ws, "ch", json!({"t": "emit", "ch": "/game", "ev": "exit", "data": "r0", "id": 502})).await;
    assert_eq!(next(&mut ws, "ch").await, json!({"t": "ack", "id": 502, "data": null}));
    send(&mut ws, "ch", json!({"t": "emit", "ch": "/game", "ev": "enter", "data": "r256", "id": 503})).await;
    assert_eq!(next(&mut ws, "ch").await, json!({"t": "ack", "id": 503, "data": null}));

    // Leaving the channel takes the connection out of its rooms and frees their slots.
    send(&mut ws, "ch", json!({"t": "leave", "ch": "/game", "id": 504})).await;
    assert_eq!(next(&mut ws, "ch").await["t"], "left");
    send(&mut ws, "ch", json!({"t": "join", "ch": "/lobby", "id": 505})).await;
    assert_eq!(next(&mut ws, "ch").await, json!({"t": "joined", "ch": "/lobby", "id": 505}));
}

/// Views had their cap already; it answers the same way as the others.
#[tokio::test]
async fn views_open_are_capped_at_256_and_close_frees_a_slot() {
    let (server, _events) = server(ServerConfig::default()).await;
    let _presence = ViewsConfig::default().attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    for n in 0..256 {
        feed(&mut ws, "views", json!({"t": "open", "view": format!("v{n}"), "id": n})).await;
    }
    within(ws.flush()).await.unwrap();
    for n in 0..256 {
        let state = next(&mut ws, "views").await;
        assert_eq!((state["t"].as_str(), state["id"].as_u64()), (Some("state"), Some(n)), "{state}");
    }
    send(&mut ws, "views", json!({"t": "open", "view": "v256", "id": 1000})).await;
    assert_eq!(
        next(&mut ws, "views").await,
        json!({"t": "error", "code": "limit", "message": "at most 256 views per connection", "id": 1000, "view": "v256"})
    );
    send(&mut ws, "views", json!({"t": "close", "view": "v0", "id": 1001})).await;
    assert_eq!(next(&mut ws, "views").await, json!({"t": "closed", "view": "v0", "id": 1001}));
    send(&mut ws, "views", json!({"t": "open", "view": "v256", "id": 1002})).await;
    let state = next(&mut ws, "views").await;
    assert_eq!((state["t"].as_str(), state["id"].as_u64()), (Some("state"), Some(1002)), "{state}");
}
