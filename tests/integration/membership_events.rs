//! Added and Removed events: on a clean close, on an abrupt TCP drop, and on a silent
//! peer (idle timeout).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use realtime::network_core::{CloseCode, Network, NetworkEvent};
use realtime::ws_server::ServerConfig;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

#[tokio::test]
async fn clean_close_reports_the_peers_code_and_reason() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(added) = next_event(&mut events).await else { panic!() };
    assert_eq!(server.connections().len(), 1);
    assert!(server.connection(added.id()).is_some());

    ws.close(Some(WsCloseFrame { code: WsCloseCode::Normal, reason: "bye".into() })).await.unwrap();
    let NetworkEvent::Removed { connection, frame } = next_event(&mut events).await else { panic!() };
    assert_eq!(connection.id(), added.id());
    assert_eq!(frame.code, CloseCode::NORMAL);
    assert_eq!(frame.reason, "bye");
    assert!(server.connection(added.id()).is_none());
    assert_eq!(within(added.closed()).await.code, CloseCode::NORMAL);
}

#[tokio::test]
async fn abrupt_tcp_drop_removes_the_connection() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(added) = next_event(&mut events).await else { panic!() };
    drop(ws); // no close frame: the TCP connection just ends
    let NetworkEvent::Removed { connection, frame } = next_event(&mut events).await else { panic!() };
    assert_eq!(connection.id(), added.id());
    assert_eq!(frame.code, CloseCode::ABNORMAL);
    assert!(server.connections().is_empty());
}

#[tokio::test]
async fn silent_peer_is_removed_after_the_idle_timeout() {
    let config = ServerConfig::default()
        .ping_interval(Some(Duration::from_millis(100)))
        .idle_timeout(Some(Duration::from_millis(400)));
    let (server, mut events) = server(config).await;
    // This client never polls its stream, so it never answers the server's pings.
    let _silent = raw_client(&url(&server)).await;
    let NetworkEvent::Added(added) = next_event(&mut events).await else { panic!() };
    let NetworkEvent::Removed { connection, frame } = next_event(&mut events).await else { panic!() };
    assert_eq!(connection.id(), added.id());
    assert_eq!(frame.code, CloseCode::ABNORMAL);
    assert_eq!(frame.reason, "idle timeout");
}

#[tokio::test]
async fn a_peer_answering_pings_stays_connected() {
    let config = ServerConfig::default()
        .ping_interval(Some(Duration::from_millis(50)))
        .idle_timeout(Some(Duration::from_millis(200)));
    let (server, mut events) = server(config).await;
    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    // Reading answers the pings (tungstenite replies with pongs); stay ~5 idle timeouts.
    let reading = tokio::time::timeout(Duration::from_millis(1000), next_data(&mut ws)).await;
    assert!(reading.is_err(), "no data frame was expected");
    assert_eq!(server.connections().len(), 1);
    assert!(events.try_recv().is_none(), "the connection must not have been removed");
}
