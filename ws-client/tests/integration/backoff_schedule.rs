//! The reconnection delays follow reconnecting-websocket's schedule, end to end, on
//! tokio's paused clock: min 100 ms, max 1000 ms, grow 2 gives 100, 200, 400, 800, 1000,
//! 1000, and each attempt starts exactly its delay after the previous one failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ms, next_event, refused_addr};
use tokio::time::Instant;
use ws_client::{Client, ClientConfig, ClientEvent};

#[tokio::test(start_paused = true)]
async fn delays_follow_the_schedule() {
    // Nothing listens there: every attempt fails (refused, or timed out if the paused
    // clock runs ahead of the refusal; the schedule is the same either way).
    let (addr, _refusing) = refused_addr().await;
    let config = ClientConfig::default()
        .min_reconnection_delay(ms(100))
        .max_reconnection_delay(ms(1000))
        .reconnection_delay_grow_factor(2.0)
        .max_retries(Some(6));
    let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
    let mut events = client.lifecycle();

    assert!(matches!(next_event(&mut events).await, ClientEvent::Connecting { attempt: 0 }));
    let mut delays = Vec::new();
    loop {
        match next_event(&mut events).await {
            ClientEvent::Reconnecting { attempt, delay } => {
                assert_eq!(attempt as usize, delays.len() + 1);
                delays.push(delay);
                let waiting_since = Instant::now();
                match next_event(&mut events).await {
                    ClientEvent::Connecting { attempt: next } => assert_eq!(next, attempt),
                    other => panic!("expected Connecting, got {other:?}"),
                }
                assert_eq!(waiting_since.elapsed(), delay, "attempt {attempt} started after its delay");
            }
            ClientEvent::Failed { .. } => {}
            ClientEvent::RetriesExhausted => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
}
