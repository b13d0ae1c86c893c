//! `bench load --protocol socketio`: the load generator speaking Engine.IO v4 / Socket.IO v5
//! over WebSocket, for the socket.io (`bench/node/socketio.js`) and socketioxide
//! (`bench/socketioxide`) peers.
//!
//! Each connection opens `ws://ADDR/socket.io/?EIO=4&transport=websocket&role=ROLE`, reads
//! the open packet `0{"sid":...,"pingInterval":...}`, connects to the namespace `/` with `40`
//! and waits for the server's `40{"sid":...}`; from then on it answers every server ping `2`
//! with `3`. `role=pub` marks the fan-out publisher (the servers read it from the handshake
//! query); every other connection has `role=sub` and is joined to the room by the server.
//!
//! - echo: each connection keeps K events `42["m",PAYLOAD]` in flight, PAYLOAD being the
//!   64-byte JSON object of the ws protocol's echo; any event back completes the oldest.
//! - fan-out: the publisher sends `42["m",SEQ]` and every member receives the same frame
//!   from the server's `socket.to(room).emit("m", seq)`; the sequence number drives the same
//!   completion counters, window and delivery check as the ws protocol's binary triggers.
//! - memory: N connections that completed the namespace connect, held idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::{
    ECHO_PAYLOAD, IDLE_READ_BUFFER, LOAD_READ_BUFFER, LoadState, MEMORY_HOLD, Ws, connect_all_then,
    echo_again, fill_echo_window, open_window, say,
};
use crate::BoxError;

/// The event name every scenario uses.
const EVENT: &str = "m";

/// Why a text frame is not the Engine.IO / Socket.IO packet the load expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PacketError {
    /// An empty text frame: Engine.IO has no empty packet.
    #[error("empty Engine.IO packet")]
    Empty,
    /// The first character is not an Engine.IO packet type (`0` to `6`).
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownType(char),
    /// The open packet's JSON lacks a field or is not JSON.
    #[error("malformed open packet: {0}")]
    Open(String),
    /// A message packet (`4`) without a Socket.IO packet type (`0` to `6`) after it.
    #[error("malformed Socket.IO packet")]
    SocketIo,
    /// An event that is not `["m",SEQ]` with SEQ an unsigned integer.
    #[error("not a sequence event: {0:?}")]
    NotSequence(String),
}

/// The server's handshake (the JSON of the open packet), the fields the load uses.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Open {
    /// The Engine.IO session id.
    pub(crate) sid: String,
    /// How often the server pings, in milliseconds.
    pub(crate) ping_interval: u64,
}

/// One Engine.IO v4 packet of a text frame (the load never sees binary packets).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    /// `0{...}`: the handshake, first frame of every connection.
    Open(Open),
    /// `1`: the server closes the session.
    Close,
    /// `2`: the server's heartbeat, to answer with `3`.
    Ping,
    /// `3`: an answer to a ping (the load never pings, so never expected).
    Pong,
    /// `4` + a Socket.IO packet.
    Message(SocketIo<'a>),
    /// `5` and `6`: transport upgrade and no-op (polling only).
    Other,
}

/// The Socket.IO v5 packet inside an Engine.IO message, on the namespace `/` (the only one
/// the load connects to, so no namespace prefix is parsed).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SocketIo<'a> {
    /// `0{"sid":...}`: the namespace connect succeeded.
    Connect,
    /// `1`: the server disconnected the socket from the namespace.
    Disconnect,
    /// `2[...]` (an ack id may come before the array): an event; the JSON array.
    Event(&'a str),
    /// `4{...}`: the namespace connect was refused.
    ConnectError(&'a str),
    /// Acks and binary packets (`3`, `5`, `6`): never sent to the load.
    Other,
}

/// Parses one text frame as an Engine.IO packet.
pub(crate) fn parse(frame: &str) -> Result<Packet<'_>, PacketError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(PacketError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => Packet::Open(serde_json::from_str(rest).map_err(|e| PacketError::Open(e.to_string()))?),
        '1' => Packet::Close,
        '2' => Packet::Ping,
        '3' => Packet::Pong,
        '4' => Packet::Message(parse_socketio(rest)?),
        '5' | '6' => Packet::Other,
        other => return Err(PacketError::UnknownType(other)),
    })
}

fn parse_socketio(packet: &str) -> Result<SocketIo<'_>, PacketError> {
    let kind = packet.chars().next().ok_or(PacketError::SocketIo)?;
    let rest = &packet[kind.len_utf8()..];
    Ok(match kind {
        '0' => SocketIo::Connect,
        '1' => SocketIo::Disconnect,
        // An ack id, if any, is the digits before the array.
        '2' => SocketIo::Event(rest.trim_start_matches(|c: char| c.is_ascii_digit())),
        '4' => SocketIo::ConnectError(rest),
        '3' | '5' | '6' => SocketIo::Other,
        _ => return Err(PacketError::SocketIo),
    })
}

/// The sequence number of the event array `["m",SEQ]`, read without a JSON parser: the load
/// reads hundreds of thousands of them per second on one core.
pub(crate) fn event_sequence(event: &str) -> Result<u64, PacketError> {
    event
        .strip_prefix(r#"[""#)
        .and_then(|rest| rest.strip_prefix(EVENT))
        .and_then(|rest| rest.strip_prefix(r#"","#))
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| PacketError::NotSequence(event.chars().take(64).collect()))
}

/// The frame of event `m` with `data` (JSON text).
fn event_frame(data: &str) -> Message {
    Message::text(format!(r#"42["{EVENT}",{data}]"#))
}

/// The Engine.IO URL of the server at `url` (`ws://ADDR`) for a connection with `role`.
fn endpoint(url: &str, role: &str) -> String {
    format!("{url}/socket.io/?EIO=4&transport=websocket&role={role}")
}

/// What a connection does with a frame that is not its business: answers pings.
enum Read<'a> {
    /// An event's JSON array.
    Event(&'a str),
    /// A ping (answered), a binary frame or a packet the load ignores.
    Nothing,
    /// The session or the socket ended.
    End,
}

/// Classifies `message`, answering a ping with a pong on `ws`.
async fn read<'a>(ws: &mut Ws, message: &'a Message) -> Read<'a> {
    let Message::Text(text) = message else {
        return if message.is_close() { Read::End } else { Read::Nothing };
    };
    match parse(text.as_str()) {
        Ok(Packet::Message(SocketIo::Event(event))) => Read::Event(event),
        Ok(Packet::Ping) => match ws.send(Message::text("3")).await {
            Ok(()) => Read::Nothing,
            Err(_) => Read::End,
        },
        Ok(Packet::Close | Packet::Message(SocketIo::Disconnect)) => Read::End,
        Ok(_) => Read::Nothing,
        Err(_) => Read::Nothing,
    }
}

/// The Engine.IO open and the Socket.IO namespace connect on a fresh WebSocket.
async fn handshake(mut ws: Ws) -> Result<Ws, BoxError> {
    let first = ws.next().await.ok_or("closed before the open packet")??;
    let open = match parse(first.to_text()?)? {
        Packet::Open(open) => open,
        other => return Err(format!("expected the open packet, got {other:?}").into()),
    };
    ws.send(Message::text("40")).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        match parse(message.to_text()?)? {
            Packet::Message(SocketIo::Connect) => return Ok(ws),
            Packet::Ping => ws.send(Message::text("3")).await?,
            Packet::Message(SocketIo::ConnectError(why)) => {
                let Open { sid, ping_interval } = open;
                return Err(format!(
                    "session {sid} (pings every {ping_interval} ms): namespace connect refused: {why}"
                )
                .into());
            }
            _ => {}
        }
    }
    Err("closed before the namespace connect".into())
}

/// Connects `connections` sockets with `role`, each through the namespace connect.
async fn connect_sockets(
    url: &str,
    role: &str,
    connections: usize,
    read_buffer: usize,
) -> Result<Vec<Ws>, BoxError> {
    connect_all_then(&endpoint(url, role), connections, read_buffer, None, handshake).await
}

/// Starts the echo or fan-out clients of `scenario` against `url`.
pub(super) async fn start(
    scenario: &str,
    url: &str,
    connections: usize,
    in_flight: usize,
    shared: &Arc<LoadState>,
) -> Result<(), BoxError> {
    match scenario {
        "echo" => {
            let frame = event_frame(ECHO_PAYLOAD);
            for ws in connect_sockets(url, "echo", connections, LOAD_READ_BUFFER).await? {
                tokio::spawn(echo_client(ws, frame.clone(), in_flight, shared.clone()));
            }
        }
        "fanout" => {
            let members = connect_sockets(url, "sub", connections, LOAD_READ_BUFFER).await?;
            for (index, ws) in members.into_iter().enumerate() {
                tokio::spawn(subscriber(ws, index, connections as u64, shared.clone()));
            }
            let publisher_ws = connect_sockets(url, "pub", 1, LOAD_READ_BUFFER).await?;
            open_window(shared, connections, in_flight).await;
            for ws in publisher_ws {
                tokio::spawn(publisher(ws, shared.clone()));
            }
        }
        other => return Err(format!("unknown scenario {other}").into()),
    }
    Ok(())
}

async fn echo_client(mut ws: Ws, frame: Message, in_flight: usize, shared: Arc<LoadState>) {
    if let Some(mut sent) = fill_echo_window(&mut ws, &frame, in_flight).await {
        while let Some(Ok(message)) = ws.next().await {
            match read(&mut ws, &message).await {
                Read::Event(_) => {}
                Read::Nothing => continue,
                Read::End => break,
            }
            if !echo_again(&mut ws, &frame, &mut sent, &shared).await {
                break;
            }
        }
    }
    shared.lost.fetch_add(1, Ordering::Relaxed);
}

async fn subscriber(mut ws: Ws, index: usize, members: u64, shared: Arc<LoadState>) {
    while let Some(Ok(message)) = ws.next().await {
        match read(&mut ws, &message).await {
            Read::Event(event) => {
                if let Ok(seq) = event_sequence(event) {
                    shared.deliver(index, seq, members);
                }
            }
            Read::Nothing => {}
            Read::End => break,
        }
    }
    shared.lost.fetch_add(1, Ordering::Relaxed);
}

/// The fan-out publisher: sends `42["m",SEQ]` whenever the window has room, all that fits in
/// one flush, and answers the server's pings meanwhile (it gets nothing else: the broadcast
/// leaves out its sender).
async fn publisher(mut ws: Ws, shared: Arc<LoadState>) {
    let mut seq: u64 = 0;
    loop {
        let permit = tokio::select! {
            permit = shared.window.acquire() => permit,
            message = ws.next() => match message {
                Some(Ok(message)) => match read(&mut ws, &message).await {
                    Read::End => break,
                    Read::Event(_) | Read::Nothing => continue,
                },
                _ => break,
            },
        };
        let Ok(permit) = permit else { break };
        permit.forget();
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let mut fed = true;
        loop {
            shared.mark_sent(seq);
            if ws.feed(event_frame(&seq.to_string())).await.is_err() {
                fed = false;
                break;
            }
            seq += 1;
            // Everything else the window allows goes in the same flush.
            let Ok(permit) = shared.window.try_acquire() else { break };
            permit.forget();
        }
        if !fed || ws.flush().await.is_err() {
            break;
        }
        shared.sent.store(seq, Ordering::Relaxed);
    }
    shared.lost.fetch_add(1, Ordering::Relaxed);
}

/// The memory scenario's load: `connections` sockets that completed the namespace connect
/// (the server joined each to its room), announced as `connected N` and held, answering
/// pings, until killed or [`MEMORY_HOLD`] has passed.
pub(super) fn memory(url: &str, connections: usize) -> Result<(), BoxError> {
    if connections == 0 {
        return Err("need connections > 0".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let lost = Arc::new(AtomicU64::new(0));
        for mut ws in connect_sockets(url, "sub", connections, IDLE_READ_BUFFER).await? {
            let lost = lost.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = ws.next().await {
                    if let Read::End = read(&mut ws, &message).await {
                        break;
                    }
                }
                lost.fetch_add(1, Ordering::Relaxed);
            });
        }
        say(&format!("connected {connections}"))?;
        tokio::time::sleep(MEMORY_HOLD).await;
        std::process::exit(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_packet_gives_the_session_and_the_ping_interval() {
        let frame = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            parse(frame),
            Ok(Packet::Open(Open { sid: "lv_VI97HAXpY6yYWAAAC".to_owned(), ping_interval: 25000 }))
        );
    }

    #[test]
    fn pings_closes_and_namespace_packets_are_told_apart() {
        assert_eq!(parse("2"), Ok(Packet::Ping));
        assert_eq!(parse("3"), Ok(Packet::Pong));
        assert_eq!(parse("1"), Ok(Packet::Close));
        assert_eq!(parse("6"), Ok(Packet::Other));
        assert_eq!(parse(r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#), Ok(Packet::Message(SocketIo::Connect)));
        assert_eq!(parse("41"), Ok(Packet::Message(SocketIo::Disconnect)));
        assert_eq!(
            parse(r#"44{"message":"Not authorized"}"#),
            Ok(Packet::Message(SocketIo::ConnectError(r#"{"message":"Not authorized"}"#)))
        );
    }

    #[test]
    fn an_event_gives_its_sequence_number() {
        let Ok(Packet::Message(SocketIo::Event(event))) = parse(r#"42["m",12345]"#) else {
            panic!("not an event");
        };
        assert_eq!(event_sequence(event), Ok(12345));
        // With an ack id before the array.
        let Ok(Packet::Message(SocketIo::Event(event))) = parse(r#"4217["m",0]"#) else {
            panic!("not an event");
        };
        assert_eq!(event_sequence(event), Ok(0));
    }

    #[test]
    fn the_frames_the_load_sends_are_what_it_parses() {
        let Message::Text(frame) = event_frame(&u64::MAX.to_string()) else { panic!("not text") };
        let Ok(Packet::Message(SocketIo::Event(event))) = parse(frame.as_str()) else {
            panic!("not an event");
        };
        assert_eq!(event_sequence(event), Ok(u64::MAX));
        let Message::Text(echo) = event_frame(ECHO_PAYLOAD) else { panic!("not text") };
        let echoed: serde_json::Value = serde_json::from_str(&echo.as_str()[2..]).unwrap();
        assert_eq!(echoed[1], serde_json::from_str::<serde_json::Value>(ECHO_PAYLOAD).unwrap());
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        assert_eq!(parse(""), Err(PacketError::Empty));
        assert_eq!(parse("9"), Err(PacketError::UnknownType('9')));
        assert_eq!(parse("é"), Err(PacketError::UnknownType('é')));
        assert!(matches!(parse("0"), Err(PacketError::Open(_))));
        assert!(matches!(parse(r#"0{"sid":1}"#), Err(PacketError::Open(_))));
        assert_eq!(parse("4"), Err(PacketError::SocketIo));
        assert_eq!(parse("4x"), Err(PacketError::SocketIo));
        assert_eq!(parse("4é"), Err(PacketError::SocketIo));
        for event in [
            r#"["m",]"#,
            r#"["m",-1]"#,
            r#"["n",1]"#,
            r#"["m",1"#,
            r#"["m","1"]"#,
            "",
            "[",
            r#"["m",99999999999999999999]"#,
        ] {
            assert!(matches!(event_sequence(event), Err(PacketError::NotSequence(_))), "{event}");
        }
    }
}
