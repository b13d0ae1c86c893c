//! What the server targets share: a valid upgrade request, an application that echoes
//! every application frame back, and a client that writes its input in pieces.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use network_core::{Network, NetworkEvent};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use ws_server::Server;

/// A valid upgrade request, so that an input can start at the frame parser.
pub const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Sends every application frame back to its sender, until the server ends.
pub fn spawn_echo(server: &Server) -> tokio::task::JoinHandle<()> {
    let mut events = server.events().expect("events taken once");
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Message { connection, message } = event {
                let _ = connection.send(message);
            }
        }
    })
}

/// Writes `bytes` in writes of `chunk` bytes (0: at once), yielding in between so that
/// frames arrive split across reads, then ends the stream.
pub async fn write_in_pieces(writer: &mut (impl AsyncWrite + Unpin), bytes: &[u8], chunk: usize) {
    let size = if chunk == 0 { bytes.len().max(1) } else { chunk };
    for piece in bytes.chunks(size) {
        if writer.write_all(piece).await.is_err() {
            // The server dropped the stream.
            return;
        }
        tokio::task::yield_now().await;
    }
    // Let the routers and the application answer before the end of the stream closes the
    // connection (on the paused clock this waits until every task is idle).
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _ = writer.shutdown().await;
}
