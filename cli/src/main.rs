//! `realtime`: `realtime serve` runs the server from a config file, `realtime connect URL`
//! is a terminal client. `realtime --help` and `realtime COMMAND --help` list every flag
//! with its default; the `realtime_cli` crate documents what each does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use network_core::http::{HeaderMap, HeaderName, HeaderValue, header};
use realtime_cli::config::{Config, LogFormat, RedisSettings, TlsFiles};
use realtime_cli::{Error, node, serve, terminal};
use ws_client::ClientConfig;

/// The realtime server and client.
#[derive(Debug, Parser)]
#[command(name = "realtime", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP and WebSocket on one port: the channels, views and sync routers, the relay
    /// of application frames to every other connection, the demo page, `GET /healthz`.
    ///
    /// Settings come from the defaults, then the config file, then the `REALTIME_`
    /// environment variables (`REALTIME_LISTEN`, `REALTIME_LIMITS__MAX_CONNECTIONS`: every
    /// key of the file), then these flags. Limits, tokens and the admin token are set in the
    /// file or the environment only.
    Serve(ServeArgs),
    /// Connect to a WebSocket server: each line of stdin goes out as a text frame, each frame
    /// received prints as one line (binary MessagePack as JSON, other binary as hex), and
    /// connection events go to stderr. Reconnects, and resumes its session where the server
    /// allows it. Exits 0 once stdin ends and every line is written, 1 when it gives up.
    Connect(ConnectArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A TOML config file [default: none, every key at its default]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The address HTTP and WebSocket share [default: 127.0.0.1:9001]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The TLS certificate chain (PEM), to serve wss:// and https:// [default: none]
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM) [default: none]
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Join the cluster of servers sharing rooms over this Redis (redis://HOST:PORT)
    /// [default: none]
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Accept browser pages from ORIGIN only (scheme://host[:port]); repeatable [default:
    /// any origin]
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Do not serve the demo page and the browser client at / [default: served]
    #[arg(long)]
    no_demo_page: bool,
    /// Send application frames back to their sender [default: relayed to every other
    /// connection]
    #[arg(long)]
    echo: bool,
    /// Keep no resumable sessions [default: clients that ask may resume within 2 minutes]
    #[arg(long)]
    no_resume: bool,
    /// The log level or filter, such as `info,ws_server=debug`; RUST_LOG wins when set
    /// [default: info]
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// The log format [default: text]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Args)]
struct ConnectArgs {
    /// The server: ws://HOST:PORT[/PATH] or wss://...
    url: String,
    /// A header for the upgrade request, `NAME: VALUE`; repeatable [default: none]
    #[arg(long, value_name = "NAME: VALUE", value_parser = parse_header)]
    header: Vec<(HeaderName, HeaderValue)>,
    /// Sent as `Authorization: Bearer TOKEN` (a one-time token of `realtime serve` is
    /// valid once: a reconnection needs a resumed session or a new token) [default: none]
    #[arg(long, value_name = "TOKEN", value_parser = parse_bearer)]
    token: Option<HeaderValue>,
    /// Delay before the first reconnection, in ms [default: 1 s plus a random 0-4 s]
    #[arg(long, value_name = "MS")]
    min_delay: Option<u64>,
    /// Longest delay between attempts, in ms [default: 10000]
    #[arg(long, value_name = "MS")]
    max_delay: Option<u64>,
    /// Growth of each delay over the previous one [default: 1.3]
    #[arg(long, value_name = "F")]
    grow: Option<f64>,
    /// Bound on each connection attempt, in ms [default: 4000]
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// Retries before giving up with exit status 1 [default: unlimited]
    #[arg(long, value_name = "N")]
    max_retries: Option<u32>,
    /// Random fraction (0 to 1) by which each delay may shrink [default: 0]
    #[arg(long, value_name = "F")]
    jitter: Option<f64>,
    /// Connect afresh after a drop [default: resume the session]
    #[arg(long)]
    no_resume: bool,
    /// For wss://, trust the certificates of this PEM file only (a private CA) [default: the
    /// Mozilla roots]
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text.split_once(':').ok_or("expected NAME: VALUE")?;
    let name = HeaderName::try_from(name.trim()).map_err(|err| format!("bad header name: {err}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|err| format!("bad header value: {err}"))?;
    Ok((name, value))
}

/// `Authorization: Bearer TOKEN`'s value.
fn parse_bearer(token: &str) -> Result<HeaderValue, String> {
    HeaderValue::try_from(format!("Bearer {token}")).map_err(|err| format!("bad token: {err}"))
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => run_serve(args),
        Command::Connect(args) => {
            realtime_cli::init_logging("warn", LogFormat::Text);
            match client_config(args) {
                Ok((url, config)) => terminal::run_to_exit(url, config),
                Err(err) => {
                    eprintln!("error: {}", terminal::chain(&err));
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let config = match server_config(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {}", terminal::chain(&err));
            return ExitCode::from(2);
        }
    };
    realtime_cli::init_logging(&config.log.level, config.log.format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // On a worker, not on `main`'s own thread: every event from a connection would
    // otherwise cross threads (a futex wake per relayed frame).
    let served = runtime.block_on(async { tokio::spawn(node::run(config, serve::shutdown_signal())).await });
    match served {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("error: {}", terminal::chain(&err));
            ExitCode::FAILURE
        }
        Err(panicked) => {
            eprintln!("error: the server task panicked: {panicked}");
            ExitCode::FAILURE
        }
    }
}

/// The file, the environment, then the flags.
fn server_config(args: ServeArgs) -> Result<Config, Error> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars_os())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsFiles { cert, key });
    }
    if let Some(url) = args.redis {
        let prefix = config.redis.take().map_or_else(|| "realtime".to_owned(), |redis| redis.prefix);
        config.redis = Some(RedisSettings { url, prefix });
    }
    if !args.allowed_origins.is_empty() {
        config.allowed_origins = args.allowed_origins;
    }
    config.demo_page &= !args.no_demo_page;
    config.echo |= args.echo;
    config.resume &= !args.no_resume;
    if let Some(level) = args.log_level {
        config.log.level = level;
    }
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    Ok(config)
}

/// The URL and the client's configuration from the flags.
fn client_config(args: ConnectArgs) -> Result<(String, ClientConfig), Error> {
    let mut headers: HeaderMap = args.header.into_iter().collect();
    if let Some(bearer) = args.token {
        headers.insert(header::AUTHORIZATION, bearer);
    }
    // Leaves the server time to answer the close frame after its last echoes.
    let mut config = ClientConfig::default()
        .close_timeout(Duration::from_secs(2))
        .resume(!args.no_resume)
        .headers(headers);
    if let Some(ms) = args.min_delay {
        config = config.min_reconnection_delay(Duration::from_millis(ms));
    }
    if let Some(ms) = args.max_delay {
        config = config.max_reconnection_delay(Duration::from_millis(ms));
    }
    if let Some(factor) = args.grow {
        config = config.reconnection_delay_grow_factor(factor);
    }
    if let Some(ms) = args.timeout {
        config = config.connection_timeout(Duration::from_millis(ms));
    }
    if let Some(jitter) = args.jitter {
        config = config.jitter(jitter);
    }
    if let Some(ca) = &args.ca_cert {
        config = config.tls(Some(realtime_cli::tls::client_config_trusting(ca)?));
    }
    Ok((args.url, config.max_retries(args.max_retries)))
}
