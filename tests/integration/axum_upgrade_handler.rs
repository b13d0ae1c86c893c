//! `Server::axum_upgrade` from a handler of one's own: one route answers a plain `GET` with
//! a page and upgrades a WebSocket handshake, with the handshake hook applied.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use realtime::network_core::{Network, NetworkEvent};
use realtime::ws_server::{Accept, HandshakeHook, Reject, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

async fn start() -> (Server, SocketAddr) {
    // The hook refuses `?deny`, to show that it runs.
    let hook = HandshakeHook::new(|request| async move {
        match request.query_param("deny") {
            Some(_) => Err(Reject::new(realtime::network_core::http::StatusCode::FORBIDDEN, "denied")),
            None => Ok(Accept::new()),
        }
    });
    let server = Server::detached(ServerConfig::default().handshake(hook)).unwrap();
    let handler = {
        let server = server.clone();
        move |request: Request| async move {
            let response: Response = if request.headers().contains_key("upgrade") {
                server.axum_upgrade(request).await
            } else {
                "the page".into_response()
            };
            response
        }
    };
    let app = axum::Router::new().route("/", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let guarded = server.axum_listener(listener);
    tokio::spawn(async move { axum::serve(guarded, app).await.unwrap() });
    (server, addr)
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn one_route_serves_the_page_and_upgrades() {
    let (server, addr) = start().await;
    let mut events = server.events().unwrap();

    let page = tokio::time::timeout(std::time::Duration::from_secs(5), http_get(addr, "/")).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("the page"), "{page}");

    let (mut socket, _) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio_tungstenite::connect_async(format!("ws://{addr}/")),
    )
    .await
    .unwrap()
    .unwrap();
    socket.send(WsMessage::text("hello")).await.unwrap();
    let received = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Some(NetworkEvent::Message { message, .. }) = events.recv().await {
                return message;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(received.as_text(), Some("hello"));
    socket.close(None).await.unwrap();
    let _ = socket.next().await;

    // The handshake hook still decides.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/?deny=1")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
}
