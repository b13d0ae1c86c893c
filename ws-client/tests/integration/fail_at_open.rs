//! A server that breaks the protocol right after the handshake (Autobahn case 5.12: a
//! continuation frame with nothing to continue, then a text frame, in the same write as
//! the 101 response) makes the client fail the connection at once. The application, taking
//! its events after `connect`, still sees that whole connection: `Added`, then `Removed`
//! with 1006, and its lifecycle ends with `RetriesExhausted`. (Before the hub kept a
//! client's untaken events, such a connection could end before `events()` was taken and
//! its events were discarded: the Autobahn client example waited forever for its `Removed`.)
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

    let config = ClientConfig::default().max_retries(Some(0));
    let client = Client::connect(format!("ws://{addr}/runCase"), config).unwrap();
    let mut lifecycle = client.lifecycle();
    let mut events = client.events().unwrap();

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

/// `connect`, then `events()`, the pattern the docs show, misses nothing: the events of a
/// first connection that opened and closed before `events()` was taken wait for it,
/// within the event queue's capacity, and a client that never takes them never stalls.
mod events_before_taken {
    use futures_util::{SinkExt, StreamExt};
    use network_core::{HubConfig, Message};
    use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
    use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

    use super::*;
    use crate::common::{Server, ServerWs};

    /// A server that sends `texts` and closes with 1000 `bye` right after the handshake.
    async fn send_then_close(texts: usize) -> Server {
        Server::start(true, move |mut ws: ServerWs, _| async move {
            for n in 0..texts {
                let _ = ws.send(WsMessage::text(n.to_string())).await;
            }
            let close = WsCloseFrame { code: WsCloseCode::Normal, reason: Utf8Bytes::from_static("bye") };
            let _ = ws.close(Some(close)).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await
    }

    /// Waits (bounded) until the client's first connection has closed.
    async fn first_connection_closed(client: &Client) {
        let mut lifecycle = client.lifecycle();
        wait_event(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. }).then_some(())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_first_connection_that_closed_before_events_was_taken_is_seen_whole() {
        let server = send_then_close(0).await;
        let client = Client::connect(server.url(), ClientConfig::default().max_retries(Some(0))).unwrap();
        first_connection_closed(&client).await;

        let mut events = client.events().unwrap();
        match within("Added", events.recv()).await.unwrap() {
            NetworkEvent::Added(connection) => assert_eq!(connection.id(), client.connection().id()),
            other => panic!("expected Added, got {other:?}"),
        }
        match within("Removed", events.recv()).await.unwrap() {
            NetworkEvent::Removed { frame, .. } => {
                assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "bye"));
            }
            other => panic!("expected Removed, got {other:?}"),
        }
        within("close", client.close()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn untaken_events_past_the_queue_capacity_are_discarded_without_stalling_the_client() {
        let server = send_then_close(5).await;
        let config =
            ClientConfig::default().max_retries(Some(0)).hub(HubConfig::default().event_queue_capacity(2));
        let client = Client::connect(server.url(), config).unwrap();
        // The socket was read to its close frame although nobody read the full queue.
        first_connection_closed(&client).await;

        let mut events = client.events().unwrap();
        assert!(matches!(events.try_recv(), Some(NetworkEvent::Added(_))));
        match events.try_recv() {
            Some(NetworkEvent::Message { message, .. }) => assert_eq!(message, Message::text("0")),
            other => panic!("expected the first message, got {other:?}"),
        }
        assert!(events.try_recv().is_none(), "the queue kept the first two events only");
        within("close", client.close()).await;
    }
}
