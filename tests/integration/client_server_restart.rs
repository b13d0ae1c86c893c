//! The Rust client against our server across a server restart: reconnect delays follow
//! the configured schedule, a router restores its server-side state first, and the
//! offline queue arrives afterwards, in order, none lost, none duplicated.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use realtime::network_core::{Adapter, Network, NetworkEvent, Router, envelope};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use realtime::ws_server::{Server, ServerConfig};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// Client side: joins room "lobby" on every (re)connect.
struct JoinLobby;

impl<N: Network> Router<N> for JoinLobby {
    fn name(&self) -> &str {
        "lobby"
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        if let NetworkEvent::Added(connection) = event {
            connection.send(envelope::json("lobby", "join").unwrap()).unwrap();
        }
    }
}

/// Server side: puts the sender in room "lobby" and notes it on `seen`.
struct LobbyRooms {
    seen: mpsc::Sender<String>,
}

impl Router<Server> for LobbyRooms {
    fn name(&self) -> &str {
        "lobby"
    }

    async fn on_event(&mut self, server: &Server, event: NetworkEvent) {
        if let NetworkEvent::Message { connection, message } = event {
            let body: String = envelope::decode("lobby", &message).unwrap();
            server.adapter().join(connection.id(), "lobby".into()).await.unwrap();
            self.seen.send(format!("router:{body}")).await.unwrap();
        }
    }
}

/// A server on `addr` whose application reports every text frame on `seen`.
async fn start(addr: SocketAddr, seen: mpsc::Sender<String>) -> Server {
    let server = Server::bind(addr, ServerConfig::default()).await.unwrap();
    server.attach(LobbyRooms { seen: seen.clone() }).unwrap();
    let mut events = server.events().unwrap();
    let rooms = server.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Message { connection, message } = event {
                // Application frames must arrive after the router restored the room.
                let in_lobby = rooms.adapter().rooms_of_now(connection.id()).iter().any(|r| &**r == "lobby");
                let text = message.as_text().unwrap().to_owned();
                seen.send(format!("app:{text}:{}", if in_lobby { "in-lobby" } else { "NOT-in-lobby" }))
                    .await
                    .unwrap();
            }
        }
    });
    server
}

async fn next_seen(seen: &mut mpsc::Receiver<String>) -> String {
    within(seen.recv()).await.unwrap()
}

async fn next_lifecycle(events: &mut broadcast::Receiver<ClientEvent>) -> ClientEvent {
    within(events.recv()).await.unwrap()
}

#[tokio::test]
async fn reconnects_on_schedule_restores_then_flushes_in_order() {
    let (seen_tx, mut seen) = mpsc::channel(256);
    let server = start("127.0.0.1:0".parse().unwrap(), seen_tx.clone()).await;
    let addr = server.local_addr().unwrap();

    let (min, max) = (Duration::from_millis(100), Duration::from_millis(400));
    let config = ClientConfig::default()
        .min_reconnection_delay(min)
        .max_reconnection_delay(max)
        .reconnection_delay_grow_factor(2.0);
    let client = Client::connect(format!("ws://{addr}"), config).unwrap();
    let mut lifecycle = client.lifecycle();
    client.attach(JoinLobby).unwrap();
    client.send("before").unwrap();
    assert_eq!(next_seen(&mut seen).await, "router:join");
    assert_eq!(next_seen(&mut seen).await, "app:before:in-lobby");

    // The server goes away (close 1001); the client retries on schedule while it is down.
    server.shutdown().await;
    for i in 0..50 {
        client.send(format!("offline-{i}")).unwrap();
    }
    let mut expected_delay = min;
    let mut attempts = Vec::new();
    loop {
        match next_lifecycle(&mut lifecycle).await {
            ClientEvent::Reconnecting { attempt, delay } => {
                assert_eq!(delay, expected_delay, "attempt {attempt}");
                attempts.push((delay, Instant::now()));
                expected_delay = (expected_delay * 2).min(max);
            }
            ClientEvent::Connecting { attempt } if attempt >= 1 => {
                let (delay, announced) = *attempts.last().unwrap();
                let waited = announced.elapsed();
                // Both instants are when this task *read* the events, not when the client
                // emitted them: a `Reconnecting` read late (a loaded machine) shortens the
                // measured wait by that lag, so allow a few milliseconds of it.
                let read_lag = Duration::from_millis(10);
                assert!(
                    waited + read_lag >= delay,
                    "attempt {attempt} came after {waited:?}, before its delay {delay:?}"
                );
                assert!(waited < delay + Duration::from_millis(300), "attempt {attempt} late: {waited:?}");
                if attempt == 3 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(attempts.iter().map(|(d, _)| d.as_millis()).collect::<Vec<_>>(), vec![100, 200, 400]);

    // Back on the same port: the router's join comes first, then the queue, in order.
    let restarted = start(addr, seen_tx).await;
    assert_eq!(next_seen(&mut seen).await, "router:join");
    for i in 0..50 {
        assert_eq!(next_seen(&mut seen).await, format!("app:offline-{i}:in-lobby"));
    }
    client.send("after").unwrap();
    assert_eq!(next_seen(&mut seen).await, "app:after:in-lobby");
    assert!(seen.try_recv().is_err(), "nothing duplicated");
    client.close().await;
    restarted.shutdown().await;
}
