//! The server side: routes (path patterns with models and CRUD handlers), the router, and
//! the push handle.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt;
use network_core::{
    Adapter, Connection, ConnectionId, Network, NetworkEvent, OrderedExecutor, Room, Router, Target, envelope,
};
use serde::Serialize;
use serde_json::Value;

use crate::protocol::{Frame, Method, Op, ROUTER, RemoteError, codes, valid_path};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Factory<N> =
    Arc<dyn Fn(ModelContext<N>) -> BoxFuture<Result<Arc<dyn Model>, RemoteError>> + Send + Sync>;
type Handler<N> = Arc<dyn Fn(Request<N>) -> BoxFuture<Result<Value, RemoteError>> + Send + Sync>;
type Authorize = Arc<dyn Fn(Access) -> BoxFuture<Result<(), String>> + Send + Sync>;

/// The parameters of a matched pattern: `/api/book/:id` on `/api/book/7` gives `id = "7"`.
pub type Params = HashMap<String, String>;

/// A server-side model instance: created by its route's factory when the first client
/// subscribes to a path, dropped when the last one leaves. It hears who joins and leaves.
pub trait Model: Send + Sync + 'static {
    /// `connection` subscribed to the model's path.
    fn client_did_join(&self, connection: &Connection) {
        let _ = connection;
    }

    /// `connection` unsubscribed or closed.
    fn client_did_leave(&self, connection: &Connection) {
        let _ = connection;
    }
}

/// What a model factory gets: the path, its parameters, and a handle to push with.
pub struct ModelContext<N: Network> {
    /// The subscribed path.
    pub path: String,
    /// The pattern's parameters.
    pub params: Params,
    /// Pushes to subscribers.
    pub sync: SyncHandle<N>,
}

impl<N: Network> ModelContext<N> {
    /// A room pushing to this path (add more with [`ModelRoom::also_at`]).
    pub fn room(&self) -> ModelRoom<N> {
        ModelRoom { sync: self.sync.clone(), paths: vec![self.path.clone()] }
    }
}

/// The paths a model lives at, with the handle to push to their subscribers.
pub struct ModelRoom<N: Network> {
    sync: SyncHandle<N>,
    paths: Vec<String>,
}

impl<N: Network> Clone for ModelRoom<N> {
    fn clone(&self) -> Self {
        Self { sync: self.sync.clone(), paths: self.paths.clone() }
    }
}

impl<N: Network> fmt::Debug for ModelRoom<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelRoom").field("paths", &self.paths).finish()
    }
}

impl<N: Network> ModelRoom<N> {
    /// The model also lives at `path`: pushes reach its subscribers too, each connection
    /// once.
    pub fn also_at(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// The paths, first the one the model was created for.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Pushes `data` as a `change` to every subscriber of the model's paths.
    pub async fn sync_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<usize, PushError> {
        let paths: Vec<&str> = self.paths.iter().map(String::as_str).collect();
        self.sync.push_to(&paths, Op::Change, data).await
    }

    /// Pushes `data` as a `change` to the subscribers `accept` says yes to.
    pub async fn sync_data_filtered<T: Serialize + ?Sized>(
        &self,
        data: &T,
        accept: impl Fn(&Connection) -> bool,
    ) -> Result<usize, PushError> {
        let paths: Vec<&str> = self.paths.iter().map(String::as_str).collect();
        self.sync.push_filtered(&paths, Op::Change, data, accept).await
    }
}

/// What the authorization hook decides on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Access {
    /// Who asks.
    pub connection: Connection,
    /// `None` for a subscription, the method for a request.
    pub method: Option<Method>,
    /// The path.
    pub path: String,
    /// The pattern's parameters.
    pub params: Params,
}

/// A create, read, update or delete request, as its handler sees it.
pub struct Request<N: Network> {
    /// Who asks.
    pub connection: Connection,
    /// The operation.
    pub method: Method,
    /// The path.
    pub path: String,
    /// The pattern's parameters.
    pub params: Params,
    /// The payload (`null` when absent).
    pub data: Value,
    /// Pushes to subscribers (the automatic pushes of rule 4 happen anyway).
    pub sync: SyncHandle<N>,
}

/// What happens at the paths one pattern matches: the model factory, the CRUD handlers,
/// the collection its items belong to, and who may do what.
pub struct Route<N: Network> {
    factory: Option<Factory<N>>,
    handlers: HashMap<Method, Handler<N>>,
    collection: Option<String>,
    authorize: Option<Authorize>,
}

impl<N: Network> Default for Route<N> {
    fn default() -> Self {
        Self { factory: None, handlers: HashMap::new(), collection: None, authorize: None }
    }
}

impl<N: Network> fmt::Debug for Route<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("model", &self.factory.is_some())
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("collection", &self.collection)
            .finish()
    }
}

impl<N: Network> Route<N> {
    /// A route with nothing: clients may subscribe to its paths and receive pushes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the model for a path when its first client subscribes.
    pub fn model<M, F, Fut>(mut self, factory: F) -> Self
    where
        M: Model,
        F: Fn(ModelContext<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M, RemoteError>> + Send + 'static,
    {
        let factory = Arc::new(factory);
        self.factory = Some(Arc::new(move |ctx| {
            let factory = factory.clone();
            Box::pin(async move { factory(ctx).await.map(|model| Arc::new(model) as Arc<dyn Model>) })
        }));
        self
    }

    /// The collection the items at this route's paths belong to, as a pattern using the
    /// same parameters (`/api/shelf/:shelf/books` for `/api/shelf/:shelf/book/:id`):
    /// successful updates and deletes are pushed there too.
    pub fn collection(mut self, pattern: impl Into<String>) -> Self {
        self.collection = Some(pattern.into());
        self
    }

    /// Decides who may subscribe and request: `Err(reason)` refuses with `forbidden`.
    pub fn authorize<F, Fut>(mut self, authorize: F) -> Self
    where
        F: Fn(Access) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize = Some(Arc::new(move |access| Box::pin(authorize(access))));
        self
    }

    /// Handles `create` requests; the value is the created item, pushed as `add`.
    pub fn create<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Request<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        self.handler(Method::Create, handler)
    }

    /// Handles `read` requests; nothing is pushed.
    pub fn read<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Request<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        self.handler(Method::Read, handler)
    }

    /// Handles `update` requests; the value is the new state, pushed as `change`.
    pub fn update<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Request<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        self.handler(Method::Update, handler)
    }

    /// Handles `delete` requests; the value (the deleted item) is pushed as `remove`.
    pub fn delete<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Request<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        self.handler(Method::Delete, handler)
    }

    fn handler<F, Fut>(mut self, method: Method, handler: F) -> Self
    where
        F: Fn(Request<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        self.handlers.insert(method, Arc::new(move |request| Box::pin(handler(request))));
        self
    }
}

/// The sync router could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A pattern is invalid or conflicts with another one.
    #[error("invalid pattern {pattern:?}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// Why matchit refused it.
        #[source]
        source: matchit::InsertError,
    },
    /// A configuration value is out of range; the message names it.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The router could not be attached (a router named `sync` already is).
    #[error("cannot attach the sync router")]
    Attach(#[from] network_core::AttachError),
}

/// A push could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The payload could not be serialised.
    #[error("cannot encode the payload")]
    Encode(#[from] network_core::EncodeError),
    /// The room adapter failed (a backend spanning nodes is unreachable).
    #[error("room adapter failed")]
    Adapter(#[from] network_core::AdapterError),
    /// The path is not valid.
    #[error("invalid path {0:?}")]
    InvalidPath(String),
}

/// The routes of the sync router, and its bounds.
#[non_exhaustive]
pub struct SyncConfig<N: Network> {
    routes: Vec<(String, Route<N>)>,
    /// Frames (subscriptions, requests) accepted but not yet handled, across all
    /// connections; when reached, the router stops reading (backpressure). Default 4096.
    pub max_queued_frames: usize,
    /// Paths one connection may be subscribed to at once; a `sub` beyond is refused with
    /// `limit` (an `unsub` frees a slot). Each subscription costs the server a room
    /// membership and two set entries, so one peer must not hold unbounded numbers.
    /// Default 256.
    pub max_subscriptions_per_connection: usize,
}

impl<N: Network> Default for SyncConfig<N> {
    fn default() -> Self {
        Self { routes: Vec::new(), max_queued_frames: 4096, max_subscriptions_per_connection: 256 }
    }
}

impl<N: Network> fmt::Debug for SyncConfig<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("routes", &self.routes)
            .field("max_queued_frames", &self.max_queued_frames)
            .field("max_subscriptions_per_connection", &self.max_subscriptions_per_connection)
            .finish()
    }
}

/// Turns `/api/book/:id` into matchit's `/api/book/{id}`.
fn to_matchit(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Fills `/api/shelf/:shelf/books` with `params`.
fn fill(pattern: &str, params: &Params) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => params.get(name).cloned().unwrap_or_default(),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl<N: Network> SyncConfig<N> {
    /// Adds `route` for the paths `pattern` matches (`/api/book/:id`).
    pub fn route(mut self, pattern: &str, route: Route<N>) -> Self {
        self.routes.push((pattern.to_owned(), route));
        self
    }

    /// Sets [`max_queued_frames`](Self::max_queued_frames).
    pub fn max_queued_frames(mut self, max: usize) -> Self {
        self.max_queued_frames = max;
        self
    }

    /// Sets [`max_subscriptions_per_connection`](Self::max_subscriptions_per_connection).
    pub fn max_subscriptions_per_connection(mut self, max_subscriptions_per_connection: usize) -> Self {
        self.max_subscriptions_per_connection = max_subscriptions_per_connection;
        self
    }

    /// Attaches the sync router to `network` and returns the handle to push with.
    pub fn attach(self, network: &N) -> Result<SyncHandle<N>, SetupError> {
        if self.max_queued_frames == 0 {
            return Err(SetupError::Config("max_queued_frames must be positive"));
        }
        if self.max_subscriptions_per_connection == 0 {
            return Err(SetupError::Config("max_subscriptions_per_connection must be positive"));
        }
        let mut matcher = matchit::Router::new();
        let mut routes = Vec::new();
        for (index, (pattern, route)) in self.routes.into_iter().enumerate() {
            matcher
                .insert(to_matchit(&pattern), index)
                .map_err(|source| SetupError::Pattern { pattern: pattern.clone(), source })?;
            routes.push(route);
        }
        let shared = Arc::new(Shared {
            matcher,
            routes,
            max_subscriptions: self.max_subscriptions_per_connection,
            state: Mutex::new(State::default()),
            models_gate: tokio::sync::Mutex::new(()),
        });
        let handle = SyncHandle { network: network.clone(), shared };
        let worker = handle.clone();
        let executor = OrderedExecutor::new(self.max_queued_frames, move |_key, work: Work| {
            let handle = worker.clone();
            async move { handle.handle(work).await }
        });
        network.attach(SyncRouter { executor })?;
        Ok(handle)
    }
}

struct ModelEntry {
    model: Option<Arc<dyn Model>>,
    subscribers: HashSet<ConnectionId>,
}

#[derive(Default)]
struct State {
    /// Subscriptions by path.
    paths: HashMap<String, ModelEntry>,
    /// Paths by connection.
    subscriptions: HashMap<ConnectionId, HashSet<String>>,
}

struct Shared<N: Network> {
    matcher: matchit::Router<usize>,
    routes: Vec<Route<N>>,
    /// `max_subscriptions_per_connection`.
    max_subscriptions: usize,
    state: Mutex<State>,
    /// Serialises model creation, so two first subscribers of a path create one model.
    models_gate: tokio::sync::Mutex<()>,
}

impl<N: Network> Shared<N> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn route(&self, path: &str) -> Option<(&Route<N>, Params)> {
        let matched = self.matcher.at(path).ok()?;
        let params = matched.params.iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect();
        Some((&self.routes[*matched.value], params))
    }
}

/// Pushes to subscribers from anywhere (a model, an HTTP handler, a job): cheap to clone,
/// `Send + Sync`. Every push is encoded once per path and fanned out through the
/// network's adapter.
pub struct SyncHandle<N: Network> {
    network: N,
    shared: Arc<Shared<N>>,
}

impl<N: Network> Clone for SyncHandle<N> {
    fn clone(&self) -> Self {
        Self { network: self.network.clone(), shared: self.shared.clone() }
    }
}

impl<N: Network> fmt::Debug for SyncHandle<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncHandle").field("paths", &self.shared.lock().paths.len()).finish()
    }
}

/// An outgoing `data` frame, serialised straight from the caller's payload.
#[derive(Serialize)]
struct DataOut<'a, T: ?Sized> {
    t: &'static str,
    path: &'a str,
    op: Op,
    data: &'a T,
}

fn room(path: &str) -> Room {
    format!("sync:{path}").into()
}

impl<N: Network> SyncHandle<N> {
    /// Pushes `data` with `op` to the subscribers of `path`.
    pub async fn push<T: Serialize + ?Sized>(
        &self,
        path: &str,
        op: Op,
        data: &T,
    ) -> Result<usize, PushError> {
        self.push_to(&[path], op, data).await
    }

    /// Pushes to the subscribers of several paths (one model living at several paths):
    /// each connection receives it once, naming the first of the paths it subscribed to.
    pub async fn push_to<T: Serialize + ?Sized>(
        &self,
        paths: &[&str],
        op: Op,
        data: &T,
    ) -> Result<usize, PushError> {
        let adapter = self.network.adapter();
        let mut count = 0;
        for (index, path) in paths.iter().enumerate() {
            let message = encode(path, op, data)?;
            // Subscribers of an earlier path already have it, on whatever node they are.
            let target = paths[..index]
                .iter()
                .fold(Target::room(room(path)), |target, earlier| target.except_room(room(earlier)));
            count += adapter.broadcast(&target, message).await?;
        }
        Ok(count)
    }

    /// Pushes to the subscribers of `paths` that `accept` says yes to, each once. The
    /// predicate runs on this node's connections: in a cluster, only this node's
    /// subscribers are reached (a closure cannot travel to other nodes).
    pub async fn push_filtered<T: Serialize + ?Sized>(
        &self,
        paths: &[&str],
        op: Op,
        data: &T,
        accept: impl Fn(&Connection) -> bool,
    ) -> Result<usize, PushError> {
        let adapter = self.network.adapter();
        let mut reached = HashSet::new();
        let mut count = 0;
        for path in paths {
            let message = encode(path, op, data)?;
            for id in adapter.local_members(&room(path)) {
                if !reached.insert(id) {
                    continue;
                }
                let Some(connection) = self.network.connection(id) else { continue };
                if accept(&connection) && connection.send_batched(message.clone()).is_ok() {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// The connections subscribed to `path`.
    pub fn subscribers(&self, path: &str) -> Vec<ConnectionId> {
        self.shared
            .lock()
            .paths
            .get(path)
            .map(|entry| entry.subscribers.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The model instance serving `path`, while it has subscribers.
    pub fn model(&self, path: &str) -> Option<Arc<dyn Model>> {
        self.shared.lock().paths.get(path).and_then(|entry| entry.model.clone())
    }

    /// The network it pushes through.
    pub fn network(&self) -> &N {
        &self.network
    }

    async fn handle(&self, work: Work) {
        match work {
            Work::Subscribe { connection, path, id } => {
                let answer = match self.subscribe(&connection, &path).await {
                    Ok(()) => Frame::Subscribed { path, id },
                    Err(error) => error_frame(error, id, Some(path)),
                };
                reply(&connection, &answer);
            }
            Work::Unsubscribe { connection, path, id } => {
                let answer = if self.unsubscribe(&connection, &path).await {
                    Frame::Unsubscribed { path, id }
                } else {
                    let error =
                        RemoteError::new(codes::NOT_SUBSCRIBED, format!("not subscribed to {path:?}"));
                    error_frame(error, id, Some(path))
                };
                reply(&connection, &answer);
            }
            Work::Request { connection, method, path, data, id } => {
                let (answer, push) = match self.request(&connection, method, &path, data).await {
                    Ok((data, push)) => (Frame::reply(id, Ok(data)), push),
                    Err(err) => (Frame::reply(id, Err(err)), None),
                };
                // The reply goes first: the requester's own push is queued behind it on
                // its connection, on one node or with the Redis adapter alike, since this
                // node delivers to its own connections when the push starts
                // (PROTOCOL.md 7.3, rule 5).
                reply(&connection, &answer);
                if let (Some(push), Frame::Reply { data: Some(value), .. }) = (push, &answer) {
                    let paths: Vec<&str> = push.paths.iter().map(String::as_str).collect();
                    if let Err(error) = self.push_each(&paths, push.op, value).await {
                        tracing::warn!(path, %error, "automatic push failed");
                    }
                }
            }
            Work::Closed { connection } => {
                let paths = self.shared.lock().subscriptions.remove(&connection.id()).unwrap_or_default();
                for path in paths {
                    // The server emptied the connection's rooms when it closed; a
                    // subscription handled after that joined again, so leave explicitly.
                    let _ = self.network.adapter().leave(connection.id(), &room(&path)).await;
                    self.leave(&connection, &path);
                }
            }
        }
    }

    async fn authorize(&self, route: &Route<N>, access: Access) -> Result<(), RemoteError> {
        match &route.authorize {
            Some(authorize) => guarded(Box::pin(authorize(access))).await?.map_err(RemoteError::forbidden),
            None => Ok(()),
        }
    }

    async fn subscribe(&self, connection: &Connection, path: &str) -> Result<(), RemoteError> {
        if !valid_path(path) {
            return Err(RemoteError::bad_request("paths start with / and have at most 256 bytes"));
        }
        let Some((route, params)) = self.shared.route(path) else {
            return Err(RemoteError::new(codes::NO_ROUTE, format!("no route for {path:?}")));
        };
        let (already, count) = {
            let state = self.shared.lock();
            let paths = state.subscriptions.get(&connection.id());
            (paths.is_some_and(|paths| paths.contains(path)), paths.map_or(0, HashSet::len))
        };
        if already {
            return Ok(());
        }
        // Checked before the authorization runs: a refused request costs no hook call. A
        // connection's frames are handled one at a time, so nothing else adds to its count
        // before this subscription is recorded.
        if count >= self.shared.max_subscriptions {
            let message = format!("at most {} subscriptions per connection", self.shared.max_subscriptions);
            return Err(RemoteError::new(codes::LIMIT, message));
        }
        let access = Access {
            connection: connection.clone(),
            method: None,
            path: path.to_owned(),
            params: params.clone(),
        };
        self.authorize(route, access).await?;
        let model = {
            let _gate = self.shared.models_gate.lock().await;
            let existing = self.shared.lock().paths.get(path).map(|entry| entry.model.clone());
            match (existing, &route.factory) {
                (Some(model), _) => model,
                (None, Some(factory)) => {
                    let ctx = ModelContext { path: path.to_owned(), params, sync: self.clone() };
                    let model = guarded(factory(ctx)).await??;
                    self.shared.lock().paths.insert(
                        path.to_owned(),
                        ModelEntry { model: Some(model.clone()), subscribers: HashSet::new() },
                    );
                    Some(model)
                }
                (None, None) => None,
            }
        };
        self.network
            .adapter()
            .join(connection.id(), room(path))
            .await
            .map_err(|error| RemoteError::internal(error.to_string()))?;
        {
            let mut state = self.shared.lock();
            let entry = state
                .paths
                .entry(path.to_owned())
                .or_insert_with(|| ModelEntry { model: model.clone(), subscribers: HashSet::new() });
            entry.subscribers.insert(connection.id());
            state.subscriptions.entry(connection.id()).or_default().insert(path.to_owned());
        }
        if let Some(model) = model
            && std::panic::catch_unwind(AssertUnwindSafe(|| model.client_did_join(connection))).is_err()
        {
            tracing::error!(path, "client_did_join panicked");
        }
        Ok(())
    }

    async fn unsubscribe(&self, connection: &Connection, path: &str) -> bool {
        let removed = self
            .shared
            .lock()
            .subscriptions
            .get_mut(&connection.id())
            .is_some_and(|paths| paths.remove(path));
        if removed {
            let _ = self.network.adapter().leave(connection.id(), &room(path)).await;
            self.leave(connection, path);
        }
        removed
    }

    /// Forgets `connection` as a subscriber of `path`; drops the model with its last one.
    fn leave(&self, connection: &Connection, path: &str) {
        let model = {
            let mut state = self.shared.lock();
            let Some(entry) = state.paths.get_mut(path) else { return };
            entry.subscribers.remove(&connection.id());
            let model = entry.model.clone();
            if entry.subscribers.is_empty() {
                state.paths.remove(path);
            }
            model
        };
        if let Some(model) = model
            && std::panic::catch_unwind(AssertUnwindSafe(|| model.client_did_leave(connection))).is_err()
        {
            tracing::error!(path, "client_did_leave panicked");
        }
    }

    /// Runs a request; on success returns the handler's value and the automatic push it
    /// calls for (rule 4), which the caller makes after the reply.
    async fn request(
        &self,
        connection: &Connection,
        method: Method,
        path: &str,
        data: Value,
    ) -> Result<(Value, Option<AutoPush>), RemoteError> {
        if !valid_path(path) {
            return Err(RemoteError::bad_request("paths start with / and have at most 256 bytes"));
        }
        let Some((route, params)) = self.shared.route(path) else {
            return Err(RemoteError::new(codes::NO_ROUTE, format!("no route for {path:?}")));
        };
        let Some(handler) = route.handlers.get(&method) else {
            return Err(RemoteError::new(codes::NO_HANDLER, format!("no {method:?} handler for {path:?}")));
        };
        let access = Access {
            connection: connection.clone(),
            method: Some(method),
            path: path.to_owned(),
            params: params.clone(),
        };
        self.authorize(route, access).await?;
        let collection = route.collection.as_deref().map(|pattern| fill(pattern, &params));
        let request = Request {
            connection: connection.clone(),
            method,
            path: path.to_owned(),
            params,
            data,
            sync: self.clone(),
        };
        let value = guarded(handler(request)).await??;
        let push = match method {
            Method::Read => None,
            Method::Create => Some(AutoPush { op: Op::Add, paths: vec![path.to_owned()] }),
            Method::Update | Method::Delete => {
                let op = if method == Method::Update { Op::Change } else { Op::Remove };
                let paths = std::iter::once(path.to_owned()).chain(collection).collect();
                Some(AutoPush { op, paths })
            }
        };
        Ok((value, push))
    }

    /// Pushes to each path's subscribers with that path's name (a model and its
    /// collection are different things to a client, so a connection subscribed to both
    /// hears of both).
    async fn push_each<T: Serialize + ?Sized>(
        &self,
        paths: &[&str],
        op: Op,
        data: &T,
    ) -> Result<usize, PushError> {
        let mut count = 0;
        for path in paths {
            count += self.push(path, op, data).await?;
        }
        Ok(count)
    }
}

fn encode<T: Serialize + ?Sized>(path: &str, op: Op, data: &T) -> Result<network_core::Message, PushError> {
    if !valid_path(path) {
        return Err(PushError::InvalidPath(path.to_owned()));
    }
    Ok(envelope::json(ROUTER, &DataOut { t: "data", path, op, data })?)
}

/// Runs a user hook; a panic becomes an `internal` error.
async fn guarded<T>(hook: BoxFuture<T>) -> Result<T, RemoteError> {
    AssertUnwindSafe(hook).catch_unwind().await.map_err(|_| {
        tracing::error!("a sync handler panicked");
        RemoteError::internal("the handler failed")
    })
}

/// The push a successful request calls for: `op` with the reply's value to each path's
/// subscribers.
struct AutoPush {
    op: Op,
    paths: Vec<String>,
}

enum Work {
    Subscribe { connection: Connection, path: String, id: Option<u64> },
    Unsubscribe { connection: Connection, path: String, id: Option<u64> },
    Request { connection: Connection, method: Method, path: String, data: Value, id: u64 },
    Closed { connection: Connection },
}

struct SyncRouter {
    executor: OrderedExecutor<Work>,
}

impl<N: Network> Router<N> for SyncRouter {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Message { connection, message } => {
                let work = match envelope::decode::<Frame>(ROUTER, &message) {
                    Ok(Frame::Sub { path, id }) => {
                        Work::Subscribe { connection: connection.clone(), path, id }
                    }
                    Ok(Frame::Unsub { path, id }) => {
                        Work::Unsubscribe { connection: connection.clone(), path, id }
                    }
                    Ok(Frame::Request { method, path, data, id }) => {
                        Work::Request { connection: connection.clone(), method, path, data, id }
                    }
                    Ok(
                        Frame::Subscribed { id, .. }
                        | Frame::Unsubscribed { id, .. }
                        | Frame::Error { id, .. },
                    ) => {
                        let error = RemoteError::new(codes::UNEXPECTED, "a frame only the server sends");
                        return reply(&connection, &error_frame(error, id, None));
                    }
                    Ok(Frame::Reply { id, .. }) => {
                        let error = RemoteError::new(codes::UNEXPECTED, "a frame only the server sends");
                        return reply(&connection, &error_frame(error, Some(id), None));
                    }
                    Ok(Frame::Data { .. }) => {
                        let error = RemoteError::new(codes::UNEXPECTED, "a frame only the server sends");
                        return reply(&connection, &error_frame(error, None, None));
                    }
                    Err(error) => {
                        // The id is echoed when it can be read: a client waits on a
                        // `request` until its timeout otherwise (PROTOCOL.md 2.3).
                        let id = envelope::peek(ROUTER, &message).id;
                        let error = RemoteError::new(codes::MALFORMED, format!("not a sync frame: {error}"));
                        return reply(&connection, &error_frame(error, id, None));
                    }
                };
                self.executor.push(connection.id(), work).await;
            }
            NetworkEvent::Removed { connection, .. } => {
                // Queued behind the connection's last frames, so they are handled first.
                self.executor.push(connection.id(), Work::Closed { connection }).await;
            }
            _ => {}
        }
    }
}

fn error_frame(error: RemoteError, id: Option<u64>, path: Option<String>) -> Frame {
    Frame::Error { code: error.code, message: error.message, id, path }
}

fn reply(connection: &Connection, frame: &Frame) {
    match envelope::json(ROUTER, frame) {
        Ok(message) => {
            if let Err(error) = connection.send(message) {
                tracing::debug!(connection = %connection.id(), %error, "sync reply not sent");
            }
        }
        Err(error) => tracing::error!(%error, "cannot encode a sync frame"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_translate_to_matchit_and_fill() {
        assert_eq!(to_matchit("/api/shelf/:shelf/book/:id"), "/api/shelf/{shelf}/book/{id}");
        let params: Params = [("shelf".to_owned(), "3".to_owned())].into();
        assert_eq!(fill("/api/shelf/:shelf/books", &params), "/api/shelf/3/books");
    }
}
