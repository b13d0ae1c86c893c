//! permessage-deflate (RFC 7692) as a client, against a raw TCP server (`common::raw`, so
//! that the test controls every byte of the answer and of the frames): the offer, the
//! agreement, compressed messages both ways, pings answered, and what the client refuses:
//! an invalid extension answer (a typed error) and a zip bomb (1009).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use network_core::{CloseCode, Message, Network, NetworkEvent};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use ws_client::{Client, ClientConfig, ClientEvent, Compression, ConnectError, NegotiationError};
use ws_protocol::deflate;
use ws_protocol::frame;

use crate::common::raw::{RawServer, Seen};
use crate::common::{ms, wait_event, within};

/// A JSON-like text of `len` bytes that compresses well.
fn compressible(len: usize) -> String {
    "{\"kind\":\"update\",\"value\":42}".chars().cycle().take(len).collect()
}

#[tokio::test]
async fn compressed_messages_go_both_ways_once_negotiated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ClientConfig::default().compression(Some(Compression::default().min_size(256)));
    let client = Client::connect(format!("ws://{addr}/ws"), config).unwrap();
    let mut events = client.events().unwrap();
    let (mut server, offer) = RawServer::accept(
        &listener,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    )
    .await;
    assert_eq!(offer.as_deref(), Some(deflate::CLIENT_OFFER));
    match within("Added", events.recv()).await.unwrap() {
        NetworkEvent::Added(_) => {}
        other => panic!("expected Added, got {other:?}"),
    }

    // Server to client: a compressed text message in two frames (RSV1 on the first only),
    // and an uncompressed binary one.
    let big = compressible(4096);
    let compressed = deflate::compress(big.as_bytes(), deflate::MAX_WINDOW_BITS).unwrap();
    assert!(compressed.len() < big.len() / 4);
    let (head, tail) = compressed.split_at(compressed.len() / 2);
    server.send(frame::RSV1 | frame::TEXT, head).await;
    server.send(frame::FIN, tail).await;
    server.send(frame::FIN | frame::BINARY, b"plain").await;
    for expected in [Message::text(big.clone()), Message::Binary(Bytes::from_static(b"plain"))] {
        match within("a message", events.recv()).await.unwrap() {
            NetworkEvent::Message { message, .. } => assert_eq!(message, expected),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    // Client to server: at least min_size bytes go compressed, fewer do not.
    client.send(Message::text(big.clone())).unwrap();
    client.send(Message::text("small")).unwrap();
    client.send(Message::Binary(Bytes::from(vec![7u8; 1000]))).unwrap();
    assert_eq!(
        server.next().await,
        Some(Seen::Message { compressed: true, text: true, payload: Bytes::from(big) })
    );
    assert_eq!(
        server.next().await,
        Some(Seen::Message { compressed: false, text: true, payload: Bytes::from_static(b"small") })
    );
    assert_eq!(
        server.next().await,
        Some(Seen::Message { compressed: true, text: false, payload: Bytes::from(vec![7u8; 1000]) })
    );

    // A ping is answered.
    server.send(frame::FIN | frame::PING, b"are you there").await;
    assert_eq!(server.next().await, Some(Seen::Pong(Bytes::from_static(b"are you there"))));

    let closed = tokio::spawn(async move { client.close().await });
    assert_eq!(server.next().await, Some(Seen::Close(Some(1000))));
    server.send(frame::FIN | frame::CLOSE, &1000u16.to_be_bytes()).await;
    within("close", closed).await.unwrap();
}

#[tokio::test]
async fn a_window_asked_by_the_server_is_respected() {
    // Autobahn 13.3: the server asks the client to compress with a 9-bit window.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::connect(format!("ws://{addr}/ws"), ClientConfig::default()).unwrap();
    let (mut server, _) = RawServer::accept(
        &listener,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9",
    )
    .await;
    let payload: String = (0..20_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    client.send(Message::text(payload.clone())).unwrap();
    // The server's inflater takes any window; the client's 9-bit limit is checked by the
    // codec's own tests (deflate::tests). Here: it still round-trips compressed.
    assert_eq!(
        server.next().await,
        Some(Seen::Message { compressed: true, text: true, payload: Bytes::from(payload) })
    );
    drop(client);
}

#[tokio::test]
async fn without_compression_nothing_is_offered_and_nothing_compressed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client =
        Client::connect(format!("ws://{addr}/ws"), ClientConfig::default().compression(None)).unwrap();
    let (mut server, offer) = RawServer::accept(&listener, "").await;
    assert_eq!(offer, None);
    let big = compressible(4096);
    client.send(Message::text(big.clone())).unwrap();
    assert_eq!(
        server.next().await,
        Some(Seen::Message { compressed: false, text: true, payload: Bytes::from(big) })
    );
    drop(client);
}

/// The first `Failed` error of a client whose server answers with `extensions`.
async fn refused_answer(config: ClientConfig, extensions: &'static str) -> ConnectError {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::connect(format!("ws://{addr}/ws"), config.max_retries(Some(0))).unwrap();
    let mut lifecycle = client.lifecycle();
    let (answered_tx, mut answered) = mpsc::channel(1);
    tokio::spawn(async move {
        let (mut server, _) = RawServer::accept(&listener, extensions).await;
        // The client drops the socket without a frame.
        let _ = answered_tx.send(server.next().await).await;
    });
    let error = wait_event(&mut lifecycle, |event| match event {
        ClientEvent::Failed { error, .. } => Some(error.clone()),
        ClientEvent::Open => panic!("the client accepted {extensions:?}"),
        _ => None,
    })
    .await;
    assert_eq!(within("the socket to close", answered.recv()).await, Some(None));
    error
}

#[tokio::test]
async fn an_invalid_extension_answer_is_refused_with_a_typed_error() {
    let cases: [(Option<Compression>, &str, NegotiationError); 4] = [
        (
            Some(Compression::default()),
            "x-webkit-deflate-frame",
            NegotiationError::NotOffered("x-webkit-deflate-frame".into()),
        ),
        (
            Some(Compression::default()),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=7",
            NegotiationError::InvalidParameter("client_max_window_bits=7".into()),
        ),
        // The offer asked for server_no_context_takeover: an answer must confirm it.
        (Some(Compression::default()), "permessage-deflate", NegotiationError::ContextTakeover),
        // Nothing offered, something answered.
        (
            None,
            "permessage-deflate; server_no_context_takeover",
            NegotiationError::NotOffered("permessage-deflate; server_no_context_takeover".into()),
        ),
    ];
    for (compression, answer, expected) in cases {
        let config = ClientConfig::default().compression(compression);
        match refused_answer(config, answer).await {
            ConnectError::Extension(error) => assert_eq!(error, expected, "{answer}"),
            other => panic!("{answer}: expected ConnectError::Extension, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_zip_bomb_is_refused_with_1009() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = ClientConfig::default().max_message_size(64 * 1024).min_reconnection_delay(ms(10));
    let client = Client::connect(format!("ws://{addr}/ws"), config).unwrap();
    let mut lifecycle = client.lifecycle();
    let (mut server, _) = RawServer::accept(
        &listener,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    )
    .await;
    // 4 MiB of zeros, a few kilobytes compressed: far under max_message_size on the wire.
    let bomb = deflate::compress(&vec![0u8; 4 << 20], deflate::MAX_WINDOW_BITS).unwrap();
    assert!(bomb.len() < 64 * 1024);
    server.send(frame::FIN | frame::RSV1 | frame::BINARY, &bomb).await;
    assert_eq!(server.next().await, Some(Seen::Close(Some(1009))));
    server.send(frame::FIN | frame::CLOSE, &1009u16.to_be_bytes()).await;
    let frame = wait_event(&mut lifecycle, |event| match event {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    assert_eq!(frame.code, CloseCode::TOO_BIG);
    drop(client);
}
