//! An axum app on one port issues one-time socket tokens over HTTP, authenticates the
//! WebSocket upgrade with them, and notifies a user from an HTTP handler: the notification
//! reaches every connection of that user and no one else.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::support::*;
use axum::Json;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use futures_util::SinkExt;
use realtime::channels::{ChannelsConfig, Messenger};
use realtime::network_core::Identity;
use realtime::ws_server::{Server, ServerConfig, TokenConfig, TokenStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Clone)]
struct App {
    tokens: TokenStore,
    messenger: Messenger<Server>,
}

async fn start_app() -> SocketAddr {
    let tokens = TokenStore::new(TokenConfig::default()).unwrap();
    let server = Server::detached(ServerConfig::default().handshake(tokens.handshake_hook())).unwrap();
    let messenger = ChannelsConfig::default().attach(&server).unwrap();
    let router = axum::Router::new()
        .route(
            "/user/sockettoken",
            get(|State(app): State<App>, Query(q): Query<HashMap<String, String>>| async move {
                let identity = Identity::user(q["user"].as_str()).session_id(format!("{}-tab", q["user"]));
                Json(json!({ "token": app.tokens.issue(identity).unwrap() }))
            }),
        )
        .route(
            "/notify",
            post(
                |State(app): State<App>,
                 Query(q): Query<HashMap<String, String>>,
                 Json(body): Json<Value>| async move {
                    let delivered = app.messenger.emit_to_user(&q["user"], "notify", &body).await.unwrap();
                    Json(json!({ "delivered": delivered }))
                },
            ),
        )
        .route("/ws", server.axum_route())
        .with_state(App { tokens, messenger });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// One HTTP/1.1 request; returns the response body as JSON.
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(stream.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

async fn connect_as(addr: SocketAddr, user: &str) -> RawClient {
    let token = http(addr, "GET", &format!("/user/sockettoken?user={user}"), None).await;
    let mut ws = raw_client(&format!("ws://{addr}/ws?token={}", token["token"].as_str().unwrap())).await;
    // Frames of one connection are handled in order: once this join of `/` is answered,
    // the automatic root join (and its identity rooms) is done.
    let join = json!({"$r": "ch", "d": {"t": "join", "ch": "/", "id": 1}});
    ws.send(WsMessage::text(join.to_string())).await.unwrap();
    let WsMessage::Text(text) = next_data(&mut ws).await else { panic!() };
    assert_eq!(text.as_str(), r#"{"$r":"ch","d":{"t":"joined","ch":"/","id":1}}"#);
    ws
}

#[tokio::test]
async fn a_notification_from_an_http_route_reaches_every_tab_of_the_user() {
    let addr = start_app().await;
    let mut ada_tabs = vec![connect_as(addr, "ada").await, connect_as(addr, "ada").await];
    let mut bob = connect_as(addr, "bob").await;

    let reply = http(addr, "POST", "/notify?user=ada", Some(json!({"text": "approved"}))).await;
    assert_eq!(reply["delivered"], 2);
    for tab in &mut ada_tabs {
        let WsMessage::Text(text) = next_data(tab).await else { panic!() };
        assert_eq!(
            text.as_str(),
            r#"{"$r":"ch","d":{"t":"emit","ch":"/","ev":"notify","data":{"text":"approved"}}}"#
        );
    }
    let reply = http(addr, "POST", "/notify?user=bob", Some(json!({"only": "bob"}))).await;
    assert_eq!(reply["delivered"], 1);
    let WsMessage::Text(text) = next_data(&mut bob).await else { panic!() };
    assert!(text.contains(r#""data":{"only":"bob"}"#), "{text}");
}
