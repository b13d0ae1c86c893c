//! Errors of the server.

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the listening socket on `addr` failed (address in use, permission
    /// denied). When the address given resolved to several, `addr` is the last one tried.
    /// Choose another address or free this one.
    #[error("cannot bind the listening socket on {addr}")]
    Bind {
        /// The address that could not be bound.
        addr: std::net::SocketAddr,
        /// Why (`AddrInUse`, `PermissionDenied`, ...).
        #[source]
        source: std::io::Error,
    },
    /// The address given to [`Server::bind`](crate::Server::bind) did not resolve to any
    /// socket address (a bad host name or port, or a failed DNS lookup).
    #[error("cannot resolve the listening address")]
    Resolve(#[source] std::io::Error),
    /// A listener handed to the server was unusable (for a `std` listener: it could not
    /// be made non-blocking or registered with tokio).
    #[error("cannot use the given listener")]
    Listener(#[source] std::io::Error),
    /// A [`ServerConfig`](crate::ServerConfig) value is out of range; the error names the
    /// field and what it must be. Fix the configuration.
    #[error(transparent)]
    Config(#[from] network_core::InvalidConfig),
}
