//! The example server, with every router attached.
//!
//! - Application frames (anything that is not a router envelope) are relayed to every
//!   other connection: a chat relay any WebSocket client can use.
//! - The channels router (`docs/PROTOCOL.md` section 5): channel `/chat`, whose members are
//!   in room `lobby`, with events `say` (relayed to the lobby as `said`) and `echo`
//!   (acknowledged with its payload); the private channel `/admin`, open to user `admin`.
//! - The views router (`docs/PROTOCOL.md` section 6): presence for any view name;
//!   `cargo run --example presence -- ws://ADDR --user NAME` shows who is looking.
//! - The sync router (`docs/PROTOCOL.md` section 7): books at `/api/book/:id` in the
//!   collection `/api/books`, with create, read, update and delete, kept in memory; every
//!   change is pushed to the subscribers of the book and of the collection.
//! - `?user=NAME` in the URL gives the connection that identity (a demo: anyone can claim
//!   any name; see `examples/axum_tokens.rs` for one-time tokens), which puts it in room
//!   `user.NAME` of each channel it joins.
//!
//! - `--echo` sends application frames back to their sender only, unchanged (what the
//!   Autobahn conformance cases need, with `--max-message-size 33554432` for their 16 MiB
//!   messages); frames of a plain WebSocket client pass through byte for byte either way.
//! - `--redis redis://HOST:PORT` joins a cluster of servers sharing rooms over Redis
//!   (`redis_adapter`): relays, channel rooms, sync pushes and presence reach the clients
//!   of every node started with the same Redis and `--redis-prefix` (default `realtime`).
//! - `--allow-origin ORIGIN` (repeatable, such as `--allow-origin https://app.example`)
//!   refuses with 403 the upgrades of browser pages from any other origin
//!   (`ServerConfig::allowed_origins`); without it every origin is accepted.
//!
//! Ctrl-C or SIGTERM shuts it down gracefully (close 1001 to every client).
//!
//! ```text
//! cargo run --release --example server -- --listen 127.0.0.1:9001
//! cargo run --release --example client -- ws://127.0.0.1:9001   # in two terminals
//! ```
//!
//! It prints `listening on ws://ADDR`, then `listening on http://ADDR`, once it accepts
//! connections: HTTP and WebSocket share the port. `GET /` is a demo page (open
//! `http://ADDR/?user=ada` and `http://ADDR/?user=grace` side by side): a shared books list
//! kept by the sync router, with a `<realtime-users>` element per book and one for the
//! page; `/realtime.js`, `/realtime-users.js`, `/backbone.js` and `/msgpack.js` serve the
//! browser client of `clients/js`, built into the binary. A WebSocket upgrade is accepted
//! on any path, `/` included.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use realtime::channels::{Channel, ChannelsConfig, RemoteError};
use realtime::network_core::{Adapter, AdapterError, Identity, Network, NetworkEvent, Target};
use realtime::sync::{RemoteError as SyncError, Route, SyncConfig};
use realtime::views::ViewsConfig;
use realtime::ws_server::{Accept, HandshakeHook, RemoteAddr, Server, ServerConfig};
use redis_adapter::{RedisCluster, RedisConfig};
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let usage = format!("{USAGE}\n{}\n{}", limits::help(), limits::RouterLimits::help());
    let options = cli::parse_or_exit(parse_args, &usage);
    // On a worker, not on `main`'s own thread: `#[tokio::main]` runs this body outside the
    // runtime's workers, so every event from a connection would cross threads (a futex
    // wake per relayed frame).
    tokio::spawn(run(options)).await.context("the server task panicked")?
}

/// Starts the server with `options` and serves until Ctrl-C or SIGTERM.
async fn run(options: Options) -> anyhow::Result<()> {
    let config = options
        .limits
        .apply(ServerConfig::default())
        .handshake(demo_identity())
        .max_message_size(options.max_message_size)
        .allowed_origins((!options.allowed_origins.is_empty()).then(|| options.allowed_origins.clone()));
    let config = if options.resume { config } else { config.resume_window(None) };
    // HTTP and WebSocket on one listener: an axum app serves the demo page and the
    // browser modules, and hands every upgrade (on any path) to the server.
    let listener = tokio::net::TcpListener::bind(options.listen).await.context("starting the server")?;
    match &options.redis {
        Some(url) => {
            let cluster = RedisConfig::new(url.clone()).prefix(options.redis_prefix.clone());
            let cluster = RedisCluster::connect(cluster).await.context("joining the cluster")?;
            tracing::info!(node = %cluster.node(), "joined the cluster");
            let server = Server::detached_with(config, cluster).context("starting the server")?;
            serve(server, listener, &options).await
        }
        None => serve(Server::detached(config).context("starting the server")?, listener, &options).await,
    }
}

/// Attaches the routers and runs until Ctrl-C or SIGTERM.
async fn serve<A: Adapter>(
    server: Server<A>,
    listener: tokio::net::TcpListener,
    options: &Options,
) -> anyhow::Result<()> {
    let routers = &options.router_limits;
    routers.channels(channels_config()).attach(&server).context("attaching the channels router")?;
    routers.views(ViewsConfig::default()).attach(&server).context("attaching the views router")?;
    routers.sync(books()).attach(&server).context("attaching the sync router")?;
    let addr = listener.local_addr().context("the listener has no address")?;
    let mut events = server.events().context("events already taken")?;
    let (http_done, stop) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn({
        // `axum_listener` gives every socket the server's handshake limits until its first
        // request head is in, as `Server::bind` does.
        let service = demo::app(server.clone()).into_make_service_with_connect_info::<RemoteAddr>();
        let serving = axum::serve(server.axum_listener(listener), service);
        async move {
            serving
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .await
        }
    });
    // Both lines in one write, and no panic if the reader has gone: a parent that reads the
    // first line and closes the pipe must not kill the server (`println!` would panic).
    let banner = format!("listening on ws://{addr}\nlistening on http://{addr}\n");
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // Relays waiting for the cluster to take them (see below); bounded.
    let mut relaying: FuturesUnordered<Relay> = FuturesUnordered::new();
    loop {
        if relaying.len() >= MAX_RELAYS_IN_FLIGHT {
            // Full: wait for the oldest outcomes before reading more (the readers then
            // hold their clients back: TCP backpressure, nothing dropped).
            if let Some(Err(error)) = relaying.next().await {
                tracing::warn!(%error, "relay incomplete");
            }
            continue;
        }
        tokio::select! {
            Some(outcome) = relaying.next(), if !relaying.is_empty() => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "relay incomplete");
                }
            }
            event = events.recv() => match event {
                Some(NetworkEvent::Added(connection)) => {
                    tracing::info!(id = %connection.id(), remote = ?connection.meta().remote_addr, "connected");
                }
                Some(NetworkEvent::Message { connection, message }) if options.echo => {
                    // Back to the sender only, unchanged.
                    let _ = connection.send(message);
                }
                Some(NetworkEvent::Message { connection, message }) => {
                    // To every other connection, on every node of a cluster. The first poll
                    // delivers here and queues the publish, in arrival order; with a cluster
                    // adapter only Redis's receipt is left, awaited out of line so that one
                    // round trip per relay does not bound the relay rate.
                    let others = Target::everyone().except(connection.id());
                    let server = server.clone();
                    let mut relay: Relay =
                        Box::pin(async move { server.adapter().broadcast(&others, message).await });
                    match futures_util::poll!(relay.as_mut()) {
                        std::task::Poll::Ready(Err(error)) => tracing::warn!(%error, "relay incomplete"),
                        std::task::Poll::Ready(Ok(_)) => {}
                        std::task::Poll::Pending => relaying.push(relay),
                    }
                }
                Some(NetworkEvent::Removed { connection, frame }) => {
                    tracing::info!(id = %connection.id(), close = %frame, "disconnected");
                }
                Some(_) => {}
                None => break,
            },
            () = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
        }
    }
    server.shutdown().await;
    // The WebSocket connections are closed; idle HTTP connections get a moment to finish.
    let _ = http_done.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), http).await;
    Ok(())
}

/// A relay whose outcome is still to come.
type Relay = std::pin::Pin<Box<dyn Future<Output = Result<usize, AdapterError>> + Send>>;

/// Relays in flight at most; past it the server reads nothing more until some finish.
const MAX_RELAYS_IN_FLIGHT: usize = 1024;

/// `?user=NAME` becomes the connection's identity. A demo only: nothing checks the name.
fn demo_identity() -> HandshakeHook {
    HandshakeHook::new(|request| async move {
        Ok(match request.query_param("user").filter(|user| !user.is_empty()) {
            Some(user) => Accept::new().identity(Identity::user(user)),
            None => Accept::new(),
        })
    })
}

fn channels_config<N: Network>() -> ChannelsConfig<N> {
    let chat = Channel::new()
        // `?` turns a refused join (the connection's room limit) into code `limit`.
        .on_join(|ctx| async move { Ok(ctx.join_room("lobby").await?) })
        .on("say", |ctx, text: Value| async move {
            ctx.broadcast_to_room("lobby", "said", &text).await?;
            Ok(())
        })
        .on("echo", |_ctx, payload: Value| async move { Ok(payload) });
    let admin = Channel::new().on_join(|ctx| async move {
        let user = ctx.identity().and_then(|identity| identity.user_id.clone());
        if user.as_deref() == Some("admin") { Ok(()) } else { Err(RemoteError::forbidden("admins only")) }
    });
    ChannelsConfig::default().channel("/chat", chat).channel("/admin", admin)
}

/// An in-memory book store, by id.
type Books = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<u64, Value>>>;

fn books<N: Network>() -> SyncConfig<N> {
    let store: Books = Books::default();
    let next_id = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let lock = |store: &Books| store.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let book_id = |params: &realtime::sync::Params| -> Result<u64, SyncError> {
        params["id"].parse().map_err(|_| SyncError::bad_request("book ids are numbers"))
    };
    let (read_store, update_store, delete_store, list_store, create_store) =
        (store.clone(), store.clone(), store.clone(), store.clone(), store);
    let book = Route::new()
        .collection("/api/books")
        .read(move |request| {
            let store = read_store.clone();
            async move {
                let id = book_id(&request.params)?;
                lock(&store).get(&id).cloned().ok_or_else(|| SyncError::not_found("no such book"))
            }
        })
        .update(move |request| {
            let store = update_store.clone();
            async move {
                let id = book_id(&request.params)?;
                let mut books = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let book = books.get_mut(&id).ok_or_else(|| SyncError::not_found("no such book"))?;
                if let (Value::Object(book), Value::Object(changes)) = (book as &mut Value, request.data) {
                    book.extend(changes.into_iter().filter(|(key, _)| key != "id"));
                }
                Ok(books[&id].clone())
            }
        })
        .delete(move |request| {
            let store = delete_store.clone();
            async move {
                let id = book_id(&request.params)?;
                let mut books = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                books.remove(&id).ok_or_else(|| SyncError::not_found("no such book"))
            }
        });
    let collection = Route::new()
        .read(move |_request| {
            let store = list_store.clone();
            async move { Ok(Value::Array(lock(&store).into_values().collect())) }
        })
        .create(move |request| {
            let (store, next_id) = (create_store.clone(), next_id.clone());
            async move {
                let Value::Object(mut book) = request.data else {
                    return Err(SyncError::bad_request("a book is a JSON object"));
                };
                let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                book.insert("id".into(), id.into());
                let book = Value::Object(book);
                store.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, book.clone());
                Ok(book)
            }
        });
    SyncConfig::default().route("/api/book/:id", book).route("/api/books", collection)
}

/// The command line.
struct Options {
    listen: SocketAddr,
    /// Send application frames back to their sender instead of relaying them.
    echo: bool,
    /// Keep resumable sessions for clients that ask (`--no-resume` turns it off).
    resume: bool,
    max_message_size: usize,
    /// Join the cluster on this Redis.
    redis: Option<String>,
    redis_prefix: String,
    /// Browser origins allowed to connect; empty for any.
    allowed_origins: Vec<String>,
    /// Server limits given as flags (`examples/shared/limits.rs`).
    limits: limits::Limits,
    /// Per-connection limits of the routers.
    router_limits: limits::RouterLimits,
}

const USAGE: &str =
    "usage: server [--listen ADDR] [--echo] [--no-resume] [--max-message-size BYTES] [--redis URL [--redis-prefix P]] [--allow-origin ORIGIN]... [LIMITS]
  --listen ADDR             default 127.0.0.1:9001
  --echo                    application frames go back to their sender (default: relayed to the others)
  --no-resume               keep no resumable sessions (default: clients that ask may resume within 2 minutes)
  --max-message-size BYTES  largest incoming message, default 1048576 (1 MiB)
  --redis URL               join the cluster of servers on this Redis (redis://HOST:PORT)
  --redis-prefix P          the cluster's channel and key prefix, default realtime
  --allow-origin ORIGIN     accept browser pages from ORIGIN only (scheme://host[:port]); repeatable; default any
  -h, --help                print this help and exit";

#[path = "shared/limits.rs"]
mod limits;

#[path = "shared/demo.rs"]
mod demo;

#[path = "shared/cli.rs"]
mod cli;

/// The options, or `None` for `--help`.
fn parse_args() -> anyhow::Result<Option<Options>> {
    let mut options = Options {
        listen: "127.0.0.1:9001".parse()?,
        echo: false,
        resume: true,
        max_message_size: ServerConfig::default().max_message_size,
        redis: None,
        redis_prefix: "realtime".to_owned(),
        allowed_origins: Vec::new(),
        limits: limits::Limits::default(),
        router_limits: limits::RouterLimits::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if options.limits.parse(&arg, &mut args)? || options.router_limits.parse(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--listen" => {
                let value = args.next().context("--listen needs an address")?;
                options.listen = value.parse().with_context(|| format!("bad --listen address {value:?}"))?;
            }
            "--echo" => options.echo = true,
            "--no-resume" => options.resume = false,
            "--redis" => options.redis = Some(args.next().context("--redis needs a URL")?),
            "--redis-prefix" => options.redis_prefix = args.next().context("--redis-prefix needs a value")?,
            "--allow-origin" => {
                options
                    .allowed_origins
                    .push(args.next().context("--allow-origin needs an origin such as https://app.example")?);
            }
            "--max-message-size" => {
                let value = args.next().context("--max-message-size needs a number of bytes")?;
                options.max_message_size =
                    value.parse().with_context(|| format!("bad --max-message-size {value:?}"))?;
            }
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Some(options))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
