//! One axum app on one port: a demo login that hands out one-time socket tokens, the
//! WebSocket server authenticating with them, and an HTTP route that notifies a user on
//! every connection that user has open.
//!
//! ```text
//! cargo run --release --example axum_tokens -- --listen 127.0.0.1:3000
//! curl 'http://127.0.0.1:3000/user/sockettoken?user=ada'        # {"token":"..."}
//! cargo run --example client -- 'ws://127.0.0.1:3000/ws?token=...'
//! curl -X POST -H 'content-type: application/json' -d '{"text":"approved"}' \
//!      'http://127.0.0.1:3000/notify?user=ada'                   # {"delivered":1}
//! ```
//!
//! - `GET /user/sockettoken?user=NAME` answers `{"token": "..."}`: a single-use token,
//!   valid 60 s, bound to user NAME (a demo login: a real app takes the user from its
//!   session cookie).
//! - `/ws` is the WebSocket endpoint; it takes the token as `?token=` (browsers) or
//!   `Authorization: Bearer` (other clients); a missing, reused or expired token gets 401.
//! - `POST /notify?user=NAME` with a JSON body emits that body as event `notify` on channel
//!   `/` to every connection of NAME, and answers `{"delivered": N}`.
//!
//! It prints `listening on http://ADDR` when ready.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use realtime::channels::{ChannelsConfig, Messenger};
use realtime::network_core::Identity;
use realtime::ws_server::{Server, ServerConfig, TokenConfig, TokenStore};
use serde_json::{Value, json};

#[derive(Clone)]
struct App {
    tokens: TokenStore,
    messenger: Messenger<Server>,
    logins: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let listen: SocketAddr = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => "127.0.0.1:3000".parse()?,
        [flag, addr] if flag == "--listen" => addr.parse().context("bad --listen address")?,
        _ => anyhow::bail!("usage: axum_tokens [--listen ADDR]"),
    };

    let tokens = TokenStore::new(TokenConfig::default())?;
    let server = Server::detached(ServerConfig::default().handshake(tokens.handshake_hook()))?;
    let messenger = ChannelsConfig::default().attach(&server)?;
    let app = App { tokens, messenger, logins: Arc::default() };

    let router = axum::Router::new()
        .route("/user/sockettoken", get(socket_token))
        .route("/notify", post(notify))
        .route("/ws", server.axum_route())
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen).await.context("binding")?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            server.shutdown().await;
        })
        .await?;
    Ok(())
}

/// A demo login: a token for the user named in the query, in a session of its own.
async fn socket_token(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let user = params.get("user").filter(|user| !user.is_empty());
    let user = user.ok_or((StatusCode::BAD_REQUEST, "add ?user=NAME".to_owned()))?;
    let session = format!("{user}-{}", app.logins.fetch_add(1, Ordering::Relaxed));
    let identity = Identity::user(user.as_str()).session_id(session);
    match app.tokens.issue(identity) {
        Ok(token) => Ok(Json(json!({ "token": token }))),
        Err(error) => Err((StatusCode::SERVICE_UNAVAILABLE, error.to_string())),
    }
}

/// Emits the JSON body as event `notify` to every connection of `?user=`.
async fn notify(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let user = params.get("user").ok_or((StatusCode::BAD_REQUEST, "add ?user=NAME".to_owned()))?;
    match app.messenger.emit_to_user(user, "notify", &body).await {
        Ok(delivered) => Ok(Json(json!({ "delivered": delivered }))),
        Err(error) => Err((StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}
