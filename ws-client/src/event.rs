//! Lifecycle events of the link to the server.

use std::time::Duration;

use network_core::CloseFrame;
use network_core::resume::Refusal;

use crate::error::ConnectError;

/// What happened to the client's link, for logs, status displays and tests. Separate from
/// the [`NetworkEvent`](network_core::NetworkEvent)s that routers and the application
/// get: those say what the *connection* did; these say what the *reconnection machinery*
/// did.
///
/// A typical life: `Connecting { attempt: 0 }`, `Open`, `Closed { .. }`,
/// `Reconnecting { attempt: 1, delay }`, `Connecting { attempt: 1 }`, `Failed { .. }`,
/// `Reconnecting { attempt: 2, delay }`, ...
///
/// `attempt` counts attempts since the last reset (0 is the first connection, `n` the
/// `n`-th retry). It starts over after a connection stayed open for `min_uptime`, and on
/// [`Client::reconnect`](crate::Client::reconnect).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An attempt starts now (the URL provider is asked first, if there is one).
    Connecting {
        /// 0 for the first connection, `n` for the `n`-th retry.
        attempt: u32,
    },
    /// The link is open and every router has handled `Added` (restored its state); the
    /// offline queue is being written.
    Open,
    /// An attempt failed; a retry follows unless `max_retries` is reached.
    Failed {
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: ConnectError,
    },
    /// An open link closed: by the server (its close frame), by the client, or because it
    /// died (code 1006: reset, idle timeout).
    Closed {
        /// The close frame received or sent, or 1006 when none was exchanged.
        frame: CloseFrame,
    },
    /// The client waits `delay` before attempt `attempt`.
    Reconnecting {
        /// The attempt that follows the wait (1 or more).
        attempt: u32,
        /// The wait, jitter included.
        delay: Duration,
    },
    /// `max_retries` attempts failed after the first; the client waits for
    /// [`Client::reconnect`](crate::Client::reconnect) (messages are still queued).
    RetriesExhausted,
    /// The link is open again and the session resumed ([`ClientConfig::resume`](crate::ClientConfig::resume)):
    /// the same connection, nothing lost in either direction, nothing restored. Takes the
    /// place of `Open` after a resumed reconnect.
    Resumed,
    /// A resume was refused: the link is open as a new connection (routers restore, as
    /// after `Open`), and messages may have been lost in both directions meanwhile.
    Reset {
        /// Why the server refused.
        reason: Refusal,
        /// Frames this client had sent that the server never acknowledged: they may or
        /// may not have been handled, and are not sent again.
        unconfirmed: usize,
    },
    /// `should_reconnect` returned `false` for the server's close frame; the client waits
    /// for [`Client::reconnect`](crate::Client::reconnect) (messages are still queued).
    ReconnectDeclined,
}
