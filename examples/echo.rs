//! The smallest server: every frame comes back to its sender. Used to check RFC 6455
//! conformance (the Autobahn cases) and as the target of the benchmarks.
//!
//! ```text
//! cargo run --release --example echo -- --listen 127.0.0.1:9002
//! ```
//!
//! It prints `listening on ws://ADDR` once it accepts connections. Autobahn's cases send
//! messages of up to 16 MiB, so this example raises the message limit to 32 MiB.

use anyhow::Context;
use realtime::network_core::{Network, NetworkEvent};
use realtime::ws_server::{Server, ServerConfig};

const USAGE: &str = "\
usage: echo [--listen ADDR]
  --listen ADDR   the address to serve on (default: 127.0.0.1:9002)
  -h, --help      print this help and exit";

#[path = "shared/cli.rs"]
mod cli;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let listen = cli::parse_or_exit(|| cli::listen_only("127.0.0.1:9002"), USAGE);
    let config = ServerConfig::default()
        .max_message_size(32 << 20)
        .outgoing_queue_size(64 << 20)
        .max_outgoing_queue_size(64 << 20);
    let server = Server::bind(listen.as_str(), config).await?;
    println!("listening on ws://{}", server.local_addr().context("no address")?);
    let mut events = server.events().context("events taken")?;
    while let Some(event) = events.recv().await {
        if let NetworkEvent::Message { connection, message } = event {
            let _ = connection.send(message);
        }
    }
    Ok(())
}
