//! A scripted fake of the channels server (router `ch`), the real reconnecting client, and
//! bounded waits; the router-independent scaffolding lives in `testkit`.
//!
//! The fake greets every connection with `{"t":"joined","ch":"/"}` as the real server
//! does, and reports everything else to the test, which answers by hand: that way each
//! test states exactly the exchange of `docs/PROTOCOL.md` section 5 it relies on.
#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use channels::client::{ChannelsClient, ChannelsClientConfig};
use channels::protocol::{Frame, ROUTER};
use network_core::Connection;
pub use testkit::{WAIT, client_config, lifecycle_until, send_raw, within};
use tokio::sync::broadcast;
use ws_client::{Client, ClientConfig, ClientEvent};

/// The channels router, as the fake server plays it.
pub struct ChannelsRouter;

impl testkit::Protocol for ChannelsRouter {
    const ROUTER: &'static str = ROUTER;
    type Frame = Frame;

    fn on_added(connection: &Connection) {
        send(connection, &Frame::Joined { ch: "/".into(), id: None });
    }
}

/// What the fake server saw, in order.
pub type Seen = testkit::Seen<Frame>;

/// The fake channels server.
pub type FakeServer = testkit::FakeServer<ChannelsRouter>;

/// Sends `frame` to a client.
pub fn send(connection: &Connection, frame: &Frame) {
    testkit::send(ROUTER, connection, frame);
}

/// A reconnecting client for `url` with the channels router attached, and its lifecycle.
pub fn client(
    url: &str,
    client_config: ClientConfig,
    config: ChannelsClientConfig,
) -> (Client, ChannelsClient, broadcast::Receiver<ClientEvent>) {
    let client = Client::connect(url, client_config).unwrap();
    let lifecycle = client.lifecycle();
    let channels = ChannelsClient::attach(&client, config).unwrap();
    (client, channels, lifecycle)
}

/// A client connected to `server`, whose connection the server has seen.
pub async fn connected(
    server: &mut FakeServer,
    config: ChannelsClientConfig,
) -> (Client, ChannelsClient, Connection) {
    let (client, channels, _) = client(&server.url(), client_config(), config);
    let connection = server.connection().await;
    assert!(within(channels.ready()).await);
    (client, channels, connection)
}

/// Reads the id of a request frame.
pub fn id_of(frame: &Frame) -> u64 {
    match frame {
        Frame::Join { id: Some(id), .. }
        | Frame::Leave { id: Some(id), .. }
        | Frame::Emit { id: Some(id), .. } => *id,
        other => panic!("no id in {other:?}"),
    }
}
