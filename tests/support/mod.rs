//! Helpers shared by the integration tests: servers on 127.0.0.1:0, raw tungstenite
//! clients, and bounded waits.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime::network_core::{Events, Network, NetworkEvent};
use realtime::sync::{RemoteError as SyncError, Route};
use realtime::ws_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type RawClient = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Every wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("timed out")
}

/// A server on a free loopback port, with its application events.
pub async fn server(config: ServerConfig) -> (Server, Events) {
    let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
    let events = server.events().expect("events");
    (server, events)
}

pub fn url(server: &Server) -> String {
    format!("ws://{}/", server.local_addr().expect("address"))
}

/// A plain tungstenite client connected to `url`.
pub async fn raw_client(url: &str) -> RawClient {
    let (ws, _) = within(tokio_tungstenite::connect_async(url)).await.expect("connect");
    ws
}

/// The next application event.
pub async fn next_event(events: &mut Events) -> NetworkEvent {
    within(events.recv()).await.expect("events ended")
}

/// The next data frame a raw client receives (control frames skipped).
pub async fn next_data(ws: &mut RawClient) -> WsMessage {
    loop {
        match within(ws.next()).await.expect("stream ended").expect("read") {
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Reads until the server's close frame (or the end) and returns it.
pub async fn close_frame(ws: &mut RawClient) -> Option<WsCloseFrame> {
    loop {
        match within(ws.next()).await {
            Some(Ok(WsMessage::Close(frame))) => return frame,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// A server whose application echoes every frame back to its sender.
pub async fn echo_server(config: ServerConfig) -> Server {
    let (server, mut events) = server(config).await;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Message { connection, message } = event {
                let _ = connection.send(message);
            }
        }
    });
    server
}

pub async fn send_text(ws: &mut RawClient, text: &str) {
    within(ws.send(WsMessage::text(text))).await.expect("send");
}

/// The test harness's name for test `function` of the module whose `module_path!()` is
/// `module`: the module path without the crate's name, then the function. A test that runs
/// itself again in a child process selects itself with `--exact` and this name, which stays
/// right wherever its module moves inside the test binary.
pub fn test_name(module: &str, function: &str) -> String {
    match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{function}"),
        None => function.to_owned(),
    }
}

/// Runs test `test` (its full name, see [`test_name`]) of the current test binary again, in
/// a child process whose open-file limit is `open_files` and whose environment has `marker`
/// set (the test checks it to know it is the child). Returns the child's stdout; fails if
/// the child failed or did not run exactly that test.
///
/// Used by tests that exhaust or exceed the descriptor limit, so that nothing else in the
/// test binary is affected.
pub fn run_as_child_with_open_files(test: &str, marker: &str, open_files: u32) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let script = format!(r#"ulimit -n {open_files} && exec "$0" --exact {test} --nocapture"#);
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(exe)
        .env(marker, "1")
        .output()
        .expect("spawning the child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    // A name that matches no test runs nothing and succeeds: say so rather than let the
    // caller fail on missing output.
    assert!(stdout.contains("running 1 test"), "the child did not run test {test}:\n{stdout}");
    stdout
}

/// Books by id, shared by the handlers of a sync route and the test that checks them.
pub type Books = Arc<Mutex<BTreeMap<String, Value>>>;

/// The route of one book (mount it at `/api/book/:id`) over `books`: `read` answers the
/// book or `not_found`, `update` stores `{id, title}` from the request and answers it.
pub fn book_route<N: Network>(books: &Books) -> Route<N> {
    book_route_counting_reads(books, &Arc::default())
}

/// [`book_route`], adding one to `reads` on every read (to tell a catch-up read from none).
pub fn book_route_counting_reads<N: Network>(books: &Books, reads: &Arc<AtomicUsize>) -> Route<N> {
    let (read, update, reads) = (books.clone(), books.clone(), reads.clone());
    Route::new()
        .read(move |request| {
            let books = read.clone();
            reads.fetch_add(1, Ordering::SeqCst);
            async move {
                books
                    .lock()
                    .unwrap()
                    .get(&request.params["id"])
                    .cloned()
                    .ok_or_else(|| SyncError::not_found("no book"))
            }
        })
        .update(move |request| {
            let books = update.clone();
            async move {
                let book = json!({"id": request.params["id"], "title": request.data["title"]});
                books.lock().unwrap().insert(request.params["id"].clone(), book.clone());
                Ok(book)
            }
        })
}

/// `count` servers on 127.0.0.1:0 sharing rooms through the Redis at `redis_url` (quick
/// heartbeats), returned once each one sees all of them.
pub async fn redis_nodes(redis_url: &str, count: usize) -> Vec<Server<redis_adapter::RedisAdapter>> {
    redis_nodes_with(redis_url, count, ServerConfig::default()).await
}

/// [`redis_nodes`], each server with `config`.
pub async fn redis_nodes_with(
    redis_url: &str,
    count: usize,
    config: ServerConfig,
) -> Vec<Server<redis_adapter::RedisAdapter>> {
    use redis_adapter::{RedisCluster, RedisConfig};
    let cluster_config = || {
        RedisConfig::new(redis_url)
            .heartbeat_interval(Duration::from_millis(100))
            .heartbeat_timeout(Duration::from_millis(400))
            .request_timeout(Duration::from_secs(2))
    };
    let mut nodes = Vec::new();
    for _ in 0..count {
        let cluster = within(RedisCluster::connect(cluster_config())).await.unwrap();
        nodes.push(Server::bind_with("127.0.0.1:0", config.clone(), cluster).await.unwrap());
    }
    within(async {
        for node in &nodes {
            // Subscribed before the check, so a change in between is not missed.
            let mut events = node.adapter().events();
            while node.adapter().nodes().len() != count {
                let _ = events.recv().await;
            }
        }
    })
    .await;
    nodes
}

/// A client frame made by hand: `first` byte as given (FIN, RSV bits, opcode), `payload`
/// masked, the shortest length encoding.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![first];
    match payload.len() {
        len if len < 126 => frame.push(0x80 | len as u8),
        len if len <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
    frame
}

/// The next frame a server sends on a hand-upgraded socket: its first byte (FIN, RSV bits,
/// opcode) and its payload (server frames are unmasked).
pub async fn raw_server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let first = stream.read_u8().await.unwrap();
    let len = match stream.read_u8().await.unwrap() {
        126 => usize::from(stream.read_u16().await.unwrap()),
        127 => stream.read_u64().await.unwrap() as usize,
        short => usize::from(short),
    };
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.unwrap();
    (first, payload)
}
