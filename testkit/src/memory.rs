//! Networks without sockets: [`MemoryNetwork`], a [`Network`] built from network-core's
//! public pieces (the same [`Hub`] and [`LocalAdapter`] that `ws-server` and `ws-client`
//! use), connected by a [`MemoryClient`] the way `ws-client` connects to `ws-server`, with
//! scripted faults; and [`RawPeer`], a connection whose frames a test writes and checks
//! itself (the fuzz targets use it).
//!
//! # A server and its clients
//! A server is a [`MemoryNetwork`]; each [`MemoryClient`] owns a client-side
//! [`MemoryNetwork`] with one [`Connection`] that keeps its id across reconnects, as a
//! `ws_client::Client` does. Routers attach to either side as they would to the real
//! transports, and the test drives the link by hand:
//!
//! - [`MemoryClient::connect`] opens a server-side connection with a new [`ConnectionId`]:
//!   the server's routers see `Added`, then the client's routers see `Added` while the
//!   client restores (frames they send meanwhile go first, see
//!   [`hub::is_restoring`](network_core::hub::is_restoring)), then the frames queued while
//!   offline flow. Frames flow in order in both directions, each through a task of its
//!   own, as over a socket.
//! - [`MemoryClient::disconnect`] ends the connection: frames already on the way arrive,
//!   then both sides see `Removed` (code 1006). [`MemoryClient::reconnect`] is both.
//!   A server router that closes its connection ends it the same way, with its frame.
//! - [`MemoryClient::close`] closes the client for good: its routers are detached, every
//!   waiting call of theirs ends.
//!
//! # Scripted faults
//! - [`MemoryClient::drop_next`]: the next frame in a [`Direction`] matching a predicate
//!   is lost (a reply dropped: the caller times out).
//! - [`MemoryClient::delay`]: every later frame in a direction arrives that much later,
//!   in order. Under tokio's paused clock (`#[tokio::test(start_paused = true)]`) delays
//!   and the routers' timeouts take no wall-clock time, and runs are deterministic.
//! - [`MemoryClient::hold`] and [`MemoryClient::release`]: the frames of the current
//!   connection are held back and arrive after a reconnect opened the next one (towards
//!   the server: the old connection's frames and its `Removed`, as a server sees a
//!   half-open socket end late; towards the client: the old server's frames arrive on
//!   the new link).
//! - [`MemoryClient::refuse_next`]: connection attempts fail before reaching the server.
//!
//! # Waiting
//! Every method that moves the link waits until both sides' routers have been handed what
//! it caused. To check that nothing happens, [`settle`] lets every task run until idle.

mod client;
mod peer;
mod transport;

use std::time::Duration;

use network_core::{Hub, HubConfig, HubDriver, LocalAdapter, Message, Network, UntakenEvents, envelope};

pub use client::{Direction, MemoryClient, Refused};
pub use peer::{OnSend, RawPeer};

#[cfg(doc)]
use network_core::{Connection, ConnectionId};

/// A [`Network`] whose connections are in memory: a [`Hub`] and a [`LocalAdapter`], as in
/// `ws-server` and `ws-client`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryNetwork {
    driver: HubDriver,
    adapter: LocalAdapter,
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNetwork {
    /// A network with the hub's default queue bounds.
    pub fn new() -> Self {
        Self::with_hub_config(HubConfig::default())
    }

    /// A network whose hub has `config`'s queue bounds.
    pub fn with_hub_config(config: HubConfig) -> Self {
        // As ws-server: events nobody took are not kept (a test takes them first).
        let driver = HubDriver::new(config, UntakenEvents::Discard);
        let adapter = LocalAdapter::new(driver.hub().registry().clone());
        Self { driver, adapter }
    }

    /// The transport side of the hub (see `transport.rs`).
    pub(crate) fn driver(&self) -> &HubDriver {
        &self.driver
    }

    /// Detaches every router, as a client network closed for good does: their tasks end
    /// once they have drained their inboxes, and their waiting calls fail.
    pub fn detach_all(&self) {
        transport::detach_all(self);
    }
}

impl Network for MemoryNetwork {
    type Adapter = LocalAdapter;

    fn hub(&self) -> &Hub {
        self.driver.hub()
    }

    fn adapter(&self) -> &LocalAdapter {
        &self.adapter
    }
}

/// Matches the frames of `router` whose body is tagged `"t": tag` (every router frame of
/// `docs/PROTOCOL.md` is), for [`MemoryClient::drop_next`].
pub fn tagged(router: &'static str, tag: &'static str) -> impl Fn(&Message) -> bool + Send + Sync + 'static {
    move |message| {
        envelope::decode::<serde_json::Value>(router, message)
            .is_ok_and(|body| body.get("t").and_then(serde_json::Value::as_str) == Some(tag))
    }
}

/// Lets every task run until all are idle (on tokio's paused clock; a millisecond of
/// virtual time passes). For checking that something did *not* happen; to wait for
/// something that does, await it.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[cfg(test)]
mod tests;
