//! `ws_client::Client` against `ws_server::Server` with permessage-deflate (RFC 7692), both
//! as configured by default: the client's offer is accepted, and a compressible message
//! crosses the wire compressed both ways, as counted by testkit's proxy between them;
//! with either end's compression off, the same message crosses uncompressed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use realtime::network_core::{Message, Network, NetworkEvent};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::ServerConfig;
use testkit::FaultProxy;

/// JSON-like text of `len` bytes, as realtime traffic is.
fn json(len: usize) -> String {
    (0..)
        .map(|i| format!("{{\"id\":{i},\"kind\":\"update\",\"value\":\"{}\"}},", i % 7))
        .flat_map(|item| item.into_bytes())
        .map(char::from)
        .take(len)
        .collect()
}

/// The bytes a `len`-byte text message and its echo took on the wire (client to server,
/// server to client), through a proxy between a client and an echo server.
async fn echo_bytes(server_config: ServerConfig, client_config: ClientConfig, len: usize) -> (u64, u64) {
    let server = echo_server(server_config).await;
    let proxy = FaultProxy::start(server.local_addr().unwrap()).await;
    let client = Client::connect(proxy.url(), client_config).unwrap();
    let mut events = client.events().unwrap();
    assert!(matches!(within(events.recv()).await, Some(NetworkEvent::Added(_))));
    let before = proxy.stats();
    let text = json(len);
    client.send(Message::text(text.clone())).unwrap();
    match within(events.recv()).await {
        Some(NetworkEvent::Message { message, .. }) => assert_eq!(message, Message::text(text)),
        other => panic!("expected the echo, got {other:?}"),
    }
    let after = proxy.stats();
    within(client.close()).await;
    (after.bytes_to_server - before.bytes_to_server, after.bytes_to_client - before.bytes_to_client)
}

#[tokio::test]
async fn by_default_a_message_crosses_compressed_both_ways() {
    let len = 64 * 1024;
    let (up, down) = echo_bytes(ServerConfig::default(), ClientConfig::default(), len).await;
    assert!(up < len as u64 / 4, "client to server: {up} bytes for {len}");
    assert!(down < len as u64 / 4, "server to client: {down} bytes for {len}");
}

#[tokio::test]
async fn with_either_end_off_it_crosses_uncompressed() {
    let len = 64 * 1024;
    for (server, client) in [
        (ServerConfig::default().compression(None), ClientConfig::default()),
        (ServerConfig::default(), ClientConfig::default().compression(None)),
    ] {
        let (up, down) = echo_bytes(server, client, len).await;
        assert!(up >= len as u64 && down >= len as u64, "{up} and {down} bytes for {len}");
    }
}
