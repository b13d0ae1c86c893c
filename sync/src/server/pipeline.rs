//! The request pipeline: the router decodes each frame and queues it per connection; the
//! work is then handled in arrival order (subscriptions, CRUD requests with their
//! automatic pushes, closes).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use network_core::{Adapter, Connection, Network, NetworkEvent, OrderedExecutor, Router, envelope};
use serde::Serialize;
use serde_json::Value;

use super::push::{PushError, SyncHandle, room, versioned_room};
use super::routes::{Access, BoxFuture, ModelContext, Request, Route, fill};
use super::state::ModelEntry;
use crate::protocol::{Frame, Method, Op, ROUTER, RemoteError, codes, valid_path};

impl<N: Network> SyncHandle<N> {
    pub(super) async fn handle(&self, work: Work) {
        match work {
            Work::Subscribe { connection, path, id, snapshot: false } => {
                let answer = match self.subscribe(&connection, &path, false).await {
                    Ok(()) => Frame::Subscribed { path, id, v: None, data: None },
                    Err(error) => error_frame(error, id, Some(path)),
                };
                reply(&connection, &answer);
            }
            Work::Subscribe { connection, path, id, snapshot: true } => {
                let answer = match self.subscribe_with_snapshot(&connection, &path).await {
                    Ok((v, data)) => Frame::Subscribed { path, id, v: Some(v), data: Some(data) },
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
                let (paths, versioned) = {
                    let mut state = self.state.lock();
                    let versioned = state.versions.remove(&connection.id()).unwrap_or_default();
                    (state.subscriptions.remove(&connection.id()).unwrap_or_default(), versioned)
                };
                for path in paths {
                    // The server emptied the connection's rooms when it closed; a
                    // subscription handled after that joined again, so leave explicitly.
                    let left =
                        if versioned.contains_key(&path) { versioned_room(&path) } else { room(&path) };
                    let _ = self.network.adapter().leave(connection.id(), &left).await;
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

    /// A versioned subscription of `path` (PROTOCOL.md 7.3, rule 8): subscribes, takes the
    /// subscription's version, then reads the path; returns the version and the value.
    /// Every push the read's value may miss is sent after the version was taken, so it
    /// carries a higher one. A failed read leaves the connection not subscribed to `path`.
    async fn subscribe_with_snapshot(
        &self,
        connection: &Connection,
        path: &str,
    ) -> Result<(u64, Value), RemoteError> {
        self.subscribe(connection, path, true).await?;
        let version = self
            .state
            .lock()
            .versions
            .get(&connection.id())
            .and_then(|versions| versions.get(path).copied())
            .unwrap_or_default();
        match self.request(connection, Method::Read, path, Value::Null).await {
            Ok((data, _)) => Ok((version, data)),
            Err(error) => {
                self.unsubscribe(connection, path).await;
                Err(error)
            }
        }
    }

    /// Subscribes `connection` to `path`; `versioned` for a `sub` with `snapshot`. A plain
    /// subscription asked for again with `snapshot` becomes versioned (its version starts
    /// at 0); a versioned one stays versioned.
    async fn subscribe(
        &self,
        connection: &Connection,
        path: &str,
        versioned: bool,
    ) -> Result<(), RemoteError> {
        if !valid_path(path) {
            return Err(RemoteError::bad_request("paths start with / and have at most 256 bytes"));
        }
        let Some((route, params)) = self.state.route(path) else {
            return Err(RemoteError::new(codes::NO_ROUTE, format!("no route for {path:?}")));
        };
        let (already, count, was_versioned) = {
            let state = self.state.lock();
            let paths = state.subscriptions.get(&connection.id());
            let was_versioned =
                state.versions.get(&connection.id()).is_some_and(|versions| versions.contains_key(path));
            (paths.is_some_and(|paths| paths.contains(path)), paths.map_or(0, HashSet::len), was_versioned)
        };
        if already && (was_versioned || !versioned) {
            return Ok(());
        }
        if already {
            // From plain to versioned: its pushes change rooms. The version is registered
            // before the join, so no push reaches the new room unnumbered.
            self.state.lock().versions.entry(connection.id()).or_default().insert(path.to_owned(), 0);
            let adapter = self.network.adapter();
            adapter
                .join(connection.id(), versioned_room(path))
                .await
                .map_err(|error| RemoteError::internal(error.to_string()))?;
            let _ = adapter.leave(connection.id(), &room(path)).await;
            return Ok(());
        }
        // Checked before the authorization runs: a refused request costs no hook call. A
        // connection's frames are handled one at a time, so nothing else adds to its count
        // before this subscription is recorded.
        if count >= self.state.max_subscriptions {
            let message = format!("at most {} subscriptions per connection", self.state.max_subscriptions);
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
            let _gate = self.state.models_gate.lock().await;
            let existing = self.state.lock().paths.get(path).map(|entry| entry.model.clone());
            match (existing, &route.factory) {
                (Some(model), _) => model,
                (None, Some(factory)) => {
                    let ctx = ModelContext { path: path.to_owned(), params, sync: self.clone() };
                    let model = guarded(factory(ctx)).await??;
                    self.state.lock().paths.insert(
                        path.to_owned(),
                        ModelEntry { model: Some(model.clone()), subscribers: HashSet::new() },
                    );
                    Some(model)
                }
                (None, None) => None,
            }
        };
        if versioned {
            self.state.lock().versions.entry(connection.id()).or_default().insert(path.to_owned(), 0);
        }
        let joined = if versioned { versioned_room(path) } else { room(path) };
        if let Err(error) = self.network.adapter().join(connection.id(), joined).await {
            self.forget_version(connection, path);
            return Err(RemoteError::internal(error.to_string()));
        }
        {
            let mut state = self.state.lock();
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
        let removed =
            self.state.lock().subscriptions.get_mut(&connection.id()).is_some_and(|paths| paths.remove(path));
        if removed {
            let left = if self.forget_version(connection, path) { versioned_room(path) } else { room(path) };
            let _ = self.network.adapter().leave(connection.id(), &left).await;
            self.leave(connection, path);
        }
        removed
    }

    /// Drops the version of `connection`'s subscription of `path`; whether it had one.
    fn forget_version(&self, connection: &Connection, path: &str) -> bool {
        let mut state = self.state.lock();
        let Some(versions) = state.versions.get_mut(&connection.id()) else { return false };
        let had = versions.remove(path).is_some();
        if versions.is_empty() {
            state.versions.remove(&connection.id());
        }
        had
    }

    /// Forgets `connection` as a subscriber of `path`; drops the model with its last one.
    fn leave(&self, connection: &Connection, path: &str) {
        let model = {
            let mut state = self.state.lock();
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
        let Some((route, params)) = self.state.route(path) else {
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

pub(super) enum Work {
    Subscribe { connection: Connection, path: String, id: Option<u64>, snapshot: bool },
    Unsubscribe { connection: Connection, path: String, id: Option<u64> },
    Request { connection: Connection, method: Method, path: String, data: Value, id: u64 },
    Closed { connection: Connection },
}

impl Work {
    /// The span of this operation (debug level: the default pays a disabled span's check).
    pub(super) fn span(&self) -> tracing::Span {
        match self {
            Self::Subscribe { connection, path, .. } => {
                tracing::debug_span!("sync", op = "subscribe", connection = %connection.id(), path)
            }
            Self::Unsubscribe { connection, path, .. } => {
                tracing::debug_span!("sync", op = "unsubscribe", connection = %connection.id(), path)
            }
            Self::Request { connection, method, path, .. } => {
                tracing::debug_span!("sync", op = ?method, connection = %connection.id(), path)
            }
            Self::Closed { connection } => {
                tracing::debug_span!("sync", op = "closed", connection = %connection.id())
            }
        }
    }
}

pub(super) struct SyncRouter {
    pub(super) executor: OrderedExecutor<Work>,
}

impl<N: Network> Router<N> for SyncRouter {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Message { connection, message } => {
                let work = match envelope::decode::<Frame>(ROUTER, &message) {
                    Ok(Frame::Sub { path, id, snapshot }) => {
                        Work::Subscribe { connection: connection.clone(), path, id, snapshot }
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
