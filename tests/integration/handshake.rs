//! The handshake hook: it sees the request, attaches an identity, or refuses with an
//! HTTP status before the upgrade.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use realtime::network_core::http::StatusCode;
use realtime::network_core::{Identity, NetworkEvent};
use realtime::ws_server::{Accept, HandshakeHook, Reject, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Error as WsError;

fn hook() -> HandshakeHook {
    HandshakeHook::new(|request| async move {
        if request.path != "/ws" {
            return Err(Reject::new(StatusCode::NOT_FOUND, "no such endpoint"));
        }
        let user = request.query_param("token").and_then(|token| token.strip_prefix("valid-"));
        match (user, request.cookie("sid")) {
            (Some(user), Some(sid)) => Ok(Accept::new().identity(Identity::user(user).session_id(sid))),
            _ => Err(Reject::new(StatusCode::UNAUTHORIZED, "a valid token is required")),
        }
    })
}

async fn connect_with_cookie(url: &str, cookie: &str) -> Result<RawClient, WsError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    within(tokio_tungstenite::connect_async(request)).await.map(|(ws, _)| ws)
}

#[tokio::test]
async fn accepted_connections_carry_the_identity_and_request_metadata() {
    let (server, mut events) = server(ServerConfig::default().handshake(hook())).await;
    let addr = server.local_addr().unwrap();
    let _ws =
        connect_with_cookie(&format!("ws://{addr}/ws?token=valid-ada"), "sid=s1; theme=dark").await.unwrap();
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };
    let identity = connection.identity().expect("identity");
    assert_eq!(identity.user_id.as_deref(), Some("ada"));
    assert_eq!(identity.session_id.as_deref(), Some("s1"));
    assert_eq!(connection.meta().path, "/ws");
    assert_eq!(connection.meta().query_param("token"), Some("valid-ada"));
    assert!(connection.meta().headers.contains_key("cookie"));
    assert_eq!(connection.meta().remote_addr.map(|a| a.ip()), Some([127, 0, 0, 1].into()));
}

#[tokio::test]
async fn refusals_return_the_chosen_status_before_the_upgrade() {
    let (server, _events) = server(ServerConfig::default().handshake(hook())).await;
    let addr = server.local_addr().unwrap();
    for (url, status) in [
        (format!("ws://{addr}/ws?token=forged"), 401),
        (format!("ws://{addr}/elsewhere?token=valid-ada"), 404),
    ] {
        match connect_with_cookie(&url, "sid=s1").await {
            Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), status, "{url}"),
            other => panic!("expected HTTP {status}, got {other:?}"),
        }
    }
}

async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(stream.read_to_string(&mut response)).await.unwrap();
    response
}

#[tokio::test]
async fn malformed_upgrades_get_http_errors() {
    let (server, _events) = server(ServerConfig::default()).await;
    let addr = server.local_addr().unwrap();
    let plain = raw_http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    let old = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let old = raw_http(addr, old).await;
    assert!(old.starts_with("HTTP/1.1 426"), "{old}");
    assert!(old.contains("Sec-WebSocket-Version: 13"), "{old}");
    let garbage = raw_http(addr, "\x16\x03\x01 not http\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let huge = raw_http(addr, &huge).await;
    assert!(huge.starts_with("HTTP/1.1 431"), "{huge}");
    // The server still serves upgrades afterwards.
    let _ws = raw_client(&url(&server)).await;
}

#[tokio::test]
async fn the_connection_cap_refuses_with_503() {
    let (server, mut events) = server(ServerConfig::default().max_connections(Some(1))).await;
    let first = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    match within(tokio_tungstenite::connect_async(url(&server))).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    drop(first);
    let NetworkEvent::Removed { .. } = next_event(&mut events).await else { panic!() };
    let _second = raw_client(&url(&server)).await;
}
