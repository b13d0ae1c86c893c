//! The per-message offline policy (`Client::send_with`): while the server is down, buffered
//! messages wait, volatile ones are dropped (and the call says so), only the latest
//! message of a key waits (at the place of its last send), and expired ones are skipped
//! at the flush; what arrives keeps the order of the sends. The queue's bounds hold for
//! every policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{Seen, Server, ms, next_seen, recorder, refused_addr, wait_event, within};
use network_core::{Message, SendError};
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent, FlushError, Offline, Sent};

fn config() -> ClientConfig {
    ClientConfig::default().min_reconnection_delay(ms(10)).max_reconnection_delay(ms(50))
}

/// Asserts that the server receives exactly `expected`, in order, and nothing else before
/// the `sentinel` the client sends next.
async fn expect_exactly(client: &Client, seen: &mut mpsc::Receiver<Seen>, expected: &[&str], sentinel: &str) {
    for text in expected {
        assert_eq!(next_seen(seen).await, Seen::Text((*text).to_owned()));
    }
    client.send(sentinel.to_owned()).unwrap();
    assert_eq!(next_seen(seen).await, Seen::Text(sentinel.to_owned()), "nothing else before the sentinel");
}

#[tokio::test]
async fn each_policy_while_the_server_is_down() {
    let (seen_tx, mut seen) = mpsc::channel(64);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(false, recorder(seen_tx, kick)).await;
    let client = Client::connect(server.url(), config()).unwrap();
    let mut events = client.lifecycle();

    let sends = [
        ("buffer-1", Offline::Buffer, Sent::Queued),
        ("volatile", Offline::Volatile, Sent::Dropped),
        ("cursor-1", Offline::latest("cursor"), Sent::Queued),
        ("buffer-2", Offline::default(), Sent::Queued),
        ("status-1", Offline::latest("status"), Sent::Queued),
        ("cursor-2", Offline::latest("cursor"), Sent::Replaced),
        ("stale", Offline::Expire(Duration::ZERO), Sent::Queued),
        ("fresh", Offline::Expire(Duration::from_secs(600)), Sent::Queued),
        ("buffer-3", Offline::Buffer, Sent::Queued),
    ];
    for (text, offline, expected) in sends {
        assert_eq!(client.send_with(text, offline).unwrap(), expected, "{text}");
    }
    assert_eq!(client.queued(), 7, "the volatile message and cursor-1 are not queued");
    wait_event(&mut events, |e| matches!(e, ClientEvent::Failed { .. }).then_some(())).await;

    server.set_up(true);
    assert_eq!(next_seen(&mut seen).await, Seen::Open);
    // cursor-2 comes after buffer-2 and status-1, as it was sent; stale expired.
    let expected = ["buffer-1", "buffer-2", "status-1", "cursor-2", "fresh", "buffer-3"];
    expect_exactly(&client, &mut seen, &expected, "sentinel-1").await;

    // Online, every policy is written.
    wait_event(&mut events, |e| matches!(e, ClientEvent::Open).then_some(())).await;
    assert_eq!(client.send_with("volatile-online", Offline::Volatile).unwrap(), Sent::Queued);
    client.send_with("cursor-3", Offline::latest("cursor")).unwrap();
    client.send_with("fresh-online", Offline::Expire(Duration::from_secs(600))).unwrap();
    expect_exactly(&client, &mut seen, &["volatile-online", "cursor-3", "fresh-online"], "sentinel-2").await;
}

#[tokio::test]
async fn a_queue_of_expired_messages_flushes() {
    let (seen_tx, mut seen) = mpsc::channel(64);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(true, recorder(seen_tx, kick)).await;
    let client = Client::connect(server.url(), config().start_closed(true)).unwrap();
    for text in ["stale-1", "stale-2", "stale-3"] {
        client.send_with(text, Offline::Expire(Duration::ZERO)).unwrap();
    }
    assert_eq!(client.queued(), 3);
    client.reconnect();
    within("flush", client.flush()).await.unwrap();
    assert_eq!(client.queued(), 0);
    assert_eq!(next_seen(&mut seen).await, Seen::Open);
    expect_exactly(&client, &mut seen, &[], "sentinel").await;
}

#[tokio::test]
async fn bounds_hold_for_every_policy() {
    let (addr, _refusing) = refused_addr().await;
    let config = ClientConfig::default().start_closed(true).max_enqueued_messages(2).max_enqueued_bytes(10);
    let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
    let full = |result: Result<Sent, SendError>, text: &str| match result {
        Err(SendError::Full(message)) => assert_eq!(message, Message::text(text.to_owned())),
        other => panic!("expected Full for {text}, got {other:?}"),
    };

    client.send("aaaa").unwrap();
    assert_eq!(client.send_with("kkkk", Offline::latest("k")).unwrap(), Sent::Queued);
    full(client.send_with("x", Offline::Buffer), "x");
    full(client.send_with("x", Offline::latest("other")), "x");
    // A replacement takes the place it frees: two messages, 6 bytes.
    assert_eq!(client.send_with("kk", Offline::latest("k")).unwrap(), Sent::Replaced);
    // 4 + 7 bytes do not fit, even counting the replaced message; "kk" stays.
    full(client.send_with("kkkkkkk", Offline::latest("k")), "kkkkkkk");
    assert_eq!(client.send_with("kkkkkk", Offline::latest("k")).unwrap(), Sent::Replaced);
    // Volatile messages are dropped offline, so they never meet the bounds.
    assert_eq!(client.send_with("v", Offline::Volatile).unwrap(), Sent::Dropped);
    full(client.send_with("e", Offline::Expire(Duration::ZERO)), "e");
    assert_eq!(client.queued(), 2);
    assert_eq!(within("flush", client.flush()).await, Err(FlushError::Stopped { unsent: 2 }));

    within("close", client.close()).await;
    for offline in [Offline::Buffer, Offline::Volatile, Offline::latest("k"), Offline::Expire(ms(1))] {
        match client.send_with("late", offline) {
            Err(SendError::Closed(message)) => assert_eq!(message, Message::text("late")),
            other => panic!("expected Closed, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn expired_messages_make_room() {
    let (addr, _refusing) = refused_addr().await;
    let config = ClientConfig::default().start_closed(true).max_enqueued_messages(3);
    let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
    client.send("kept").unwrap();
    client.send_with("stale-1", Offline::Expire(Duration::ZERO)).unwrap();
    client.send_with("stale-2", Offline::Expire(Duration::ZERO)).unwrap();
    assert_eq!(client.queued(), 3);
    assert_eq!(client.send_with("new", Offline::Buffer).unwrap(), Sent::Queued);
    assert_eq!(client.queued(), 2, "both expired messages were discarded");
    client.close().await;
}
