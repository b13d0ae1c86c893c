//! The client side of the sync router: subscribe to models and collections by path,
//! receive the server's pushes, and create, read, update and delete with error-first
//! replies, over any [`Network`] with one connection, such as `ws_client::Client`.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use sync::client::{SyncClient, SyncClientConfig};
//! use ws_client::{Client, ClientConfig};
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Book {
//!     id: u64,
//!     title: String,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("ws://127.0.0.1:9000/ws", ClientConfig::default())?;
//! let sync = SyncClient::attach(&client, SyncClientConfig::default())?;
//!
//! // A model: every change of /api/book/1, typed.
//! let book = sync.sync("/api/book/1")?;
//! let mut changes = book.typed::<Book>();
//! book.connect().await?; // waits for the link, then for the server's `subscribed`
//!
//! // A collection: kept by id, current after reconnects.
//! let books = sync.collection::<Book>("/api/books")?;
//! books.start().await?; // subscribes with a snapshot: the list comes with the answer
//! println!("{} books", books.len());
//!
//! // Requests, error-first.
//! let renamed: Book = sync.update("/api/book/1", &serde_json::json!({"title": "Dune"})).await?;
//! let added: Book = sync.create("/api/books", &serde_json::json!({"title": "Emma"})).await?;
//! println!("{renamed:?} {added:?}");
//!
//! while let Some(change) = changes.recv().await {
//!     let change = change?;
//!     println!("{:?} {:?} (snapshot: {})", change.op, change.data, change.snapshot);
//! }
//! # Ok(()) }
//! ```
//!
//! The wire protocol is in `docs/PROTOCOL.md`, section 7; this module speaks its client
//! side. [`SyncClient::attach`] attaches a router named `sync` to the network and returns
//! a cheap handle; [`SyncClient::sync`] gives a [`Subscription`] handle per path, and
//! [`SyncClient::collection`] a [`Collection`].
//!
//! # Subscriptions
//! [`Subscription::connect`] sends `sub` and waits for the answer: subscribed, or refused
//! (`no_route`, `forbidden`, `bad_request`). From that call on the path is *wanted*: it
//! is subscribed again after every reconnect, until [`Subscription::close`] (which sends
//! `unsub`) or a refusal. The server's pushes for the path reach every stream of it:
//! [`Subscription::messages`] gives [`SyncMessage`]s with raw JSON,
//! [`Subscription::typed`] decodes each as `T` and reports (does not skip) one that does
//! not decode. A stream ends when its subscription is forgotten (close, refusal) or the
//! client closes for good.
//!
//! # Subscribing with a snapshot
//! An application that wants the path's current value as well as its changes calls
//! [`Subscription::connect_with_snapshot`] (a [`Collection`]'s
//! [`start`](Collection::start) does): one `sub` with `"snapshot":true`, a versioned
//! subscription (PROTOCOL.md 7.3, rule 8), whose answer carries the value. It reaches the
//! path's streams and collections as a snapshot ([`SyncMessage::snapshot`]), followed by
//! the pushes the server sent while it read the value, held until the answer arrived and
//! applied after it (those newer than the snapshot only, by version), then by the pushes
//! that follow, each versioned, so a lost one is seen as a gap and the router asks for a
//! new snapshot ([`BackgroundError::Resync`]). A [`connect`](Subscription::connect)
//! followed by a [`fetch`](Subscription::fetch) (a `read`) has a race instead: a change
//! made after the read took its value can be pushed before the read's reply, which then
//! overwrites it with the older value. `connect()` stays plain (no read, no value, the
//! wire of a `sub` without `snapshot`) for a path that has no `read` handler or whose
//! value the application does not need.
//!
//! # Requests
//! [`SyncClient::create`], [`read`](SyncClient::read), [`update`](SyncClient::update)
//! and [`delete`](SyncClient::delete) send a `request` and wait for its `reply`, at most
//! [`request_timeout`](SyncClientConfig::request_timeout)
//! ([`SyncClient::request_with_timeout`] takes another). Error-first: the server's `err`
//! is [`RequestError::Remote`] with its code; a value of the wrong type is
//! [`RequestError::Decode`]. A request needs no subscription; when it succeeds the server
//! also pushes the change to the path's subscribers (the caller included, when
//! subscribed).
//!
//! # Collections
//! A [`Collection`] keeps the items of a collection path by their `id` field, in
//! insertion order: [`Collection::start`] subscribes with a snapshot (the list), then
//! every `add`, `change` and `remove` push is applied as the router handles it. A
//! snapshot (at start, after every reconnect or lost push, or [`Subscription::fetch`])
//! replaces the contents; each message's effect is announced on [`Collection::changes`]
//! (for a snapshot, the difference with the old contents). Calling `start` again asks for
//! a snapshot again, on the same subscription.
//!
//! # Reconnects
//! Ids are per connection: the server never answers, on a new connection, a request made
//! on the old one. So when the link drops (the router sees `Removed`), every pending
//! request and [`fetch`](Subscription::fetch) fails with [`RequestError::Closed`] (it may
//! or may not have been handled), and every subscription is marked not subscribed; the
//! wanted paths are kept, and a [`connect`](Subscription::connect) in progress keeps
//! waiting. Nothing arrives on the streams meanwhile. Requests made while the link is down
//! wait in the client's offline queue.
//!
//! When the link is back (`Added`), before the frames queued meanwhile, the router sends
//! a `sub` for every wanted path (in path order); with
//! [`read_after_resubscribe`](SyncClientConfig::read_after_resubscribe) (the default), a
//! path that was subscribed before the drop asks for a snapshot (`"snapshot":true`, a
//! versioned subscription: PROTOCOL.md 7.3, rule 8). What the user observes for such a
//! path is, in order:
//!
//! 1. the snapshot, as a [`SyncMessage`] with `op: Change`, `snapshot: true` and the
//!    current value as `data`: the model, or for a collection path the array of all
//!    items. A [`Collection`] replaces its contents with it and announces the difference
//!    in one [`CollectionEvent`] with `snapshot: true`;
//! 2. the pushes the server sent while it read the snapshot, held until it arrived, those
//!    newer than the snapshot only (their versions say which);
//! 3. the pushes that follow, as usual.
//!
//! Every change made while the link was down is therefore in the snapshot, as a state
//! rather than one message per change (intermediate values are not replayed), and a
//! change made while the server read the snapshot comes after it, so the newest value
//! wins. At most [`max_held_pushes`](SyncClientConfig::max_held_pushes) pushes are held
//! per path; past that the router asks for another snapshot. A versioned push whose
//! version skips one means pushes were lost: the router reports
//! [`BackgroundError::Resync`] and subscribes again with a snapshot, which arrives as in
//! step 1. A re-subscribe that is refused, or whose snapshot read fails (a model deleted
//! meanwhile answers `not_found`), gets [`BackgroundError::ResubscribeRefused`], and the
//! path is forgotten. Without `read_after_resubscribe` only step 3 happens: a snapshot
//! comes only from an explicit [`connect_with_snapshot`](Subscription::connect_with_snapshot)
//! (or [`Collection::start`]) or [`fetch`](Subscription::fetch).
//!
//! # Backpressure and bounds
//! Every queue is bounded by a field of [`SyncClientConfig`]. A [`SyncStream`],
//! [`TypedSyncStream`] or [`CollectionChanges`] that is full makes the router wait for
//! its reader, and the client stops reading its socket meanwhile: nothing is dropped, but
//! a stream nobody reads stalls every incoming frame, replies included. Requests waiting
//! at once are capped by [`max_pending_requests`](SyncClientConfig::max_pending_requests).
//! The [`ErrorStream`]s never hold the router back: a full one loses the newest errors.
//! Frames from the server that are not sync frames are logged and ignored.
//!
//! # Before the first connection
//! A network has no connection to queue frames on before its first one opens (a
//! `ws_client::Client` just created is still connecting). Requests wait for it within
//! their timeout; [`Subscription::connect`] waits for it too (the `sub` goes out when it
//! opens); [`SyncClient::ready`] waits for it.
//!
//! # Closing
//! When the network closes for good (`ws_client::Client::close`, or its last handle
//! dropped), it detaches the router: every waiting call fails with `Closed` and every
//! stream ends.

mod collection;
mod config;
mod error;
mod router;
mod state;
mod stream;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use network_core::client::answer_within;
use network_core::session;
use network_core::{AttachError, Network, envelope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout_at};

pub use self::collection::{Collection, CollectionChange, CollectionChanges, CollectionEvent};
pub use self::config::SyncClientConfig;
pub use self::error::{
    BackgroundError, InvalidItem, InvalidPath, RequestError, StartError, SubscribeError, UnsubscribeError,
};
use self::state::{Reply, Request, SyncCore};
pub use self::stream::{ErrorStream, SyncMessage, SyncStream, TypedMessage, TypedSyncStream};
use crate::protocol::{Method, ROUTER, valid_path};

/// The client side of the sync router, attached to a network: a cheap handle, `Send +
/// Sync`, whose clones all share one router. See the [module docs](self).
///
/// The router is meant for a network with one connection (a client); it treats the last
/// connection it saw open as the link to the server.
#[derive(Clone)]
pub struct SyncClient {
    core: Arc<SyncCore>,
}

impl fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncClient").field("config", &self.core.config).finish_non_exhaustive()
    }
}

/// The body of a `request` frame, borrowing the payload so that it is serialised once.
/// Same shape as [`Frame::Request`](crate::protocol::Frame::Request).
#[derive(Serialize)]
#[serde(tag = "t", rename = "request")]
struct RequestFrame<'a, B: ?Sized> {
    method: Method,
    path: &'a str,
    data: &'a B,
    id: u64,
}

impl SyncClient {
    /// Attaches the sync router (named `sync`) to `network` and returns its handle.
    ///
    /// Fails when a router named `sync` is attached already, or with
    /// [`AttachError::InvalidConfig`] naming a field of `config` out of its range.
    /// Needs a tokio runtime (the router runs in a task of its own).
    pub fn attach<N: Network>(network: &N, config: SyncClientConfig) -> Result<Self, AttachError> {
        let core = SyncCore::new(config.validated()?);
        session::attach(network, core.clone())?;
        Ok(Self { core })
    }

    /// The subscription handle of `path` (see [`InvalidPath`] for what a path is).
    /// Nothing is sent until [`Subscription::connect`].
    pub fn sync(&self, path: &str) -> Result<Subscription, InvalidPath> {
        if !valid_path(path) {
            return Err(InvalidPath(path.to_owned()));
        }
        Ok(Subscription { core: self.core.clone(), path: path.into() })
    }

    /// A [`Collection`] of the items at `path`, empty until [`Collection::start`].
    pub fn collection<T>(&self, path: &str) -> Result<Collection<T>, InvalidPath>
    where
        T: DeserializeOwned + Clone + Send + 'static,
    {
        Ok(Collection::new(self.sync(path)?))
    }

    /// Creates an item in the collection at `path` with `body`; returns the server's value
    /// (typically the item with its id). See [`request`](Self::request).
    ///
    /// # Cancel safety
    /// Dropping the future forgets the request (a later reply is ignored); the request
    /// itself may have been sent already.
    pub async fn create<B, R>(&self, path: &str, body: &B) -> Result<R, RequestError>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.request(Method::Create, path, body).await
    }

    /// Reads the model or collection at `path` (a collection answers a JSON array). See
    /// [`request`](Self::request).
    ///
    /// # Cancel safety
    /// As for [`create`](Self::create).
    pub async fn read<R: DeserializeOwned>(&self, path: &str) -> Result<R, RequestError> {
        self.request(Method::Read, path, &()).await
    }

    /// Updates the model at `path` with `body`; returns the server's value (typically the
    /// whole updated model). See [`request`](Self::request).
    ///
    /// # Cancel safety
    /// As for [`create`](Self::create).
    pub async fn update<B, R>(&self, path: &str, body: &B) -> Result<R, RequestError>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.request(Method::Update, path, body).await
    }

    /// Deletes the model at `path`; returns the server's value (typically the deleted
    /// model; `()` ignores it). See [`request`](Self::request).
    ///
    /// # Cancel safety
    /// As for [`create`](Self::create).
    pub async fn delete<R: DeserializeOwned>(&self, path: &str) -> Result<R, RequestError> {
        self.request(Method::Delete, path, &()).await
    }

    /// Sends the request `method` on `path` with `body` as its `data` (`&()` for none:
    /// `null`) and waits, at most [`request_timeout`](SyncClientConfig::request_timeout),
    /// for its `reply`, decoded as `R` (`()` or `serde_json::Value` to take anything).
    ///
    /// Error-first: the server's `err` comes back as [`RequestError::Remote`].
    /// [`RequestError::Timeout`] when no reply came in time (the pending entry is removed
    /// and a later reply ignored); [`RequestError::Closed`] when the link dropped before
    /// the reply (the request may or may not have been handled) or the client closed for
    /// good; [`RequestError::Decode`] when the reply is not an `R`. Before the network's
    /// first connection the request waits for it, within the timeout. See
    /// [`RequestError`] for the others.
    ///
    /// # Cancel safety
    /// As for [`create`](Self::create).
    pub async fn request<B, R>(&self, method: Method, path: &str, body: &B) -> Result<R, RequestError>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.request_with_timeout(method, path, body, self.core.config.request_timeout).await
    }

    /// [`request`](Self::request), waiting at most `limit` in all (the first connection
    /// included) instead of [`request_timeout`](SyncClientConfig::request_timeout).
    ///
    /// # Cancel safety
    /// As for [`create`](Self::create).
    pub async fn request_with_timeout<B, R>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        limit: Duration,
    ) -> Result<R, RequestError>
    where
        B: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let deadline = Instant::now() + limit;
        if !valid_path(path) {
            return Err(RequestError::InvalidPath(path.to_owned()));
        }
        let id = self.core.session.allocate_id();
        let frame = RequestFrame { method, path, data: body, id };
        let message = envelope::json(ROUTER, &frame).map_err(RequestError::Encode)?;
        let data = call(&self.core, id, message, |reply| Request::Call { reply }, deadline, limit).await?;
        serde_json::from_value(data).map_err(RequestError::Decode)
    }

    /// A new stream of the problems no caller waits for: `error` frames that answer no
    /// request, refused re-subscribes and failed reads after a reconnect. See
    /// [`ErrorStream`] for its bound.
    pub fn errors(&self) -> ErrorStream {
        ErrorStream::new(self.core.subscribe_errors())
    }

    /// Waits until the router knows the network's connection: at once when it does, else
    /// until the first connection opens. `false` if the network closed for good first.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self) -> bool {
        self.core.session.ready().await
    }

    /// The options the router runs with.
    pub fn config(&self) -> &SyncClientConfig {
        &self.core.config
    }
}

/// Registers a request and waits for its answer: waits for the first connection, sends
/// `message` (which carries `id`) and waits for the reply until `deadline`.
async fn call<T>(
    core: &SyncCore,
    id: u64,
    message: network_core::Message,
    request: impl FnOnce(Reply<T>) -> Request,
    deadline: Instant,
    limit: Duration,
) -> Result<T, RequestError> {
    match timeout_at(deadline, core.session.ready()).await {
        Ok(true) => {}
        Ok(false) => return Err(RequestError::Closed),
        Err(_) => return Err(RequestError::Timeout(limit)),
    }
    let (reply, answer) = oneshot::channel();
    core.start(id, message, request(reply))?;
    let _pending = core.session.pending(id);
    match timeout_at(deadline, answer).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(error))) => Err(RequestError::Remote(error)),
        Ok(Err(_)) => Err(RequestError::Closed),
        Err(_) => Err(RequestError::Timeout(limit)),
    }
}

/// A handle to the subscription of one path: cheap to clone, `Send + Sync`.
///
/// Made by [`SyncClient::sync`]. Dropping it changes nothing: the subscription and its
/// streams belong to the client; [`close`](Self::close) ends them.
#[derive(Clone)]
pub struct Subscription {
    core: Arc<SyncCore>,
    path: Arc<str>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("path", &self.path).finish()
    }
}

impl Subscription {
    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the server confirmed the subscription on the current connection.
    pub fn is_subscribed(&self) -> bool {
        self.core.is_subscribed(&self.path)
    }

    /// Subscribes: sends `sub` and waits for `subscribed` (or the refusal), at most
    /// [`request_timeout`](SyncClientConfig::request_timeout).
    ///
    /// From this call on the path is wanted: it is subscribed again (and read again, see
    /// the [module docs](self#reconnects)) after every reconnect, until
    /// [`close`](Self::close) or a refusal. While the link is down the `sub` waits for the
    /// next connection. Subscribing to a path subscribed already returns at once. See
    /// [`SubscribeError`] for the failures.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the path stays wanted and is subscribed
    /// when the server answers.
    pub async fn connect(&self) -> Result<(), SubscribeError> {
        self.subscribe(false).await
    }

    /// Subscribes with a snapshot (a versioned subscription, PROTOCOL.md 7.3 rule 8):
    /// sends `sub` with `"snapshot":true` and waits, at most
    /// [`request_timeout`](SyncClientConfig::request_timeout), until the server's answer,
    /// which carries the path's current value, has been delivered to the path's streams
    /// and collections as a snapshot ([`SyncMessage::snapshot`]). Returns once the
    /// collections have applied it (the streams get it in order, right after). This is
    /// [`connect`](Self::connect) and [`fetch`](Self::fetch) in one exchange, without
    /// their race (see the [module docs](self#subscribing-with-a-snapshot)).
    ///
    /// The pushes that follow are versioned: those the server sent while it read the
    /// value come after the snapshot (the newer ones only), and a lost push makes the
    /// client ask for a new snapshot ([`BackgroundError::Resync`]).
    ///
    /// On a path subscribed already, it asks for a snapshot again: the server keeps the
    /// subscription (making it versioned if it was plain) and answers its current value.
    /// When a `sub` with a snapshot is in flight for the path already, the call waits for
    /// its answer instead of sending another. While the link is down the `sub` waits for
    /// the next connection, and asks for a snapshot there.
    ///
    /// Fails as [`connect`](Self::connect) does; a failed read of the value is a refusal
    /// ([`SubscribeError::Refused`] with the read's code: `no_handler` when the path has
    /// no `read`, `not_found`, `forbidden`, ...), and the path is then not subscribed,
    /// even if it was before: the server answers one state.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the path stays wanted, and the snapshot
    /// is delivered to its streams and collections when it arrives.
    pub async fn connect_with_snapshot(&self) -> Result<(), SubscribeError> {
        self.subscribe(true).await
    }

    /// [`connect`](Self::connect), or with `snapshot`
    /// [`connect_with_snapshot`](Self::connect_with_snapshot).
    async fn subscribe(&self, snapshot: bool) -> Result<(), SubscribeError> {
        let Some(answer) = self.core.subscribe(&self.path, snapshot)? else {
            return Ok(());
        };
        answer_within(
            self.core.config.request_timeout,
            answer,
            Err(SubscribeError::Closed),
            SubscribeError::Timeout,
        )
        .await
    }

    /// Unsubscribes: forgets the path at once (it is not subscribed again after
    /// reconnects, `connect()` calls still waiting fail with
    /// [`SubscribeError::Cancelled`], and its streams and collections' change streams end
    /// once drained) and, when the link is up, sends `unsub` and waits for
    /// `unsubscribed`, at most [`request_timeout`](SyncClientConfig::request_timeout).
    /// While the link is down, or for a path that was not wanted, there is nothing to tell
    /// the server. The server's `not_subscribed` counts as success.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the path is forgotten and the `unsub`
    /// sent anyway.
    pub async fn close(&self) -> Result<(), UnsubscribeError> {
        let Some((id, answer)) = self.core.unsubscribe(&self.path)? else {
            return Ok(());
        };
        let _pending = self.core.session.pending(id);
        answer_within(
            self.core.config.request_timeout,
            answer,
            Err(UnsubscribeError::Closed),
            UnsubscribeError::Timeout,
        )
        .await
    }

    /// Reads the path now (a `read` request) and delivers the answer to its streams and
    /// collections as a snapshot ([`SyncMessage::snapshot`]): the analogue of Backbone's
    /// `fetch`. Returns once the collections have applied it (the streams get it in order,
    /// right after). A failed read delivers nothing and leaves the subscription as it was.
    ///
    /// A push can overtake the read's reply (a change made after the read took its value
    /// is pushed before the reply), which then overwrites it with the older value until
    /// the next push; [`connect_with_snapshot`](Self::connect_with_snapshot), which also
    /// works on a path subscribed already, has no such race.
    ///
    /// Fails as [`SyncClient::request_with_timeout`] does, within
    /// [`request_timeout`](SyncClientConfig::request_timeout).
    ///
    /// # Cancel safety
    /// Dropping the future forgets the read: a later answer is not delivered.
    pub async fn fetch(&self) -> Result<(), RequestError> {
        let limit = self.core.config.request_timeout;
        let deadline = Instant::now() + limit;
        let id = self.core.session.allocate_id();
        let frame = RequestFrame { method: Method::Read, path: &self.path, data: &(), id };
        let message = envelope::json(ROUTER, &frame).map_err(RequestError::Encode)?;
        let path = self.path.to_string();
        call(&self.core, id, message, |reply| Request::Fetch { path, reply }, deadline, limit).await
    }

    /// A new stream of the path's messages: the server's pushes and the snapshots. Create
    /// it before [`connect`](Self::connect) to miss nothing. See [`SyncStream`].
    pub fn messages(&self) -> SyncStream {
        SyncStream::new(self.core.clone(), self.path.clone())
    }

    /// A new stream of the path's messages with `data` decoded as `T`; a message that
    /// does not decode is reported as an `Err` item, not skipped. See [`TypedSyncStream`].
    pub fn typed<T: DeserializeOwned>(&self) -> TypedSyncStream<T> {
        self.messages().typed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Frame;

    #[test]
    fn borrowed_requests_have_the_shape_of_frames() {
        let body = serde_json::json!({"title": "Dune"});
        let borrowed = RequestFrame { method: Method::Update, path: "/api/book/7", data: &body, id: 3 };
        let owned =
            Frame::Request { method: Method::Update, path: "/api/book/7".into(), data: body.clone(), id: 3 };
        assert_eq!(serde_json::to_string(&borrowed).unwrap(), serde_json::to_string(&owned).unwrap());
        assert_eq!(
            serde_json::to_string(&borrowed).unwrap(),
            r#"{"t":"request","method":"update","path":"/api/book/7","data":{"title":"Dune"},"id":3}"#
        );
        let read = RequestFrame { method: Method::Read, path: "/api/books", data: &(), id: 4 };
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"{"t":"request","method":"read","path":"/api/books","data":null,"id":4}"#
        );
    }
}
