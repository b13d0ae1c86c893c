//! After `max_retries` failed retries the client emits `RetriesExhausted` and waits;
//! `flush` reports it; `reconnect()` resets the count and connects at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Seen, Server, ms, next_event, next_seen, recorder, within};
use tokio::sync::{broadcast, mpsc};
use ws_client::{Client, ClientConfig, ClientEvent, FlushError};

#[tokio::test]
async fn retries_stop_then_reconnect_resumes() {
    let (seen_tx, mut seen) = mpsc::channel(64);
    let (kick, _) = broadcast::channel(4);
    let server = Server::start(false, recorder(seen_tx, kick)).await;
    let config = ClientConfig::default()
        .min_reconnection_delay(ms(10))
        .max_reconnection_delay(ms(20))
        .reconnection_delay_grow_factor(2.0)
        .max_retries(Some(2));
    let client = Client::connect(server.url(), config).unwrap();
    let mut events = client.lifecycle();
    client.send("kept").unwrap();

    for attempt in 0..=2 {
        if attempt > 0 {
            match next_event(&mut events).await {
                ClientEvent::Reconnecting { attempt: a, delay } => {
                    assert_eq!(a, attempt);
                    assert_eq!(delay, ms(10 * u64::from(attempt)));
                }
                other => panic!("expected Reconnecting, got {other:?}"),
            }
        }
        assert!(
            matches!(next_event(&mut events).await, ClientEvent::Connecting { attempt: a } if a == attempt)
        );
        assert!(
            matches!(next_event(&mut events).await, ClientEvent::Failed { attempt: a, .. } if a == attempt)
        );
    }
    assert!(matches!(next_event(&mut events).await, ClientEvent::RetriesExhausted));
    assert_eq!(within("flush", client.flush()).await, Err(FlushError::Stopped { unsent: 1 }));

    server.set_up(true);
    client.reconnect();
    assert!(matches!(next_event(&mut events).await, ClientEvent::Connecting { attempt: 0 }));
    assert!(matches!(next_event(&mut events).await, ClientEvent::Open));
    assert_eq!(next_seen(&mut seen).await, Seen::Open);
    assert_eq!(next_seen(&mut seen).await, Seen::Text("kept".into()));
    within("flush", client.flush()).await.unwrap();
}
