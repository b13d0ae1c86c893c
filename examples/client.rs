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

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use realtime::ws_client::ClientConfig;
use realtime_cli::config::LogFormat;

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

fn main() -> ExitCode {
    realtime_cli::init_logging("warn", LogFormat::Text);
    let (url, config) = cli::parse_or_exit(|| parse_args(std::env::args().skip(1)), USAGE);
    // The loop and the display are `realtime_cli::terminal`'s, shared with `realtime connect`.
    realtime_cli::terminal::run_to_exit(url, config)
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
