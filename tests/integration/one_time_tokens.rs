//! One-time tokens: the handshake consumes a token from `?token=` or an `Authorization:
//! Bearer` header, attaches its identity to the connection, and answers HTTP 401 before
//! the upgrade to a reused, expired, unknown or missing one.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use realtime::network_core::{Events, Identity, NetworkEvent};
use realtime::ws_server::{Server, ServerConfig, TokenConfig, TokenStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn token_server(config: TokenConfig) -> (Server, Events, TokenStore) {
    let tokens = TokenStore::new(config).unwrap();
    let (server, events) = server(ServerConfig::default().handshake(tokens.handshake_hook())).await;
    (server, events, tokens)
}

fn ws_url(server: &Server, query: &str) -> String {
    format!("ws://{}/ws{query}", server.local_addr().unwrap())
}

async fn connect(url: &str, bearer: Option<&str>) -> Result<RawClient, WsError> {
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = bearer {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    within(tokio_tungstenite::connect_async(request)).await.map(|(ws, _)| ws)
}

/// Asserts that the upgrade was refused with 401.
fn assert_401(result: Result<RawClient, WsError>) {
    match result {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        Err(other) => panic!("expected HTTP 401, got {other}"),
        Ok(_) => panic!("expected HTTP 401, the upgrade succeeded"),
    }
}

/// Sends a well-formed upgrade request to `target` over a raw socket and returns the
/// response's status and body (the server closes after a refusal).
async fn refusal(addr: SocketAddr, target: &str, extra_headers: &str) -> (u16, String) {
    let mut stream = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra_headers}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within(stream.read_to_string(&mut response)).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    (status, body.to_owned())
}

/// The identity of the next connection the application sees.
async fn next_identity(events: &mut Events) -> Identity {
    let NetworkEvent::Added(connection) = next_event(events).await else { panic!("expected Added") };
    Identity::clone(&connection.identity().expect("an identity"))
}

#[tokio::test]
async fn a_token_in_the_query_connects_once_and_carries_its_identity() {
    let (server, mut events, tokens) = token_server(TokenConfig::default()).await;
    let token = tokens.issue(Identity::user("ada").session_id("s1")).unwrap();

    let _ws = connect(&ws_url(&server, &format!("?token={token}")), None).await.unwrap();
    let identity = next_identity(&mut events).await;
    assert_eq!(identity.user_id.as_deref(), Some("ada"));
    assert_eq!(identity.session_id.as_deref(), Some("s1"));
    assert!(tokens.is_empty());

    assert_401(connect(&ws_url(&server, &format!("?token={token}")), None).await);
    let addr = server.local_addr().unwrap();
    let (status, reason) = refusal(addr, &format!("/ws?token={token}"), "").await;
    assert_eq!((status, reason.as_str()), (401, "invalid or expired token"));
}

#[tokio::test]
async fn a_bearer_header_works_for_clients_that_can_set_headers() {
    let (server, mut events, tokens) = token_server(TokenConfig::default()).await;
    let token = tokens.issue(Identity::user("bot").session_id("cli")).unwrap();

    let _ws = connect(&ws_url(&server, ""), Some(&token)).await.unwrap();
    let identity = next_identity(&mut events).await;
    assert_eq!((identity.user_id.as_deref(), identity.session_id.as_deref()), (Some("bot"), Some("cli")));

    assert_401(connect(&ws_url(&server, ""), Some(&token)).await);
}

#[tokio::test]
async fn unknown_and_missing_tokens_get_401() {
    let (server, mut events, tokens) = token_server(TokenConfig::default()).await;
    let addr = server.local_addr().unwrap();
    let unknown = "0123456789abcdef".repeat(3);
    assert_eq!(unknown.len(), TokenStore::TOKEN_LEN);

    assert_401(connect(&ws_url(&server, &format!("?token={unknown}")), None).await);
    assert_401(connect(&ws_url(&server, ""), Some(&unknown)).await);
    assert_401(connect(&ws_url(&server, "?token=not-a-token"), None).await);
    assert_401(connect(&ws_url(&server, ""), None).await);
    assert_401(connect(&ws_url(&server, "?token="), None).await);

    let (status, reason) = refusal(addr, &format!("/ws?token={unknown}"), "").await;
    assert_eq!((status, reason.as_str()), (401, "invalid or expired token"));
    let (status, reason) = refusal(addr, "/ws", "").await;
    assert_eq!((status, reason.as_str()), (401, "missing token"));
    let (status, reason) = refusal(addr, "/ws", "Authorization: Basic YWRhOnB3\r\n").await;
    assert_eq!((status, reason.as_str()), (401, "missing token"));

    // None of the refusals reached the application: its next event is this connection.
    let token = tokens.issue(Identity::user("ada")).unwrap();
    let _ws = connect(&ws_url(&server, &format!("?token={token}")), None).await.unwrap();
    assert_eq!(next_identity(&mut events).await.user_id.as_deref(), Some("ada"));
}

#[tokio::test]
async fn an_expired_token_gets_401() {
    let ttl = Duration::from_secs(30);
    let (server, mut events, tokens) = token_server(TokenConfig::default().ttl(ttl)).await;
    let addr = server.local_addr().unwrap();
    let expired = tokens.issue(Identity::user("late")).unwrap();
    let also_expired = tokens.issue(Identity::user("late")).unwrap();

    // Move the runtime's clock (which the store reads) past the ttl, then let it run on
    // from there: the jump is exact, and the sockets below run on a normal clock. The
    // server has no connection, hence no timer, that the jump could fire.
    tokio::time::pause();
    tokio::time::advance(ttl).await;
    tokio::time::resume();

    assert_401(connect(&ws_url(&server, &format!("?token={expired}")), None).await);
    let (status, reason) = refusal(addr, &format!("/ws?token={also_expired}"), "").await;
    assert_eq!((status, reason.as_str()), (401, "invalid or expired token"));

    // A token issued after the jump is good.
    let token = tokens.issue(Identity::user("on-time")).unwrap();
    let _ws = connect(&ws_url(&server, ""), Some(&token)).await.unwrap();
    assert_eq!(next_identity(&mut events).await.user_id.as_deref(), Some("on-time"));
}
