//! A server that stops answering (no frame, not even a pong) is declared dead after
//! `idle_timeout`; the client pings it after `ping_interval` and reconnects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use crate::common::{Handshake, Server, ServerWs, ms, wait_event};
use network_core::CloseCode;
use ws_client::{Client, ClientConfig, ClientEvent};

async fn silent(ws: ServerWs, _: Handshake) {
    // Holds the socket without reading it, so pings are never answered.
    let _ws = ws;
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn silent_server_is_dropped() {
    let server = Server::start(true, silent).await;
    let config = ClientConfig::default()
        .idle_timeout(ms(300))
        .ping_interval(Some(ms(100)))
        .min_reconnection_delay(ms(10));
    let client = Client::connect(server.url(), config).unwrap();
    let mut events = client.lifecycle();
    wait_event(&mut events, |e| matches!(e, ClientEvent::Open).then_some(())).await;
    let opened = Instant::now();
    let frame = wait_event(&mut events, |e| match e {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    // Not before the idle timeout (minus the moment this task took to see `Open`).
    assert!(opened.elapsed() >= ms(200), "closed after {:?}", opened.elapsed());
    assert_eq!(frame.code, CloseCode::ABNORMAL);
    assert_eq!(frame.reason, "idle timeout");
    wait_event(&mut events, |e| matches!(e, ClientEvent::Reconnecting { attempt: 1, .. }).then_some(()))
        .await;
}
