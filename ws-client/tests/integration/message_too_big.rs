//! A frame bigger than `max_message_size` closes the link with 1009, and the client
//! reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Handshake, Server, ServerWs, ms, wait_event, within};
use futures_util::{SinkExt, StreamExt};
use network_core::CloseCode;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use ws_client::{Client, ClientConfig, ClientEvent};

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let (closes_tx, mut closes) = mpsc::channel(4);
    let server = Server::start(true, move |mut ws: ServerWs, _: Handshake| {
        let closes = closes_tx.clone();
        async move {
            let _ = ws.send(WsMessage::binary(vec![0u8; 2048])).await;
            while let Some(Ok(frame)) = ws.next().await {
                if let WsMessage::Close(frame) = frame {
                    let _ = closes.send(frame.map(|f| u16::from(f.code))).await;
                }
            }
        }
    })
    .await;
    let config = ClientConfig::default().max_message_size(1024).min_reconnection_delay(ms(10));
    let client = Client::connect(server.url(), config).unwrap();
    let mut events = client.lifecycle();
    let frame = wait_event(&mut events, |e| match e {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    assert_eq!(frame.code, CloseCode::TOO_BIG);
    assert_eq!(within("the server", closes.recv()).await.unwrap(), Some(1009));
    wait_event(&mut events, |e| matches!(e, ClientEvent::Reconnecting { .. }).then_some(())).await;
}
