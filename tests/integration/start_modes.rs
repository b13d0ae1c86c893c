//! The server starts four ways: on an address, on a tokio listener, on a std listener, and
//! mounted as a route of an axum app that keeps serving its HTTP routes on the same port.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{Network, NetworkEvent};
use realtime::ws_server::{Server, ServerConfig, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Echoes application frames and checks one round trip through `url`.
async fn check_echo(server: &Server, url: &str) {
    let mut events = server.events().unwrap();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Message { connection, message } = event {
                let _ = connection.send(message);
            }
        }
    });
    let mut ws = raw_client(url).await;
    ws.send(WsMessage::text("hello")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, WsMessage::text("hello"));
}

#[tokio::test]
async fn bind_on_port_zero_reports_the_real_address() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    let addr = server.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    check_echo(&server, &format!("ws://{addr}")).await;
}

#[tokio::test]
async fn from_a_tokio_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::from_listener(listener, ServerConfig::default()).unwrap();
    assert_eq!(server.local_addr(), Some(addr));
    check_echo(&server, &format!("ws://{addr}")).await;
}

#[tokio::test]
async fn from_a_std_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::from_std_listener(listener, ServerConfig::default()).unwrap();
    check_echo(&server, &format!("ws://{addr}")).await;
}

#[tokio::test]
async fn mounted_in_axum_beside_http_routes() {
    let server = Server::detached(ServerConfig::default()).unwrap();
    assert_eq!(server.local_addr(), None);
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/ws", server.axum_route());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });

    // The app's own route answers on the same port...
    let mut http = tokio::net::TcpStream::connect(addr).await.unwrap();
    http.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    within(http.read_to_string(&mut response)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("ok"), "{response}");

    // ...and so does the WebSocket server, with the remote address known.
    let mut events = server.events().unwrap();
    let mut ws = raw_client(&format!("ws://{addr}/ws")).await;
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };
    assert_eq!(connection.meta().path, "/ws");
    assert!(connection.meta().remote_addr.is_some());
    ws.send(WsMessage::text("via axum")).await.unwrap();
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    connection.send(message).unwrap();
    assert_eq!(next_data(&mut ws).await, WsMessage::text("via axum"));
}

#[tokio::test]
async fn binding_a_taken_address_fails_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let Err(err) = Server::bind(addr, ServerConfig::default()).await else {
        panic!("{addr} was bound twice");
    };
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    match err {
        ServerError::Bind { addr: failed, source } => {
            assert_eq!(failed, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_address_that_does_not_resolve_is_refused_as_such() {
    let Err(err) = Server::bind("127.0.0.1:99999", ServerConfig::default()).await else {
        panic!("port 99999 was bound");
    };
    assert!(matches!(err, ServerError::Resolve(_)), "{err:?}");
}
