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
//!   session cookie). A user holding 16 unused tokens gets 429 until one is used or
//!   expires (`TokenConfig::max_tokens_per_identity`); a full store gets 503.
//! - `/ws` is the WebSocket endpoint; it takes the token as `?token=` (browsers) or
//!   `Authorization: Bearer` (other clients); a missing, reused or expired token gets 401.
//! - `POST /notify?user=NAME` with a JSON body emits that body as event `notify` on channel
//!   `/` to every connection of NAME, and answers `{"delivered": N}`.
//!
//! `--allow-origin ORIGIN` (repeatable, such as `--allow-origin http://127.0.0.1:3000`)
//! refuses with 403 the upgrades of browser pages from any other origin
//! (`ServerConfig::allowed_origins`); without it every origin is accepted.
//!
//! `--redis redis://HOST:PORT` (with `--redis-prefix P`, default `realtime`) makes it a node
//! of a cluster behind a load balancer, no sticky sessions needed: the tokens live in Redis
//! (`redis_adapter::RedisTokenStore`), so a token any node issued is accepted once by any
//! node, and the node joins the cluster (`redis_adapter::RedisCluster`), so `/notify`
//! reaches the user's connections on every node. While Redis is down, the token route and
//! the upgrade answer 503.
//!
//! It prints `listening on http://ADDR` when ready.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use realtime::channels::{ChannelsConfig, Messenger};
use realtime::network_core::Adapter;
use realtime::network_core::Identity;
use realtime::ws_server::{
    HandshakeHook, RemoteAddr, Server, ServerConfig, TokenConfig, TokenError, TokenStore,
};
use redis_adapter::{RedisCluster, RedisConfig, RedisTokenError, RedisTokenStore};
use serde_json::{Value, json};

#[path = "shared/limits.rs"]
mod limits;

const USAGE: &str =
    "usage: axum_tokens [--listen ADDR] [--redis URL [--redis-prefix P]] [--allow-origin ORIGIN]... [LIMITS]
  --listen ADDR          default 127.0.0.1:3000
  --redis URL            keep the tokens in this Redis and join its cluster (redis://HOST:PORT)
  --redis-prefix P       the cluster's channel and key prefix, default realtime
  --allow-origin ORIGIN  accept browser pages from ORIGIN only (scheme://host[:port]); repeatable; default any
  -h, --help             print this help and exit";

struct App<A: Adapter> {
    tokens: Tokens,
    messenger: Messenger<Server<A>>,
    logins: Arc<AtomicU64>,
}

impl<A: Adapter> Clone for App<A> {
    fn clone(&self) -> Self {
        Self { tokens: self.tokens.clone(), messenger: self.messenger.clone(), logins: self.logins.clone() }
    }
}

/// Where the tokens live: in this process, or in Redis for every node.
#[derive(Clone)]
enum Tokens {
    Local(TokenStore),
    Redis(RedisTokenStore),
}

impl Tokens {
    fn handshake_hook(&self) -> HandshakeHook {
        match self {
            Self::Local(tokens) => tokens.handshake_hook(),
            Self::Redis(tokens) => tokens.handshake_hook(),
        }
    }

    fn config(&self) -> &TokenConfig {
        match self {
            Self::Local(tokens) => tokens.config(),
            Self::Redis(tokens) => tokens.config(),
        }
    }

    /// A token, or the status to answer and why.
    async fn issue(&self, identity: Identity) -> Result<String, (StatusCode, String)> {
        let issued = match self {
            // One error type for both stores: the local store's errors are the `Token` ones.
            Self::Local(tokens) => tokens.issue(identity).map_err(RedisTokenError::Token),
            Self::Redis(tokens) => tokens.issue(identity).await,
        };
        issued.map_err(|error| {
            let status = match error {
                // This user holds too many unused tokens: their own doing.
                RedisTokenError::Token(TokenError::QuotaExceeded) => StatusCode::TOO_MANY_REQUESTS,
                // Everyone's tokens together fill the store (the server is overloaded), or
                // Redis is down.
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, error.to_string())
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut allowed_origins = Vec::new();
    let mut redis = None;
    let mut redis_prefix = "realtime".to_owned();
    let mut limits = limits::Limits::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if limits.parse(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .context("--listen needs an address")?
                    .parse()
                    .context("bad --listen address")?
            }
            "--redis" => redis = Some(args.next().context("--redis needs a URL")?),
            "--redis-prefix" => redis_prefix = args.next().context("--redis-prefix needs a value")?,
            "--allow-origin" => allowed_origins.push(args.next().context("--allow-origin needs an origin")?),
            "-h" | "--help" => {
                println!("{USAGE}\n{}", limits::help());
                return Ok(());
            }
            other => {
                eprintln!("unknown argument {other:?}\n\n{USAGE}\n{}", limits::help());
                std::process::exit(2);
            }
        }
    }

    let config = limits
        .apply(ServerConfig::default())
        .allowed_origins((!allowed_origins.is_empty()).then_some(allowed_origins));
    match redis {
        Some(url) => {
            let redis = RedisConfig::new(url).prefix(redis_prefix);
            let tokens = RedisTokenStore::connect(&redis, TokenConfig::default())
                .await
                .context("connecting the token store to redis")?;
            let tokens = Tokens::Redis(tokens);
            let cluster = RedisCluster::connect(redis).await.context("joining the cluster")?;
            tracing::info!(node = %cluster.node(), "joined the cluster");
            let server = Server::detached_with(config.handshake(tokens.handshake_hook()), cluster)?;
            serve(server, tokens, listen).await
        }
        None => {
            let tokens = Tokens::Local(TokenStore::new(TokenConfig::default())?);
            let server = Server::detached(config.handshake(tokens.handshake_hook()))?;
            serve(server, tokens, listen).await
        }
    }
}

/// Mounts the routes and runs until Ctrl-C.
async fn serve<A: Adapter>(server: Server<A>, tokens: Tokens, listen: SocketAddr) -> anyhow::Result<()> {
    let messenger = ChannelsConfig::default().attach(&server)?;
    let app = App { tokens, messenger, logins: Arc::default() };

    let router = axum::Router::new()
        .route("/user/sockettoken", get(socket_token))
        .route("/notify", post(notify))
        .route("/ws", server.axum_route())
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen).await.context("binding")?;
    println!("listening on http://{}", listener.local_addr()?);
    // The guarded listener gives every socket the server's handshake limits (a deadline
    // and a size for the request head, a cap on pending handshakes), which axum lacks.
    let listener = server.axum_listener(listener);
    axum::serve(listener, router.into_make_service_with_connect_info::<RemoteAddr>())
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            server.shutdown().await;
        })
        .await?;
    Ok(())
}

/// A demo login: a token for the user named in the query, in a session of its own.
async fn socket_token<A: Adapter>(
    State(app): State<App<A>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(user) = params.get("user").filter(|user| !user.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "add ?user=NAME").into_response();
    };
    let session = format!("{user}-{}", app.logins.fetch_add(1, Ordering::Relaxed));
    let identity = Identity::user(user.as_str()).session_id(session);
    let (status, reason) = match app.tokens.issue(identity).await {
        Ok(token) => return Json(json!({ "token": token })).into_response(),
        Err(refusal) => refusal,
    };
    // Tokens are consumed or expire within the ttl, so waiting that long always helps.
    let retry_after = app.tokens.config().ttl.as_secs().to_string();
    (status, [(header::RETRY_AFTER, retry_after)], reason).into_response()
}

/// Emits the JSON body as event `notify` to every connection of `?user=`.
async fn notify<A: Adapter>(
    State(app): State<App<A>>,
    Query(params): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let user = params.get("user").ok_or((StatusCode::BAD_REQUEST, "add ?user=NAME".to_owned()))?;
    match app.messenger.emit_to_user(user, "notify", &body).await {
        Ok(delivered) => Ok(Json(json!({ "delivered": delivered }))),
        Err(error) => Err((StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    }
}
