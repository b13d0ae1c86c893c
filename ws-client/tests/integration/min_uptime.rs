//! The retry count starts over only after a connection stayed open for `min_uptime`:
//! a server that accepts and closes at once sees growing delays, one that keeps each
//! connection longer sees the minimum delay every time. (Real clock: the connections are
//! real sockets; the margins are hundreds of milliseconds.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{Handshake, Server, ServerWs, ms, wait_event};
use futures_util::StreamExt;
use ws_client::{Client, ClientConfig, ClientEvent};

fn config() -> ClientConfig {
    ClientConfig::default()
        .min_reconnection_delay(ms(20))
        .max_reconnection_delay(ms(10_000))
        .reconnection_delay_grow_factor(2.0)
        .min_uptime(ms(300))
}

async fn delays(client: &Client, count: usize) -> Vec<Duration> {
    let mut events = client.lifecycle();
    let mut delays = Vec::new();
    while delays.len() < count {
        let delay = wait_event(&mut events, |event| match event {
            ClientEvent::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .await;
        delays.push(delay);
    }
    delays
}

async fn close_after(mut ws: ServerWs, hold: Duration) {
    tokio::time::sleep(hold).await; // the server's behaviour under test, not a synchronisation
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test]
async fn short_connections_keep_growing_the_delay() {
    let server = Server::start(true, |ws, _: Handshake| close_after(ws, Duration::ZERO)).await;
    let client = Client::connect(server.url(), config()).unwrap();
    assert_eq!(delays(&client, 3).await, [ms(20), ms(40), ms(80)]);
}

#[tokio::test]
async fn long_connections_reset_the_count() {
    let server = Server::start(true, |ws, _: Handshake| close_after(ws, ms(700))).await;
    let client = Client::connect(server.url(), config()).unwrap();
    assert_eq!(delays(&client, 3).await, [ms(20), ms(20), ms(20)]);
}
