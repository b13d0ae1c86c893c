//! One-time tokens kept in Redis (`redis_adapter::RedisTokenStore`): a token issued
//! through one node's store is accepted once by another node's server, two nodes
//! consuming one token at once never both win, the ttl and the per-identity quota hold
//! across nodes, and a Redis outage answers 503 (not 401) until Redis is back.
//!
//! The "nodes" are two servers in this process, each with its own store (its own
//! connection) on one `redis-server`; each test starts its own Redis (ignored, with the
//! reason, when `redis-server` is not on `PATH`, unless `CI` is set: see `build.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::{RawClient, next_event, server, within};
use realtime::network_core::{Events, Identity, NetworkEvent};
use realtime::ws_server::{Server, ServerConfig, TokenConfig, TokenError};
use redis_adapter::{RedisConfig, RedisTokenError, RedisTokenStore};
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Short timeouts, so that an outage is seen quickly and the connection comes back fast.
fn redis_config(redis: &RedisServer) -> RedisConfig {
    RedisConfig::new(redis.url())
        .prefix("tokens-test")
        .heartbeat_interval(Duration::from_millis(100))
        .heartbeat_timeout(Duration::from_millis(400))
        .command_timeout(Duration::from_millis(500))
}

/// A node: a store of its own on `redis`, and a server whose handshake uses it.
async fn node(redis: &RedisServer, config: TokenConfig) -> (Server, Events, RedisTokenStore) {
    let tokens = within(RedisTokenStore::connect(&redis_config(redis), config)).await.unwrap();
    let (server, events) = server(ServerConfig::default().handshake(tokens.handshake_hook())).await;
    (server, events, tokens)
}

/// The status of a refused upgrade; panics if it was accepted.
async fn refused(server: &Server, token: &str, bearer: bool) -> u16 {
    match connect(server, token, bearer).await {
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
        Err(status) => status,
    }
}

/// Opens a WebSocket to `server` with `token` in the query, or in a bearer header; the
/// HTTP status of a refusal.
async fn connect(server: &Server, token: &str, bearer: bool) -> Result<RawClient, u16> {
    let addr = server.local_addr().unwrap();
    let url = if bearer { format!("ws://{addr}/ws") } else { format!("ws://{addr}/ws?token={token}") };
    let mut request = url.into_client_request().unwrap();
    if bearer {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match within(tokio_tungstenite::connect_async(request)).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("expected an upgrade or an HTTP refusal, got {other}"),
    }
}

async fn next_user(events: &mut Events) -> Option<String> {
    let NetworkEvent::Added(connection) = next_event(events).await else { panic!("expected Added") };
    connection.identity().and_then(|identity| identity.user_id.clone())
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn a_token_issued_on_one_node_is_accepted_once_by_any_node() {
    let Some(redis) = RedisServer::start() else { return };
    let (a, mut a_events, a_tokens) = node(&redis, TokenConfig::default()).await;
    let (b, mut b_events, b_tokens) = node(&redis, TokenConfig::default()).await;

    let token = a_tokens.issue(Identity::user("ada").session_id("s1")).await.unwrap();
    assert_eq!(token.len(), RedisTokenStore::TOKEN_LEN);
    let _ada = connect(&b, &token, false).await.unwrap();
    assert_eq!(next_user(&mut b_events).await.as_deref(), Some("ada"));
    // Used on B: refused everywhere, with the in-memory store's 401.
    assert_eq!(refused(&a, &token, false).await, 401);
    assert_eq!(refused(&b, &token, true).await, 401);

    // The other way round, by bearer header.
    let token = b_tokens.issue(Identity::user("grace")).await.unwrap();
    let _grace = connect(&a, &token, true).await.unwrap();
    assert_eq!(next_user(&mut a_events).await.as_deref(), Some("grace"));
    assert!(matches!(b_tokens.consume(&token).await, Err(RedisTokenError::Token(TokenError::Unknown))));

    // Missing, malformed and forged tokens are 401 too; a forgery burns the genuine token.
    let token = a_tokens.issue(Identity::user("eve")).await.unwrap();
    let last = if token.ends_with('0') { "1" } else { "0" };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    for bad in [forged.as_str(), "garbage", ""] {
        assert_eq!(refused(&b, bad, false).await, 401, "{bad:?}");
    }
    assert_eq!(refused(&a, &token, false).await, 401);
    assert!(a_tokens.is_empty().await.unwrap());
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_consuming_one_token_at_once_never_both_win() {
    let Some(redis) = RedisServer::start() else { return };
    let config = TokenConfig::default().max_tokens_per_identity(1000);
    let a = within(RedisTokenStore::connect(&redis_config(&redis), config.clone())).await.unwrap();
    let b = within(RedisTokenStore::connect(&redis_config(&redis), config)).await.unwrap();
    for round in 0..200 {
        let token = a.issue(Identity::user("ada")).await.unwrap();
        let (on_a, on_b) = within(async {
            tokio::join!(
                tokio::spawn({
                    let (a, token) = (a.clone(), token.clone());
                    async move { a.consume(&token).await }
                }),
                tokio::spawn({
                    let (b, token) = (b.clone(), token.clone());
                    async move { b.consume(&token).await }
                }),
            )
        })
        .await;
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        let winners = [&on_a, &on_b].iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {on_a:?} / {on_b:?}");
        for outcome in [on_a, on_b] {
            match outcome {
                Ok(identity) => assert_eq!(identity.user_id.as_deref(), Some("ada")),
                Err(error) => {
                    assert!(matches!(error, RedisTokenError::Token(TokenError::Unknown)), "{error}")
                }
            }
        }
    }
    assert!(a.is_empty().await.unwrap());
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn tokens_expire_after_the_ttl_on_every_node() {
    let Some(redis) = RedisServer::start() else { return };
    let ttl = Duration::from_millis(300);
    let (a, _a_events, a_tokens) = node(&redis, TokenConfig::default().ttl(ttl)).await;
    let (_b, _b_events, b_tokens) = node(&redis, TokenConfig::default().ttl(ttl)).await;
    let kept = a_tokens.issue(Identity::user("ada")).await.unwrap();
    let expiring = a_tokens.issue(Identity::user("ada")).await.unwrap();
    assert_eq!(b_tokens.consume(&kept).await.unwrap().user_id.as_deref(), Some("ada"));
    assert_eq!(b_tokens.len().await.unwrap(), 1);
    // Redis expires the token: poll, bounded, until no token is outstanding.
    within(async {
        while b_tokens.len().await.unwrap() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(refused(&a, &expiring, false).await, 401);
    assert!(matches!(b_tokens.consume(&expiring).await, Err(RedisTokenError::Token(TokenError::Unknown))));
    // Expiry gave the quota back: the user can have tokens again.
    a_tokens.issue(Identity::user("ada")).await.unwrap();
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn the_quotas_count_every_node_s_tokens() {
    let Some(redis) = RedisServer::start() else { return };
    let config = TokenConfig::default().max_tokens(3).max_tokens_per_identity(2);
    let a = within(RedisTokenStore::connect(&redis_config(&redis), config.clone())).await.unwrap();
    let b = within(RedisTokenStore::connect(&redis_config(&redis), config)).await.unwrap();

    // A new session per login does not escape the user's quota, on any node.
    let first = a.issue(Identity::user("ada").session_id("1")).await.unwrap();
    b.issue(Identity::user("ada").session_id("2")).await.unwrap();
    assert!(matches!(
        b.issue(Identity::user("ada").session_id("3")).await,
        Err(RedisTokenError::Token(TokenError::QuotaExceeded))
    ));
    assert!(matches!(
        a.issue(Identity::user("ada")).await,
        Err(RedisTokenError::Token(TokenError::QuotaExceeded))
    ));
    // Other identities are served until the whole store is full.
    b.issue(Identity::default().session_id("s")).await.unwrap();
    assert!(matches!(
        a.issue(Identity::user("bob")).await,
        Err(RedisTokenError::Token(TokenError::StoreFull))
    ));
    assert_eq!(a.len().await.unwrap(), 3);

    // A consumed token gives its slot back to both quotas, wherever it was consumed.
    b.consume(&first).await.unwrap();
    a.issue(Identity::user("ada")).await.unwrap();
    assert!(matches!(
        b.issue(Identity::user("ada")).await,
        Err(RedisTokenError::Token(TokenError::QuotaExceeded))
    ));
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn redis_down_answers_503_and_a_typed_error_until_it_is_back() {
    let Some(mut redis) = RedisServer::start() else { return };
    let (a, mut a_events, tokens) = node(&redis, TokenConfig::default()).await;
    let token = tokens.issue(Identity::user("ada")).await.unwrap();

    redis.stop();
    let error = tokens.consume(&token).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(matches!(error, RedisTokenError::Redis(_) | RedisTokenError::Timeout), "{error}");
    let error = tokens.issue(Identity::user("ada")).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    // The token was not judged: 503, not 401. A request without one needs no Redis.
    assert_eq!(refused(&a, &token, false).await, 503);
    assert_eq!(refused(&a, "", false).await, 401);

    // Redis restarts empty (no persistence): the store reconnects by itself.
    redis.restart();
    let fresh = within(async {
        loop {
            match tokens.issue(Identity::user("ada")).await {
                Ok(token) => break token,
                Err(error) => {
                    assert!(error.is_unavailable(), "{error}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await;
    let _ada = connect(&a, &fresh, false).await.unwrap();
    assert_eq!(next_user(&mut a_events).await.as_deref(), Some("ada"));
    // The old token died with Redis' memory.
    assert_eq!(refused(&a, &token, false).await, 401);
}

/// A link to Redis that goes silent without closing (half-open TCP, which no read or write
/// reports): calls time out with a typed error, the handshake answers 503, and the store
/// replaces its connection by itself.
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn a_half_open_link_to_redis_is_replaced() {
    let Some(redis) = RedisServer::start() else { return };
    let link = testkit::FaultProxy::start(redis.url()["redis://".len()..].parse().unwrap()).await;
    let mut through_link = redis_config(&redis);
    through_link.url = format!("redis://{}", link.addr());
    let tokens = within(RedisTokenStore::connect(&through_link, TokenConfig::default())).await.unwrap();
    let (a, mut a_events) = server(ServerConfig::default().handshake(tokens.handshake_hook())).await;
    let token = tokens.issue(Identity::user("ada")).await.unwrap();

    assert_eq!(link.freeze_all(testkit::Flow::Both), 1, "the store's one connection");
    assert_eq!(refused(&a, &token, false).await, 503);
    // The token was not spent: once a fresh connection is up, it is accepted.
    let _ada = within(async {
        loop {
            match connect(&a, &token, false).await {
                Ok(ws) => break ws,
                Err(status) => {
                    assert_eq!(status, 503);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await;
    assert_eq!(next_user(&mut a_events).await.as_deref(), Some("ada"));
    assert!(link.connections().len() >= 2, "a second connection replaced the frozen one");
}
