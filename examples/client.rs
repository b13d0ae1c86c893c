//! A command-line WebSocket client built on `ws_client::Client`: every line of stdin is
//! sent as a text frame, every frame received is printed as one line of stdout. It
//! reconnects with the backoff of the npm package `reconnecting-websocket`, and lines
//! typed while the server is down wait in the offline queue and go out, in order, once it
//! is back.
//!
//! ```text
//! cargo run --release --example client -- ws://127.0.0.1:PORT [--min-delay MS]
//!     [--max-delay MS] [--grow F] [--timeout MS] [--max-retries N] [--jitter F] [--no-resume]
//! ```
//!
//! - Text frames print as they are; a binary frame prints as one line of JSON when it is
//!   MessagePack, else as hex. Against a plain echo server each line comes back as typed.
//! - Connecting, open, failed attempts, closes and reconnects (with the delay in ms) are
//!   logged on stderr. `RUST_LOG=ws_client=debug` shows the library's own logs.
//! - `--min-delay`, `--max-delay`, `--grow` set the reconnection schedule (explicit values
//!   are followed exactly, with no random part unless `--jitter F` is given), `--timeout`
//!   bounds each attempt, `--max-retries` caps the retries (the client exits with status 1
//!   when they run out).
//! - It asks the server for a resumable session (PROTOCOL.md section 9): after a drop it
//!   reconnects to the same connection, and every frame sent meanwhile, either way, arrives
//!   once (`resumed the session` on stderr); a refused resume says so and why.
//!   `--no-resume` connects afresh each time, as a plain WebSocket client would.
//! - At the end of stdin the client waits (up to 10 s) until every queued line has been
//!   written, closes the connection (reading the server's last frames) and exits 0; it
//!   exits 1 if the queue could not be written in time.
//!
//! Try it against the server example, or any echo server:
//! ```text
//! cargo run --example server            # in one terminal
//! cargo run --example client -- ws://127.0.0.1:9001 --min-delay 200 --max-delay 2000
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use realtime::network_core::{Message, Network, NetworkEvent, SendError};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast::error::RecvError;

const USAGE: &str = "\
usage: client ws://HOST:PORT[/PATH] [OPTIONS]

A reconnecting WebSocket client: each line of stdin goes out as a text frame, each frame
received prints as one line of stdout, connection events go to stderr.

options:
  --min-delay MS     delay before the first reconnection (default: 1 s plus a random 0-4 s)
  --max-delay MS     longest delay between attempts (default: 10000)
  --grow F           growth of each delay over the previous one (default: 1.3)
  --timeout MS       bound on each connection attempt (default: 4000)
  --max-retries N    retries before giving up with exit status 1 (default: unlimited)
  --jitter F         random fraction (0 to 1) by which each delay may shrink (default: 0)
  --no-resume        connect afresh after a drop (default: resume the session)
  -h, --help         print this help and exit
";

#[path = "shared/cli.rs"]
mod cli;

/// How long the end of stdin may wait for the queue to be written.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();

    let (url, config) = cli::parse_or_exit(|| parse_args(std::env::args().skip(1)), USAGE);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(url, config)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    // tokio reads stdin with a blocking read on a thread of its own that cannot be
    // cancelled: a plain runtime drop would wait for the next line (or end) of stdin
    // before exiting, e.g. after `retries exhausted`. Nothing is left to finish here.
    runtime.shutdown_background();
    code
}

/// The URL and configuration, or `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<(String, ClientConfig)>> {
    let mut url = None;
    // Leaves the server time to answer the close frame after its last echoes.
    let mut config = ClientConfig::default().close_timeout(Duration::from_secs(2)).resume(true);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--min-delay" => config = config.min_reconnection_delay(millis(&value("--min-delay")?)?),
            "--max-delay" => config = config.max_reconnection_delay(millis(&value("--max-delay")?)?),
            "--grow" => config = config.reconnection_delay_grow_factor(number(&value("--grow")?)?),
            "--timeout" => config = config.connection_timeout(millis(&value("--timeout")?)?),
            "--max-retries" => {
                let retries = value("--max-retries")?;
                config = config
                    .max_retries(Some(retries.parse().with_context(|| format!("bad count {retries:?}"))?));
            }
            "--jitter" => config = config.jitter(number(&value("--jitter")?)?),
            "--no-resume" => config = config.resume(false),
            "-h" | "--help" => return Ok(None),
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ if url.is_none() => url = Some(arg),
            _ => bail!("unexpected argument {arg:?}"),
        }
    }
    Ok(Some((url.context("missing the server URL")?, config)))
}

fn millis(text: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(text.parse().with_context(|| format!("bad milliseconds {text:?}"))?))
}

fn number(text: &str) -> anyhow::Result<f64> {
    text.parse().with_context(|| format!("bad number {text:?}"))
}

async fn run(url: String, config: ClientConfig) -> anyhow::Result<ExitCode> {
    // Taken right after `connect`, the two streams miss nothing: the client keeps its
    // events, and the first lifecycle receiver its lifecycle, from the start.
    let client = Client::connect(url.as_str(), config)?;
    let mut lifecycle = client.lifecycle();
    let mut events = client.events().context("the events stream was taken")?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();

    // Interactive phase: stdin to the server, frames to stdout, events to stderr.
    loop {
        tokio::select! {
            line = lines.next_line() => match line.context("reading stdin")? {
                Some(line) => {
                    if !send_line(&client, &mut events, &mut lifecycle, &url, line).await? {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                None => break,
            },
            Some(event) = events.recv() => print_event(event),
            event = lifecycle.recv() => {
                if !log_event(event, &url) {
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }

    // End of stdin: write the queue, then close, still printing what arrives meanwhile.
    let finish = async {
        let flushed = match tokio::time::timeout(FLUSH_LIMIT, client.flush()).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                eprintln!("not flushed: {err}");
                false
            }
            Err(_) => {
                eprintln!("not flushed within {FLUSH_LIMIT:?}: {} lines unsent", client.queued());
                false
            }
        };
        client.close().await;
        flushed
    };
    tokio::pin!(finish);
    let flushed = loop {
        tokio::select! {
            flushed = &mut finish => break flushed,
            Some(event) = events.recv() => print_event(event),
            event = lifecycle.recv() => {
                // Retries running out now ends the flush by itself (FlushError::Stopped).
                let _ = log_event(event, &url);
            }
        }
    };
    // Close has delivered every frame it read; print them.
    while let Some(event) = events.try_recv() {
        print_event(event);
    }
    while let Ok(event) = lifecycle.try_recv() {
        let _ = log_event(Ok(event), &url);
    }
    Ok(if flushed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Sends `line`; while the queue is full, waits for it to drain and keeps printing.
/// Returns `false` when the client gave up.
async fn send_line(
    client: &Client,
    events: &mut realtime::network_core::Events,
    lifecycle: &mut tokio::sync::broadcast::Receiver<ClientEvent>,
    url: &str,
    line: String,
) -> anyhow::Result<bool> {
    let mut message = Message::text(line);
    loop {
        match client.send(message) {
            Ok(()) => return Ok(true),
            Err(SendError::Full(back)) => {
                message = back;
                tokio::select! {
                    flushed = client.flush() => {
                        if let Err(err) = flushed {
                            eprintln!("cannot send: {err}");
                            return Ok(false);
                        }
                    }
                    Some(event) = events.recv() => print_event(event),
                    event = lifecycle.recv() => {
                        if !log_event(event, url) {
                            return Ok(false);
                        }
                    }
                }
            }
            Err(err) => bail!("cannot send: {err}"),
        }
    }
}

fn print_event(event: NetworkEvent) {
    let NetworkEvent::Message { message, .. } = event else {
        return;
    };
    let line = match message {
        Message::Text(text) => text.to_string(),
        Message::Binary(bytes) => msgpack_to_json(&bytes).unwrap_or_else(|| hex(&bytes)),
    };
    // A closed stdout (`| head`) is not worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// One line of JSON if `bytes` are exactly one MessagePack value.
fn msgpack_to_json(bytes: &[u8]) -> Option<String> {
    let mut rest = bytes;
    let value = {
        let mut decoder = rmp_serde::Deserializer::new(&mut rest);
        serde_json::Value::deserialize(&mut decoder).ok()?
    };
    if !rest.is_empty() {
        return None;
    }
    serde_json::to_string(&value).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Logs a lifecycle event on stderr; returns `false` when the client gave up.
fn log_event(event: Result<ClientEvent, RecvError>, url: &str) -> bool {
    match event {
        Ok(ClientEvent::Connecting { attempt }) => eprintln!("connecting to {url} (attempt {attempt})"),
        Ok(ClientEvent::Open) => eprintln!("connected to {url}"),
        Ok(ClientEvent::Resumed) => eprintln!("resumed the session on {url}: nothing lost"),
        Ok(ClientEvent::Reset { reason, unconfirmed }) => {
            eprintln!(
                "session not resumed ({reason}): messages may have been lost ({unconfirmed} sent unconfirmed)"
            );
        }
        Ok(ClientEvent::Failed { attempt, error }) => {
            eprintln!("attempt {attempt} failed: {}", chain(&error))
        }
        Ok(ClientEvent::Closed { frame }) => eprintln!("connection closed: {frame}"),
        Ok(ClientEvent::Reconnecting { attempt, delay }) => {
            eprintln!("reconnecting in {} ms (attempt {attempt})", delay.as_millis());
        }
        Ok(ClientEvent::RetriesExhausted) => {
            eprintln!("retries exhausted: giving up");
            return false;
        }
        Ok(ClientEvent::ReconnectDeclined) => {
            eprintln!("the server closed for good: giving up");
            return false;
        }
        Ok(other) => eprintln!("{other:?}"),
        Err(RecvError::Lagged(lost)) => eprintln!("({lost} connection events not shown)"),
        Err(RecvError::Closed) => {}
    }
    true
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
