//! A raw TCP WebSocket server for the client's tests: it answers the upgrade with the
//! extensions a test chooses, sends frames byte for byte, and reads the client's frames
//! with ws-protocol's parser (as a server), so that a test sees RSV1, pongs and close codes.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_protocol::deflate;
use ws_protocol::frame::{self, FrameParser, Incoming, Parsed, Role};

use super::within;

/// The server's side of one connection: the socket and the client's frames parsed.
pub struct RawServer {
    tcp: TcpStream,
    parser: FrameParser,
    unparsed: Vec<u8>,
}

/// What the server read of one client frame.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// A data message: compressed (RSV1) or not, and its payload as the application sent it.
    Message {
        compressed: bool,
        text: bool,
        payload: Bytes,
    },
    Pong(Bytes),
    Close(Option<u16>),
}

impl RawServer {
    /// Accepts one connection, reads its upgrade request and answers 101 with `extensions`
    /// as `Sec-WebSocket-Extensions` (none when empty); returns the server and the
    /// request's offer.
    pub async fn accept(listener: &TcpListener, extensions: &str) -> (Self, Option<String>) {
        let (mut tcp, _) = within("a connection", listener.accept()).await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let n = within("the request", tcp.read(&mut buf)).await.unwrap();
            assert!(n > 0, "the client closed before its request ended");
            request.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8(request).unwrap();
        let header = |name: &str| {
            request.lines().find_map(|line| {
                let (found, value) = line.split_once(':')?;
                found.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
            })
        };
        let key = header("sec-websocket-key").expect("a Sec-WebSocket-Key");
        let offer = header("sec-websocket-extensions");
        let mut reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
        );
        if !extensions.is_empty() {
            reply.push_str(&format!("Sec-WebSocket-Extensions: {extensions}\r\n"));
        }
        reply.push_str("\r\n");
        tcp.write_all(reply.as_bytes()).await.unwrap();
        let parser = FrameParser::new(Role::Server, 16 << 20, !extensions.is_empty());
        (Self { tcp, parser, unparsed: Vec::new() }, offer)
    }

    /// Sends one unmasked frame.
    pub async fn send(&mut self, first: u8, payload: &[u8]) {
        let mut bytes = Vec::new();
        frame::encode(&mut bytes, first, payload, None);
        self.tcp.write_all(&bytes).await.unwrap();
    }

    /// Sends one frame masked with `mask`, which no server may do (RFC 6455 5.1).
    pub async fn send_masked(&mut self, first: u8, payload: &[u8], mask: [u8; 4]) {
        let mut bytes = Vec::new();
        frame::encode(&mut bytes, first, payload, Some(mask));
        self.tcp.write_all(&bytes).await.unwrap();
    }

    /// The next frame from the client, its compressed messages inflated; `None` at the end
    /// of the stream.
    pub async fn next(&mut self) -> Option<Seen> {
        loop {
            // A pong is read here, whole, to see its payload (the parser drops it); the
            // parser is idle between frames, so the bytes can be taken before it sees them.
            let pong = match self.unparsed[..] {
                [0x8A, second, ..] => Some(6 + usize::from(second & 0x7F)),
                [0x8A] => Some(usize::MAX),
                _ => None,
            };
            match pong {
                Some(len) if self.unparsed.len() >= len => {
                    let mut payload = self.unparsed[6..len].to_vec();
                    frame::apply_mask(&mut payload, self.unparsed[2..6].try_into().unwrap());
                    self.unparsed.drain(..len);
                    return Some(Seen::Pong(Bytes::from(payload)));
                }
                Some(_) => {}
                None => {
                    let (taken, parsed) = self.parser.parse(&self.unparsed);
                    self.unparsed.drain(..taken);
                    let parsed = parsed.unwrap();
                    let complete = parsed.is_some();
                    if let Some(seen) = self.seen(parsed) {
                        return Some(seen);
                    }
                    if complete {
                        // A keep-alive ping: more may follow in what was read.
                        continue;
                    }
                }
            }
            let mut buf = [0u8; 8192];
            let n = within("a frame from the client", self.tcp.read(&mut buf)).await.unwrap();
            if n == 0 {
                return None;
            }
            self.unparsed.extend_from_slice(&buf[..n]);
        }
    }

    /// What a parsed frame is, for the tests; `None` for the client's keep-alive pings and
    /// for nothing parsed yet.
    fn seen(&self, parsed: Option<Parsed>) -> Option<Seen> {
        Some(match parsed? {
            Parsed::Compressed { text, payload } => {
                let inflated = deflate::inflate(&payload, 16 << 20, |_| true).unwrap();
                Seen::Message { compressed: true, text, payload: Bytes::from(inflated) }
            }
            Parsed::Ready(Incoming::Text(payload)) => {
                Seen::Message { compressed: false, text: true, payload }
            }
            Parsed::Ready(Incoming::Binary(payload)) => {
                Seen::Message { compressed: false, text: false, payload }
            }
            Parsed::Ready(Incoming::Close(close)) => Seen::Close(close.map(|close| close.code.0)),
            Parsed::Ready(Incoming::Ping(_) | Incoming::Pong) => return None,
        })
    }
}
