//! The terminal client of `realtime connect` and of the example client: every line of
//! stdin is sent as a text frame, every frame received is printed as one line of stdout
//! (text as it is; binary as one line of JSON when it is MessagePack, else as hex), and
//! connection events go to stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use network_core::{Events, Message, Network, NetworkEvent, SendError};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use ws_client::{Client, ClientConfig, ClientEvent};

use crate::Error;

/// How long the end of stdin may wait for the queue to be written.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Runs the client on a runtime of its own and returns the process's exit status: 0 after
/// stdin ended and every line was written, 1 when the client gave up (retries exhausted,
/// the server closed for good) or could not write its queue within 10 s.
pub fn run_to_exit(url: String, config: ClientConfig) -> ExitCode {
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
            eprintln!("error: {}", chain(&err));
            ExitCode::FAILURE
        }
    };
    // tokio reads stdin with a blocking read on a thread of its own that cannot be
    // cancelled: a plain runtime drop would wait for the next line (or end) of stdin
    // before exiting, e.g. after `retries exhausted`. Nothing is left to finish here.
    runtime.shutdown_background();
    code
}

/// Connects to `url` and runs until stdin ends (then flushes and closes) or the client
/// gives up; see [`run_to_exit`] for the exit status.
pub async fn run(url: String, config: ClientConfig) -> Result<ExitCode, Error> {
    // Taken right after `connect`, the two streams miss nothing: the client keeps its
    // events, and the first lifecycle receiver its lifecycle, from the start.
    let client = Client::connect(url.as_str(), config)?;
    let mut lifecycle = client.lifecycle();
    let mut events = client.events().ok_or(Error::EventsTaken)?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();

    // Interactive phase: stdin to the server, frames to stdout, events to stderr.
    loop {
        tokio::select! {
            line = lines.next_line() => match line.map_err(Error::Stdin)? {
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
    events: &mut Events,
    lifecycle: &mut Receiver<ClientEvent>,
    url: &str,
    line: String,
) -> Result<bool, Error> {
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
            Err(err) => return Err(Error::Send(err)),
        }
    }
}

fn print_event(event: NetworkEvent) {
    let NetworkEvent::Message { message, .. } = event else {
        return;
    };
    // A closed stdout (`| head`) is not worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{}", display(&message));
}

/// The line printed for a received frame: text as it is; binary as one line of JSON when
/// it is exactly one MessagePack value, else as hex.
pub fn display(message: &Message) -> String {
    match message {
        Message::Text(text) => text.to_string(),
        Message::Binary(bytes) => msgpack_to_json(bytes).unwrap_or_else(|| hex(bytes)),
    }
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

/// `err` and its sources, joined by `: `.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_frames_print_as_json_when_msgpack_else_as_hex() {
        let packed = rmp_serde::to_vec(&serde_json::json!({"a": [1, "b"]})).unwrap();
        assert_eq!(display(&Message::binary(packed)), r#"{"a":[1,"b"]}"#);
        // 0xc1 is never used in MessagePack.
        assert_eq!(display(&Message::binary(vec![0xc1, 0x00])), "c100");
        assert_eq!(display(&Message::text("plain")), "plain");
    }
}
