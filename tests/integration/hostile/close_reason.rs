//! Item 5: a peer closed for a violation sees why (1009 here), even while it is still
//! sending: the server drains its input after the close frame instead of resetting the
//! connection, which could destroy the close frame before the peer read it (1006).

use futures_util::{SinkExt, StreamExt};
use realtime::ws_server::ServerConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_answered_with_1009_every_time() {
    let server = echo_server(ServerConfig::default()).await;
    let url = url(&server);
    for size in [8 << 20, 8 << 20, 24 << 20] {
        let config = WebSocketConfig::default().max_message_size(None).max_frame_size(None);
        let (mut ws, _) =
            within(tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false))
                .await
                .unwrap();
        // The server refuses the frame at its header and closes; the send then finishes
        // only because the server keeps reading.
        let sent = within(ws.send(WsMessage::binary(vec![0u8; size]))).await;
        let frame = close_frame(&mut ws).await;
        assert_eq!(
            frame.as_ref().map(|f| u16::from(f.code)),
            Some(1009),
            "{size} bytes: {frame:?}, send {sent:?}"
        );
        // The whole message was taken (and discarded), not cut off by a reset.
        assert!(sent.is_ok(), "{size} bytes: the send failed: {sent:?}");
        // And the connection ends cleanly after the close handshake.
        match within(ws.next()).await {
            None | Some(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => {}
            other => panic!("{size} bytes: not a clean end: {other:?}"),
        }
    }
}
