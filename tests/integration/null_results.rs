//! A successful result that is null is `"data":null`, one rule for every router
//! (docs/PROTOCOL.md section 2.3), over real sockets: the channels `ack` and the sync
//! `reply` of a handler that returns nothing carry `"data":null`, a failure carries `err`
//! and no `data`; and the Rust clients read a null result (and the `ack` they send for
//! one is read by the server) as a success.
//!
//! Before this rule both routers left `data` out when it was null, while PROTOCOL.md
//! promised `null`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use realtime::channels::client::{ChannelsClient, ChannelsClientConfig};
use realtime::channels::{Channel, ChannelsConfig, Messenger, RemoteError};
use realtime::network_core::Network;
use realtime::sync::client::{SyncClient, SyncClientConfig};
use realtime::sync::{Route, SyncConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn server() -> (Server, Messenger<Server>) {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let root = Channel::new()
        .on("forget", |_ctx, _: Value| async move { Ok(()) })
        .on("nothing", |_ctx, _: Value| async move { Ok(None::<u32>) })
        .on("fail", |_ctx, _: Value| async move { Err::<(), _>(RemoteError::new("nope", "not today")) });
    let messenger = ChannelsConfig::default().channel("/", root).attach(&server).unwrap();
    let empty = Route::new()
        .read(|_request| async move { Ok(Value::Null) })
        .delete(|_request| async move { Err(RemoteError::not_found("no such thing")) });
    SyncConfig::default().route("/api/empty", empty).attach(&server).unwrap();
    (server, messenger)
}

async fn exchange(ws: &mut RawClient, frame: Value) -> String {
    send_text(ws, &frame.to_string()).await;
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected text") };
    text.to_string()
}

#[tokio::test]
async fn null_results_are_data_null_on_the_wire() {
    let (server, _messenger) = server().await;
    let mut ws = raw_client(&url(&server)).await;
    // Exact bytes: a browser client's `"data" in frame` and `frame.data === null` hold.
    for (event, id) in [("forget", 1), ("nothing", 2)] {
        let text =
            exchange(&mut ws, json!({"$r": "ch", "d": {"t": "emit", "ch": "/", "ev": event, "id": id}}))
                .await;
        assert_eq!(text, format!(r#"{{"$r":"ch","d":{{"t":"ack","id":{id},"data":null}}}}"#), "{event}");
    }
    let text =
        exchange(&mut ws, json!({"$r": "ch", "d": {"t": "emit", "ch": "/", "ev": "fail", "id": 3}})).await;
    assert_eq!(text, r#"{"$r":"ch","d":{"t":"ack","id":3,"err":{"code":"nope","message":"not today"}}}"#);

    let text = exchange(
        &mut ws,
        json!({"$r": "sync", "d": {"t": "request", "method": "read", "path": "/api/empty", "id": 4}}),
    )
    .await;
    assert_eq!(text, r#"{"$r":"sync","d":{"t":"reply","id":4,"data":null}}"#);
    let text = exchange(
        &mut ws,
        json!({"$r": "sync", "d": {"t": "request", "method": "delete", "path": "/api/empty", "id": 5}}),
    )
    .await;
    assert_eq!(
        text,
        r#"{"$r":"sync","d":{"t":"reply","id":5,"err":{"code":"not_found","message":"no such thing"}}}"#
    );
}

#[tokio::test]
async fn the_rust_clients_read_and_send_null_results_as_successes() {
    let (server, messenger) = server().await;
    let client = Client::connect(url(&server), ClientConfig::default()).unwrap();
    let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default()).unwrap();
    let sync = SyncClient::attach(&client, SyncClientConfig::default()).unwrap();
    within(channels.ready()).await;

    let root = channels.root();
    within(root.emit_with_ack::<(), _>("forget", &())).await.unwrap();
    assert_eq!(within(root.emit_with_ack::<Option<u32>, _>("nothing", &())).await.unwrap(), None);
    assert_eq!(within(root.emit_with_ack::<Value, _>("nothing", &())).await.unwrap(), Value::Null);
    assert_eq!(within(sync.read::<Value>("/api/empty")).await.unwrap(), Value::Null);
    assert_eq!(within(sync.read::<Option<String>>("/api/empty")).await.unwrap(), None);

    // The client's own ack of a handler returning nothing is a success for the server.
    root.handle("ping", |(): ()| async move { Ok::<_, RemoteError>(()) });
    let id = within(async {
        loop {
            if let Some(connection) = messenger.network().connections().first() {
                return connection.id();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let answer: Value = within(messenger.emit_with_ack(id, "ping", &())).await.unwrap();
    assert_eq!(answer, Value::Null);
    client.close().await;
}
