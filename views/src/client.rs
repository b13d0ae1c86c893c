//! The client side of the views router: open views, follow who else has them open, and
//! ask the server for counts, over any [`Network`] with one connection, such as
//! `ws_client::Client`.
//!
//! ```no_run
//! use views::client::{ViewsClient, ViewsClientConfig};
//! use ws_client::{Client, ClientConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::default().query_param("user", "ada");
//! let client = Client::connect("ws://127.0.0.1:9000/ws", config)?;
//! let views = ViewsClient::attach(&client, ViewsClientConfig::default())?;
//! let doc = views.open("doc-7").await?; // waits for the link, then for the server's state
//!
//! let mut changes = doc.changes();
//! println!("{} members, {} users", doc.member_count(), doc.user_count());
//! while let Some(change) = changes.recv().await {
//!     for member in &change.joined {
//!         println!("{} arrived", member.user.as_deref().unwrap_or("someone"));
//!     }
//!     println!("now: {:?}", doc.members().iter().map(|m| &m.key).collect::<Vec<_>>());
//! }
//!
//! // Counts of views this client has not opened.
//! for info in views.info_matching("^doc-").await? {
//!     println!("{}: {} clients", info.view, info.clients);
//! }
//! views.close(&doc).await?;
//! # Ok(()) }
//! ```
//!
//! The wire protocol is in `docs/PROTOCOL.md`, section 6; this module speaks its client
//! side. [`ViewsClient::attach`] attaches a router named `views` to the network and returns
//! a cheap handle.
//!
//! # Views and members
//! [`ViewsClient::open`] sends `open` and waits for the server's `state` (or its refusal,
//! `forbidden` or `bad_request`). It returns a [`View`] handle: its
//! [`members`](View::members), sorted by key, are the client's copy of the view's state,
//! kept current by the server's `diff` frames, and [`changes`](View::changes) streams what
//! each frame changed as a [`ViewChange`] (joined, changed, left). Diffs are upserts:
//! applying one twice changes nothing, and a frame that changes nothing emits no
//! `ViewChange`. Opening a view that is open already returns a handle to the same view
//! without asking the server again.
//!
//! An open view is *wanted*: it stays open until [`ViewsClient::close`] (or
//! [`close_name`](ViewsClient::close_name)), which sends `close` and forgets it. Dropping
//! every [`View`] handle does **not** close it: views belong to the client, as channels
//! do, so that handles can be dropped and opened again freely without a close and an open
//! going over the wire each time.
//!
//! # Reconnects
//! A new connection has no views open (`docs/PROTOCOL.md` 6.3, rule 4). When the link
//! drops (the router sees `Removed`) every view keeps its last known members, and
//! [`View::is_synced`] turns false. On every (re)connect (`Added`) the router sends `open`
//! for every wanted view while the client restores, so the re-opens reach the server
//! before the frames queued while the link was down. Each re-open is answered by a fresh
//! `state`, which replaces the members; its difference with the old ones arrives as one
//! `ViewChange` (none when nothing changed). A re-open that the server refuses (its
//! authorization changed) closes the view: its streams get a last change with
//! [`closed`](ViewChange::closed) and end.
//!
//! Requests are per connection: the server never answers, on a new connection, a request
//! made on the old one. So at `Removed`, pending info requests fail with
//! [`InfoError::Closed`] and pending closes succeed (a new connection has nothing open),
//! while an [`open`](ViewsClient::open) in progress is not failed: the open is sent again
//! on the next connection and its answer settles it.
//!
//! # Backpressure and bounds
//! Every queue is bounded by a field of [`ViewsClientConfig`]. A [`ChangeStream`] that is
//! full makes the router wait for its reader, and the client stops reading its socket
//! meanwhile: nothing is dropped, but a stream that nobody reads stalls every incoming
//! frame. Requests waiting for an answer are capped by
//! [`max_pending_requests`](ViewsClientConfig::max_pending_requests) and each waits at
//! most [`request_timeout`](ViewsClientConfig::request_timeout).
//!
//! # Before the first connection
//! A network has no connection to send on before its first one opens (a
//! `ws_client::Client` just created is still connecting). Until then
//! [`open`](ViewsClient::open) registers the view, which is opened when the connection
//! opens, and waits within its timeout; the `info` requests wait for the connection
//! within theirs. From the first connection on, frames are queued by the client while the
//! link is down.
//!
//! # Closing
//! When the network closes for good (`ws_client::Client::close`, or its last handle
//! dropped), it detaches the router: every waiting call fails with `Closed` and every
//! stream ends.

mod change;
mod config;
mod error;
mod matches;
mod router;
mod state;
mod stream;

use std::fmt;
use std::sync::Arc;

use network_core::session;
use network_core::{AttachError, Network};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout_at};

pub use self::change::ViewChange;
pub use self::config::ViewsClientConfig;
pub use self::error::{CloseError, InfoError, OpenError, RemoteError};
pub use self::matches::InfoMatches;
use self::state::ViewsCore;
pub use self::stream::ChangeStream;
use crate::protocol::{Frame, MAX_PATTERN_LEN, Member, ViewInfo, valid_view};

/// The client side of the views router, attached to a network: a cheap handle, `Send +
/// Sync`, whose clones all share one router. See the [module docs](self).
///
/// The router is meant for a network with one connection (a client); it treats the last
/// connection it saw open as the link to the server.
#[derive(Clone)]
pub struct ViewsClient {
    core: Arc<ViewsCore>,
}

impl fmt::Debug for ViewsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewsClient").field("config", &self.core.config).finish_non_exhaustive()
    }
}

impl ViewsClient {
    /// Attaches the views router (named `views`) to `network` and returns its handle.
    ///
    /// Fails when a router named `views` is attached already, or with
    /// [`AttachError::InvalidConfig`] naming a field of `config` out of its range.
    /// Needs a tokio runtime (the router runs in a task of its own).
    pub fn attach<N: Network>(network: &N, config: ViewsClientConfig) -> Result<Self, AttachError> {
        let core = ViewsCore::new(config.validated()?);
        session::attach(network, core.clone())?;
        Ok(Self { core })
    }

    /// Opens view `name`: sends `open` and waits for the server's `state`, at most
    /// [`request_timeout`](ViewsClientConfig::request_timeout). Returns the view's handle,
    /// whose members are that state.
    ///
    /// From this call on the view is wanted: it is opened again after every reconnect,
    /// until [`close`](Self::close) or a refusal. Before the first connection, or while
    /// the link is down, the open is sent when the link opens. A view open (and current)
    /// already returns at once, with nothing sent; a view being opened waits for the open
    /// in flight. See [`OpenError`] for the failures.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the view stays wanted, and is open once
    /// the server answers. Call `open` again for its handle, or
    /// [`close_name`](Self::close_name) to give up on it.
    pub async fn open(&self, name: &str) -> Result<View, OpenError> {
        if !valid_view(name) {
            return Err(OpenError::InvalidName(name.to_owned()));
        }
        let limit = self.core.config.request_timeout;
        let deadline = Instant::now() + limit;
        let (generation, answer) = self.core.open(name)?;
        if let Some(answer) = answer {
            answer_by(deadline, answer, Err(OpenError::Closed), || OpenError::Timeout(limit)).await?;
        }
        Ok(View { core: self.core.clone(), name: name.into(), generation })
    }

    /// Closes `view`: see [`close_name`](Self::close_name). Does nothing when that view is
    /// closed already, even if a view of the same name was opened since.
    ///
    /// # Cancel safety
    /// As for [`close_name`](Self::close_name).
    pub async fn close(&self, view: &View) -> Result<(), CloseError> {
        self.close_view(&view.name, Some(view.generation)).await
    }

    /// Closes view `name`: forgets it at once (it is not re-opened after reconnects, its
    /// change streams end, its handles see no members, and opens of it still waiting fail
    /// with [`OpenError::Cancelled`]) and, when the link is up, sends `close` and waits
    /// for `closed`, at most [`request_timeout`](ViewsClientConfig::request_timeout).
    ///
    /// The server's `not_open` counts as success, and so do a view that is not open, a
    /// link that is down (a new connection has no views open) and a network closed for
    /// good.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: the view is forgotten and the close is
    /// sent anyway.
    pub async fn close_name(&self, name: &str) -> Result<(), CloseError> {
        self.close_view(name, None).await
    }

    async fn close_view(&self, name: &str, generation: Option<u64>) -> Result<(), CloseError> {
        let limit = self.core.config.request_timeout;
        let deadline = Instant::now() + limit;
        let Some((id, answer)) = self.core.close_view(name, generation)? else {
            return Ok(());
        };
        let _pending = self.core.session.pending(id);
        answer_by(deadline, answer, Ok(()), || CloseError::Timeout(limit)).await
    }

    /// Asks the server for the counts of view `name`: its connections, its users with
    /// their connection counts, its anonymous connections. `None` when nobody has it open.
    /// The server may refuse with `forbidden` ([`InfoError::Refused`]) when this
    /// connection may not see the view.
    ///
    /// Waits for the answer at most [`request_timeout`](ViewsClientConfig::request_timeout)
    /// (before the first connection, that includes waiting for it). The view need not be
    /// open on this client. See [`InfoError`] for the failures.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future forgets the request (a late answer is ignored).
    pub async fn info(&self, name: &str) -> Result<Option<ViewInfo>, InfoError> {
        self.info_one(name, false).await
    }

    /// [`info`](Self::info) with each user's connection ids
    /// ([`UserCount::connections`](crate::UserCount::connections)), for debugging. The
    /// server refuses it with `forbidden` unless it allows this connection debug answers.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`info`](Self::info).
    pub async fn info_debug(&self, name: &str) -> Result<Option<ViewInfo>, InfoError> {
        self.info_one(name, true).await
    }

    /// Asks the server for the counts of every view whose name matches `pattern`, a
    /// regular expression in Rust `regex` syntax of at most 256 bytes (`^doc-` for every
    /// view whose name starts with `doc-`). Views nobody has open are not listed, nor
    /// those this connection may not see; a server lists at most 100 views by default
    /// ([`InfoMatches::is_truncated`] says when more matched).
    ///
    /// An invalid expression is refused by the server with `bad_request`
    /// ([`InfoError::Refused`]). Otherwise as [`info`](Self::info).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`info`](Self::info).
    pub async fn info_matching(&self, pattern: &str) -> Result<InfoMatches, InfoError> {
        self.info_pattern(pattern, false).await
    }

    /// [`info_matching`](Self::info_matching) with each user's connection ids, for
    /// debugging. Refused with `forbidden` as [`info_debug`](Self::info_debug).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`info`](Self::info).
    pub async fn info_matching_debug(&self, pattern: &str) -> Result<InfoMatches, InfoError> {
        self.info_pattern(pattern, true).await
    }

    /// The options the router runs with.
    pub fn config(&self) -> &ViewsClientConfig {
        &self.core.config
    }

    async fn info_one(&self, name: &str, debug: bool) -> Result<Option<ViewInfo>, InfoError> {
        if !valid_view(name) {
            return Err(InfoError::InvalidName(name.to_owned()));
        }
        let views = self.request_info(Some(name), None, debug).await?;
        Ok(views.into_iter().find(|info| info.view == name))
    }

    async fn info_pattern(&self, pattern: &str, debug: bool) -> Result<InfoMatches, InfoError> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(InfoError::PatternTooLong);
        }
        self.request_info(None, Some(pattern), debug).await
    }

    async fn request_info(
        &self,
        view: Option<&str>,
        pattern: Option<&str>,
        debug: bool,
    ) -> Result<InfoMatches, InfoError> {
        let limit = self.core.config.request_timeout;
        let deadline = Instant::now() + limit;
        match timeout_at(deadline, self.core.session.ready()).await {
            Ok(true) => {}
            Ok(false) => return Err(InfoError::Closed),
            Err(_) => return Err(InfoError::Timeout(limit)),
        }
        let id = self.core.session.allocate_id();
        let frame = Frame::Info {
            id,
            view: view.map(str::to_owned),
            pattern: pattern.map(str::to_owned),
            debug,
            views: None,
            truncated: false,
        };
        let answer = self.core.start_info(id, &frame)?;
        let _pending = self.core.session.pending(id);
        answer_by(deadline, answer, Err(InfoError::Closed), || InfoError::Timeout(limit)).await
    }
}

/// A handle to one open view of a [`ViewsClient`]: cheap to clone, `Send + Sync`.
///
/// Made by [`ViewsClient::open`]. Its reads are the client's copy of the view's state,
/// taken under a short lock. Once the view is closed ([`ViewsClient::close`], a refused
/// re-open, the network closed for good) the handle stays usable but reports no members,
/// even if a view of the same name is opened later (open it again for a handle to that
/// one). Dropping handles does not close the view (see the [module docs](self)).
#[derive(Clone)]
pub struct View {
    core: Arc<ViewsCore>,
    name: Arc<str>,
    /// Which opening of `name` this handle belongs to.
    generation: u64,
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").field("name", &self.name).field("open", &self.is_open()).finish()
    }
}

impl View {
    /// The view's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every member, sorted by key (`c:` anonymous connections before `u:` users): the
    /// current state, empty once the view is closed.
    ///
    /// While the link is down these are the members last known; [`is_synced`](Self::is_synced)
    /// tells whether they are current.
    pub fn members(&self) -> Vec<Member> {
        self.core.members(&self.name, self.generation)
    }

    /// The key of this client's own member (`u:USER`, or `c:ID` without a user id), as
    /// the server's latest `state` of the view said, so that a caller can mark itself in
    /// [`members`](Self::members). `None` before the first `state`, once the view is
    /// closed, or from a server that does not send it. An anonymous client's key changes
    /// on reconnect (its connection id does); the re-open's `state` brings the new one.
    pub fn you(&self) -> Option<String> {
        self.core.you(&self.name, self.generation)
    }

    /// How many members: users plus anonymous connections.
    pub fn member_count(&self) -> usize {
        self.core.counts(&self.name, self.generation).members
    }

    /// How many distinct users (members with a user id), whatever their number of clients.
    pub fn user_count(&self) -> usize {
        self.core.counts(&self.name, self.generation).users
    }

    /// How many anonymous connections (members without a user id).
    pub fn anonymous_count(&self) -> usize {
        let counts = self.core.counts(&self.name, self.generation);
        counts.members - counts.users
    }

    /// How many connections have the view open: the sum of every member's `clients`.
    pub fn client_count(&self) -> usize {
        self.core.counts(&self.name, self.generation).clients
    }

    /// Whether the view is still open (wanted) on this client: until it is closed, its
    /// re-open refused, or the network closed for good.
    pub fn is_open(&self) -> bool {
        self.core.is_open(&self.name, self.generation)
    }

    /// Whether the members are current: the server's state arrived on the current
    /// connection. False while the link is down and until the re-open is answered.
    pub fn is_synced(&self) -> bool {
        self.core.is_synced(&self.name, self.generation)
    }

    /// A new stream of this view's changes. See [`ChangeStream`] for what it carries, when
    /// it ends and its backpressure. A stream of a closed view ends at once.
    pub fn changes(&self) -> ChangeStream {
        ChangeStream::new(self.clone())
    }
}

/// Waits for `answer` until `deadline`: a dropped sender gives `dropped`, the deadline
/// `timed_out()`.
async fn answer_by<T, E>(
    deadline: Instant,
    answer: oneshot::Receiver<Result<T, E>>,
    dropped: Result<T, E>,
    timed_out: impl FnOnce() -> E,
) -> Result<T, E> {
    match timeout_at(deadline, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => dropped,
        Err(_) => Err(timed_out()),
    }
}
