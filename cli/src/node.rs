//! `realtime serve`: the demo application of [`crate::demo`] configured by a [`Config`],
//! with the routes a deployment needs beside it.
//!
//! - `GET /healthz` answers 200 `ok` while the server accepts connections and 503 from the
//!   shutdown signal on (through the `drain_secs` during which everything is still served,
//!   then the shutdown), so that a load balancer stops sending new clients during a
//!   graceful restart. It checks that the process answers HTTP on the port and is not draining; it
//!   does not check Redis (a node whose Redis is down still serves its own clients, and
//!   taking every node out at once would turn a Redis outage into a full one).
//! - `GET /metrics`: the Prometheus text of [`crate::metrics`], with the gauges read at
//!   scrape time (pending handshakes, queued outgoing bytes, rooms, views, subscriptions).
//! - With `[admin] token`, `GET /admin`: a JSON view of connections, rooms, views, sync
//!   subscriptions and cluster nodes, for that bearer token only.
//! - With `[tokens]`, `POST ROUTE?user=NAME` (route `/tokens` by default) with
//!   `Authorization: Bearer SECRET` answers `{"token": "..."}`: a one-time token for user
//!   NAME, which the browser passes as `?token=` (or a client as `Authorization: Bearer`)
//!   when it opens its WebSocket; every WebSocket then needs one (401 without).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use network_core::{Adapter, Identity, Network};
use redis_adapter::{RedisCluster, RedisConfig, RedisTokenError, RedisTokenStore};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use ws_server::{Server, ServerConfig, TokenConfig, TokenError, TokenStore};

use sync::SyncHandle;
use views::Presence;

use crate::config::{Config, RedisSettings, RouterName, TokenSettings};
use crate::metrics::Registry;
use crate::serve::{Listener, Relay, serve};
use crate::{Error, demo};

/// Binds `config.listen`, starts the server (joining the cluster with `[redis]`), attaches
/// the configured routers and serves until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    // Before the server exists: ws-server registers its counters on first use.
    let registry = Registry::default();
    if !registry.install() {
        tracing::warn!("a metrics recorder was already installed: /metrics shows only this server's gauges");
    }
    describe_metrics();
    if config.routers.is_empty() && !config.echo {
        // Not an error in itself, but almost surely a mistake: say so at start.
        tracing::warn!("no router attached: only the relay of application frames is served");
    }
    let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?;
    let tokens = match &config.tokens {
        Some(settings) => Some(Issuer::new(settings, config.redis.as_ref()).await?),
        None => None,
    };
    let hook = match &tokens {
        Some(issuer) => issuer.handshake_hook(),
        None => demo::identity_hook(),
    };
    let origins = (!config.allowed_origins.is_empty()).then(|| config.allowed_origins.clone());
    let server_config = config.limits.apply(ServerConfig::default()).handshake(hook).allowed_origins(origins);
    let server_config = if config.resume { server_config } else { server_config.resume_window(None) };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind { addr: config.listen, source })?;
    match &config.redis {
        Some(redis) => {
            let cluster = RedisCluster::connect(redis_config(redis)).await?;
            tracing::info!(node = %cluster.node(), "joined the cluster");
            let server = Server::detached_with(server_config, cluster)?;
            let listener = Listener { tcp: listener, tls };
            serve_node(server, listener, &config, Extras { tokens, registry }, shutdown).await
        }
        None => {
            let listener = Listener { tcp: listener, tls };
            let extras = Extras { tokens, registry };
            serve_node(Server::detached(server_config)?, listener, &config, extras, shutdown).await
        }
    }
}

async fn serve_node<A: Adapter>(
    server: Server<A>,
    listener: Listener,
    config: &Config,
    extras: Extras,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let limits = &config.limits;
    let (mut presence, mut sync) = (None, None);
    for router in &config.routers {
        match router {
            RouterName::Channels => drop(limits.channels(demo::channels_config()).attach(&server)?),
            RouterName::Views => {
                presence = Some(limits.views(views::ViewsConfig::default()).attach(&server)?)
            }
            RouterName::Sync => sync = Some(limits.sync(demo::books()).attach(&server)?),
        }
    }
    let admin_token = config.admin.as_ref().map(|admin| admin.token.clone());
    let draining = Arc::new(AtomicBool::new(false));
    let state = NodeState {
        server: server.clone(),
        registry: extras.registry,
        presence,
        sync,
        admin_token,
        draining: draining.clone(),
    };
    let mut routes =
        axum::Router::new().route("/healthz", get(healthz::<A>)).route("/metrics", get(render_metrics::<A>));
    if config.admin.is_some() {
        routes = routes.route("/admin", get(crate::admin::view::<A>));
    }
    let mut app = routes.with_state(Arc::new(state));
    if let Some(issuer) = extras.tokens {
        let route = issuer.route.clone();
        app = app.merge(axum::Router::new().route(&route, post(issue_token)).with_state(Arc::new(issuer)));
    }
    let app = app.merge(demo::app(server.clone(), config.demo_page));
    let relay = if config.echo { Relay::Echo } else { Relay::Others };
    // The signal starts the drain: `/healthz` fails at once, so that load balancers stop
    // sending new clients, while everything is still served for `drain_secs`.
    let drain = Duration::from_secs(config.drain_secs);
    let shutdown = async move {
        shutdown.await;
        draining.store(true, Ordering::Release);
        if !drain.is_zero() {
            tracing::info!(seconds = drain.as_secs(), "draining before the shutdown");
            tokio::time::sleep(drain).await;
        }
    };
    serve(server, listener, app, relay, shutdown).await
}

/// What `serve_node` adds to the demo application besides the config.
struct Extras {
    tokens: Option<Issuer>,
    registry: Registry,
}

/// The state of the operations routes.
pub(crate) struct NodeState<A: Adapter> {
    pub(crate) server: Server<A>,
    registry: Registry,
    pub(crate) presence: Option<Presence<Server<A>>>,
    pub(crate) sync: Option<SyncHandle<Server<A>>>,
    /// `GET /admin`'s bearer token; the route exists only with one.
    pub(crate) admin_token: Option<String>,
    /// Set at the shutdown signal, `drain_secs` before the server closes its connections.
    draining: Arc<AtomicBool>,
}

async fn healthz<A: Adapter>(State(state): State<Arc<NodeState<A>>>) -> Response {
    if state.draining.load(Ordering::Acquire) || state.server.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        "ok\n".into_response()
    }
}

/// The help lines of the metrics recorded outside ws-server.
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!("realtime_pending_handshakes", "Sockets in their TLS or HTTP handshake");
    describe_gauge!(
        "realtime_outgoing_queue_bytes",
        Unit::Bytes,
        "Bytes queued for writing, every connection together"
    );
    describe_gauge!("realtime_views", "Views with at least one viewer (views router)");
    describe_gauge!("realtime_rooms", "Rooms with at least one of this node's connections");
    describe_gauge!("realtime_sync_subscriptions", "Subscriptions of this node's connections (sync router)");
    describe_gauge!("realtime_cluster_nodes", "Nodes of the Redis cluster seen alive, this one included");
    describe_gauge!("realtime_router_queue_depth", "Events waiting in a router's inbox (label router)");
    describe_gauge!("realtime_event_queue_depth", "Events waiting in the application's event queue");
    describe_counter!("realtime_redis_publish_failures_total", "Cluster publishes Redis did not take");
    describe_counter!("realtime_redis_disconnects_total", "Losses of the cluster's Redis subscription");
}

/// The Prometheus text: the counters recorded so far, and the gauges read now.
async fn render_metrics<A: Adapter>(State(state): State<Arc<NodeState<A>>>) -> Response {
    let stats = state.server.stats();
    metrics::gauge!("realtime_pending_handshakes").set(stats.pending_handshakes as f64);
    metrics::gauge!("realtime_outgoing_queue_bytes").set(stats.outgoing_queue_bytes as f64);
    metrics::gauge!("realtime_rooms").set(state.server.adapter().local_rooms().len() as f64);
    let hub = state.server.hub();
    for (router, depth) in hub.router_queue_depths() {
        metrics::gauge!("realtime_router_queue_depth", "router" => router).set(depth as f64);
    }
    metrics::gauge!("realtime_event_queue_depth").set(hub.event_queue_depth() as f64);
    if let Some(presence) = &state.presence {
        metrics::gauge!("realtime_views").set(presence.views().len() as f64);
    }
    if let Some(sync) = &state.sync {
        let subscriptions: usize = sync.subscriptions().iter().map(|(_, count)| count).sum();
        metrics::gauge!("realtime_sync_subscriptions").set(subscriptions as f64);
    }
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
    (content_type, state.registry.render()).into_response()
}

/// The token issuer route's state.
struct Issuer {
    store: Tokens,
    secret: String,
    route: String,
}

/// Where the tokens live: in this process, or in Redis for every node of a cluster (so
/// that any node accepts a token any node issued: no sticky sessions).
enum Tokens {
    Local(TokenStore),
    Redis(RedisTokenStore),
}

impl Issuer {
    async fn new(settings: &TokenSettings, redis: Option<&RedisSettings>) -> Result<Self, Error> {
        let config = TokenConfig::default().ttl(Duration::from_secs(settings.ttl_secs));
        let store = match redis {
            Some(redis) => Tokens::Redis(RedisTokenStore::connect(&redis_config(redis), config).await?),
            None => Tokens::Local(TokenStore::new(config)?),
        };
        Ok(Self { store, secret: settings.secret.clone(), route: settings.route.clone() })
    }

    fn handshake_hook(&self) -> ws_server::HandshakeHook {
        match &self.store {
            Tokens::Local(store) => store.handshake_hook(),
            Tokens::Redis(store) => store.handshake_hook(),
        }
    }

    fn ttl(&self) -> Duration {
        match &self.store {
            Tokens::Local(store) => store.config().ttl,
            Tokens::Redis(store) => store.config().ttl,
        }
    }

    /// A token for `identity`; the local store's errors are the `Token` ones.
    async fn issue(&self, identity: Identity) -> Result<String, RedisTokenError> {
        match &self.store {
            Tokens::Local(store) => store.issue(identity).map_err(RedisTokenError::Token),
            Tokens::Redis(store) => store.issue(identity).await,
        }
    }
}

fn redis_config(redis: &RedisSettings) -> RedisConfig {
    RedisConfig::new(redis.url.clone()).prefix(redis.prefix.clone())
}

/// Whether `headers` carry `Authorization: Bearer SECRET`, compared in constant time.
pub(crate) fn bearer_matches(headers: &HeaderMap, secret: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    bool::from(presented.as_bytes().ct_eq(secret.as_bytes()))
}

async fn issue_token(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !bearer_matches(&headers, &issuer.secret) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "bad or missing bearer token\n",
        )
            .into_response();
    }
    let Some(user) = params.get("user").filter(|user| !user.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "add ?user=NAME\n").into_response();
    };
    match issuer.issue(Identity::user(user.as_str())).await {
        Ok(token) => Json(serde_json::json!({ "token": token })).into_response(),
        Err(error) => {
            let status = match error {
                // This user holds too many unused tokens: their own doing.
                RedisTokenError::Token(TokenError::QuotaExceeded) => StatusCode::TOO_MANY_REQUESTS,
                // The store is full (overload) or Redis is down.
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            // Tokens are consumed or expire within the ttl, so waiting that long always helps.
            let retry_after = issuer.ttl().as_secs().to_string();
            (status, [(header::RETRY_AFTER, retry_after)], format!("{error}\n")).into_response()
        }
    }
}
