//! A client that stops reading fills its bounded outgoing queue; it is dropped as a slow
//! consumer (Removed with 1008) instead of growing memory or skipping messages, and the
//! others keep being served.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{CloseCode, Message, NetworkEvent, SendError};
use realtime::ws_server::ServerConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn a_full_queue_drops_only_the_slow_consumer() {
    let (server, mut events) =
        server(ServerConfig::default().outgoing_queue_size(256 * 1024).max_outgoing_queue_size(1 << 20))
            .await;
    let _slow = raw_client(&url(&server)).await; // never reads
    let NetworkEvent::Added(slow) = next_event(&mut events).await else { panic!() };
    let mut fast = raw_client(&url(&server)).await;
    let NetworkEvent::Added(fast_connection) = next_event(&mut events).await else { panic!() };

    let chunk = Message::binary(vec![0u8; 64 * 1024]);
    // The kernel's socket buffers absorb a few MiB first; 100 MiB is far past any of them.
    let mut outcome = None;
    for _ in 0..1600 {
        if let Err(error) = slow.send(chunk.clone()) {
            outcome = Some(error);
            break;
        }
    }
    assert!(matches!(outcome, Some(SendError::Full(_))), "expected Full, got {outcome:?}");
    assert!(matches!(slow.send(chunk.clone()), Err(SendError::Closed(_))));
    let NetworkEvent::Removed { connection, frame } = next_event(&mut events).await else { panic!() };
    assert_eq!(connection.id(), slow.id());
    assert_eq!(frame.code, CloseCode::POLICY);

    fast.send(WsMessage::text("ping")).await.unwrap();
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    fast_connection.send(message).unwrap();
    assert_eq!(next_data(&mut fast).await, WsMessage::text("ping"));
}
