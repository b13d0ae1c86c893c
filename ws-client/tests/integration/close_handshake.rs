//! Frames flow both ways through the hub in order (`Added`, messages, `Removed`), and
//! `close_with` sends its close frame, waits for the server's, and closes for good.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{Handshake, Server, ServerWs, within};
use futures_util::{SinkExt, StreamExt};
use network_core::{CloseCode, Message, Network, NetworkEvent, SendError};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use ws_client::{Client, ClientConfig};

#[tokio::test]
async fn echo_then_close() {
    let (closes_tx, mut closes) = mpsc::channel(4);
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let server = Server::start(true, move |mut ws: ServerWs, handshake: Handshake| {
        let closes = closes_tx.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            assert_eq!(handshake.uri, "/ws");
            while let Some(Ok(frame)) = ws.next().await {
                match frame {
                    WsMessage::Close(frame) => {
                        let frame = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        let _ = closes.send(frame).await;
                    }
                    WsMessage::Text(text) if text.as_str() == "slow" => {
                        // Answers late, typically after the client has sent its close
                        // frame (which this server reads only afterwards): the client
                        // still delivers the answer.
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        let _ = ws.send(WsMessage::text("last words")).await;
                    }
                    frame if frame.is_text() || frame.is_binary() => {
                        let _ = ws.send(frame).await;
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let client = Client::connect(server.url(), ClientConfig::default()).unwrap();
    assert_eq!(client.connection().meta().path, "/ws");
    let mut events = client.events().unwrap();
    assert!(client.events().is_none(), "events are taken once");

    client.send("hello").unwrap();
    client.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    match within("Added", events.recv()).await.unwrap() {
        NetworkEvent::Added(connection) => assert_eq!(connection.id(), client.connection().id()),
        other => panic!("expected Added, got {other:?}"),
    }
    for expected in [Message::text("hello"), Message::binary(vec![1u8, 2, 3])] {
        match within("an echo", events.recv()).await.unwrap() {
            NetworkEvent::Message { message, .. } => assert_eq!(message, expected),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    client.send("slow").unwrap();
    within("flush", client.flush()).await.unwrap();
    within("close", client.close_with(CloseCode(4000), "bye")).await;
    assert!(client.is_closed());
    assert_eq!(within("the server", closes.recv()).await.unwrap(), Some((4000, "bye".into())));
    match within("the last words", events.recv()).await.unwrap() {
        NetworkEvent::Message { message, .. } => assert_eq!(message, Message::text("last words")),
        other => panic!("expected the last words, got {other:?}"),
    }
    match within("Removed", events.recv()).await.unwrap() {
        NetworkEvent::Removed { frame, .. } => assert_eq!(frame.code, CloseCode(4000)),
        other => panic!("expected Removed, got {other:?}"),
    }
    assert_eq!(within("closed", client.closed()).await.code, CloseCode(4000));
    assert_eq!(within("connection closed", client.connection().closed()).await.code, CloseCode(4000));
    assert!(matches!(client.send("late"), Err(SendError::Closed(_))));
    assert!(matches!(client.connection().send(Message::text("late")), Err(SendError::Closed(_))));
    assert_eq!(connections.load(Ordering::SeqCst), 1, "no reconnect after close");
}
