//! The public handles are `Send + Sync` and their futures `Send`, so they can be used from
//! any task (an axum handler, a background job).
#![allow(missing_docs)]

use realtime::network_core::{Connection, Events, Hub, HubDriver, LocalAdapter, Message};
use realtime::ws_server::{Server, ServerConfig};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>(_: &T) {}

#[test]
fn handles_are_send_and_sync() {
    send_sync::<Server>();
    send_sync::<ServerConfig>();
    send_sync::<Connection>();
    send_sync::<Hub>();
    send_sync::<HubDriver>();
    send_sync::<LocalAdapter>();
    send_sync::<Message>();
    fn events_send<T: Send>() {}
    events_send::<Events>();
}

#[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
fn futures_are_send(server: Server, connection: Connection, driver: HubDriver) {
    send(&Server::bind("127.0.0.1:0", ServerConfig::default()));
    send(&driver.connection_added(&connection, false));
    send(&driver.message(&connection, Message::text("")));
    send(&server.shutdown());
    send(&connection.closed());
}
