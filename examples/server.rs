//! The example server: a chat relay that every later feature (routers) attaches to.
//!
//! Every application frame a connection sends is relayed to every other connection.
//! Ctrl-C or SIGTERM shuts it down gracefully (close 1001 to every client).
//!
//! ```text
//! cargo run --release --example server -- --listen 127.0.0.1:9001
//! cargo run --release --example client -- ws://127.0.0.1:9001   # in two terminals
//! ```
//!
//! It prints `listening on ws://ADDR` once it accepts connections.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use realtime::network_core::{Network, NetworkEvent, Target};
use realtime::ws_server::{Server, ServerConfig};

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
    let listen = parse_args()?;

    let server = Server::bind(listen, ServerConfig::default()).await.context("starting the server")?;
    let addr = server.local_addr().context("the server has no address")?;
    let mut events = server.events().context("events already taken")?;
    println!("listening on ws://{addr}");

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(NetworkEvent::Added(connection)) => {
                    tracing::info!(id = %connection.id(), remote = ?connection.meta().remote_addr, "connected");
                }
                Some(NetworkEvent::Message { connection, message }) => {
                    let others = Target::everyone().except(connection.id());
                    server.adapter().broadcast_now(&others, &message);
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
    Ok(())
}

fn parse_args() -> anyhow::Result<SocketAddr> {
    let mut listen: SocketAddr = "127.0.0.1:9001".parse()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().context("--listen needs an address")?;
                listen = value.parse().with_context(|| format!("bad --listen address {value:?}"))?;
            }
            "-h" | "--help" => {
                println!("usage: server [--listen ADDR]   (default 127.0.0.1:9001)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(listen)
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
