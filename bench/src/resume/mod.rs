//! `bench resume`: session resume (issue 14, PROTOCOL.md section 9) of many clients after
//! a proxy reset, against the same clients reconnecting fresh, in the same run; and the
//! server memory held per idle session, attached and detached.
//!
//! ```text
//! cargo run --release -p bench -- resume run [--clients 5000] [--missed 100] [--runs 3]
//!     [--modes plain,resume] [--reconnect-delay default|MS]
//! bench resume serve [--listen 127.0.0.1:0]
//! bench resume load --url ws://ADDR --server-pid PID --mode resume|plain [--clients N]
//!     [--missed M] [--reconnect-delay default|MS]
//! bench resume --help
//! ```
//!
//! # Method
//!
//! `run` starts, per run and per mode (plain first, then resume), a fresh server (`serve`)
//! pinned to CPU 0 and the load generator (`load`) pinned to CPU 1 (`taskset`; without it
//! both run unpinned, and it says so), with the soft file limit raised to the hard one
//! (`prlimit`). Both run one tokio worker (current-thread runtime). The load generator
//! drives the run and reads the server's `VmRSS` (`/proc/PID/status`, settled as in the
//! idle-memory scenario of `bench run`) and CPU time (`/proc/PID/stat`) itself; `run`
//! prints each run's JSON on stderr and the medians as Markdown tables with the ratio
//! resume/plain.
//!
//! The server is `ws_server::Server` with its defaults (sessions on: `resume_window` 2
//! minutes, `max_replay_size` 1 MiB), without a rate limit. It puts every connection in
//! one room and sends it `hello` on `Added`. A control connection (path `/control`, not
//! proxied) asks it to broadcast M numbered 64-byte frames to the room (`burst M`); it
//! answers `sent M` once every broadcast went out.
//!
//! The load generator starts a `testkit::FaultProxy` in its own process (so the proxy's
//! memory is not the server's) and N `ws_client::Client`s through it (`ClientConfig`
//! defaults, `resume(true)` in mode `resume`), 100 at a time, each counted as connected
//! once its `hello` arrived (the server has added it to the room). Then:
//!
//! 1. **Memory, attached.** Server RSS before any client and with the N idle clients:
//!    bytes per idle connection (plain) or per idle attached session (resume).
//! 2. **Memory, detached** (resume only). The proxy refuses new connections
//!    (`Admission::Refuse`) and resets every connection: the N sessions are detached and
//!    cannot come back. The allocator keeps what their sockets freed, so RSS does not
//!    fall; instead N new resumable clients connect straight to the server and take that
//!    memory over, and RSS grows by what the detached sessions still hold: bytes per
//!    detached session = (RSS with N detached + N attached - RSS with N attached) / N.
//!    Both are fresh sessions that got one frame, so the two states differ only by the
//!    detached sessions' lost sockets. The new clients then close, the proxy admits again,
//!    and the detached sessions resume (the time it took is reported); the run goes on
//!    once they have been up 6 s (past the client's `min_uptime`, so that their retry
//!    count starts over).
//! 3. **Outage.** `FaultProxy::reset_all` resets every connection (RST both ways). Once
//!    every client saw its link close, the control connection asks for the burst: M frames
//!    reach each session's replay buffer (resume) or are lost (plain) while the clients
//!    wait their reconnection delay (`ClientConfig` default: 1-5 s drawn once per client;
//!    `--reconnect-delay MS` makes it exactly MS for all, a herd).
//! 4. **Recovery.** A client is back when (resume) it saw `ClientEvent::Resumed` and
//!    received the M frames, each exactly once and in order, or (plain) its `hello` came
//!    again (a new connection, added to the room: restored). Per client, the time from the
//!    reset and from its reconnection attempt (its first `Connecting` after the reset) to
//!    being back; the time until all are back; the server CPU from reset to all back, and
//!    how long the server was ready to run but waited for its CPU (`/proc/PID/schedstat`:
//!    other work on the machine). After all are back the counts are read 500 ms later, so
//!    a late duplicate would show: frames delivered against N x M, frames out of sequence
//!    (a duplicate, a loss or a reordering each count), clients short of M, `Reset` events
//!    (a refused resume) and new connections (a second `hello`: every plain client has
//!    one, a resumed session none). Plain reports the frames of the burst it received (the
//!    rest is lost).
//!
//! The load generator prints `connected` after set-up and one JSON line of results.
//! Every wait has a deadline; children are killed on every path.

mod driver;
mod load;
mod serve;

use crate::features::say;
use crate::{Args, BoxError};

/// The path of the load generator's control connection.
const CONTROL_PATH: &str = "/control";
/// What the server sends each connection on `Added`.
const HELLO: &str = "hello";
/// Padding of a burst frame, up to 64 bytes of text.
const PAD: &str = "................................................................";
/// The length of a burst frame's text.
const FRAME_LEN: usize = 64;

/// The control request for a burst of `count` frames.
fn burst_request(count: u64) -> String {
    format!("burst {count}")
}

/// The server's answer once a burst of `count` frames went out.
fn burst_done(count: u64) -> String {
    format!("sent {count}")
}

/// Frame `seq` of a burst: `m SEQ ....` padded to [`FRAME_LEN`] bytes.
fn burst_frame(seq: u64) -> String {
    let head = format!("m {seq} ");
    let pad = FRAME_LEN.saturating_sub(head.len());
    format!("{head}{}", &PAD[..pad.min(PAD.len())])
}

/// The sequence number of a burst frame; `None` for any other text.
fn burst_seq(text: &str) -> Option<u64> {
    text.strip_prefix("m ")?.split(' ').next()?.parse().ok()
}

/// How the clients reconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `ClientConfig::resume(true)`: the session resumes.
    Resume,
    /// Without resume: a fresh connection, restored by the server's `Added`.
    Plain,
}

impl Mode {
    /// Both, in the order `run` measures them.
    const ALL: [Self; 2] = [Self::Plain, Self::Resume];

    fn name(self) -> &'static str {
        match self {
            Self::Resume => "resume",
            Self::Plain => "plain",
        }
    }

    fn parse(name: &str) -> Result<Self, BoxError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.name() == name)
            .ok_or_else(|| format!("unknown mode {name} (resume, plain)").into())
    }
}

const USAGE: &str = "usage: bench resume run [--clients N] [--missed M] [--runs R] [--modes plain,resume] [--reconnect-delay default|MS]
       bench resume serve [--listen 127.0.0.1:0]
       bench resume load --url ws://ADDR --server-pid PID --mode resume|plain [--clients N] [--missed M] [--reconnect-delay default|MS]

Resume of N clients (default 5000) after a proxy reset while the server sends each M frames
(default 100), against the same clients reconnecting without resume; server memory per idle
connection, per idle attached session and per detached session. `run` runs both modes R
times (default 3) and prints the medians; see bench/src/resume/mod.rs and docs/BENCHMARKS.md.

  --clients N            clients through the proxy (default 5000)
  --missed M             frames the server sends each session during the outage (default 100)
  --runs R               runs of each mode; medians shown (default 3)
  --modes LIST           which modes, comma-separated (default plain,resume)
  --reconnect-delay D    `default`: the client's own (1-5 s drawn once per client);
                         MS: exactly MS milliseconds for every client (a herd)";

pub(crate) fn main(argv: &[String]) -> Result<(), BoxError> {
    if crate::wants_help(argv) {
        println!("{USAGE}");
        return Ok(());
    }
    let Some((role, rest)) = argv.split_first() else {
        return Err(USAGE.into());
    };
    let args = Args::parse(rest)?;
    match role.as_str() {
        "run" => driver::main(&args),
        "serve" => serve::main(&args),
        "load" => load::main(&args),
        _ => Err(USAGE.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_frames_are_64_bytes_and_carry_their_number() {
        for seq in [1, 42, 1_000_000] {
            let frame = burst_frame(seq);
            assert_eq!(frame.len(), FRAME_LEN);
            assert_eq!(burst_seq(&frame), Some(seq));
        }
        assert_eq!(burst_seq(HELLO), None);
        assert_eq!(burst_seq("m x"), None);
    }
}
