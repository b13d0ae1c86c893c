//! The pair's own contract: order, restore, and each fault.

use std::time::Duration;

use network_core::{CloseCode, Events, Message, Network, NetworkEvent, Router, envelope};
use tokio::time::Instant;

use super::{Direction, MemoryClient, MemoryNetwork, Refused};
use crate::within;

/// Sends `"restored"` while handling each `Added`, as a client router restores.
struct Restorer;

impl Router<MemoryNetwork> for Restorer {
    fn name(&self) -> &str {
        "r"
    }

    async fn on_event(&mut self, _network: &MemoryNetwork, event: NetworkEvent) {
        if let NetworkEvent::Added(connection) = event {
            connection.send(envelope::json("r", &"restored").unwrap()).unwrap();
        }
    }
}

fn frame(text: &str) -> Message {
    envelope::json("app", &text).unwrap()
}

/// The next frame's body, skipping `Added` and `Removed`.
async fn next_text(events: &mut Events) -> String {
    loop {
        match within(events.recv()).await.expect("events ended") {
            NetworkEvent::Message { message, .. } => {
                let router = envelope::router_name(&message).unwrap().to_owned();
                return envelope::decode::<String>(&router, &message).unwrap();
            }
            _ => continue,
        }
    }
}

fn pair() -> (MemoryNetwork, Events, MemoryClient) {
    let server = MemoryNetwork::new();
    let events = server.events().unwrap();
    let client = MemoryClient::new(&server);
    (server, events, client)
}

#[tokio::test(start_paused = true)]
async fn routers_restore_before_the_offline_queue_flows_and_the_id_stays() {
    let (server, mut events, client) = pair();
    client.network().attach(Restorer).unwrap();
    client.connection().send(frame("queued")).unwrap();
    assert_eq!(client.queued(), 1);
    let first = client.connect().await.unwrap();
    assert!(server.connection(first).is_some());
    assert_eq!(next_text(&mut events).await, "restored");
    assert_eq!(next_text(&mut events).await, "queued");
    let client_id = client.connection().id();

    client.disconnect().await;
    assert!(server.connection(first).is_none() && !client.is_connected());
    client.connection().send(frame("offline")).unwrap();
    let second = client.connect().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(client.connection().id(), client_id);
    assert_eq!(next_text(&mut events).await, "restored");
    assert_eq!(next_text(&mut events).await, "offline");
}

#[tokio::test(start_paused = true)]
async fn each_side_sees_added_frames_removed_in_order() {
    let (server, mut server_events, client) = pair();
    let mut client_events = client.network().events().unwrap();
    let id = client.connect().await.unwrap();
    client.connection().send(frame("up")).unwrap();
    server.connection(id).unwrap().send(frame("down")).unwrap();
    assert!(matches!(within(server_events.recv()).await, Some(NetworkEvent::Added(_))));
    assert_eq!(next_text(&mut server_events).await, "up");
    assert!(matches!(within(client_events.recv()).await, Some(NetworkEvent::Added(_))));
    assert_eq!(next_text(&mut client_events).await, "down");
    client.disconnect().await;
    for events in [&mut server_events, &mut client_events] {
        let removed = within(events.recv()).await;
        assert!(
            matches!(&removed, Some(NetworkEvent::Removed { frame, .. }) if frame.code == CloseCode::ABNORMAL),
            "{removed:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_frame_is_lost_and_only_that_one() {
    let (_server, mut events, client) = pair();
    client.connect().await.unwrap();
    client
        .drop_next(Direction::ToServer, |message| message.as_text().is_some_and(|text| text.contains("two")));
    assert_eq!(client.pending_drops(), 1);
    for text in ["one", "two", "three", "two"] {
        client.connection().send(frame(text)).unwrap();
    }
    assert_eq!(next_text(&mut events).await, "one");
    assert_eq!(next_text(&mut events).await, "three");
    assert_eq!(next_text(&mut events).await, "two");
    assert_eq!(client.pending_drops(), 0);
}

#[tokio::test(start_paused = true)]
async fn delayed_frames_arrive_late_and_in_order() {
    let (_server, mut events, client) = pair();
    client.connect().await.unwrap();
    client.delay(Direction::ToServer, Duration::from_secs(3));
    let sent = Instant::now();
    client.connection().send(frame("a")).unwrap();
    client.connection().send(frame("b")).unwrap();
    assert_eq!(next_text(&mut events).await, "a");
    assert_eq!(next_text(&mut events).await, "b");
    assert_eq!(sent.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn held_frames_of_an_old_connection_reach_the_server_after_the_new_one_opened() {
    let (_server, mut events, client) = pair();
    let old = client.connect().await.unwrap();
    assert!(matches!(within(events.recv()).await, Some(NetworkEvent::Added(c)) if c.id() == old));
    client.hold(Direction::ToServer);
    client.connection().send(frame("late")).unwrap();
    client.disconnect().await;
    let new = client.connect().await.unwrap();
    assert!(matches!(within(events.recv()).await, Some(NetworkEvent::Added(c)) if c.id() == new));
    client.release().await;
    let late = within(events.recv()).await;
    assert!(
        matches!(&late, Some(NetworkEvent::Message { connection, .. }) if connection.id() == old),
        "{late:?}"
    );
    let removed = within(events.recv()).await;
    assert!(matches!(&removed, Some(NetworkEvent::Removed { connection, .. }) if connection.id() == old));
}

#[tokio::test(start_paused = true)]
async fn frames_held_for_the_client_arrive_on_its_next_connection() {
    let (_server, _events, client) = pair();
    let mut client_events = client.network().events().unwrap();
    let old = client.connect().await.unwrap();
    client.hold(Direction::ToClient);
    client.server_connection().unwrap().send(frame("stale")).unwrap();
    client.disconnect().await;
    client.connect().await.unwrap();
    assert!(client.server().connection(old).is_none());
    client.release().await;
    assert_eq!(next_text(&mut client_events).await, "stale");
}

#[tokio::test(start_paused = true)]
async fn a_refused_attempt_reaches_nobody() {
    let (server, mut events, client) = pair();
    client.refuse_next(1);
    assert_eq!(client.connect().await, Err(Refused));
    assert!(!client.is_connected() && server.connections().is_empty());
    crate::settle().await;
    assert!(events.try_recv().is_none());
    let id = client.connect().await.unwrap();
    assert!(matches!(within(events.recv()).await, Some(NetworkEvent::Added(c)) if c.id() == id));
}

#[tokio::test(start_paused = true)]
async fn a_server_close_ends_the_connection_on_both_sides_with_its_frame() {
    let (server, _events, client) = pair();
    let mut client_events = client.network().events().unwrap();
    let id = client.connect().await.unwrap();
    server.connection(id).unwrap().close(CloseCode::POLICY, "bye");
    client.disconnected().await;
    assert!(!client.is_connected());
    assert!(matches!(within(client_events.recv()).await, Some(NetworkEvent::Added(_))));
    let removed = within(client_events.recv()).await;
    assert!(
        matches!(&removed, Some(NetworkEvent::Removed { frame, .. }) if frame.reason == "bye"),
        "{removed:?}"
    );
    assert_eq!(within(client.connection().closed()).await.code, CloseCode::POLICY);
}

#[tokio::test(start_paused = true)]
async fn a_closed_client_refuses_to_send_and_detaches_its_routers() {
    let (_server, _events, client) = pair();
    client.network().attach(Restorer).unwrap();
    client.connect().await.unwrap();
    client.close().await;
    assert!(client.connection().send(frame("late")).is_err());
    assert!(client.network().hub().router_names().is_empty());
}
