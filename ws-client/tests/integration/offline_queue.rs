//! The offline queue: messages sent before the server is up, and while it is down, arrive
//! in order once it is up, each exactly once; past a bound a send fails with `Full` and
//! hands the message back; after `close` with `Closed`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Seen, Server, ms, next_seen, recorder, refused_addr, wait_event, within};
use network_core::{Message, SendError};
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent, FlushError};

fn config() -> ClientConfig {
    ClientConfig::default().min_reconnection_delay(ms(10)).max_reconnection_delay(ms(50))
}

/// Asserts that the server receives exactly `expected`, in order, and nothing else before
/// the `sentinel` the client sends next.
async fn expect_exactly(
    client: &Client,
    seen: &mut mpsc::Receiver<Seen>,
    expected: &[String],
    sentinel: &str,
) {
    for text in expected {
        assert_eq!(next_seen(seen).await, Seen::Text(text.clone()));
    }
    client.send(Message::text(sentinel.to_owned())).unwrap();
    assert_eq!(next_seen(seen).await, Seen::Text(sentinel.to_owned()), "no duplicate before the sentinel");
}

#[tokio::test]
async fn messages_wait_for_the_server_in_order() {
    let (seen_tx, mut seen) = mpsc::channel(1024);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(false, recorder(seen_tx, kick.clone())).await;
    let client = Client::connect(server.url(), config()).unwrap();
    let mut events = client.lifecycle();

    // Before the server exists.
    let first: Vec<String> = (0..100).map(|i| format!("before-{i}")).collect();
    for text in &first {
        client.send(Message::text(text.clone())).unwrap();
    }
    wait_event(&mut events, |e| matches!(e, ClientEvent::Failed { .. }).then_some(())).await;
    server.set_up(true);
    assert_eq!(next_seen(&mut seen).await, Seen::Open);
    expect_exactly(&client, &mut seen, &first, "sentinel-1").await;
    within("flush", client.flush()).await.unwrap();

    // While it is down.
    server.set_up(false);
    kick.send((1001, "going down".into())).unwrap();
    wait_event(&mut events, |e| matches!(e, ClientEvent::Closed { .. }).then_some(())).await;
    let second: Vec<String> = (0..100).map(|i| format!("during-{i}")).collect();
    for text in &second {
        client.send(Message::text(text.clone())).unwrap();
    }
    assert_eq!(client.queued(), 100);
    wait_event(&mut events, |e| matches!(e, ClientEvent::Failed { .. }).then_some(())).await;
    server.set_up(true);
    assert_eq!(next_seen(&mut seen).await, Seen::Open);
    expect_exactly(&client, &mut seen, &second, "sentinel-2").await;
}

#[tokio::test]
async fn bounds_hand_the_message_back() {
    let (addr, _refusing) = refused_addr().await;
    let config = ClientConfig::default().start_closed(true).max_enqueued_messages(3).max_enqueued_bytes(10);
    let client = Client::connect(format!("ws://{addr}/"), config).unwrap();

    client.send("aaa").unwrap();
    client.send("bbb").unwrap();
    match client.send("ccccc") {
        Err(SendError::Full(message)) => assert_eq!(message, Message::text("ccccc")),
        other => panic!("expected the byte bound, got {other:?}"),
    }
    client.send("cccc").unwrap(); // exactly 10 bytes
    match client.send("") {
        Err(SendError::Full(message)) => assert_eq!(message, Message::text("")),
        other => panic!("expected the message bound, got {other:?}"),
    }
    assert_eq!(client.queued(), 3);
    assert_eq!(within("flush", client.flush()).await, Err(FlushError::Stopped { unsent: 3 }));

    within("close", client.close()).await;
    match client.send("late") {
        Err(SendError::Closed(message)) => assert_eq!(message, Message::text("late")),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert_eq!(within("flush", client.flush()).await, Err(FlushError::Closed { unsent: 3 }));
    // start_closed: no attempt was ever made.
    let mut events = client.lifecycle();
    assert!(events.try_recv().is_err());
}
