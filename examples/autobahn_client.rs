//! The client side of the Autobahn RFC 6455 test suite: `ws_client::Client`, the
//! reconnecting client itself, run against a fuzzing server (Autobahn|Testsuite's
//! `wstest -m fuzzingserver`, or the PyPI package `kosoku` with `-m fuzzingserver`).
//!
//! It follows the standard Autobahn client protocol: `GET /getCaseCount` (a text frame
//! with the number of cases), then for each case `GET /runCase?case=N&agent=AGENT`,
//! echoing every text and binary message back unchanged until the server ends the
//! connection, and finally `GET /updateReports?agent=AGENT`, which tells the server that
//! the run is over.
//!
//! ```text
//! kosoku -m fuzzingserver 127.0.0.1:9001 -o target/autobahn-client-reports &
//! cargo run --example autobahn_client -- ws://127.0.0.1:9001 [--agent NAME]
//! ```
//!
//! The verdicts are the fuzzing server's: kosoku prints `N cases passed` and exits 0 when
//! every case passed, and exits 1 otherwise (the HTML/JSON reports say which failed). This
//! program exits 1 only when it cannot drive the protocol (no case count, a case that does
//! not end within its time limit).
//!
//! The client is used as an application would use it, through its public API: messages
//! arrive as `NetworkEvent::Message` on `Client::events()` (no router is attached, so no
//! frame is interpreted) and go back with `Client::send`, which keeps a text frame text and
//! a binary frame binary, byte for byte. Pings are answered by the client itself. What
//! this changes from an application's defaults, each case being one connection:
//!
//! - reconnection is off: `max_retries` 0, `should_reconnect` false for every close
//!   frame, and a one-hour delay before a retry after a dropped connection (the program
//!   closes the client as soon as it sees the connection end, so the retry never comes);
//! - `max_message_size` and `max_enqueued_bytes` are 64 MiB, since cases 9.* echo
//!   messages of up to 16 MiB;
//! - permessage-deflate is offered (as by default) and every message is sent compressed
//!   (`min_size` 0): kosoku hands the compression cases an uncompressed message as a
//!   `str`, which they cannot hash (RFC 7692 allows either), and this way the cases
//!   exercise the client's compressor with every window the server asks for, down to 9
//!   bits;
//! - a case may take up to 8 minutes, the limit the suite itself gives its largest
//!   compression cases (1,000 messages of 128 KiB each way).
//!
//! `RUST_LOG=ws_client=debug` shows the client's own logs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use realtime::network_core::{Network, NetworkEvent};
use realtime::ws_client::{Client, ClientConfig, ClientEvent, Compression};

const USAGE: &str = "\
usage: autobahn_client [ws://HOST:PORT] [--agent NAME] [--jobs N]
  ws://HOST:PORT   the Autobahn fuzzing server (default: ws://127.0.0.1:9001)
  --agent NAME     the name the reports are filed under (default: realtime-ws-client)
  --jobs N         cases run at once, each on its own connection (default: 1)
  -h, --help       print this help and exit";

#[path = "shared/cli.rs"]
mod cli;

/// The command line: the fuzzing server's URL and the agent name.
struct Args {
    base: String,
    agent: String,
    jobs: usize,
}

/// The longest a case may take: the suite's own limit for its largest compression cases
/// (most cases take well under a second).
const CASE_LIMIT: Duration = Duration::from_secs(480);

/// Messages of up to 16 MiB are echoed in cases 9.*.
const MAX_SIZE: usize = 64 << 20;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    let args = cli::parse_or_exit(parse_args, USAGE);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments, or `None` for `--help`.
fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut base = "ws://127.0.0.1:9001".to_owned();
    let mut agent = "realtime-ws-client".to_owned();
    let mut jobs = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--agent" => agent = args.next().context("--agent needs a value")?,
            "--jobs" => {
                jobs =
                    args.next().context("--jobs needs a number")?.parse().context("--jobs needs a number")?;
                if jobs == 0 {
                    bail!("--jobs must be at least 1");
                }
            }
            "-h" | "--help" => return Ok(None),
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ => base = arg,
        }
    }
    Ok(Some(Args { base, agent, jobs }))
}

async fn run(Args { base, agent, jobs }: Args) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/');

    let count = session(&format!("{base}/getCaseCount"), false).await?;
    let count: u32 = count
        .as_deref()
        .context("no case count received")?
        .trim()
        .parse()
        .context("the case count is not a number")?;
    eprintln!("running {count} cases, {jobs} at a time");
    // Cases are independent connections; running a few at once keeps both the fuzzing
    // server and the client busy (each alone leaves a core half idle).
    let mut cases = futures_util::stream::iter(1..=count)
        .map(|case| {
            let url = format!("{base}/runCase?case={case}&agent={agent}");
            async move { session(&url, true).await.with_context(|| format!("case {case}")) }
        })
        .buffer_unordered(jobs);
    while let Some(result) = cases.next().await {
        result?;
    }
    session(&format!("{base}/updateReports?agent={agent}"), false).await?;
    eprintln!("ran {count} cases");
    Ok(())
}

/// One connection to `url`, until the server ends it: echoes every message when `echo`
/// is set, and returns the first text message received.
async fn session(url: &str, echo: bool) -> anyhow::Result<Option<String>> {
    // On a multi-threaded runtime a case that fails at once (5.12: a bad frame right after
    // the handshake) can run its whole connection, `Added` to `Removed`, before the next
    // line here: the client keeps its events until they are taken, and the first
    // lifecycle receiver has every event since `connect`, so the case still ends.
    let client = Client::connect(url, config())?;
    let mut lifecycle = client.lifecycle();
    let mut events = client.events().context("the events stream was taken")?;
    let mut first_text = None;
    let mut failure = None;
    let mut opened = false;
    let ended = tokio::time::timeout(CASE_LIMIT, async {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(NetworkEvent::Message { message, .. }) => {
                        if first_text.is_none() {
                            first_text = message.as_text().map(str::to_owned);
                        }
                        if echo {
                            // Fails only past the queue's bounds (64 MiB), or once closed.
                            client.send(message).map_err(|err| anyhow::anyhow!("cannot echo: {err}"))?;
                        }
                    }
                    Some(NetworkEvent::Removed { .. }) | None => return Ok(()),
                    Some(_) => {}
                },
                event = lifecycle.recv() => match event {
                    Ok(ClientEvent::Open) => opened = true,
                    Ok(ClientEvent::Failed { error, .. }) => failure = Some(error),
                    // With `max_retries` 0 this follows a failed attempt, or the end of an
                    // open connection (whose `Removed` may still be on its way).
                    Ok(ClientEvent::RetriesExhausted) if !opened => match failure.take() {
                        Some(error) => bail!("cannot connect to {url}: {error}"),
                        None => bail!("cannot connect to {url}"),
                    },
                    _ => {}
                }
            }
        }
    })
    .await;
    // The connection has ended (or the case is stuck): close for good, before any retry.
    client.close().await;
    ended.with_context(|| format!("{url} did not end within {CASE_LIMIT:?}"))??;
    Ok(first_text)
}

/// One connection per case, never reconnected, with room for the largest messages.
fn config() -> ClientConfig {
    let never = Duration::from_secs(3600);
    ClientConfig::default()
        .max_retries(Some(0))
        .should_reconnect(|_| false)
        .min_reconnection_delay(never)
        .max_reconnection_delay(never)
        .max_message_size(MAX_SIZE)
        .max_enqueued_bytes(MAX_SIZE)
        .connection_timeout(Duration::from_secs(10))
        .compression(Some(Compression::default().min_size(0)))
}
