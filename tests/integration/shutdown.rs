//! Graceful shutdown: every client gets a close frame 1001, the server waits for them and
//! stops accepting.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use futures_util::StreamExt;
use realtime::network_core::{CloseCode, NetworkEvent};
use realtime::ws_server::ServerConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

#[tokio::test]
async fn shutdown_sends_1001_to_every_client_and_waits_for_them() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let url = url(&server);
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(raw_client(&url).await);
    }
    for _ in 0..20 {
        let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    }
    // Clients read until their stream ends, which also answers the close frame.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut close = None;
                while let Some(Ok(message)) = ws.next().await {
                    if let WsMessage::Close(frame) = message {
                        close = frame;
                    }
                }
                close
            })
        })
        .collect();
    within(server.shutdown()).await;
    for reader in readers {
        let frame = within(reader).await.unwrap().expect("a close frame");
        assert_eq!(frame.code, WsCloseCode::Away);
    }
    let mut removed = 0;
    while let Some(event) = events.try_recv() {
        if let NetworkEvent::Removed { frame, .. } = event {
            assert_eq!(frame.code, CloseCode::GOING_AWAY);
            removed += 1;
        }
    }
    assert_eq!(removed, 20);
    // No longer accepting.
    let refused = tokio::time::timeout(Duration::from_secs(2), tokio_tungstenite::connect_async(url)).await;
    assert!(!matches!(refused, Ok(Ok(_))), "a connection was accepted after shutdown");
}

#[tokio::test]
async fn shutdown_drops_clients_that_never_answer_after_the_deadline() {
    let config = ServerConfig::default()
        .shutdown_timeout(Duration::from_millis(300))
        .close_timeout(Duration::from_secs(30));
    let (server, mut events) = server(config).await;
    // Never polled: it cannot answer the close frame.
    let _mute = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    within(server.shutdown()).await;
    let NetworkEvent::Removed { .. } = next_event(&mut events).await else { panic!() };
}
