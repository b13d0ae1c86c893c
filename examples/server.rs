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
use realtime::network_core::Adapter;
use realtime::views::ViewsConfig;
use realtime::ws_server::{Server, ServerConfig};
use realtime_cli::config::LogFormat;
use realtime_cli::demo;
use realtime_cli::serve::{Relay, serve, shutdown_signal};
use redis_adapter::{RedisCluster, RedisConfig};

// The demo application and the serving loop live in `realtime_cli` (the `realtime`
// binary's crate), which `realtime serve` runs too: one copy for both.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    realtime_cli::init_logging("info", LogFormat::Text);
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
        .handshake(demo::identity_hook())
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
            run_with(server, listener, &options).await
        }
        None => run_with(Server::detached(config).context("starting the server")?, listener, &options).await,
    }
}

/// Attaches the routers and runs until Ctrl-C or SIGTERM.
async fn run_with<A: Adapter>(
    server: Server<A>,
    listener: tokio::net::TcpListener,
    options: &Options,
) -> anyhow::Result<()> {
    let routers = &options.router_limits;
    routers.channels(demo::channels_config()).attach(&server).context("attaching the channels router")?;
    routers.views(ViewsConfig::default()).attach(&server).context("attaching the views router")?;
    routers.sync(demo::books()).attach(&server).context("attaching the sync router")?;
    let app = demo::app(server.clone(), true);
    let relay = if options.echo { Relay::Echo } else { Relay::Others };
    Ok(serve(server, listener, app, relay, shutdown_signal()).await?)
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
