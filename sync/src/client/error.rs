//! Errors of the client side of the sync router.

use std::sync::Arc;
use std::time::Duration;

use network_core::{EncodeError, SendError};

use crate::protocol::RemoteError;

/// A path given to [`SyncClient::sync`](super::SyncClient::sync) or
/// [`SyncClient::collection`](super::SyncClient::collection) is not a sync path: it must
/// start with `/`, be at most 256 bytes and contain no control characters, `?` or `#`
/// (see `docs/PROTOCOL.md`, section 7.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid sync path {0:?}")]
pub struct InvalidPath(pub String);

/// [`Subscription::connect`](super::Subscription::connect) or
/// [`connect_with_snapshot`](super::Subscription::connect_with_snapshot) did not end with
/// the path subscribed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The server refused: code `no_route` (no pattern on the server matches the path),
    /// `forbidden` (its authorization said no; the message says why) or `bad_request`, or
    /// another code (but `limit`, which is [`Limit`](Self::Limit)). The subscription is
    /// forgotten and its streams end. Retrying makes sense only once something changed (a
    /// login, a server update).
    #[error("subscription refused")]
    Refused(#[source] RemoteError),
    /// The server refused with `limit`: the connection has as many subscriptions as the
    /// server allows (`max_subscriptions_per_connection`). The subscription is forgotten
    /// and its streams end; close another subscription, then connect again.
    #[error("too many subscriptions")]
    Limit(#[source] RemoteError),
    /// No answer within [`request_timeout`](super::SyncClientConfig::request_timeout), most
    /// often because the link is down or not up yet. The subscription stays wanted: a late
    /// `subscribed` still activates it, and it is sent again on every reconnect. Call
    /// [`close`](super::Subscription::close) to give up on it.
    #[error("no answer to the subscription within {0:?}")]
    Timeout(Duration),
    /// [`close`](super::Subscription::close) was called for the path before the server
    /// answered.
    #[error("the subscription was closed before the server answered")]
    Cancelled,
    /// [`max_pending_requests`](super::SyncClientConfig::max_pending_requests) requests
    /// wait for answers already; nothing was sent and nothing changed. Retry once some are
    /// answered.
    #[error("too many requests waiting for an answer")]
    TooManyPending,
    /// The network closed for good (the client was closed or dropped).
    #[error("sync client closed")]
    Closed,
    /// The `sub` frame could not be queued: the client's queue is full or the client is
    /// closed. Nothing changed; retry later.
    #[error("cannot send the subscription")]
    Send(#[source] SendError),
}

/// [`Subscription::close`](super::Subscription::close) could not confirm that the server
/// stopped the subscription. In every case the subscription is forgotten locally: it is
/// not renewed after reconnects, its streams have ended, and the server forgets it at the
/// latest when the connection closes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsubscribeError {
    /// The server refused with a code other than `not_subscribed` (which counts as
    /// success).
    #[error("unsubscription refused")]
    Refused(#[source] RemoteError),
    /// No answer within [`request_timeout`](super::SyncClientConfig::request_timeout). The
    /// server may keep pushing (ignored) until it answers or the connection closes.
    #[error("no answer to the unsubscription within {0:?}")]
    Timeout(Duration),
    /// [`max_pending_requests`](super::SyncClientConfig::max_pending_requests) requests
    /// wait for answers already: no `unsub` was sent, and the server may keep pushing
    /// (ignored) until the next reconnect.
    #[error("too many requests waiting for an answer")]
    TooManyPending,
    /// The network closed for good before an answer.
    #[error("sync client closed")]
    Closed,
    /// The `unsub` frame could not be queued (the client's queue is full): the server may
    /// keep pushing (ignored) until the next reconnect.
    #[error("cannot send the unsubscription")]
    Send(#[source] SendError),
}

/// A request ([`SyncClient::create`](super::SyncClient::create), `read`, `update`,
/// `delete`, or [`Subscription::fetch`](super::Subscription::fetch)) did not get a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The path is not a sync path (see [`InvalidPath`]); nothing was sent.
    #[error("invalid sync path {0:?}")]
    InvalidPath(String),
    /// The body could not be serialised as JSON; nothing was sent. Fix the type.
    #[error("cannot encode the request")]
    Encode(#[source] EncodeError),
    /// The server answered with an error (error-first): the handler's own, or `no_route`,
    /// `no_handler`, `forbidden`, `bad_request`, `not_found`, `internal` (see
    /// [`codes`](crate::protocol::codes)). The request was handled and refused; retrying
    /// the same request gets the same answer unless something changed.
    #[error("the server refused the request")]
    Remote(#[source] RemoteError),
    /// No answer within the timeout. The request may or may not have been handled; a late
    /// answer is ignored. Read the state again before retrying a non-idempotent request.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The link to the server dropped before the answer (the server never answers across
    /// a reconnect: ids are per connection), or the client closed for good. The request
    /// may or may not have been handled; retry once the link is back (while it is down a
    /// new request waits in the client's queue).
    #[error("connection closed before the answer")]
    Closed,
    /// [`max_pending_requests`](super::SyncClientConfig::max_pending_requests) requests
    /// wait for answers already; nothing was sent. Retry once some are answered.
    #[error("too many requests waiting for an answer")]
    TooManyPending,
    /// The request could not be queued: the client's queue is full or the client is
    /// closed. Nothing was sent.
    #[error("cannot send the request")]
    Send(#[source] SendError),
    /// The answer is not of the expected type. The request was handled.
    #[error("cannot decode the answer")]
    Decode(#[source] serde_json::Error),
}

/// [`Collection::start`](super::Collection::start) did not fill the collection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Subscribing with a snapshot failed: refused, or the server's read of the list
    /// failed ([`SubscribeError::Refused`] with the read's code), or no answer. Nothing
    /// was applied. See [`SubscribeError`].
    #[error("cannot subscribe to the collection")]
    Subscribe(#[source] SubscribeError),
}

/// Why an item from the server is not in a [`Collection`](super::Collection); reported as
/// [`CollectionChange::Invalid`](super::CollectionChange::Invalid). The server sent data
/// the application's type does not describe: fix one or the other.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidItem {
    /// The item has no `id` field, or one that is neither a string nor a number.
    #[error("item without a string or number id")]
    NoId,
    /// The item does not decode as the collection's type. It is not applied: a new id is
    /// not added, and an id the collection has keeps its previous value.
    #[error("item does not decode as the collection's type")]
    Decode(#[source] Arc<serde_json::Error>),
    /// The answer to the collection's read is not a JSON array; the contents are unchanged.
    #[error("the collection's read did not answer a list")]
    NotAList,
}

/// A problem that no caller is waiting for, delivered on
/// [`SyncClient::errors`](super::SyncClient::errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackgroundError {
    /// The server sent an `error` frame that answers no pending request: a frame it could
    /// not read (`malformed`, `unexpected`), a late answer to a request that timed out, or
    /// an error of the application's server.
    #[error("the server reported an error")]
    Server {
        /// The code and message.
        #[source]
        error: RemoteError,
        /// The path concerned, when the server named one.
        path: Option<String>,
    },
    /// A path subscribed before a reconnect was refused when it was subscribed again after
    /// it (its authorization changed, or the new server has no such pattern). It is
    /// forgotten and its streams have ended.
    #[error("subscribing to {path:?} again after a reconnect was refused")]
    ResubscribeRefused {
        /// The path.
        path: String,
        /// The server's code and message.
        #[source]
        error: RemoteError,
    },
    /// A versioned subscription's push skipped versions: pushes were lost (the server's
    /// cluster link dropped). The router subscribes again with a snapshot, whose value
    /// reaches the path's streams as a snapshot; nothing to do but take note.
    #[error("pushes to {path:?} were missed (version {received} after {last}); resynced")]
    Resync {
        /// The path.
        path: String,
        /// The version of the last push applied.
        last: u64,
        /// The version received.
        received: u64,
    },
}
