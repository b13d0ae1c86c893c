//! The server side: the views router, its state, and the presence handle.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use network_core::{Adapter, Connection, ConnectionId, Network, NetworkEvent, Router, Target, envelope};
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use tokio::sync::Notify;

use crate::protocol::{Frame, MAX_PATTERN_LEN, Member, ROUTER, UserCount, ViewInfo, codes, valid_view};

mod cluster;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Authorize = Arc<dyn Fn(Connection, String) -> BoxFuture<Result<(), String>> + Send + Sync>;
type AuthorizeDebug = Arc<dyn Fn(Connection) -> BoxFuture<Result<(), String>> + Send + Sync>;

/// Options of the views router.
#[non_exhaustive]
pub struct ViewsConfig {
    /// Decides whether a connection may open a view: `Err(reason)` refuses with
    /// `forbidden`. Default: everyone may open every view. Unless
    /// [`authorize_info`](Self::authorize_info) is set, it also decides which views the
    /// connection's `info` requests see.
    pub authorize: Option<Authorize>,
    /// Decides which views a peer's `info` requests may see, one call per view:
    /// `Err(reason)` leaves the view out of a pattern's answer, and refuses a request for
    /// that view by name with `forbidden`. Default: the [`authorize`](Self::authorize) hook,
    /// so a connection learns about the views it may open (all of them when neither hook
    /// is set). Server code asking through [`Presence`] is not subject to it.
    pub authorize_info: Option<Authorize>,
    /// Decides whether a connection may ask for debug answers (`"debug": true`, which list
    /// every user's connection ids): `Err(reason)` refuses the request with `forbidden`.
    /// Default: nobody may.
    pub authorize_debug: Option<AuthorizeDebug>,
    /// Views one answer to a peer's `info` covers at most: of the views a pattern matches,
    /// the first `max_info_views` by name are considered and the answer says
    /// `"truncated": true` when more matched. Also bounds the `authorize_info` calls per
    /// request. Default 100.
    pub max_info_views: usize,
    /// Changes within this interval are sent as one diff per view. Default 25 ms.
    pub diff_interval: Duration,
    /// Views one connection may have open at once; more are refused with `limit`.
    /// Default 256.
    pub max_views_per_connection: usize,
}

impl Default for ViewsConfig {
    fn default() -> Self {
        Self {
            authorize: None,
            authorize_info: None,
            authorize_debug: None,
            max_info_views: 100,
            diff_interval: Duration::from_millis(25),
            max_views_per_connection: 256,
        }
    }
}

impl fmt::Debug for ViewsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewsConfig")
            .field("authorize", &self.authorize.is_some())
            .field("authorize_info", &self.authorize_info.is_some())
            .field("authorize_debug", &self.authorize_debug.is_some())
            .field("max_info_views", &self.max_info_views)
            .field("diff_interval", &self.diff_interval)
            .field("max_views_per_connection", &self.max_views_per_connection)
            .finish()
    }
}

/// The views router could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A configuration value is out of range; the message names it.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The router could not be attached (a router named `views` already is).
    #[error("cannot attach the views router")]
    Attach(#[from] network_core::AttachError),
}

/// An `info` pattern was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// Longer than 256 bytes.
    #[error("pattern longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
    /// Not a valid regular expression, or too big once compiled.
    #[error("invalid pattern")]
    Invalid(#[source] regex::Error),
}

impl ViewsConfig {
    /// Sets the [`authorize`](Self::authorize) hook.
    pub fn authorize<F, Fut>(mut self, authorize: F) -> Self
    where
        F: Fn(Connection, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize = Some(Arc::new(move |connection, view| Box::pin(authorize(connection, view))));
        self
    }

    /// Sets the [`authorize_info`](Self::authorize_info) hook.
    pub fn authorize_info<F, Fut>(mut self, authorize_info: F) -> Self
    where
        F: Fn(Connection, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize_info =
            Some(Arc::new(move |connection, view| Box::pin(authorize_info(connection, view))));
        self
    }

    /// Sets the [`authorize_debug`](Self::authorize_debug) hook.
    pub fn authorize_debug<F, Fut>(mut self, authorize_debug: F) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize_debug = Some(Arc::new(move |connection| Box::pin(authorize_debug(connection))));
        self
    }

    /// Sets [`max_info_views`](Self::max_info_views).
    pub fn max_info_views(mut self, max_info_views: usize) -> Self {
        self.max_info_views = max_info_views;
        self
    }

    /// Sets [`diff_interval`](Self::diff_interval).
    pub fn diff_interval(mut self, diff_interval: Duration) -> Self {
        self.diff_interval = diff_interval;
        self
    }

    /// Sets [`max_views_per_connection`](Self::max_views_per_connection).
    pub fn max_views_per_connection(mut self, max: usize) -> Self {
        self.max_views_per_connection = max;
        self
    }

    /// Attaches the views router to `network` and returns the handle that answers
    /// presence questions from server code.
    pub fn attach<N: Network>(self, network: &N) -> Result<Presence<N>, SetupError> {
        if self.max_views_per_connection == 0 {
            return Err(SetupError::Config("max_views_per_connection must be positive"));
        }
        if self.max_info_views == 0 {
            return Err(SetupError::Config("max_info_views must be positive"));
        }
        let shared = Arc::new(Shared {
            config: self,
            state: Mutex::new(State::default()),
            flush_gate: tokio::sync::Mutex::new(()),
            dirty: Arc::new(Notify::new()),
        });
        let inbox = network.adapter().subscribe(cluster::TOPIC);
        if inbox.is_some() {
            shared.lock().replication.enable();
        }
        network.attach(ViewsRouter { shared: shared.clone() })?;
        tokio::spawn(flusher(network.clone(), Arc::downgrade(&shared), shared.dirty.clone()));
        if let Some(inbox) = inbox {
            tokio::spawn(cluster::replicate(network.clone(), Arc::downgrade(&shared), inbox));
        }
        Ok(Presence { network: network.clone(), shared })
    }
}

/// Answers presence questions from server code: cheap to clone, `Send + Sync`.
///
/// It is generic over the network so that presence spanning several nodes (through the
/// network's adapter) can answer through the same handle.
pub struct Presence<N: Network> {
    network: N,
    shared: Arc<Shared>,
}

impl<N: Network> Clone for Presence<N> {
    fn clone(&self) -> Self {
        Self { network: self.network.clone(), shared: self.shared.clone() }
    }
}

impl<N: Network> fmt::Debug for Presence<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presence").field("views", &self.shared.lock().views.len()).finish()
    }
}

impl<N: Network> Presence<N> {
    /// Counts for view `name`; `None` when nobody has it open. Unlike a peer's `info`
    /// request, no hook and no limit applies: this is the application asking.
    pub fn info(&self, name: &str, debug: bool) -> Option<ViewInfo> {
        self.shared.info(name, debug)
    }

    /// Counts for every open view whose name matches `pattern` (Rust `regex` syntax),
    /// ordered by name: all of them, unlike a peer's `info` request, which
    /// [`ViewsConfig::authorize_info`] filters and [`ViewsConfig::max_info_views`] bounds.
    pub fn info_matching(&self, pattern: &str, debug: bool) -> Result<Vec<ViewInfo>, PatternError> {
        let pattern = compile(pattern)?;
        Ok(self.shared.info_matching(&pattern, debug))
    }

    /// The members of view `name`, ordered by key.
    pub fn members(&self, name: &str) -> Vec<Member> {
        self.shared.lock().views.get(name).map(|view| view.members(false)).unwrap_or_default()
    }

    /// The network this presence is attached to.
    pub fn network(&self) -> &N {
        &self.network
    }

    /// The names of the views somebody has open, ordered.
    pub fn views(&self) -> Vec<String> {
        let state = self.shared.lock();
        let open = state.views.iter().filter(|(_, view)| !view.members.is_empty());
        let mut names: Vec<String> = open.map(|(name, _)| name.to_string()).collect();
        names.sort();
        names
    }
}

fn compile(pattern: &str) -> Result<Regex, PatternError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(PatternError::TooLong);
    }
    // Bounded compiled size: a peer's pattern must not cost unbounded memory.
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(PatternError::Invalid)
}

#[derive(Default)]
struct MemberState {
    user: Option<String>,
    data: Value,
    /// A handful at most (one per tab): a vector is a tenth of a B-tree node's size.
    connections: Vec<ConnectionId>,
}

impl MemberState {
    fn to_member(&self, key: &str, debug: bool) -> Member {
        Member {
            key: key.to_owned(),
            user: self.user.clone(),
            clients: u32::try_from(self.connections.len()).unwrap_or(u32::MAX),
            data: self.data.clone(),
            connections: debug.then(|| self.connection_ids()),
        }
    }

    fn connection_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.connections.iter().map(|id| id.as_u64()).collect();
        ids.sort_unstable();
        ids
    }
}

#[derive(Default)]
struct ViewState {
    /// By member key. A hash map, not a B-tree: a B-tree node holds room for 11 entries
    /// (over 1 KB here) even for a view of one; outputs are sorted when built.
    members: HashMap<String, MemberState>,
    /// Each member's entry as the last diff (or none yet) announced it.
    announced: HashMap<String, Member>,
    /// Keys changed since the last diff.
    dirty: HashSet<String>,
    /// Keys that a state sent since the last diff showed otherwise than `announced` (a
    /// member that joined or changed since): the next diff states them even if they are
    /// back to their announced entry, or gone without ever having been announced, so that
    /// the openers who saw them are corrected too. Always a subset of `dirty`.
    shown: HashSet<String>,
}

impl ViewState {
    fn members(&self, debug: bool) -> Vec<Member> {
        let mut members: Vec<Member> =
            self.members.iter().map(|(key, member)| member.to_member(key, debug)).collect();
        members.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        members
    }

    fn info(&self, name: &str, debug: bool) -> ViewInfo {
        let mut info = ViewInfo { view: name.to_owned(), clients: 0, users: Vec::new(), anonymous: 0 };
        for member in self.members.values() {
            let clients = u32::try_from(member.connections.len()).unwrap_or(u32::MAX);
            info.clients = info.clients.saturating_add(clients);
            match &member.user {
                Some(user) => info.users.push(UserCount {
                    user: user.clone(),
                    clients,
                    connections: debug.then(|| member.connection_ids()),
                }),
                None => info.anonymous = info.anonymous.saturating_add(clients),
            }
        }
        info.users.sort_by(|a, b| a.user.cmp(&b.user));
        info
    }

    /// The full state for an opener; remembers the entries it shows that the next diff
    /// must restate (see `shown`).
    fn state(&mut self) -> Vec<Member> {
        let members = self.members(false);
        for member in &members {
            if self.announced.get(&member.key) != Some(member) {
                self.shown.insert(member.key.clone());
            }
        }
        members
    }

    /// The diff since the last one, and records it as announced.
    fn take_diff(&mut self) -> (Vec<Member>, Vec<String>) {
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        for key in std::mem::take(&mut self.dirty) {
            let shown = self.shown.remove(&key);
            match self.members.get(&key) {
                Some(member) => {
                    let entry = member.to_member(&key, false);
                    if shown || self.announced.get(&key) != Some(&entry) {
                        self.announced.insert(key, entry.clone());
                        joins.push(entry);
                    }
                }
                None => {
                    if self.announced.remove(&key).is_some() || shown {
                        leaves.push(key);
                    }
                }
            }
        }
        joins.sort_by(|a, b| a.key.cmp(&b.key));
        leaves.sort();
        (joins, leaves)
    }
}

#[derive(Default)]
struct State {
    views: HashMap<Arc<str>, ViewState>,
    /// The views each connection has open, with its member key in each. A vector: a
    /// connection has a few views open (at most `max_views_per_connection`), and an empty
    /// hash map per connection would cost more than the entries.
    open: HashMap<ConnectionId, Vec<(Arc<str>, String)>>,
    /// Views with changes not yet sent.
    dirty: HashSet<Arc<str>>,
    /// This node's changes not yet told to the other nodes (when there are any).
    replication: cluster::Outgoing,
}

impl State {
    /// Opens view `name` for a connection of this node.
    fn add_local(&mut self, connection: &Connection, name: &str) {
        let identity = connection.identity();
        let user = identity.as_ref().and_then(|identity| identity.user_id.clone());
        let data = identity.map(|identity| identity.data.clone()).unwrap_or_default();
        self.replication.opened(name, connection.id(), &user, &data);
        self.add(connection.id(), user, data, name);
    }

    /// Closes view `name` for a connection of this node.
    fn remove_local(&mut self, id: ConnectionId, name: &str) -> bool {
        let removed = self.remove(id, name);
        if removed {
            self.replication.closed(name, id);
        }
        removed
    }

    /// Opens view `name` for connection `id` (of this node or another). Idempotent.
    fn add(&mut self, id: ConnectionId, user: Option<String>, data: Value, name: &str) {
        let name: Arc<str> = name.into();
        let key = crate::protocol::member_key(user.as_deref(), id.as_u64());
        let view = self.views.entry(name.clone()).or_default();
        let member = view.members.entry(key.clone()).or_default();
        member.user = user;
        member.data = data;
        if !member.connections.contains(&id) {
            member.connections.push(id);
        }
        view.dirty.insert(key.clone());
        let open = self.open.entry(id).or_default();
        match open.iter_mut().find(|(open, _)| *open == name) {
            Some(entry) => entry.1 = key,
            None => open.push((name.clone(), key)),
        }
        self.dirty.insert(name);
    }

    fn remove(&mut self, id: ConnectionId, name: &str) -> bool {
        let Some(open) = self.open.get_mut(&id) else { return false };
        let Some(index) = open.iter().position(|(open, _)| &**open == name) else { return false };
        let (name, key) = open.swap_remove(index);
        if open.is_empty() {
            self.open.remove(&id);
        }
        if let Some(view) = self.views.get_mut(&name) {
            if let Some(member) = view.members.get_mut(&key) {
                member.connections.retain(|open| *open != id);
                if member.connections.is_empty() {
                    view.members.remove(&key);
                }
            }
            view.dirty.insert(key);
            self.dirty.insert(name);
        }
        true
    }
}

struct Shared {
    config: ViewsConfig,
    state: Mutex<State>,
    /// Held while a diff is broadcast and while an opener gets its state and joins the
    /// view's room, so that no connection receives a diff older than its state.
    flush_gate: tokio::sync::Mutex<()>,
    /// Wakes the flusher; shared with it so that it can wait without keeping `Shared` alive.
    dirty: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn info(&self, name: &str, debug: bool) -> Option<ViewInfo> {
        let state = self.lock();
        state.views.get(name).filter(|view| !view.members.is_empty()).map(|view| view.info(name, debug))
    }

    /// The names of the open views matching `pattern`, the first `max` by name, and
    /// whether more matched.
    fn names_matching(&self, pattern: &Regex, max: usize) -> (Vec<Arc<str>>, bool) {
        let mut names: Vec<Arc<str>> = {
            let state = self.lock();
            let open =
                state.views.iter().filter(|(name, view)| !view.members.is_empty() && pattern.is_match(name));
            open.map(|(name, _)| name.clone()).collect()
        };
        let truncated = names.len() > max;
        if truncated {
            // Only the first `max` need sorting.
            names.select_nth_unstable(max);
            names.truncate(max);
        }
        names.sort_unstable();
        (names, truncated)
    }

    /// Counts for `names` (in that order), leaving out views that have emptied meanwhile.
    fn infos(&self, names: &[Arc<str>], debug: bool) -> Vec<ViewInfo> {
        let state = self.lock();
        let open = names.iter().filter_map(|name| {
            state.views.get(name).filter(|view| !view.members.is_empty()).map(|view| view.info(name, debug))
        });
        open.collect()
    }

    fn info_matching(&self, pattern: &Regex, debug: bool) -> Vec<ViewInfo> {
        let state = self.lock();
        let mut infos: Vec<ViewInfo> = state
            .views
            .iter()
            .filter(|(name, view)| !view.members.is_empty() && pattern.is_match(name))
            .map(|(name, view)| view.info(name, debug))
            .collect();
        infos.sort_by(|a, b| a.view.cmp(&b.view));
        infos
    }
}

impl State {
    /// Takes every pending diff.
    fn take_diffs(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        for name in std::mem::take(&mut self.dirty) {
            let Some(view) = self.views.get_mut(&name) else { continue };
            let (joins, leaves) = view.take_diff();
            if view.members.is_empty() {
                self.views.remove(&name);
            }
            if !joins.is_empty() || !leaves.is_empty() {
                frames.push(Frame::Diff { view: name.to_string(), joins, leaves });
            }
        }
        frames
    }
}

/// The adapter room of a view's members (channel rooms start with `/`, so no clash).
fn view_room(name: &str) -> network_core::Room {
    format!("views:{name}").into()
}

/// Sends the pending diffs every `diff_interval` while there are changes; ends when the
/// router is gone.
async fn flusher<N: Network>(network: N, shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let dirty = wake.notified();
        tokio::pin!(dirty);
        // Registered before checking, so a change made meanwhile is not missed.
        dirty.as_mut().enable();
        let Some(strong) = shared.upgrade() else { return };
        let interval = strong.config.diff_interval;
        let pending = {
            let state = strong.lock();
            !state.dirty.is_empty() || state.replication.is_pending()
        };
        drop(strong);
        if !pending {
            dirty.await;
        }
        tokio::time::sleep(interval).await;
        let Some(strong) = shared.upgrade() else { return };
        let _gate = strong.flush_gate.lock().await;
        let (diffs, replication) = {
            let mut state = strong.lock();
            (state.take_diffs(), state.replication.take())
        };
        if let Some(update) = replication {
            cluster::send(&network, &strong, update, None).await;
        }
        for frame in diffs {
            let Frame::Diff { view, .. } = &frame else { continue };
            // Every node holds every node's members and diffs its own openers.
            let target = Target::room(view_room(view)).local_only();
            match envelope::json(ROUTER, &frame) {
                Ok(message) => {
                    if let Err(error) = network.adapter().broadcast(&target, message).await {
                        tracing::warn!(%error, "views diff not delivered");
                    }
                }
                Err(error) => tracing::error!(%error, "cannot encode a views diff"),
            }
        }
    }
}

struct ViewsRouter {
    shared: Arc<Shared>,
}

impl Drop for ViewsRouter {
    fn drop(&mut self) {
        // Lets the flusher notice that the router is gone.
        self.shared.dirty.notify_one();
    }
}

impl<N: Network> Router<N> for ViewsRouter {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Message { connection, message } => {
                match envelope::decode::<Frame>(ROUTER, &message) {
                    Ok(frame) => self.frame(network, &connection, frame).await,
                    Err(error) => {
                        // The id is echoed when it can be read, so the client's waiting
                        // request fails now rather than at its timeout (PROTOCOL.md 2.3).
                        let id = envelope::peek(ROUTER, &message).id;
                        reply(
                            &connection,
                            &error_frame(codes::MALFORMED, format!("not a views frame: {error}"), id, None),
                        );
                    }
                }
            }
            NetworkEvent::Removed { connection, .. } => {
                let mut state = self.shared.lock();
                let names: Vec<Arc<str>> = state
                    .open
                    .get(&connection.id())
                    .map(|open| open.iter().map(|(name, _)| name.clone()).collect())
                    .unwrap_or_default();
                for name in names {
                    state.remove_local(connection.id(), &name);
                }
                drop(state);
                self.shared.dirty.notify_one();
            }
            _ => {}
        }
    }
}

impl ViewsRouter {
    async fn frame<N: Network>(&self, network: &N, connection: &Connection, frame: Frame) {
        match frame {
            Frame::Open { view, id } => self.open(network, connection, view, id).await,
            Frame::Close { view, id } => {
                let removed = self.shared.lock().remove_local(connection.id(), &view);
                if removed {
                    let _ = network.adapter().leave(connection.id(), &view_room(&view)).await;
                    self.shared.dirty.notify_one();
                    reply(connection, &Frame::Closed { view, id });
                } else {
                    reply(
                        connection,
                        &error_frame(codes::NOT_OPEN, format!("view {view:?} is not open"), id, Some(view)),
                    );
                }
            }
            Frame::Info { id, view, pattern, debug, views: None, .. } => {
                let answer = self.info(connection, id, view, pattern, debug).await;
                reply(connection, &answer);
            }
            Frame::Info { id, .. } => reply(connection, &unexpected(Some(id))),
            Frame::State { id, .. } | Frame::Closed { id, .. } | Frame::Error { id, .. } => {
                reply(connection, &unexpected(id))
            }
            Frame::Diff { .. } => reply(connection, &unexpected(None)),
        }
    }

    async fn open<N: Network>(&self, network: &N, connection: &Connection, view: String, id: Option<u64>) {
        if !valid_view(&view) {
            let message = "view names are 1 to 128 bytes without control characters".into();
            return reply(connection, &error_frame(codes::BAD_REQUEST, message, id, None));
        }
        let (already_open, count) = {
            let state = self.shared.lock();
            let open = state.open.get(&connection.id());
            (open.is_some_and(|open| open.iter().any(|(name, _)| **name == *view)), open.map_or(0, Vec::len))
        };
        if !already_open {
            if count >= self.shared.config.max_views_per_connection {
                let message =
                    format!("at most {} views per connection", self.shared.config.max_views_per_connection);
                return reply(connection, &error_frame(codes::LIMIT, message, id, Some(view)));
            }
            if let Some(authorize) = &self.shared.config.authorize
                && let Err(reason) = guarded(authorize(connection.clone(), view.clone())).await
            {
                return reply(connection, &error_frame(codes::FORBIDDEN, reason, id, Some(view)));
            }
        }
        // Under the gate: the state sent here is never followed by an older diff.
        let _gate = self.shared.flush_gate.lock().await;
        if connection.is_closed() {
            return;
        }
        if let Err(error) = network.adapter().join(connection.id(), view_room(&view)).await {
            tracing::warn!(%error, "joining a view's room failed");
        }
        let members = {
            let mut state = self.shared.lock();
            if !already_open {
                state.add_local(connection, &view);
            }
            state.views.get_mut(view.as_str()).map(ViewState::state).unwrap_or_default()
        };
        self.shared.dirty.notify_one();
        let user = connection.identity().and_then(|identity| identity.user_id.clone());
        let you = Some(crate::protocol::member_key(user.as_deref(), connection.id().as_u64()));
        reply(connection, &Frame::State { view, members, you, id });
    }
}

impl ViewsRouter {
    /// Answers a peer's `info`: only what its hooks let it see, at most `max_info_views`
    /// views.
    async fn info(
        &self,
        connection: &Connection,
        id: u64,
        view: Option<String>,
        pattern: Option<String>,
        debug: bool,
    ) -> Frame {
        let config = &self.shared.config;
        // Checked before any view is looked at: a refused request costs no view hook call.
        if debug {
            let allowed = match &config.authorize_debug {
                Some(hook) => guarded(hook(connection.clone())).await,
                None => Err("debug answers are not enabled".to_owned()),
            };
            if let Err(reason) = allowed {
                return error_frame(codes::FORBIDDEN, reason, Some(id), view);
            }
        }
        let (names, truncated) = match (view, pattern) {
            (Some(view), None) => {
                if !valid_view(&view) {
                    let message = "view names are 1 to 128 bytes without control characters".into();
                    return error_frame(codes::BAD_REQUEST, message, Some(id), None);
                }
                if let Err(reason) = self.may_see(connection, &view).await {
                    return error_frame(codes::FORBIDDEN, reason, Some(id), Some(view));
                }
                (vec![Arc::from(view)], false)
            }
            (None, Some(pattern)) => {
                let pattern = match compile(&pattern) {
                    Ok(pattern) => pattern,
                    Err(error) => return error_frame(codes::BAD_REQUEST, error_text(&error), Some(id), None),
                };
                let (names, truncated) = self.shared.names_matching(&pattern, config.max_info_views);
                // At most `max_info_views` hook calls, run together: one slow check does not
                // add up.
                let checks = names.iter().map(|name| self.may_see(connection, name));
                let verdicts = futures_util::future::join_all(checks).await;
                let visible = names.into_iter().zip(verdicts).filter(|(_, verdict)| verdict.is_ok());
                (visible.map(|(name, _)| name).collect(), truncated)
            }
            _ => {
                let message = "give exactly one of view and pattern".into();
                return error_frame(codes::BAD_REQUEST, message, Some(id), None);
            }
        };
        let views = self.shared.infos(&names, debug);
        Frame::Info { id, view: None, pattern: None, debug: false, views: Some(views), truncated }
    }

    /// Whether `connection` may learn about view `name` through `info`.
    async fn may_see(&self, connection: &Connection, name: &str) -> Result<(), String> {
        let config = &self.shared.config;
        match config.authorize_info.as_ref().or(config.authorize.as_ref()) {
            Some(hook) => guarded(hook(connection.clone(), name.to_owned())).await,
            None => Ok(()),
        }
    }
}

/// Runs an application hook; a panic refuses instead of ending the router task, which
/// runs every views request.
async fn guarded(hook: BoxFuture<Result<(), String>>) -> Result<(), String> {
    match AssertUnwindSafe(hook).catch_unwind().await {
        Ok(verdict) => verdict,
        Err(_) => {
            tracing::error!("a views authorization hook panicked");
            Err("the authorization failed".to_owned())
        }
    }
}

fn error_text(error: &PatternError) -> String {
    match error {
        PatternError::Invalid(source) => format!("invalid pattern: {source}"),
        other => other.to_string(),
    }
}

/// The answer to a frame only the server sends, echoing its `id`.
fn unexpected(id: Option<u64>) -> Frame {
    error_frame(codes::UNEXPECTED, "a frame only the server sends".into(), id, None)
}

fn error_frame(code: &str, message: String, id: Option<u64>, view: Option<String>) -> Frame {
    Frame::Error { code: code.to_owned(), message, id, view }
}

fn reply(connection: &Connection, frame: &Frame) {
    match envelope::json(ROUTER, frame) {
        Ok(message) => {
            if let Err(error) = connection.send(message) {
                tracing::debug!(connection = %connection.id(), %error, "views reply not sent");
            }
        }
        Err(error) => tracing::error!(%error, "cannot encode a views frame"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use network_core::{CloseFrame, ConnectionMeta, Link, Message, SendError};

    use super::*;

    struct NoLink;

    impl Link for NoLink {
        fn send(&self, _message: Message) -> Result<(), SendError> {
            Ok(())
        }

        fn close(&self, _frame: CloseFrame) {}
    }

    fn connection() -> Connection {
        Connection::new(ConnectionId::next(), ConnectionMeta::default(), Arc::new(NoLink)).0
    }

    fn key(connection: &Connection) -> String {
        format!("c:{}", connection.id().as_u64())
    }

    /// Opens `name` for `connection` as the router does, returning the state's keys.
    fn open(state: &mut State, connection: &Connection, name: &str) -> Vec<String> {
        state.add_local(connection, name);
        state.views.get_mut(name).unwrap().state().into_iter().map(|member| member.key).collect()
    }

    fn diffs(state: &mut State) -> Vec<(Vec<String>, Vec<String>)> {
        state
            .take_diffs()
            .into_iter()
            .map(|frame| match frame {
                Frame::Diff { joins, leaves, .. } => (joins.into_iter().map(|m| m.key).collect(), leaves),
                other => panic!("not a diff: {other:?}"),
            })
            .collect()
    }

    /// B joins and leaves within one diff interval, and C opens in between: C's state
    /// shows B, so the next diff must tell C that B left, although B was never announced.
    #[test]
    fn a_member_shown_in_a_state_then_gone_is_announced_as_leaving() {
        let mut state = State::default();
        let (a, b, c) = (connection(), connection(), connection());
        open(&mut state, &a, "doc");
        assert_eq!(diffs(&mut state), [(vec![key(&a)], vec![])]);
        open(&mut state, &b, "doc");
        let mut expected = vec![key(&a), key(&b), key(&c)];
        expected.sort();
        assert_eq!(open(&mut state, &c, "doc"), expected);
        assert!(state.remove(b.id(), "doc"));
        assert_eq!(diffs(&mut state), [(vec![key(&c)], vec![key(&b)])]);
        // Once told, nothing more.
        assert_eq!(diffs(&mut state), []);
    }

    /// Same for a member whose count changed and changed back: the state showed the
    /// intermediate count, so the next diff restates the entry.
    #[test]
    fn an_entry_shown_in_a_state_then_reverted_is_restated() {
        let mut state = State::default();
        let (ada, ada_tab, c) = (connection(), connection(), connection());
        for tab in [&ada, &ada_tab] {
            tab.set_identity(network_core::Identity::user("ada"));
        }
        open(&mut state, &ada, "doc");
        diffs(&mut state);
        open(&mut state, &ada_tab, "doc");
        open(&mut state, &c, "doc");
        assert!(state.remove(ada_tab.id(), "doc"));
        let mut joins = vec!["u:ada".to_owned(), key(&c)];
        joins.sort();
        assert_eq!(diffs(&mut state), [(joins, vec![])]);
    }
}
