//! One user cannot fill the token store: past `max_tokens_per_identity` live tokens its
//! token requests get 429 (the route maps `TokenError::QuotaExceeded`, as
//! `examples/axum_tokens.rs` does) while other users still get tokens; redeeming a token or
//! letting tokens expire gives the quota back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use realtime::network_core::Identity;
use realtime::ws_server::{Server, ServerConfig, TokenConfig, TokenError, TokenStore};

use super::endpoints::*;

#[derive(Clone)]
struct App {
    tokens: TokenStore,
    logins: Arc<AtomicU64>,
}

/// `GET /token?user=NAME`: a token for NAME in a new session each time (as the example's
/// demo login does, so the quota must hold per user, not per session).
async fn token(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let user = params.get("user").cloned().unwrap_or_default();
    let session = format!("{user}-{}", app.logins.fetch_add(1, Ordering::Relaxed));
    match app.tokens.issue(Identity::user(user).session_id(session)) {
        Ok(token) => (StatusCode::OK, token),
        Err(error @ TokenError::QuotaExceeded) => (StatusCode::TOO_MANY_REQUESTS, error.to_string()),
        Err(error @ TokenError::StoreFull) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// An axum app with the token route and the WebSocket endpoint `/ws` that consumes tokens.
async fn app(tokens: TokenStore) -> SocketAddr {
    let server = Server::detached(ServerConfig::default().handshake(tokens.handshake_hook())).unwrap();
    let app = axum::Router::new()
        .route("/token", get(token))
        .route("/ws", server.axum_route())
        .with_state(App { tokens, logins: Arc::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    addr
}

/// Asks the token route for a token for `user`: the status and the body.
async fn fetch(addr: SocketAddr, user: &str) -> (u16, String) {
    let raw = format!("GET /token?user={user} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (response, _stream) = exchange(addr, &raw).await;
    (response.status, response.body)
}

/// Fetches `count` tokens for `user`, each of which must be granted.
async fn fetch_granted(addr: SocketAddr, user: &str, count: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for n in 0..count {
        let (status, body) = fetch(addr, user).await;
        assert_eq!(status, 200, "{user}'s token {n}: {body}");
        tokens.push(body);
    }
    tokens
}

#[tokio::test]
async fn one_identity_cannot_starve_the_others() {
    let config = TokenConfig::default();
    let quota = config.max_tokens_per_identity;
    assert_eq!(quota, 16, "the documented default");
    let ttl = config.ttl;
    let tokens = TokenStore::new(config).unwrap();
    let addr = app(tokens.clone()).await;

    let ada = fetch_granted(addr, "ada", quota).await;
    let (status, body) = fetch(addr, "ada").await;
    assert_eq!((status, body.as_str()), (429, "too many outstanding tokens for this identity"));
    // Other users are not affected by ada's flood.
    let bob = fetch_granted(addr, "bob", 1).await;
    assert_eq!(tokens.len(), quota + 1);

    // Redeeming one of ada's tokens gives one back.
    let upgrade = request(&format!("/ws?token={}", ada[0]), "HTTP/1.1", &upgrade_headers(&[]));
    let (response, ws) = exchange(addr, &upgrade).await;
    assert_eq!(response.status, 101, "{response:?}");
    drop(ws);
    fetch_granted(addr, "ada", 1).await;
    assert_eq!(fetch(addr, "ada").await.0, 429);

    // Expiry gives them all back. The runtime's clock (which the store reads) jumps past
    // the ttl exactly, then runs on normally for the sockets.
    tokio::time::pause();
    tokio::time::advance(ttl).await;
    tokio::time::resume();
    fetch_granted(addr, "ada", quota).await;
    assert_eq!(fetch(addr, "ada").await.0, 429);
    assert_eq!(tokens.len(), quota, "bob's token expired too: {bob:?}");
}
