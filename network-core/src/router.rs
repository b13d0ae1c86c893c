//! The `Router` trait: the plug-in point for features.

use std::future::Future;

use crate::network::{Network, NetworkEvent};

/// A feature that plugs into a [`Network`]: presence, sync, rooms, or your own.
///
/// A router is attached with [`Network::attach`] and then runs in its own task, receiving
/// one event at a time, in order: every connection's [`NetworkEvent::Added`] and
/// [`NetworkEvent::Removed`], and the [`NetworkEvent::Message`]s whose envelope names
/// this router (see [`envelope`](crate::envelope)). Several routers share one connection;
/// frames that no router claims go to the application ([`Network::events`]).
///
/// Because events arrive one at a time through `&mut self`, a router's state needs no
/// lock. The router's inbox is bounded: while `on_event` runs, the connections feeding it
/// wait (backpressure reaches their TCP sockets), so keep it short and spawn long work.
///
/// Implement it for every `N: Network` and the router runs unchanged on a server and on a
/// client:
///
/// ```
/// use network_core::{envelope, Network, NetworkEvent, Router};
///
/// /// Answers `{"$r":"ping","d":n}` with `{"$r":"ping","d":n+1}`.
/// struct Ping;
///
/// impl<N: Network> Router<N> for Ping {
///     fn name(&self) -> &str {
///         "ping"
///     }
///
///     async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
///         if let NetworkEvent::Message { connection, message } = event {
///             if let Ok(n) = envelope::decode::<u64>("ping", &message) {
///                 if let Ok(reply) = envelope::json("ping", &(n + 1)) {
///                     let _ = connection.send(reply);
///                 }
///             }
///         }
///     }
/// }
/// ```
pub trait Router<N: Network>: Send + 'static {
    /// The name peers put in the envelope (`"$r"`): 1 to 31 of `a-z 0-9 _ - .`.
    fn name(&self) -> &str;

    /// Handles one event. On a client, `Added` means the link to the server (re)opened:
    /// restore server-side state here (re-join, re-subscribe); frames sent while handling
    /// it go out before the client's offline queue is flushed.
    fn on_event(&mut self, network: &N, event: NetworkEvent) -> impl Future<Output = ()> + Send;
}
