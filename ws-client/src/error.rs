//! The errors of the client: one enum per way a caller has to react.
//!
//! - [`ConfigError`]: [`Client::connect`](crate::Client::connect) refused the
//!   configuration or URL; fix the program.
//! - [`ConnectError`]: one connection attempt failed; the client retries by itself and
//!   reports it in [`ClientEvent::Failed`](crate::ClientEvent::Failed).
//! - [`FlushError`]: [`Client::flush`](crate::Client::flush) cannot finish because the
//!   client will not write any more.

use std::sync::Arc;
use std::time::Duration;

pub use ws_protocol::deflate::NegotiationError;

/// [`Client::connect`](crate::Client::connect) refused its arguments. Nothing was spawned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `min_reconnection_delay` is longer than `max_reconnection_delay`. Make the minimum
    /// at most the maximum.
    #[error("min_reconnection_delay {min:?} is longer than max_reconnection_delay {max:?}")]
    DelayRange {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// `reconnection_delay_grow_factor` is below 1 or not a finite number; delays would
    /// shrink or be undefined.
    #[error("reconnection_delay_grow_factor must be a finite number >= 1, not {0}")]
    GrowFactor(f64),
    /// `jitter` is not a fraction between 0 and 1.
    #[error("jitter must be between 0 and 1, not {0}")]
    Jitter(f64),
    /// A duration that must be positive is zero (`field` names it).
    #[error("{field} must be longer than zero")]
    ZeroDuration {
        /// The configuration field.
        field: &'static str,
    },
    /// A size or capacity that must be positive is zero (`field` names it).
    #[error("{field} must be at least 1")]
    ZeroCapacity {
        /// The configuration field.
        field: &'static str,
    },
    /// `ping_interval` is not shorter than `idle_timeout`: the link would be declared dead
    /// before the keep-alive ping could be answered.
    #[error("ping_interval {ping:?} must be shorter than idle_timeout {idle:?}")]
    PingInterval {
        /// The configured ping interval.
        ping: Duration,
        /// The configured idle timeout.
        idle: Duration,
    },
    /// The URL is not a `ws://` or `wss://` URL with a host, has a fragment, or has a port
    /// outside 1 to 65535.
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (with the configured query parameters appended).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `connect` was called outside a tokio runtime; call it from within one (the client
    /// spawns its connection task on the current runtime).
    #[error("no tokio runtime to spawn the client task on")]
    NoRuntime,
}

/// Why one connection attempt failed. The client counts it as a failed attempt and
/// retries after its backoff delay (unless `max_retries` is reached).
///
/// Cheap to clone, so that it can travel in [`ClientEvent`](crate::ClientEvent)s.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL provider returned an error (see [`UrlProvider`](crate::UrlProvider)).
    #[error("the url provider failed")]
    Provider(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The URL (from a provider, with the configured query appended) is not a valid
    /// `ws://` or `wss://` URL (see [`ConfigError::InvalidUrl`]).
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL provider, or the TCP, TLS and WebSocket handshakes together, took longer
    /// than `connection_timeout`.
    #[error("no connection within {0:?}")]
    Timeout(std::time::Duration),
    /// Name resolution or the TCP connection failed (refused, unreachable, reset).
    #[error("cannot reach the server")]
    Io(#[source] Arc<std::io::Error>),
    /// The TLS client could not be set up, or the TLS handshake failed (certificate not
    /// trusted, name mismatch, no common protocol).
    #[error("tls failed")]
    Tls(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The server answered the upgrade request with this HTTP status instead of 101
    /// (401 or 403 for a refused token, 404 for a wrong path, 503 when overloaded).
    #[error("the server refused the upgrade with http status {status}")]
    Rejected {
        /// The HTTP status code.
        status: u16,
    },
    /// The WebSocket handshake failed in another way (a malformed answer, the connection
    /// closed during the handshake); the source is a [`HandshakeError`].
    #[error("websocket handshake failed")]
    Handshake(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The server accepted the upgrade with a `Sec-WebSocket-Extensions` answer the client
    /// must refuse (RFC 7692 5): an extension that was not offered, an invalid
    /// permessage-deflate parameter. A server bug; turning
    /// [`ClientConfig::compression`](crate::ClientConfig::compression) off avoids it.
    #[error("the server's extension answer is refused")]
    Extension(#[source] NegotiationError),
    /// With [`ClientConfig::resume`](crate::ClientConfig::resume): the socket closed or
    /// failed before the server's first session frame (PROTOCOL.md 9.3) arrived.
    #[error("no session frame from the server: {reason}")]
    SessionStart {
        /// What happened instead.
        reason: String,
    },
}

/// Why the server's answer to the upgrade request is not a WebSocket handshake (the source
/// of [`ConnectError::Handshake`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The connection closed before the response head ended.
    #[error("the connection closed during the handshake")]
    Closed,
    /// The response head is longer than the client reads (`max` bytes).
    #[error("the response head exceeds {max} bytes")]
    ResponseTooLong {
        /// The longest head accepted.
        max: usize,
    },
    /// The response is not HTTP/1.1 (what the parser said).
    #[error("malformed http response: {0}")]
    Malformed(String),
    /// A 101 response without `Upgrade: websocket` and `Connection: Upgrade`.
    #[error("the response does not upgrade to websocket")]
    NotUpgraded,
    /// `Sec-WebSocket-Accept` is missing or does not match the request's key.
    #[error("wrong Sec-WebSocket-Accept")]
    WrongAccept,
    /// The response names a subprotocol the request did not ask for.
    #[error("the server chose a subprotocol that was not requested")]
    UnrequestedProtocol,
}

/// [`Client::flush`](crate::Client::flush) stopped before every queued message was
/// written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The client was closed; the `unsent` messages still queued were discarded.
    #[error("client closed with {unsent} messages unsent")]
    Closed {
        /// Messages that were queued and will never be written.
        unsent: usize,
    },
    /// The client stopped reconnecting (`max_retries` reached, or `should_reconnect`
    /// declined the server's close frame) while `unsent` messages were queued. They stay
    /// queued: call [`Client::reconnect`](crate::Client::reconnect) and flush again, or
    /// close the client.
    #[error("client stopped reconnecting with {unsent} messages unsent")]
    Stopped {
        /// Messages still queued.
        unsent: usize,
    },
}
