//! Routes: what happens at the paths a pattern matches (the model factory, the CRUD
//! handlers, the collection, the authorization), and what models and handlers are given.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use network_core::{Connection, Network};
use serde::Serialize;
use serde_json::Value;

use super::push::{PushError, SyncHandle};
use crate::protocol::{Method, Op, RemoteError};

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(super) type Factory<N> =
    Arc<dyn Fn(ModelContext<N>) -> BoxFuture<Result<Arc<dyn Model>, RemoteError>> + Send + Sync>;
pub(super) type Handler<N> = Arc<dyn Fn(Request<N>) -> BoxFuture<Result<Value, RemoteError>> + Send + Sync>;
pub(super) type Authorize = Arc<dyn Fn(Access) -> BoxFuture<Result<(), String>> + Send + Sync>;

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
    pub(super) factory: Option<Factory<N>>,
    pub(super) handlers: HashMap<Method, Handler<N>>,
    pub(super) collection: Option<String>,
    pub(super) authorize: Option<Authorize>,
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

/// Turns `/api/book/:id` into matchit's `/api/book/{id}`.
pub(super) fn to_matchit(pattern: &str) -> String {
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
pub(super) fn fill(pattern: &str, params: &Params) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => params.get(name).cloned().unwrap_or_default(),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
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
