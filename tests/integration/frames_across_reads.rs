//! The server's own frame reader over real sockets: a frame split across TCP segments, many
//! messages in one segment, and the close codes RFC 6455 allows (1014 included, which
//! tungstenite refused).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use realtime::ws_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A TCP connection to `server`, upgraded by hand.
async fn upgraded(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(UPGRADE).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// The next server frame: its opcode and payload.
async fn server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let (first, payload) = raw_server_frame(stream).await;
    (first & 0x0F, payload)
}

#[tokio::test]
async fn a_message_written_a_byte_at_a_time_is_read_whole() {
    let server = echo_server(ServerConfig::default()).await;
    let mut stream = within(upgraded(&server)).await;
    let text = "héllo, split inside characters €".as_bytes();
    // Two fragments cut inside a character, a ping between them.
    let bytes = [masked_frame(0x01, &text[..2]), masked_frame(0x89, b"ping"), masked_frame(0x80, &text[2..])]
        .concat();
    for byte in bytes {
        stream.write_all(&[byte]).await.unwrap();
        // Spreads the bytes over separate segments, hence separate reads; what the test
        // checks does not depend on it.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(within(server_frame(&mut stream)).await, (0xA, b"ping".to_vec()));
    assert_eq!(within(server_frame(&mut stream)).await, (0x1, text.to_vec()));
}

#[tokio::test]
async fn many_messages_in_one_write_arrive_in_order() {
    let server = echo_server(ServerConfig::default()).await;
    let mut stream = within(upgraded(&server)).await;
    let bytes: Vec<u8> = (0..200).flat_map(|i| masked_frame(0x82, format!("{i}").as_bytes())).collect();
    stream.write_all(&bytes).await.unwrap();
    for i in 0..200 {
        assert_eq!(within(server_frame(&mut stream)).await, (0x2, format!("{i}").into_bytes()));
    }
}

#[tokio::test]
async fn close_codes_the_rfc_allows_are_echoed() {
    let server = echo_server(ServerConfig::default()).await;
    for code in [1000u16, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999] {
        let mut ws = raw_client(&url(&server)).await;
        let close = WsCloseFrame { code: code.into(), reason: "bye".into() };
        within(ws.close(Some(close))).await.unwrap();
        let reply = close_frame(&mut ws).await.expect("a close frame");
        assert_eq!((u16::from(reply.code), reply.reason.as_str()), (code, "bye"), "code {code}");
    }
}

#[tokio::test]
async fn close_codes_the_rfc_forbids_close_with_1002() {
    let server = echo_server(ServerConfig::default()).await;
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let mut stream = within(upgraded(&server)).await;
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        stream.write_all(&masked_frame(0x88, &payload)).await.unwrap();
        let (opcode, reply) = within(server_frame(&mut stream)).await;
        assert_eq!((opcode, u16::from_be_bytes([reply[0], reply[1]])), (0x8, 1002), "code {code}");
    }
}
