//! `should_reconnect` sees the server's close frame; `false` stops reconnecting until
//! `reconnect()`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Seen, Server, ms, next_event, next_seen, recorder, wait_event};
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent};

#[tokio::test]
async fn banned_client_waits_for_reconnect() {
    let (seen_tx, mut seen) = mpsc::channel(64);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(true, recorder(seen_tx, kick.clone())).await;
    let config =
        ClientConfig::default().min_reconnection_delay(ms(10)).should_reconnect(|frame| frame.code.0 != 4001);
    let client = Client::connect(server.url(), config).unwrap();
    let mut events = client.lifecycle();
    wait_event(&mut events, |e| matches!(e, ClientEvent::Open).then_some(())).await;
    assert_eq!(next_seen(&mut seen).await, Seen::Open);

    // A close the predicate accepts: the client comes back.
    kick.send((1001, "restart".into())).unwrap();
    let frame = wait_event(&mut events, |e| match e {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    assert_eq!((frame.code.0, frame.reason.as_str()), (1001, "restart"));
    assert!(matches!(next_event(&mut events).await, ClientEvent::Reconnecting { attempt: 1, .. }));
    wait_event(&mut events, |e| matches!(e, ClientEvent::Open).then_some(())).await;
    assert_eq!(next_seen(&mut seen).await, Seen::Open);

    // A close it declines: the client waits.
    kick.send((4001, "banned".into())).unwrap();
    let frame = wait_event(&mut events, |e| match e {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    assert_eq!(frame.code.0, 4001);
    assert!(matches!(next_event(&mut events).await, ClientEvent::ReconnectDeclined));
    client.send("after the ban").unwrap();
    client.reconnect();
    assert!(matches!(next_event(&mut events).await, ClientEvent::Connecting { attempt: 0 }));
    assert!(matches!(next_event(&mut events).await, ClientEvent::Open));
    assert_eq!(next_seen(&mut seen).await, Seen::Open);
    assert_eq!(next_seen(&mut seen).await, Seen::Text("after the ban".into()));
}
