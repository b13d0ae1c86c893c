//! The sync router on the server, spoken to by plain WebSocket clients sending the JSON
//! frames of docs/PROTOCOL.md section 7: patterns and parameters, pushes (to all,
//! filtered, a model at two paths without duplicates), join/leave callbacks, CRUD with
//! error-first replies and automatic pushes to the item and its collection, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{Connection, Identity};
use realtime::sync::{Model, ModelRoom, Op, RemoteError, Route, SyncConfig, SyncHandle};
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Books = Arc<Mutex<HashMap<String, Value>>>;

/// A book model that reports joins and leaves, and lives at its own path and at
/// `/api/featured` when it is book 1.
struct Book {
    id: String,
    events: mpsc::Sender<String>,
}

impl Model for Book {
    fn client_did_join(&self, connection: &Connection) {
        let _ = self.events.try_send(format!("join {} {}", self.id, user(connection)));
    }

    fn client_did_leave(&self, connection: &Connection) {
        let _ = self.events.try_send(format!("leave {} {}", self.id, user(connection)));
    }
}

fn user(connection: &Connection) -> String {
    connection.identity().and_then(|i| i.user_id.clone()).unwrap_or_default()
}

struct Fixture {
    server: Server,
    sync: SyncHandle<Server>,
    model_events: mpsc::Receiver<String>,
    rooms: Arc<Mutex<HashMap<String, ModelRoom<Server>>>>,
}

async fn fixture() -> Fixture {
    let hook = HandshakeHook::new(|request| async move {
        let user = request.query_param("user").unwrap_or("anon").to_owned();
        Ok(Accept::new().identity(Identity::user(user)))
    });
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().handshake(hook)).await.unwrap();
    let books: Books =
        Arc::new(Mutex::new(HashMap::from([("1".to_owned(), json!({"id": "1", "title": "Dune"}))])));
    let (events_tx, model_events) = mpsc::channel(64);
    let rooms: Arc<Mutex<HashMap<String, ModelRoom<Server>>>> = Arc::default();
    let (books_for_update, books_for_read, books_for_create, books_for_delete, rooms_for_factory) =
        (books.clone(), books.clone(), books.clone(), books, rooms.clone());
    let book_route = Route::new()
        .collection("/api/shelf/:shelf/books")
        .model(move |ctx| {
            let (events, rooms) = (events_tx.clone(), rooms_for_factory.clone());
            async move {
                let id = ctx.params["id"].clone();
                let mut room = ctx.room();
                if id == "1" {
                    room = room.also_at("/api/featured");
                }
                rooms.lock().unwrap().insert(id.clone(), room);
                Ok(Book { id, events })
            }
        })
        .authorize(|access| async move {
            if access.params.get("id").map(String::as_str) == Some("secret") {
                Err("classified".into())
            } else {
                Ok(())
            }
        })
        .read(move |request| {
            let books = books_for_read.clone();
            async move {
                books
                    .lock()
                    .unwrap()
                    .get(&request.params["id"])
                    .cloned()
                    .ok_or_else(|| RemoteError::not_found("no such book"))
            }
        })
        .update(move |request| {
            let books = books_for_update.clone();
            async move {
                let id = request.params["id"].clone();
                let title = request.data["title"]
                    .as_str()
                    .ok_or_else(|| RemoteError::bad_request("title missing"))?;
                let book = json!({"id": id, "title": title});
                books.lock().unwrap().insert(id, book.clone());
                Ok(book)
            }
        })
        .delete(move |request| {
            let books = books_for_delete.clone();
            async move {
                books
                    .lock()
                    .unwrap()
                    .remove(&request.params["id"])
                    .ok_or_else(|| RemoteError::not_found("gone"))
            }
        });
    let shelf_route = Route::new().create(move |request| {
        let books = books_for_create.clone();
        async move {
            let id = format!("{}", books.lock().unwrap().len() + 1);
            let book = json!({"id": id, "title": request.data["title"], "shelf": request.params["shelf"]});
            books.lock().unwrap().insert(id, book.clone());
            Ok(book)
        }
    });
    let sync = SyncConfig::default()
        .route("/api/shelf/:shelf/book/:id", book_route)
        .route("/api/shelf/:shelf/books", shelf_route)
        .route("/api/featured", Route::new())
        .attach(&server)
        .unwrap();
    Fixture { server, sync, model_events, rooms }
}

async fn connect(server: &Server, user: &str) -> RawClient {
    raw_client(&format!("{}?user={user}", url(server))).await
}

async fn send(ws: &mut RawClient, frame: Value) {
    ws.send(WsMessage::text(json!({"$r": "sync", "d": frame}).to_string())).await.unwrap();
}

async fn next(ws: &mut RawClient) -> Value {
    let WsMessage::Text(text) = next_data(ws).await else { panic!("expected text") };
    let mut envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["$r"], "sync", "{text}");
    envelope["d"].take()
}

async fn subscribe(ws: &mut RawClient, path: &str) {
    send(ws, json!({"t": "sub", "path": path, "id": 1})).await;
    assert_eq!(next(ws).await, json!({"t": "subscribed", "path": path, "id": 1}));
}

async fn nothing_more(ws: &mut RawClient) {
    let more = tokio::time::timeout(Duration::from_millis(150), next_data(ws)).await;
    assert!(more.is_err(), "unexpected frame: {more:?}");
}

#[tokio::test]
async fn patterns_params_models_and_callbacks() {
    let mut f = fixture().await;
    let mut ada = connect(&f.server, "ada").await;
    let mut bob = connect(&f.server, "bob").await;
    subscribe(&mut ada, "/api/shelf/3/book/1").await;
    subscribe(&mut bob, "/api/shelf/3/book/1").await;
    assert_eq!(within(f.model_events.recv()).await.unwrap(), "join 1 ada");
    assert_eq!(within(f.model_events.recv()).await.unwrap(), "join 1 bob");
    // One model for the path, created by the first subscriber.
    assert_eq!(f.rooms.lock().unwrap().len(), 1);
    assert_eq!(f.sync.subscribers("/api/shelf/3/book/1").len(), 2);

    send(&mut ada, json!({"t": "sub", "path": "/api/nowhere", "id": 2})).await;
    assert_eq!(next(&mut ada).await["code"], "no_route");
    send(&mut ada, json!({"t": "sub", "path": "/api/shelf/3/book/secret", "id": 3})).await;
    assert_eq!(
        next(&mut ada).await,
        json!({"t": "error", "code": "forbidden", "message": "classified", "id": 3, "path": "/api/shelf/3/book/secret"})
    );

    send(&mut bob, json!({"t": "unsub", "path": "/api/shelf/3/book/1", "id": 4})).await;
    assert_eq!(next(&mut bob).await["t"], "unsubscribed");
    assert_eq!(within(f.model_events.recv()).await.unwrap(), "leave 1 bob");
    drop(ada); // abrupt: the model hears it too
    assert_eq!(within(f.model_events.recv()).await.unwrap(), "leave 1 ada");
    assert!(f.sync.model("/api/shelf/3/book/1").is_none(), "dropped with its last subscriber");
}

#[tokio::test]
async fn pushes_reach_all_once_and_filters_apply() {
    let f = fixture().await;
    let mut ada = connect(&f.server, "ada").await;
    let mut bob = connect(&f.server, "bob").await;
    let mut cat = connect(&f.server, "cat").await;
    subscribe(&mut ada, "/api/shelf/3/book/1").await;
    subscribe(&mut ada, "/api/featured").await;
    subscribe(&mut bob, "/api/featured").await;
    subscribe(&mut cat, "/api/shelf/3/book/1").await;
    let room = f.rooms.lock().unwrap()["1"].clone();

    // The model lives at two paths: ada subscribed to both and gets it once, under the
    // first path; bob only under /api/featured.
    assert_eq!(room.sync_data(&json!({"id": "1", "title": "Dune II"})).await.unwrap(), 3);
    let expected = json!({"t": "data", "path": "/api/shelf/3/book/1", "op": "change", "data": {"id": "1", "title": "Dune II"}});
    assert_eq!(next(&mut ada).await, expected);
    assert_eq!(next(&mut cat).await, expected);
    assert_eq!(next(&mut bob).await["path"], "/api/featured");
    nothing_more(&mut ada).await;

    // Filtered: only connections whose user is not cat.
    let sent = room.sync_data_filtered(&json!({"secret": true}), |c| user(c) != "cat").await.unwrap();
    assert_eq!(sent, 2);
    assert_eq!(next(&mut ada).await["data"], json!({"secret": true}));
    assert_eq!(next(&mut bob).await["data"], json!({"secret": true}));
    nothing_more(&mut cat).await;
    nothing_more(&mut ada).await;
}

#[tokio::test]
async fn crud_replies_are_error_first_and_changes_are_pushed() {
    let f = fixture().await;
    let mut editor = connect(&f.server, "ed").await;
    let mut watcher = connect(&f.server, "wat").await;
    subscribe(&mut watcher, "/api/shelf/3/book/1").await;
    subscribe(&mut watcher, "/api/shelf/3/books").await;

    send(&mut editor, json!({"t": "request", "method": "read", "path": "/api/shelf/3/book/1", "id": 10}))
        .await;
    assert_eq!(
        next(&mut editor).await,
        json!({"t": "reply", "id": 10, "data": {"id": "1", "title": "Dune"}})
    );

    send(&mut editor, json!({"t": "request", "method": "update", "path": "/api/shelf/3/book/1", "data": {"title": "Emma"}, "id": 11})).await;
    assert_eq!(
        next(&mut editor).await,
        json!({"t": "reply", "id": 11, "data": {"id": "1", "title": "Emma"}})
    );
    // Pushed to the item's path and to its collection.
    assert_eq!(
        next(&mut watcher).await,
        json!({"t": "data", "path": "/api/shelf/3/book/1", "op": "change", "data": {"id": "1", "title": "Emma"}})
    );
    assert_eq!(
        next(&mut watcher).await,
        json!({"t": "data", "path": "/api/shelf/3/books", "op": "change", "data": {"id": "1", "title": "Emma"}})
    );

    send(&mut editor, json!({"t": "request", "method": "create", "path": "/api/shelf/3/books", "data": {"title": "Ulysses"}, "id": 12})).await;
    let created = next(&mut editor).await;
    assert_eq!(created["data"]["title"], "Ulysses");
    assert_eq!(
        next(&mut watcher).await,
        json!({"t": "data", "path": "/api/shelf/3/books", "op": "add", "data": created["data"]})
    );

    send(
        &mut editor,
        json!({"t": "request", "method": "update", "path": "/api/shelf/3/book/1", "data": {}, "id": 13}),
    )
    .await;
    assert_eq!(
        next(&mut editor).await,
        json!({"t": "reply", "id": 13, "err": {"code": "bad_request", "message": "title missing"}})
    );
    send(&mut editor, json!({"t": "request", "method": "delete", "path": "/api/shelf/3/book/1", "id": 14}))
        .await;
    assert_eq!(next(&mut editor).await["data"]["title"], "Emma");
    assert_eq!(next(&mut watcher).await["op"], "remove");
    assert_eq!(
        next(&mut watcher).await,
        json!({"t": "data", "path": "/api/shelf/3/books", "op": "remove", "data": {"id": "1", "title": "Emma"}})
    );
    send(&mut editor, json!({"t": "request", "method": "read", "path": "/api/shelf/3/book/1", "id": 15}))
        .await;
    assert_eq!(next(&mut editor).await["err"]["code"], "not_found");
    send(&mut editor, json!({"t": "request", "method": "delete", "path": "/api/shelf/3/books", "id": 16}))
        .await;
    assert_eq!(next(&mut editor).await["err"]["code"], "no_handler");
    send(&mut editor, json!({"t": "request", "method": "read", "path": "/nope", "id": 17})).await;
    assert_eq!(next(&mut editor).await["err"]["code"], "no_route");
    nothing_more(&mut watcher).await;
}

#[tokio::test]
async fn bad_input_gets_error_frames_and_the_connection_stays() {
    let f = fixture().await;
    let mut ws = connect(&f.server, "eve").await;
    for (frame, code) in [
        (json!({"t": "teleport"}), "malformed"),
        (json!({"t": "data", "path": "/x", "op": "change", "data": 1}), "unexpected"),
        (json!({"t": "unsub", "path": "/api/featured", "id": 1}), "not_subscribed"),
        (json!({"t": "sub", "path": "no-slash", "id": 2}), "bad_request"),
    ] {
        send(&mut ws, frame.clone()).await;
        assert_eq!(next(&mut ws).await["code"], code, "{frame}");
    }
    subscribe(&mut ws, "/api/featured").await;
    assert_eq!(f.sync.push("/api/featured", Op::Change, &1).await.unwrap(), 1);
    assert_eq!(next(&mut ws).await["data"], 1);
}
