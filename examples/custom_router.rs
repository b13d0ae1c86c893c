//! A custom router, written once against the `Network` trait, running unchanged on the
//! server and on the client.
//!
//! The `rtt` router measures round-trip times: whenever a connection opens it sends
//! `{"$r":"rtt","d":{"t":"ping","seq":N}}`, answers every ping with a pong carrying the
//! same sequence number, and times the pongs it gets back. Attached to both ends, each
//! side measures the other. Application frames pass by untouched.
//!
//! ```text
//! cargo run --example custom_router
//! ```
//!
//! It starts a server on a free loopback port and a client, both with the router, prints
//! five round trips measured from each side, and exits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use realtime::network_core::{ConnectionId, Network, NetworkEvent, Router, envelope};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The router's frames, inside the envelope `{"$r":"rtt","d":...}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum RttFrame {
    Ping { seq: u32 },
    Pong { seq: u32 },
}

/// One measured round trip.
#[derive(Debug)]
struct Sample {
    side: &'static str,
    peer: ConnectionId,
    seq: u32,
    rtt: Duration,
}

/// Pings each connection `rounds` times (the next ping leaves when the pong arrives) and
/// reports each round trip on `samples`.
struct Rtt {
    side: &'static str,
    rounds: u32,
    /// When the outstanding ping to each connection left.
    pending: HashMap<ConnectionId, (u32, Instant)>,
    samples: mpsc::Sender<Sample>,
}

impl Rtt {
    const NAME: &'static str = "rtt";

    fn new(side: &'static str, rounds: u32, samples: mpsc::Sender<Sample>) -> Self {
        Self { side, rounds, pending: HashMap::new(), samples }
    }

    fn ping(&mut self, connection: &realtime::network_core::Connection, seq: u32) {
        if let Ok(frame) = envelope::json(Self::NAME, &RttFrame::Ping { seq })
            && connection.send(frame).is_ok()
        {
            self.pending.insert(connection.id(), (seq, Instant::now()));
        }
    }
}

impl<N: Network> Router<N> for Rtt {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Added(connection) => self.ping(&connection, 1),
            NetworkEvent::Message { connection, message } => match envelope::decode(Self::NAME, &message) {
                Ok(RttFrame::Ping { seq }) => {
                    if let Ok(pong) = envelope::json(Self::NAME, &RttFrame::Pong { seq }) {
                        let _ = connection.send(pong);
                    }
                }
                Ok(RttFrame::Pong { seq }) => {
                    let Some((expected, sent)) = self.pending.remove(&connection.id()) else { return };
                    if seq != expected {
                        return;
                    }
                    let sample = Sample { side: self.side, peer: connection.id(), seq, rtt: sent.elapsed() };
                    // The application reads the samples; waiting here is backpressure.
                    let _ = self.samples.send(sample).await;
                    if seq < self.rounds {
                        self.ping(&connection, seq + 1);
                    }
                }
                // Bad input from a peer: report it, keep the connection.
                Err(error) => tracing::warn!(%error, "malformed rtt frame"),
            },
            NetworkEvent::Removed { connection, .. } => {
                self.pending.remove(&connection.id());
            }
            _ => {}
        }
    }
}

const USAGE: &str = "\
usage: custom_router
  (no options: it runs a server and a client on a free loopback port, prints five round
  trips measured from each side, and exits)
  -h, --help   print this help and exit";

#[path = "shared/cli.rs"]
mod cli;

/// No arguments, or `None` for `--help`.
fn parse_args() -> anyhow::Result<Option<()>> {
    match std::env::args().nth(1).as_deref() {
        None => Ok(Some(())),
        Some("-h" | "--help") => Ok(None),
        Some(other) => anyhow::bail!("unexpected argument {other:?}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::parse_or_exit(parse_args, USAGE);
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    const ROUNDS: u32 = 5;
    let (samples_tx, mut samples) = mpsc::channel(16);

    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
    server.attach(Rtt::new("server", ROUNDS, samples_tx.clone()))?;
    let url = format!("ws://{}", server.local_addr().context("no address")?);

    let client = Client::connect(url.as_str(), ClientConfig::default())?;
    client.attach(Rtt::new("client", ROUNDS, samples_tx))?;

    for _ in 0..2 * ROUNDS {
        let sample = tokio::time::timeout(Duration::from_secs(10), samples.recv())
            .await
            .context("no round trip within 10 s")?
            .context("routers stopped")?;
        println!("{} -> {}: round trip {} took {:?}", sample.side, sample.peer, sample.seq, sample.rtt);
    }
    client.close().await;
    server.shutdown().await;
    Ok(())
}
