//! Realtime models and collections: a books server, a client that edits a book, and
//! another client that watches it change.
//!
//! - The server keeps books in memory behind the sync router (`docs/PROTOCOL.md`, section
//!   7): the model pattern `/api/book/:id` (read, update, delete; its items belong to the
//!   collection `/api/books`) and the collection `/api/books` (read the list, create).
//!   Every successful change is pushed by the router to the subscribers of the book and
//!   of the collection.
//! - The watcher subscribes to `/api/book/1` (a typed stream) and keeps a `Collection` of
//!   `/api/books`; it prints one line per change it receives.
//! - The editor renames book 1 three times and creates a book, then exits.
//!
//! ```text
//! cargo run --example sync_books
//! cargo run --example sync_books -- --listen 127.0.0.1:9003   # then keep serving
//! ```
//!
//! Without arguments it runs on a free loopback port and exits once the watcher has seen
//! every change. With `--listen ADDR` the books server stays up afterwards (until Ctrl-C)
//! for other clients, such as a second run of a client of your own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use realtime::sync::client::{Collection, CollectionChange, CollectionEvent, SyncClient, SyncClientConfig};
use realtime::sync::{RemoteError, Request, Route, SyncConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A book, as the server stores it and the clients decode it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Book {
    id: u64,
    title: String,
}

/// What an update may change.
#[derive(Deserialize)]
struct BookPatch {
    title: Option<String>,
}

/// The server's books, shared by its handlers.
#[derive(Clone, Default)]
struct Store(Arc<Mutex<Shelf>>);

#[derive(Default)]
struct Shelf {
    books: BTreeMap<u64, Book>,
    next_id: u64,
}

impl Store {
    fn with<T>(&self, f: impl FnOnce(&mut Shelf) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn add(&self, title: &str) -> Book {
        self.with(|shelf| {
            shelf.next_id += 1;
            let book = Book { id: shelf.next_id, title: title.to_owned() };
            shelf.books.insert(book.id, book.clone());
            book
        })
    }
}

fn to_value(book: &Book) -> Result<Value, RemoteError> {
    serde_json::to_value(book).map_err(|error| RemoteError::internal(error.to_string()))
}

fn book_id(request: &Request<Server>) -> Result<u64, RemoteError> {
    request
        .params
        .get("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| RemoteError::bad_request("book ids are numbers"))
}

async fn read_book(store: Store, request: Request<Server>) -> Result<Value, RemoteError> {
    let id = book_id(&request)?;
    let book = store.with(|shelf| shelf.books.get(&id).cloned());
    to_value(&book.ok_or_else(|| RemoteError::not_found(format!("no book {id}")))?)
}

async fn update_book(store: Store, request: Request<Server>) -> Result<Value, RemoteError> {
    let id = book_id(&request)?;
    let patch: BookPatch =
        serde_json::from_value(request.data).map_err(|error| RemoteError::bad_request(error.to_string()))?;
    let book = store.with(|shelf| {
        let book = shelf.books.get_mut(&id)?;
        if let Some(title) = patch.title {
            book.title = title;
        }
        Some(book.clone())
    });
    to_value(&book.ok_or_else(|| RemoteError::not_found(format!("no book {id}")))?)
}

async fn delete_book(store: Store, request: Request<Server>) -> Result<Value, RemoteError> {
    let id = book_id(&request)?;
    let book = store.with(|shelf| shelf.books.remove(&id));
    to_value(&book.ok_or_else(|| RemoteError::not_found(format!("no book {id}")))?)
}

async fn list_books(store: Store, _request: Request<Server>) -> Result<Value, RemoteError> {
    let books: Vec<Book> = store.with(|shelf| shelf.books.values().cloned().collect());
    serde_json::to_value(books).map_err(|error| RemoteError::internal(error.to_string()))
}

async fn create_book(store: Store, request: Request<Server>) -> Result<Value, RemoteError> {
    let patch: BookPatch =
        serde_json::from_value(request.data).map_err(|error| RemoteError::bad_request(error.to_string()))?;
    let title = patch.title.ok_or_else(|| RemoteError::bad_request("a book needs a title"))?;
    to_value(&store.add(&title))
}

/// The sync routes of the books server.
fn books(store: &Store) -> SyncConfig<Server> {
    // Each handler gets its own handle on the store.
    macro_rules! with_store {
        ($handler:ident) => {{
            let store = store.clone();
            move |request| $handler(store.clone(), request)
        }};
    }
    let book = Route::new()
        .collection("/api/books")
        .read(with_store!(read_book))
        .update(with_store!(update_book))
        .delete(with_store!(delete_book));
    let shelf = Route::new().read(with_store!(list_books)).create(with_store!(create_book));
    SyncConfig::default().route("/api/book/:id", book).route("/api/books", shelf)
}

/// One line for what a message did to the watcher's collection.
fn describe(event: &CollectionEvent<Book>) -> String {
    let changes: Vec<String> = event
        .changes
        .iter()
        .map(|change| match change {
            CollectionChange::Added { item, .. } => format!("added {:?}", item.title),
            CollectionChange::Changed { item, previous, .. } => {
                format!("{:?} -> {:?}", previous.title, item.title)
            }
            CollectionChange::Removed { item, .. } => format!("removed {:?}", item.title),
            CollectionChange::Invalid { data, error } => format!("invalid item {data} ({error})"),
            other => format!("{other:?}"),
        })
        .collect();
    let kind = if event.snapshot { "read" } else { "push" };
    format!("{kind}: {}", if changes.is_empty() { "no change".to_owned() } else { changes.join(", ") })
}

fn titles(shelf: &Collection<Book>) -> String {
    shelf.items().iter().map(|book| format!("{}. {}", book.id, book.title)).collect::<Vec<_>>().join(" | ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let listen = cli::parse_or_exit(parse_args, USAGE);

    // The server, with two books.
    let bind: SocketAddr = listen.unwrap_or(([127, 0, 0, 1], 0).into());
    let server = Server::bind(bind, ServerConfig::default()).await.context("starting the server")?;
    let store = Store::default();
    store.add("Dune");
    store.add("Emma");
    books(&store).attach(&server).context("attaching the sync router")?;
    let url = format!("ws://{}/", server.local_addr().context("the server has no address")?);
    println!("server:  books at {url}");

    // The watcher: a model and a collection, both current before the editor starts.
    let watcher = Client::connect(url.as_str(), ClientConfig::default())?;
    let watching = SyncClient::attach(&watcher, SyncClientConfig::default())?;
    let book = watching.sync("/api/book/1")?;
    let mut book_changes = book.typed::<Book>();
    book.connect().await.context("subscribing to /api/book/1")?;
    let shelf = watching.collection::<Book>("/api/books")?;
    let mut shelf_changes = shelf.changes();
    shelf.start().await.context("reading /api/books")?;

    // Three renames and one new book: the watcher expects three changes of the model, and
    // the initial read plus four pushes on the collection.
    let renames = ["Dune Messiah", "Children of Dune", "God Emperor of Dune"];
    let book_lines = tokio::spawn(async move {
        for _ in 0..renames.len() {
            match book_changes.recv().await {
                Some(Ok(change)) => {
                    println!("watcher: {} {:?} -> {:?}", change.path, change.op, change.data.title)
                }
                Some(Err(error)) => println!("watcher: /api/book/1 sent something else: {error}"),
                None => break,
            }
        }
    });
    let shelf_lines = tokio::spawn(async move {
        for _ in 0..1 + renames.len() + 1 {
            match shelf_changes.recv().await {
                Some(event) => println!("watcher: /api/books {}", describe(&event)),
                None => break,
            }
        }
    });

    // The editor: a client of its own, which exits when done.
    let editor = Client::connect(url.as_str(), ClientConfig::default())?;
    let editing = SyncClient::attach(&editor, SyncClientConfig::default())?;
    for title in renames {
        let renamed: Book = editing.update("/api/book/1", &json!({ "title": title })).await?;
        println!("editor:  renamed book {} to {:?}", renamed.id, renamed.title);
    }
    let created: Book = editing.create("/api/books", &json!({"title": "Persuasion"})).await?;
    println!("editor:  created book {} {:?}", created.id, created.title);
    editor.close().await;

    let waited =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(book_lines, shelf_lines) })
            .await
            .context("the watcher did not see every change")?;
    waited.0?;
    waited.1?;
    println!("watcher: /api/books is now {}", titles(&shelf));
    watcher.close().await;

    if listen.is_some() {
        println!("server:  still serving books at {url} (Ctrl-C to stop)");
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    }
    server.shutdown().await;
    Ok(())
}

const USAGE: &str = "\
usage: sync_books [--listen ADDR]
  --listen ADDR   serve on ADDR and keep serving after the demo (default: a free loopback
                  port, and exit once the demo is over)
  -h, --help      print this help and exit";

#[path = "shared/cli.rs"]
mod cli;

/// The address to listen on (`None`: a free port and the demo client), or `None` for `--help`.
fn parse_args() -> anyhow::Result<Option<Option<SocketAddr>>> {
    let mut listen = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().context("--listen needs an address")?;
                listen = Some(value.parse().with_context(|| format!("bad --listen address {value:?}"))?);
            }
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Some(listen))
}
