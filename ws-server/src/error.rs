//! Errors of the server.

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the listening socket failed (address in use, permission denied).
    #[error("cannot bind the listening socket")]
    Bind(#[source] std::io::Error),
    /// A listener handed to the server was unusable (for a `std` listener: it could not
    /// be made non-blocking or registered with tokio).
    #[error("cannot use the given listener")]
    Listener(#[source] std::io::Error),
    /// A [`ServerConfig`](crate::ServerConfig) value is out of range; the error names the
    /// field and what it must be. Fix the configuration.
    #[error(transparent)]
    Config(#[from] network_core::InvalidConfig),
}
