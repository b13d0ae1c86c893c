//! Errors of the client side of the views router.

use std::time::Duration;

use network_core::SendError;

/// An `error` frame from the server: its machine-readable code (see
/// [`protocol::codes`](crate::protocol::codes)) and its human-readable message.
///
/// Defined in `network-core`, shared by every router.
pub use network_core::RemoteError;

/// [`ViewsClient::open`](super::ViewsClient::open) did not end with the view open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not a view name (1 to 128 bytes without control characters); nothing
    /// was sent.
    #[error("invalid view name {0:?}")]
    InvalidName(String),
    /// The server refused: code `forbidden` (its authorization said no; the message says
    /// why), `bad_request`, or another code (but `limit`, which is [`Limit`](Self::Limit)).
    /// The view is forgotten. Retrying makes sense only once something changed (a login).
    #[error("open refused")]
    Refused(#[source] RemoteError),
    /// The server refused with `limit`: the connection has as many views open as the
    /// server allows (`max_views_per_connection`). The view is forgotten; close another
    /// view, then open again.
    #[error("too many views open")]
    Limit(#[source] RemoteError),
    /// No answer within [`request_timeout`](super::ViewsClientConfig::request_timeout),
    /// most often because the link is down or not up yet. The view stays open (wanted):
    /// it is opened on every reconnect and a late answer still opens it; call `open`
    /// again to wait for it and get its handle, or
    /// [`close_name`](super::ViewsClient::close_name) to give up on it.
    #[error("no answer to the open within {0:?}")]
    Timeout(Duration),
    /// [`close`](super::ViewsClient::close) or
    /// [`close_name`](super::ViewsClient::close_name) was called for the view before the
    /// server answered.
    #[error("the view was closed before the open was answered")]
    Cancelled,
    /// The network closed for good (the client was closed or dropped).
    #[error("views client closed")]
    Closed,
    /// [`max_pending_requests`](super::ViewsClientConfig::max_pending_requests) requests
    /// wait for answers already; nothing was sent. Retry once some are answered.
    #[error("too many requests waiting for an answer")]
    TooManyPending,
    /// The open frame could not be queued: the client's queue is full or the client is
    /// closed. Nothing changed; retry later.
    #[error("cannot send the open")]
    Send(#[source] SendError),
}

/// [`ViewsClient::close`](super::ViewsClient::close) could not confirm that the server
/// closed the view. In every case the view is forgotten locally: it is not re-opened after
/// reconnects, its change streams end, and the server forgets it at the latest when the
/// connection closes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The server refused with a code other than `not_open` (which counts as success).
    #[error("close refused")]
    Refused(#[source] RemoteError),
    /// No answer within [`request_timeout`](super::ViewsClientConfig::request_timeout).
    #[error("no answer to the close within {0:?}")]
    Timeout(Duration),
    /// [`max_pending_requests`](super::ViewsClientConfig::max_pending_requests) requests
    /// wait for answers already: no close was sent, and the server may keep sending diffs
    /// (ignored) until the next reconnect.
    #[error("too many requests waiting for an answer")]
    TooManyPending,
    /// The close frame could not be queued (the client's queue is full): the server may
    /// keep sending diffs (ignored) until the next reconnect.
    #[error("cannot send the close")]
    Send(#[source] SendError),
}

/// An `info` request did not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfoError {
    /// The name is not a view name (1 to 128 bytes without control characters); nothing
    /// was sent.
    #[error("invalid view name {0:?}")]
    InvalidName(String),
    /// The pattern is longer than 256 bytes; nothing was sent. (Its syntax is checked by
    /// the server, which answers [`Refused`](Self::Refused) with `bad_request`.)
    #[error("pattern longer than {} bytes", crate::protocol::MAX_PATTERN_LEN)]
    PatternTooLong,
    /// The server refused: `bad_request` for a pattern that is not a valid regular
    /// expression (the message says why; fix the request), `forbidden` for a view this
    /// connection may not see, or for a debug request the server does not allow it.
    #[error("info refused")]
    Refused(#[source] RemoteError),
    /// No answer within [`request_timeout`](super::ViewsClientConfig::request_timeout).
    #[error("no answer to the info request within {0:?}")]
    Timeout(Duration),
    /// The link to the server closed before the answer (the server never answers across
    /// a reconnect), or the client closed for good. Retry: while the link is down the
    /// request waits in the client's queue for the next connection.
    #[error("connection closed before the answer")]
    Closed,
    /// [`max_pending_requests`](super::ViewsClientConfig::max_pending_requests) requests
    /// wait for answers already; nothing was sent. Retry once some are answered.
    #[error("too many requests waiting for an answer")]
    TooManyPending,
    /// The request could not be queued: the client's queue is full or the client is
    /// closed.
    #[error("cannot send the info request")]
    Send(#[source] SendError),
}
