//! The realtime server and client as one command, `realtime`, and what it shares with the
//! root package's example server and client.
//!
//! ```text
//! cargo run --release --bin realtime -- serve --listen 127.0.0.1:9001 [--config FILE]
//! cargo run --release --bin realtime -- connect ws://127.0.0.1:9001
//! ```
//!
//! - `realtime serve` runs the example server's application (the channels, views and sync
//!   routers, the relay of application frames to every other connection, the demo page)
//!   from a TOML file with environment overrides ([`config`]), and adds what running it in
//!   production needs ([`node`]): TLS ([`tls`]), `GET /healthz` for load balancers and a
//!   drain period before the shutdown, `GET /metrics` in the Prometheus text format
//!   ([`metrics`]), an authenticated `GET /admin` view, one-time tokens issued to the
//!   application's backend, JSON logs. `docs/PRODUCTION.md` says how to run it.
//! - `realtime connect URL` is a terminal client like websocat ([`terminal`]).
//!
//! The library is not meant for applications (use the `realtime` crate): it exists so that
//! the binary and the examples share one copy of the demo application ([`demo`]), of
//! serving and relaying ([`serve`]) and of the terminal client.

mod admin;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod node;
pub mod serve;
pub mod terminal;
pub mod tls;

/// Logs to stderr at `level` (an `EnvFilter` directive such as `info,ws_server=debug`;
/// `RUST_LOG` wins when set), as text (coloured on a terminal) or one JSON object a line.
pub fn init_logging(level: &str, format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        config::LogFormat::Text => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
        }
        config::LogFormat::Json => builder.json().init(),
    }
}

/// Why `realtime serve` or `realtime connect` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The TLS certificate or key cannot be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The listening socket cannot be bound.
    #[error("cannot bind the listening socket on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The bound listener cannot say its address.
    #[error("the listener has no local address")]
    LocalAddr(#[source] std::io::Error),
    /// The server refused its configuration.
    #[error("cannot start the server")]
    Server(#[from] ws_server::ServerError),
    /// The token store refused its configuration.
    #[error("cannot start the token store")]
    Tokens(#[from] ws_server::TokenError),
    /// The token store cannot reach the cluster's Redis.
    #[error("cannot start the token store in redis")]
    RedisTokens(#[from] redis_adapter::RedisTokenError),
    /// The cluster's Redis cannot be joined.
    #[error("cannot join the cluster")]
    Cluster(#[from] redis_adapter::RedisAdapterError),
    /// The channels router refused its configuration.
    #[error("cannot attach the channels router")]
    Channels(#[from] channels::SetupError),
    /// The views router refused its configuration.
    #[error("cannot attach the views router")]
    Views(#[from] views::SetupError),
    /// The sync router refused its configuration.
    #[error("cannot attach the sync router")]
    Sync(#[from] sync::SetupError),
    /// Someone else took the network's event stream.
    #[error("the event stream was already taken")]
    EventsTaken,
    /// The client refused its configuration or URL.
    #[error("cannot start the client")]
    Client(#[from] ws_client::ConfigError),
    /// Reading stdin failed.
    #[error("reading stdin")]
    Stdin(#[source] std::io::Error),
    /// A line could not be sent: the connection is closed for good.
    #[error("cannot send")]
    Send(#[source] network_core::SendError),
}
