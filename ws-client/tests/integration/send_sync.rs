//! The public handles are `Send + Sync` and their futures `Send`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::refused_addr;
use ws_client::{
    Backoff, Client, ClientConfig, ClientEvent, ConfigError, ConnectError, FlushError, UrlSource,
};

fn send_sync<T: Send + Sync + 'static>() {}
fn send<T: Send>(_: &T) {}

#[test]
fn handles_are_send_and_sync() {
    send_sync::<Client>();
    send_sync::<ClientConfig>();
    send_sync::<ClientEvent>();
    send_sync::<UrlSource>();
    send_sync::<Backoff>();
    send_sync::<ConfigError>();
    send_sync::<ConnectError>();
    send_sync::<FlushError>();
}

#[tokio::test]
async fn futures_are_send() {
    let (addr, _refusing) = refused_addr().await;
    let client =
        Client::connect(format!("ws://{addr}/"), ClientConfig::default().start_closed(true)).unwrap();
    send(&client.flush());
    send(&client.closed());
    send(&client.close());
    send(&client.close_with(network_core::CloseCode::NORMAL, String::from("bye")));
    let mut lifecycle = client.lifecycle();
    send(&lifecycle.recv());
}

#[test]
fn connect_needs_a_runtime() {
    let err = Client::connect("ws://127.0.0.1:1/", ClientConfig::default()).unwrap_err();
    assert_eq!(err, ConfigError::NoRuntime);
}
