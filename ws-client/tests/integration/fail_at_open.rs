//! A server that breaks the protocol right after the handshake (Autobahn case 5.12: a
//! continuation frame with nothing to continue, then a text frame, in the same write as
//! the 101 response) makes the client fail the connection at once. A client started
//! closed, whose events were taken before `reconnect()`, still sees that whole connection:
//! `Added`, then `Removed` with 1006, and its lifecycle ends with `RetriesExhausted`.
//! (Taken after a plain `connect`, the events of such a connection may already be
//! discarded: the Autobahn client example waited forever for its `Removed` that way.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{next_event, wait_event, within};
use network_core::{CloseCode, Network, NetworkEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use ws_client::{Client, ClientConfig, ClientEvent};

/// An unmasked server frame with a payload shorter than 126 bytes.
fn frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first_byte, u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(payload);
    frame
}

/// Reads the upgrade request up to its blank line and returns its `Sec-WebSocket-Key`.
async fn read_key(tcp: &mut TcpStream) -> String {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before its request ended");
        request.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8(request).unwrap();
    request
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key header")
}

// Multi-threaded, as in the example: the socket task runs beside the test's own task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_error_at_open_is_added_then_removed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended_tx, ended) = oneshot::channel();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let key = read_key(&mut tcp).await;
        let mut reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        reply.extend(frame(0x00, b"non-continuation payload"));
        reply.extend(frame(0x81, b"Hello, world!"));
        tcp.write_all(&reply).await.unwrap();
        // The server never closes: the client must end the connection by itself.
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
        let _ = ended_tx.send(());
    });

    let config = ClientConfig::default().start_closed(true).max_retries(Some(0));
    let client = Client::connect(format!("ws://{addr}/runCase"), config).unwrap();
    let mut lifecycle = client.lifecycle();
    let mut events = client.events().unwrap();
    client.reconnect();

    match within("Added", events.recv()).await.unwrap() {
        NetworkEvent::Added(connection) => assert_eq!(connection.id(), client.connection().id()),
        other => panic!("expected Added, got {other:?}"),
    }
    match within("Removed", events.recv()).await.unwrap() {
        NetworkEvent::Removed { frame, .. } => assert_eq!(frame.code, CloseCode::ABNORMAL),
        other => panic!("expected Removed, got {other:?}"),
    }
    within("the client to drop the socket", ended).await.unwrap();

    assert!(matches!(next_event(&mut lifecycle).await, ClientEvent::Connecting { attempt: 0 }));
    assert!(matches!(next_event(&mut lifecycle).await, ClientEvent::Open));
    let frame = wait_event(&mut lifecycle, |event| match event {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    assert_eq!(frame.code, CloseCode::ABNORMAL);
    assert!(matches!(next_event(&mut lifecycle).await, ClientEvent::RetriesExhausted));

    within("close", client.close()).await;
    assert!(events.try_recv().is_none(), "nothing after Removed: the client never reconnected");
}
