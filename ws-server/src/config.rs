//! Server options.

use std::fmt;
use std::time::Duration;

use network_core::HubConfig;

use crate::error::ServerError;
use crate::handshake::HandshakeHook;

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
    /// Bound of each connection's outgoing queue, in bytes. A send past it fails with
    /// `SendError::Full` and drops the connection as a slow consumer (its `Removed` event
    /// carries 1008 "outgoing queue full"). Default 1 MiB.
    pub outgoing_queue_size: usize,
    /// Capacity of each connection's read buffer, allocated for the connection's life,
    /// and the most one read takes from the socket. Small keeps idle connections cheap
    /// (tungstenite's own default is 128 KiB); bigger messages still arrive, in several
    /// reads (a 1 MiB message in 342 reads at 3 KiB, 256 at 4 KiB). Default 3 KiB: raise
    /// it for servers that mostly receive large messages.
    pub read_buffer_size: usize,
    /// Interval between pings to each peer; `None` sends none. Default 25 s.
    pub ping_interval: Option<Duration>,
    /// A peer from which nothing (not even a pong) arrived for this long is dropped and
    /// its `Removed` event fires with 1006 "idle timeout"; `None` never drops. Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Open connections allowed at once; further upgrades get HTTP 503. `None` for no cap
    /// (the file-descriptor limit still applies). Default `None`.
    pub max_connections: Option<usize>,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_size: 1 << 20,
            outgoing_queue_size: 1 << 20,
            read_buffer_size: 3 * 1024,
            ping_interval: Some(Duration::from_secs(25)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
            max_handshake_size: 8 * 1024,
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            hub: HubConfig::default(),
            handshake: None,
            allowed_origins: None,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_message_size", &self.max_message_size)
            .field("outgoing_queue_size", &self.outgoing_queue_size)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_handshake_size", &self.max_handshake_size)
            .field("close_timeout", &self.close_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("hub", &self.hub)
            .field("handshake", &self.handshake.as_ref().map(|_| "HandshakeHook"))
            .field("allowed_origins", &self.allowed_origins)
            .finish()
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
    /// Sets [`read_buffer_size`](Self::read_buffer_size).
    read_buffer_size: usize,
    /// Sets [`ping_interval`](Self::ping_interval).
    ping_interval: Option<Duration>,
    /// Sets [`idle_timeout`](Self::idle_timeout).
    idle_timeout: Option<Duration>,
    /// Sets [`max_connections`](Self::max_connections).
    max_connections: Option<usize>,
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
}

impl ServerConfig {
    /// Sets the [`handshake`](Self::handshake) hook.
    pub fn handshake(mut self, hook: HandshakeHook) -> Self {
        self.handshake = Some(hook);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ServerError> {
        if self.max_message_size == 0 {
            return Err(ServerError::Config("max_message_size must be positive"));
        }
        if self.outgoing_queue_size == 0 {
            return Err(ServerError::Config("outgoing_queue_size must be positive"));
        }
        if self.read_buffer_size < 256 {
            return Err(ServerError::Config("read_buffer_size must be at least 256 bytes"));
        }
        if self.max_handshake_size < 512 {
            return Err(ServerError::Config("max_handshake_size must be at least 512 bytes"));
        }
        if self.ping_interval.is_some_and(|p| p.is_zero()) || self.idle_timeout.is_some_and(|i| i.is_zero()) {
            return Err(ServerError::Config("ping_interval and idle_timeout must be positive"));
        }
        if self.max_connections == Some(0) {
            return Err(ServerError::Config("max_connections must be positive"));
        }
        if let Some(origins) = &self.allowed_origins
            && !origins.iter().all(|origin| crate::handshake::is_origin(origin))
        {
            return Err(ServerError::Config(
                "allowed_origins entries must be scheme://host[:port], without path or `null`",
            ));
        }
        Ok(())
    }
}
