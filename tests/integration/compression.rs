//! permessage-deflate (RFC 7692) on the server, over real sockets with hand-made frames:
//! what is negotiated for each offer, compressed broadcasts and replies that inflate to
//! what was sent, compressed client messages, and the bounds on what a client may make the
//! server inflate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use realtime::network_core::{Message, Network, NetworkEvent};
use realtime::ws_server::{Compression, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ws_protocol::deflate;

const RSV1: u8 = 0x40;
/// What Chromium and Firefox offer.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A TCP connection to `server` upgraded by hand with `offer` (if any), and the
/// `Sec-WebSocket-Extensions` value of the answer (if any).
async fn upgraded(server: &Server, offer: Option<&str>) -> (TcpStream, Option<String>) {
    let mut stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let extensions = offer.map(|offer| format!("Sec-WebSocket-Extensions: {offer}\r\n")).unwrap_or_default();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extensions}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let answer = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-extensions").then(|| value.trim().to_owned())
    });
    (stream, answer)
}

/// The next server data or close frame, pings skipped: its first byte and payload.
async fn server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    loop {
        let (first, payload) = raw_server_frame(stream).await;
        if first & 0x0F != 0x9 {
            return (first, payload);
        }
    }
}

/// The next data frame's payload as sent (inflated when RSV1 is set), and whether it was
/// compressed.
async fn next_message(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let (first, payload) = within(server_frame(stream)).await;
    assert!(first & 0x0F == 0x1 || first & 0x0F == 0x2, "not a data frame: {first:#x}");
    if first & RSV1 != 0 {
        (deflate::inflate(&payload, 1 << 24, |_| true).unwrap(), true)
    } else {
        (payload, false)
    }
}

/// JSON of about `len` bytes, as an application would broadcast.
fn json(len: usize) -> String {
    let mut text = String::from("[");
    let mut n = 0u32;
    while text.len() < len {
        n += 1;
        text.push_str(&format!(r#"{{"id":{n},"user":"user-{}","status":"online","typing":false}},"#, n % 13));
    }
    text.truncate(len - 1);
    text.push(']');
    text
}

#[tokio::test]
async fn each_offer_gets_the_answer_rfc_7692_asks_for() {
    let server = echo_server(ServerConfig::default()).await;
    let ours = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    for (offer, answer) in [
        (Some(BROWSER_OFFER), Some(ours.to_owned())),
        (Some("permessage-deflate"), Some(ours.to_owned())),
        (
            Some("permessage-deflate; server_max_window_bits=9"),
            Some(format!("{ours}; server_max_window_bits=9")),
        ),
        // Declined: an unknown parameter; then the next offer is taken.
        (Some("permessage-deflate; mystery"), None),
        (
            Some("permessage-deflate; mystery, permessage-deflate; client_max_window_bits=10"),
            Some(ours.to_owned()),
        ),
        (Some("x-webkit-deflate-frame"), None),
        (None, None),
    ] {
        let (_stream, got) = within(upgraded(&server, offer)).await;
        assert_eq!(got, answer, "offer {offer:?}");
    }
    // Off: never negotiated.
    let plain = echo_server(ServerConfig::default().compression(None)).await;
    assert_eq!(within(upgraded(&plain, Some(BROWSER_OFFER))).await.1, None);
}

#[tokio::test]
async fn a_broadcast_reaches_each_member_as_it_negotiated() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let (mut compressing, _) = within(upgraded(&server, Some(BROWSER_OFFER))).await;
    let (mut narrow, _) =
        within(upgraded(&server, Some("permessage-deflate; server_max_window_bits=9"))).await;
    let (mut plain, _) = within(upgraded(&server, None)).await;
    for _ in 0..3 {
        assert!(matches!(next_event(&mut events).await, NetworkEvent::Added(_)));
    }
    let big = Message::text(json(4096));
    let small = Message::text(json(200));
    assert_eq!(server.broadcast_local(&big), 3);
    assert_eq!(server.broadcast_local(&small), 3);
    for (stream, compressed) in [(&mut compressing, true), (&mut narrow, true), (&mut plain, false)] {
        let (payload, was_compressed) = next_message(stream).await;
        assert_eq!(payload, big.payload().to_vec());
        assert_eq!(was_compressed, compressed);
        // Under `min_size` (1 KiB by default): never compressed.
        assert_eq!(next_message(stream).await, (small.payload().to_vec(), false));
    }
}

#[tokio::test]
async fn compressed_client_messages_are_inflated_and_replies_compressed() {
    let server =
        echo_server(ServerConfig::default().compression(Some(Compression::default().min_size(64)))).await;
    let (mut stream, _) = within(upgraded(&server, Some(BROWSER_OFFER))).await;
    let text = json(3000);
    let compressed = deflate::compress(text.as_bytes(), 15).unwrap();
    // Whole, then in three fragments with RSV1 on the first only.
    let third = compressed.len() / 3;
    let fragments = [
        masked_frame(0x80 | RSV1 | 0x1, &compressed),
        masked_frame(RSV1 | 0x1, &compressed[..third]),
        masked_frame(0x00, &compressed[third..2 * third]),
        masked_frame(0x80, &compressed[2 * third..]),
        // Binary, uncompressed, over min_size: the reply is compressed anyway.
        masked_frame(0x82, &[7u8; 100]),
    ]
    .concat();
    stream.write_all(&fragments).await.unwrap();
    assert_eq!(next_message(&mut stream).await, (text.clone().into_bytes(), true));
    assert_eq!(next_message(&mut stream).await, (text.into_bytes(), true));
    assert_eq!(next_message(&mut stream).await, (vec![7u8; 100], true));
}

#[tokio::test]
async fn a_message_that_inflates_past_the_limit_closes_only_its_connection_with_1009() {
    let server = echo_server(ServerConfig::default().max_message_size(64 * 1024)).await;
    let (mut bomb, _) = within(upgraded(&server, Some(BROWSER_OFFER))).await;
    let (mut bystander, _) = within(upgraded(&server, Some(BROWSER_OFFER))).await;
    // 8 MiB of zeros: a few kilobytes on the wire, 128 times the limit inflated.
    let zeros = deflate::compress(&vec![0u8; 8 << 20], 15).unwrap();
    assert!(zeros.len() < 64 * 1024, "{} bytes compressed", zeros.len());
    bomb.write_all(&masked_frame(0x80 | RSV1 | 0x2, &zeros)).await.unwrap();
    let (first, payload) = within(server_frame(&mut bomb)).await;
    assert_eq!(first, 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
    // RSV1 where it means nothing: 1002.
    let (mut confused, _) = within(upgraded(&server, None)).await;
    confused.write_all(&masked_frame(0x80 | RSV1 | 0x1, b"abc")).await.unwrap();
    let (first, payload) = within(server_frame(&mut confused)).await;
    assert_eq!((first, u16::from_be_bytes([payload[0], payload[1]])), (0x88, 1002));
    // Everyone else is still served.
    bystander.write_all(&masked_frame(0x81, b"still here")).await.unwrap();
    assert_eq!(next_message(&mut bystander).await, (b"still here".to_vec(), false));
}
