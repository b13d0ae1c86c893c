//! On every (re)connect, frames that routers send while handling `Added` reach the server
//! before the offline queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Seen, Server, ms, next_seen, recorder, wait_event};
use network_core::{Message, Network, NetworkEvent, Router};
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent};

/// Re-subscribes on every `Added`.
struct Resubscribe;

impl<N: Network> Router<N> for Resubscribe {
    fn name(&self) -> &str {
        "resubscribe"
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        if let NetworkEvent::Added(connection) = event {
            assert!(network_core::hub::is_restoring(connection.id()));
            connection.send(Message::text("subscribe")).unwrap();
            // Yield so that the socket task could write queued frames now if it were
            // allowed to: it must not.
            tokio::task::yield_now().await;
            connection.send(Message::text("subscribe-2")).unwrap();
        }
    }
}

#[tokio::test]
async fn restore_frames_go_first() {
    let (seen_tx, mut seen) = mpsc::channel(64);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(true, recorder(seen_tx, kick.clone())).await;
    let config = ClientConfig::default().start_closed(true).min_reconnection_delay(ms(10));
    let client = Client::connect(server.url(), config).unwrap();
    let mut events = client.lifecycle();
    client.attach(Resubscribe).unwrap();

    client.send("queued-1").unwrap();
    client.send("queued-2").unwrap();
    client.reconnect();
    for expected in [Seen::Open, Seen::Text("subscribe".into()), Seen::Text("subscribe-2".into())] {
        assert_eq!(next_seen(&mut seen).await, expected);
    }
    assert_eq!(next_seen(&mut seen).await, Seen::Text("queued-1".into()));
    assert_eq!(next_seen(&mut seen).await, Seen::Text("queued-2".into()));

    // Again after a reconnect, with frames queued while down.
    wait_event(&mut events, |e| matches!(e, ClientEvent::Open).then_some(())).await;
    server.set_up(false);
    kick.send((1001, "restart".into())).unwrap();
    wait_event(&mut events, |e| matches!(e, ClientEvent::Closed { .. }).then_some(())).await;
    client.send("queued-3").unwrap();
    wait_event(&mut events, |e| matches!(e, ClientEvent::Failed { .. }).then_some(())).await;
    server.set_up(true);
    for expected in [
        Seen::Open,
        Seen::Text("subscribe".into()),
        Seen::Text("subscribe-2".into()),
        Seen::Text("queued-3".into()),
    ] {
        assert_eq!(next_seen(&mut seen).await, expected);
    }
}
