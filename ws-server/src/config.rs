//! Server options.

use std::fmt;
use std::time::Duration;

use network_core::{Constraint, HubConfig, InvalidConfig};

pub use ws_protocol::deflate::Compression;

use crate::handshake::HandshakeHook;
use crate::rate::RateLimit;

/// Options of a [`Server`](crate::Server). Every field has a default chosen for a server
/// holding many mostly idle connections; setters are named after the fields.
///
/// ```
/// use std::time::Duration;
/// use ws_server::ServerConfig;
/// let config = ServerConfig::default()
///     .max_message_size(64 * 1024)
///     .ping_interval(Some(Duration::from_secs(10)));
/// assert_eq!(config.max_message_size, 64 * 1024);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Largest incoming message (after reassembling fragments), in bytes. A bigger one
    /// closes the connection with 1009. Default 1 MiB, as socket.io's.
    pub max_message_size: usize,
    /// Soft bound of each connection's outgoing queue, in bytes. A queue over it makes its
    /// connection a suspect: if the socket then takes no byte for
    /// [`slow_consumer_timeout`](Self::slow_consumer_timeout), the connection is dropped
    /// (1008 "slow consumer"); and publishers with more than this many bytes still queued
    /// somewhere are not read until the congestion clears (see the crate docs,
    /// "Backpressure"). Default 1 MiB.
    pub outgoing_queue_size: usize,
    /// Hard bound of each connection's outgoing queue, in bytes: a send past it fails with
    /// `SendError::Full` and drops the connection (1008 "outgoing queue full"), however
    /// fast it reads. Default 16 MiB.
    pub max_outgoing_queue_size: usize,
    /// How long a connection over [`outgoing_queue_size`](Self::outgoing_queue_size) may
    /// go without its socket taking a byte before it is dropped as a slow consumer (1008
    /// "slow consumer"). Default 10 s.
    pub slow_consumer_timeout: Duration,
    /// Budget of bytes queued in all outgoing queues together; while it is exceeded no
    /// connection is read, so no new fan-out adds to it. A queue draws it 4 KiB at a time
    /// (so as not to touch the shared counter per frame), so it may count up to 4 KiB more
    /// per non-empty queue than is queued. Default 256 MiB.
    pub max_total_outgoing_size: usize,
    /// Budget of bytes held by incoming messages not yet complete (fragments, or a large
    /// frame still arriving), over all connections. A connection whose partial message
    /// cannot get its share is closed with 1013 "server busy", so N connections cannot hold
    /// N × `max_message_size`. It counts bytes received; the buffers holding them grow by
    /// doubling, so the memory they take can reach about twice the budget (measured:
    /// 522 MiB peak RSS at 256 MiB, docs/HARDENING.md). Default 256 MiB.
    pub max_total_incoming_size: usize,
    /// Per-connection limits on incoming messages and bytes per second (see
    /// [`RateLimit`]); `None` for none. Default `Some(RateLimit::default())`.
    pub rate_limit: Option<RateLimit>,
    /// The most one read takes from a socket. Reads go into a buffer shared by the
    /// connections of a runtime thread, so an idle connection holds none; bigger messages
    /// arrive in several reads (a 1 MiB message in 342 reads at 3 KiB). It is also what a
    /// connection may hold of a partial message before drawing on
    /// [`max_total_incoming_size`](Self::max_total_incoming_size). Default 3 KiB: raise
    /// it for servers that mostly receive large messages. A relay carrying a session's
    /// socket for another node keeps a buffer of this size per socket.
    pub read_buffer_size: usize,
    /// Interval between pings to each peer; `None` sends none. Default 25 s.
    pub ping_interval: Option<Duration>,
    /// A peer from which nothing (not even a pong) arrived for this long is dropped and
    /// its `Removed` event fires with 1006 "idle timeout"; `None` never drops. Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Open connections allowed at once; further upgrades get HTTP 503. `None` for no cap
    /// (the file-descriptor limit still applies). Default `None`.
    pub max_connections: Option<usize>,
    /// Connections accepted whose upgrade is not done yet (the request head still
    /// arriving, or the handshake hook deciding). Past it the oldest pending one is closed,
    /// so that a flood of silent sockets cannot hold every file descriptor while a real
    /// client, which completes its handshake in milliseconds, still gets in. They also
    /// count against [`max_connections`](Self::max_connections) (open plus pending).
    /// Default: half the process's soft limit on open files (read from
    /// `/proc/self/limits`), 512 where it is unknown.
    pub max_pending_handshakes: usize,
    /// Time for a client to send its complete upgrade request. Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest upgrade request head (request line and headers), in bytes; bigger gets
    /// HTTP 431. Default 8 KiB.
    pub max_handshake_size: usize,
    /// After sending a close frame, how long to wait for the peer's close reply and for
    /// the queue to drain before dropping the socket. Default 5 s.
    pub close_timeout: Duration,
    /// How long [`Server::shutdown`](crate::Server::shutdown) waits for connections to
    /// close after sending them 1001. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Queue bounds between sockets, routers and the application.
    pub hub: HubConfig,
    /// Decides on each upgrade request before it is accepted. Default: accept all.
    pub handshake: Option<HandshakeHook>,
    /// The browser origins allowed to open a connection, each `scheme://host[:port]`
    /// (`https://app.example`, `http://localhost:8080`). An upgrade whose `Origin` header
    /// matches none of them, `null` included, gets HTTP 403 before the handshake hook
    /// runs. Scheme and host match case-insensitively and the port exactly, a missing port
    /// meaning the scheme's default (80 for `http`/`ws`, 443 for `https`/`wss`). A request
    /// without `Origin` is not a browser's cross-site request and is let through (other
    /// clients do not send one); `Some(vec![])` refuses every request that has one.
    ///
    /// Default `None`: **every origin is accepted**, so any web page a logged-in user
    /// visits can open a socket with the user's cookies (cross-site WebSocket hijacking).
    /// Set it on any server that browsers reach and that trusts cookies. A token from
    /// [`TokenStore`](crate::TokenStore) is safe without it, as long as the token route
    /// does not let other origins read its answers (no permissive CORS).
    pub allowed_origins: Option<Vec<String>>,
    /// How long a resumable session survives the loss of its socket (PROTOCOL.md section
    /// 9): the connection stays registered (same id, rooms, router state; no leave in any
    /// view) and the frames sent to it are kept for a resume. Only clients that ask for a
    /// session (`?session=new`) get one. Default 2 minutes, as socket.io's connection
    /// state recovery; `None` turns sessions off (requests are answered `disabled`).
    pub resume_window: Option<Duration>,
    /// The most bytes a session keeps of the frames its client has not acknowledged, each
    /// frame counting its payload plus its entry
    /// ([`ENTRY_COST`](network_core::resume::ENTRY_COST)), so that the bound holds for
    /// memory even with tiny frames. An attached session over it forgets its oldest frames
    /// (a resume that needs them is refused, `overflow`, and ends the session); a detached
    /// one ends at once (`Removed` with 1008 "session overflow", in both cases). Default
    /// 1 MiB. Payloads are shared: a broadcast held by many sessions costs each a
    /// reference and an entry.
    pub max_replay_size: usize,
    /// TLS for the sockets [`Server::bind`](crate::Server::bind) and
    /// [`Server::from_listener`](crate::Server::from_listener) accept (feature `tls`): each
    /// completes its TLS handshake within [`handshake_timeout`](Self::handshake_timeout),
    /// then the WebSocket upgrade within another. Build it with rustls's `ring` provider
    /// (see the crate docs). Default `None`: plain TCP. [`Server::serve_stream`](crate::Server::serve_stream)
    /// and the axum mount are not affected (the stream is already what it is; see
    /// `Server::axum_tls_listener`).
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// permessage-deflate (RFC 7692, docs/PROTOCOL.md section 1): `Some` accepts it from
    /// every client that offers it (every browser does) and compresses the messages of at
    /// least [`Compression::min_size`] bytes; `None` never negotiates it. No compression
    /// state is kept per connection (context takeover is off both ways), and a broadcast
    /// is compressed once for all its recipients. Default `Some(Compression::default())`.
    pub compression: Option<Compression>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_size: 1 << 20,
            outgoing_queue_size: 1 << 20,
            max_outgoing_queue_size: 16 << 20,
            slow_consumer_timeout: Duration::from_secs(10),
            max_total_outgoing_size: 256 << 20,
            max_total_incoming_size: 256 << 20,
            rate_limit: Some(RateLimit::default()),
            read_buffer_size: 3 * 1024,
            ping_interval: Some(Duration::from_secs(25)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: None,
            max_pending_handshakes: default_max_pending_handshakes(),
            handshake_timeout: Duration::from_secs(10),
            max_handshake_size: 8 * 1024,
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            hub: HubConfig::default(),
            handshake: None,
            allowed_origins: None,
            resume_window: Some(Duration::from_secs(120)),
            max_replay_size: 1 << 20,
            #[cfg(feature = "tls")]
            tls: None,
            compression: Some(Compression::default()),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ServerConfig");
        debug
            .field("max_message_size", &self.max_message_size)
            .field("outgoing_queue_size", &self.outgoing_queue_size)
            .field("max_outgoing_queue_size", &self.max_outgoing_queue_size)
            .field("slow_consumer_timeout", &self.slow_consumer_timeout)
            .field("max_total_outgoing_size", &self.max_total_outgoing_size)
            .field("max_total_incoming_size", &self.max_total_incoming_size)
            .field("rate_limit", &self.rate_limit)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshake_size", &self.max_handshake_size)
            .field("close_timeout", &self.close_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("hub", &self.hub)
            .field("handshake", &self.handshake.as_ref().map(|_| "HandshakeHook"))
            .field("allowed_origins", &self.allowed_origins)
            .field("resume_window", &self.resume_window)
            .field("max_replay_size", &self.max_replay_size)
            .field("compression", &self.compression);
        #[cfg(feature = "tls")]
        debug.field("tls", &self.tls.as_ref().map(|_| "rustls::ServerConfig"));
        debug.finish()
    }
}

#[cfg(feature = "tls")]
impl ServerConfig {
    /// Sets [`tls`](Self::tls).
    pub fn tls(mut self, tls: Option<std::sync::Arc<rustls::ServerConfig>>) -> Self {
        self.tls = tls;
        self
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        impl ServerConfig {
            $(
                $(#[$doc])*
                pub fn $field(mut self, $field: $ty) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`max_message_size`](Self::max_message_size).
    max_message_size: usize,
    /// Sets [`outgoing_queue_size`](Self::outgoing_queue_size).
    outgoing_queue_size: usize,
    /// Sets [`max_outgoing_queue_size`](Self::max_outgoing_queue_size).
    max_outgoing_queue_size: usize,
    /// Sets [`slow_consumer_timeout`](Self::slow_consumer_timeout).
    slow_consumer_timeout: Duration,
    /// Sets [`max_total_outgoing_size`](Self::max_total_outgoing_size).
    max_total_outgoing_size: usize,
    /// Sets [`max_total_incoming_size`](Self::max_total_incoming_size).
    max_total_incoming_size: usize,
    /// Sets [`rate_limit`](Self::rate_limit).
    rate_limit: Option<RateLimit>,
    /// Sets [`read_buffer_size`](Self::read_buffer_size).
    read_buffer_size: usize,
    /// Sets [`ping_interval`](Self::ping_interval).
    ping_interval: Option<Duration>,
    /// Sets [`idle_timeout`](Self::idle_timeout).
    idle_timeout: Option<Duration>,
    /// Sets [`max_connections`](Self::max_connections).
    max_connections: Option<usize>,
    /// Sets [`max_pending_handshakes`](Self::max_pending_handshakes).
    max_pending_handshakes: usize,
    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    handshake_timeout: Duration,
    /// Sets [`max_handshake_size`](Self::max_handshake_size).
    max_handshake_size: usize,
    /// Sets [`close_timeout`](Self::close_timeout).
    close_timeout: Duration,
    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    shutdown_timeout: Duration,
    /// Sets [`hub`](Self::hub).
    hub: HubConfig,
    /// Sets [`allowed_origins`](Self::allowed_origins).
    allowed_origins: Option<Vec<String>>,
    /// Sets [`resume_window`](Self::resume_window).
    resume_window: Option<Duration>,
    /// Sets [`max_replay_size`](Self::max_replay_size).
    max_replay_size: usize,
    /// Sets [`compression`](Self::compression).
    compression: Option<Compression>,
}

impl ServerConfig {
    /// Sets the [`handshake`](Self::handshake) hook.
    pub fn handshake(mut self, hook: HandshakeHook) -> Self {
        self.handshake = Some(hook);
        self
    }

    /// Checks every field; the setters only store.
    pub(crate) fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive("max_message_size", self.max_message_size)?;
        InvalidConfig::require_positive("outgoing_queue_size", self.outgoing_queue_size)?;
        if self.max_outgoing_queue_size < self.outgoing_queue_size {
            let constraint = Constraint::AtLeastTimes { field: "outgoing_queue_size", times: 1 };
            return Err(InvalidConfig::new("max_outgoing_queue_size", constraint));
        }
        InvalidConfig::require_positive_duration("slow_consumer_timeout", self.slow_consumer_timeout)?;
        InvalidConfig::require_positive("max_total_outgoing_size", self.max_total_outgoing_size)?;
        InvalidConfig::require_positive("max_total_incoming_size", self.max_total_incoming_size)?;
        if let Some(limit) = &self.rate_limit {
            limit.validate()?;
        }
        for (field, value, min) in [
            ("read_buffer_size", self.read_buffer_size, 256),
            ("max_handshake_size", self.max_handshake_size, 512),
        ] {
            if value < min {
                return Err(InvalidConfig::new(field, Constraint::AtLeastBytes(min as u64)));
            }
        }
        for (field, value) in [
            ("ping_interval", self.ping_interval),
            ("idle_timeout", self.idle_timeout),
            ("resume_window", self.resume_window),
        ] {
            if let Some(value) = value {
                InvalidConfig::require_positive_duration(field, value)?;
            }
        }
        InvalidConfig::require_positive("max_pending_handshakes", self.max_pending_handshakes)?;
        InvalidConfig::require_positive("max_replay_size", self.max_replay_size)?;
        if let Some(max_connections) = self.max_connections {
            InvalidConfig::require_positive("max_connections", max_connections)?;
        }
        InvalidConfig::require_positive_duration("handshake_timeout", self.handshake_timeout)?;
        InvalidConfig::require_positive("hub.router_queue_capacity", self.hub.router_queue_capacity)?;
        InvalidConfig::require_positive("hub.event_queue_capacity", self.hub.event_queue_capacity)?;
        if let Some(origins) = &self.allowed_origins
            && !origins.iter().all(|origin| crate::handshake::is_origin(origin))
        {
            let form = "a list of scheme://host[:port], without path or `null`";
            return Err(InvalidConfig::new("allowed_origins", Constraint::Form(form)));
        }
        Ok(())
    }
}

/// Half the soft limit on open files: the other half stays for open connections, the
/// listener and the application. 512 when the limit cannot be read (not Linux).
fn default_max_pending_handshakes() -> usize {
    open_files_limit().map_or(512, |limit| (limit / 2).clamp(16, 1 << 20))
}

/// The soft `Max open files` of this process, from `/proc/self/limits` (no `unsafe`
/// `getrlimit` call needed).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_handshake_cap_follows_the_file_limit() {
        let default = ServerConfig::default().max_pending_handshakes;
        match open_files_limit() {
            Some(limit) => assert_eq!(default, (limit / 2).clamp(16, 1 << 20)),
            None => assert_eq!(default, 512),
        }
        assert!(ServerConfig::default().validate().is_ok());
    }

    #[test]
    fn every_rule_names_its_field() {
        use crate::RateLimit;
        let base = ServerConfig::default;
        let refused = |config: ServerConfig| config.validate().err();
        let positive = |field| Some(InvalidConfig::new(field, Constraint::Positive));
        let zero = Duration::ZERO;
        assert_eq!(refused(base().max_message_size(0)), positive("max_message_size"));
        assert_eq!(refused(base().outgoing_queue_size(0)), positive("outgoing_queue_size"));
        assert_eq!(
            refused(base().outgoing_queue_size(2048).max_outgoing_queue_size(2047)),
            Some(InvalidConfig::new(
                "max_outgoing_queue_size",
                Constraint::AtLeastTimes { field: "outgoing_queue_size", times: 1 }
            ))
        );
        assert_eq!(refused(base().slow_consumer_timeout(zero)), positive("slow_consumer_timeout"));
        assert_eq!(refused(base().max_total_outgoing_size(0)), positive("max_total_outgoing_size"));
        assert_eq!(refused(base().max_total_incoming_size(0)), positive("max_total_incoming_size"));
        let rate = |limit: RateLimit| base().rate_limit(Some(limit));
        let limit = RateLimit::default;
        assert_eq!(refused(rate(limit().messages_per_second(0))), positive("rate_limit.messages_per_second"));
        assert_eq!(refused(rate(limit().message_burst(0))), positive("rate_limit.message_burst"));
        assert_eq!(refused(rate(limit().bytes_per_second(0))), positive("rate_limit.bytes_per_second"));
        assert_eq!(refused(rate(limit().byte_burst(0))), positive("rate_limit.byte_burst"));
        // Zero closes a throttled connection at once instead of slowing it: a choice.
        assert_eq!(refused(rate(limit().close_after(Some(zero)))), None);
        assert_eq!(
            refused(base().read_buffer_size(255)),
            Some(InvalidConfig::new("read_buffer_size", Constraint::AtLeastBytes(256)))
        );
        assert_eq!(
            refused(base().max_handshake_size(511)),
            Some(InvalidConfig::new("max_handshake_size", Constraint::AtLeastBytes(512)))
        );
        assert_eq!(refused(base().ping_interval(Some(zero))), positive("ping_interval"));
        assert_eq!(refused(base().idle_timeout(Some(zero))), positive("idle_timeout"));
        assert_eq!(refused(base().resume_window(Some(zero))), positive("resume_window"));
        assert_eq!(refused(base().resume_window(None)), None);
        assert_eq!(refused(base().max_replay_size(0)), positive("max_replay_size"));
        assert_eq!(refused(base().ping_interval(None).idle_timeout(None)), None);
        assert_eq!(refused(base().max_pending_handshakes(0)), positive("max_pending_handshakes"));
        assert_eq!(refused(base().max_connections(Some(0))), positive("max_connections"));
        assert_eq!(refused(base().handshake_timeout(zero)), positive("handshake_timeout"));
        // Zero is a choice for these: do not wait.
        assert_eq!(refused(base().close_timeout(zero).shutdown_timeout(zero)), None);
        let hub = HubConfig::default;
        assert_eq!(
            refused(base().hub(hub().router_queue_capacity(0))),
            positive("hub.router_queue_capacity")
        );
        assert_eq!(refused(base().hub(hub().event_queue_capacity(0))), positive("hub.event_queue_capacity"));
        let origins = |origin: &str| base().allowed_origins(Some(vec![origin.to_owned()]));
        assert_eq!(refused(origins("null")).map(|error| error.field), Some("allowed_origins"));
        assert_eq!(refused(origins("https://app.example")), None);
    }
}
