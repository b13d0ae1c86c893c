//! The demo application of `realtime serve` and of the example server: its routers (chat
//! channels, presence for any view, a books store kept by the sync router), the `?user=NAME`
//! demo identity, and the HTTP side: the demo page at `/`, the browser client's modules
//! (`clients/js`, built into the binary so that it runs from any directory), and every
//! WebSocket upgrade, on any path, handed to the server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use channels::{Channel, ChannelsConfig, RemoteError};
use network_core::{Adapter, Identity, Network};
use serde_json::Value;
use sync::{Params, RemoteError as SyncError, Route, SyncConfig};
use ws_server::{Accept, HandshakeHook, Server};

/// The page: a shared books list (sync) with who is looking at each book (views).
const PAGE: &str = include_str!("demo.html");

/// The files served besides the page: path, content.
const MODULES: [(&str, &str); 4] = [
    ("/realtime.js", include_str!("../../clients/js/realtime.js")),
    ("/realtime-users.js", include_str!("../../clients/js/realtime-users.js")),
    ("/backbone.js", include_str!("../../clients/js/backbone.js")),
    ("/msgpack.js", include_str!("../../clients/js/msgpack.js")),
];

/// The app: one handler for every path, so that an upgrade is accepted anywhere (`/`
/// included, where Autobahn and the JS tests connect) and refused as `Server::bind`
/// refuses it (400, 426...) when it is neither an upgrade nor one of the files. Without
/// `demo_page`, every request goes to the server.
pub fn app<A: Adapter>(server: Server<A>, demo_page: bool) -> axum::Router {
    axum::Router::new().fallback(move |request: Request| {
        let server = server.clone();
        async move { respond(&server, request, demo_page).await }
    })
}

async fn respond<A: Adapter>(server: &Server<A>, request: Request, demo_page: bool) -> Response {
    let plain_get = matches!(*request.method(), Method::GET | Method::HEAD)
        && !request.headers().contains_key(header::UPGRADE);
    if demo_page && plain_get {
        let path = request.uri().path();
        if path == "/" {
            return file(PAGE, "text/html; charset=utf-8");
        }
        if let Some((_, module)) = MODULES.iter().find(|(name, _)| *name == path) {
            return file(module, "text/javascript; charset=utf-8");
        }
    }
    server.axum_upgrade(request).await
}

fn file(content: &'static str, content_type: &'static str) -> Response {
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Built into the binary: a new build is a new version, so never serve a stale copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `?user=NAME` becomes the connection's identity. A demo only: nothing checks the name.
pub fn identity_hook() -> HandshakeHook {
    HandshakeHook::new(|request| async move {
        Ok(match request.query_param("user").filter(|user| !user.is_empty()) {
            Some(user) => Accept::new().identity(Identity::user(user)),
            None => Accept::new(),
        })
    })
}

/// Channel `/chat`, whose members are in room `lobby`, with events `say` (relayed to the
/// lobby as `said`) and `echo` (acknowledged with its payload); the private channel
/// `/admin`, open to user `admin`.
pub fn channels_config<N: Network>() -> ChannelsConfig<N> {
    let chat = Channel::new()
        // `?` turns a refused join (the connection's room limit) into code `limit`.
        .on_join(|ctx| async move { Ok(ctx.join_room("lobby").await?) })
        .on("say", |ctx, text: Value| async move {
            ctx.broadcast_to_room("lobby", "said", &text).await?;
            Ok(())
        })
        .on("echo", |_ctx, payload: Value| async move { Ok(payload) });
    let admin = Channel::new().on_join(|ctx| async move {
        let user = ctx.identity().and_then(|identity| identity.user_id.clone());
        if user.as_deref() == Some("admin") { Ok(()) } else { Err(RemoteError::forbidden("admins only")) }
    });
    ChannelsConfig::default().channel("/chat", chat).channel("/admin", admin)
}

/// An in-memory book store, by id.
type Books = Arc<Mutex<BTreeMap<u64, Value>>>;

/// Books at `/api/book/:id` in the collection `/api/books`, with create, read, update and
/// delete, kept in memory; every change is pushed to the subscribers of the book and of
/// the collection.
pub fn books<N: Network>() -> SyncConfig<N> {
    let store: Books = Books::default();
    let next_id = Arc::new(AtomicU64::new(1));
    let lock = |store: &Books| store.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let book_id = |params: &Params| -> Result<u64, SyncError> {
        params["id"].parse().map_err(|_| SyncError::bad_request("book ids are numbers"))
    };
    let (read_store, update_store, delete_store, list_store, create_store) =
        (store.clone(), store.clone(), store.clone(), store.clone(), store);
    let book = Route::new()
        .collection("/api/books")
        .read(move |request| {
            let store = read_store.clone();
            async move {
                let id = book_id(&request.params)?;
                lock(&store).get(&id).cloned().ok_or_else(|| SyncError::not_found("no such book"))
            }
        })
        .update(move |request| {
            let store = update_store.clone();
            async move {
                let id = book_id(&request.params)?;
                let mut books = store.lock().unwrap_or_else(PoisonError::into_inner);
                let book = books.get_mut(&id).ok_or_else(|| SyncError::not_found("no such book"))?;
                if let (Value::Object(book), Value::Object(changes)) = (book as &mut Value, request.data) {
                    book.extend(changes.into_iter().filter(|(key, _)| key != "id"));
                }
                Ok(books[&id].clone())
            }
        })
        .delete(move |request| {
            let store = delete_store.clone();
            async move {
                let id = book_id(&request.params)?;
                let mut books = store.lock().unwrap_or_else(PoisonError::into_inner);
                books.remove(&id).ok_or_else(|| SyncError::not_found("no such book"))
            }
        });
    let collection = Route::new()
        .read(move |_request| {
            let store = list_store.clone();
            async move { Ok(Value::Array(lock(&store).into_values().collect())) }
        })
        .create(move |request| {
            let (store, next_id) = (create_store.clone(), next_id.clone());
            async move {
                let Value::Object(mut book) = request.data else {
                    return Err(SyncError::bad_request("a book is a JSON object"));
                };
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                book.insert("id".into(), id.into());
                let book = Value::Object(book);
                store.lock().unwrap_or_else(PoisonError::into_inner).insert(id, book.clone());
                Ok(book)
            }
        });
    SyncConfig::default().route("/api/book/:id", book).route("/api/books", collection)
}
