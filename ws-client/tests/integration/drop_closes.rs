//! Dropping the last application handle closes the client with 1001, even with a router
//! attached (routers' handles do not keep it open), and everything it held is released.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Seen, Server, next_seen, recorder, wait_event, within};
use network_core::{CloseCode, Network, NetworkEvent, Router};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent};

/// Keeps its network handle and reports `Removed`.
struct Watcher {
    removed: mpsc::Sender<CloseCode>,
}

impl<N: Network> Router<N> for Watcher {
    fn name(&self) -> &str {
        "watcher"
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        if let NetworkEvent::Removed { frame, .. } = event {
            let _ = self.removed.send(frame.code).await;
        }
    }
}

#[tokio::test]
async fn dropping_the_last_handle_closes() {
    let (seen_tx, mut seen) = mpsc::channel(64);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(true, recorder(seen_tx, kick)).await;
    let client = Client::connect(server.url(), ClientConfig::default()).unwrap();
    let (removed_tx, mut removed) = mpsc::channel(4);
    client.attach(Watcher { removed: removed_tx }).unwrap();
    let mut events = client.lifecycle();
    wait_event(&mut events, |e| matches!(e, ClientEvent::Open).then_some(())).await;
    assert_eq!(next_seen(&mut seen).await, Seen::Open);

    let copy = client.clone();
    drop(client);
    assert!(copy.is_open(), "a clone keeps the client open");
    drop(copy);

    assert_eq!(next_seen(&mut seen).await, Seen::Close(Some((1001, "client dropped".into()))));
    assert_eq!(within("Removed", removed.recv()).await, Some(CloseCode::GOING_AWAY));
    // Every sender of lifecycle events is gone once the task, the router and the handles
    // are: nothing keeps the client alive.
    loop {
        match within("the end of the lifecycle stream", events.recv()).await {
            Err(RecvError::Closed) => break,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
        }
    }
}
