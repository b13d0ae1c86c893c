//! `bench serve`: the server under test, on a current-thread runtime (one worker for both
//! implementations). The third implementation, Node `ws`, is `bench/node/server.js`.
//!
//! - `ours`: `ws_server::Server`. Echo sends each frame back to its sender; fan-out puts
//!   every connection except the publisher (path `/pub`) in one room and broadcasts each
//!   frame of the publisher to the room through the adapter, shared, never copied. Memory
//!   does what a real application does with an idle connection: joins it to a room on
//!   `Added`, and serves the views router (`views::ViewsConfig`) that the client opens a
//!   view through.
//! - `raw`: the textbook tokio-tungstenite server with no framework: `accept_hdr_async`,
//!   `split`, a writer task per connection fed by a bounded mpsc that feeds every queued
//!   frame and flushes once; fan-out walks a `Mutex<HashMap>` of those senders. Memory keeps
//!   each connection in that map and its id in a room set, and ignores what it reads.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{SinkExt, StreamExt};
use network_core::{Adapter, Network, NetworkEvent, Room, Target};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use ws_server::{Server, ServerConfig};

use crate::{Args, BoxError};

/// Frames the raw baseline queues per connection before it drops (fan-out) or waits (echo).
pub(crate) const RAW_QUEUE: usize = 1024;
/// The raw baseline's read buffer, the same as `ServerConfig::read_buffer_size`'s default.
pub(crate) const RAW_READ_BUFFER: usize = 4 * 1024;

/// What the server does with its connections.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Sends every data frame back to its sender.
    Echo,
    /// Relays every frame of the publisher (path `/pub`) to all other connections.
    Fanout,
    /// Holds idle connections with room (and, for ours, view) membership.
    Memory,
}

pub(crate) fn main(args: &Args) -> Result<(), BoxError> {
    let implementation = args.required("impl")?;
    let scenario = match args.required("scenario")?.as_str() {
        "echo" => Scenario::Echo,
        "fanout" => Scenario::Fanout,
        "memory" => Scenario::Memory,
        other => return Err(format!("unknown scenario {other}").into()),
    };
    let listen = args.str_or("listen", "127.0.0.1:0");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match implementation.as_str() {
        "ours" => runtime.block_on(ours(&listen, scenario)),
        "raw" => runtime.block_on(raw(&listen, scenario)),
        other => Err(format!("unknown impl {other}").into()),
    }
}

fn announce(addr: std::net::SocketAddr) -> Result<(), BoxError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on ws://{addr}")?;
    stdout.flush()?;
    Ok(())
}

async fn ours(listen: &str, scenario: Scenario) -> Result<(), BoxError> {
    let server = Server::bind(listen, ServerConfig::default()).await?;
    announce(server.local_addr().ok_or("no local address")?)?;
    let mut events = server.events().ok_or("events already taken")?;
    let room: Room = Arc::from("all");
    let target = Target::room(room.clone());
    let mut publisher = None;
    if scenario == Scenario::Memory {
        // The router keeps its own state once attached; the `Presence` handle it returns
        // (for questions from server code) is not needed here.
        let _presence = views::ViewsConfig::default().attach(&server)?;
    }
    while let Some(event) = events.recv().await {
        match (scenario, event) {
            (Scenario::Echo, NetworkEvent::Message { connection, message }) => {
                let _ = connection.send(message);
            }
            (Scenario::Fanout, NetworkEvent::Added(connection)) => {
                if connection.meta().path == "/pub" {
                    publisher = Some(connection.id());
                } else {
                    server.adapter().join_now(connection.id(), room.clone());
                }
            }
            (Scenario::Fanout, NetworkEvent::Message { connection, message })
                if Some(connection.id()) == publisher =>
            {
                let _ = server.adapter().broadcast(&target, message).await;
            }
            (Scenario::Memory, NetworkEvent::Added(connection)) => {
                server.adapter().join_now(connection.id(), room.clone());
            }
            (Scenario::Fanout | Scenario::Memory, NetworkEvent::Removed { connection, .. }) => {
                server.adapter().leave_all_now(connection.id());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The raw server's connections: the writer queue of each, by connection id.
type Members = Arc<Mutex<HashMap<u64, mpsc::Sender<Message>>>>;
/// The raw server's one room (memory scenario): the ids of its members.
type RoomSet = Arc<Mutex<HashSet<u64>>>;

async fn raw(listen: &str, scenario: Scenario) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    announce(listener.local_addr()?)?;
    let members: Members = Arc::default();
    let room: RoomSet = Arc::default();
    let mut next_id = 0;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        next_id += 1;
        tokio::spawn(raw_connection(stream, next_id, scenario, members.clone(), room.clone()));
    }
}

// tungstenite's handshake callback returns its own (large) `ErrorResponse`; not ours to box.
#[allow(clippy::result_large_err)]
async fn raw_connection(stream: TcpStream, id: u64, scenario: Scenario, members: Members, room: RoomSet) {
    let _ = stream.set_nodelay(true);
    let mut is_publisher = false;
    let callback = |request: &Request, response: Response| {
        is_publisher = request.uri().path() == "/pub";
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(RAW_READ_BUFFER);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let (sink, mut source) = ws.split();
    let (sender, writer) = spawn_raw_writer(sink);
    if scenario != Scenario::Echo && !is_publisher {
        members.lock().unwrap_or_else(PoisonError::into_inner).insert(id, sender.clone());
    }
    if scenario == Scenario::Memory {
        room.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
    }
    while let Some(Ok(message)) = source.next().await {
        match message {
            Message::Text(_) | Message::Binary(_) => match scenario {
                Scenario::Echo => {
                    if sender.send(message).await.is_err() {
                        break;
                    }
                }
                Scenario::Fanout if is_publisher => {
                    let members = members.lock().unwrap_or_else(PoisonError::into_inner);
                    for member in members.values() {
                        let _ = member.try_send(message.clone());
                    }
                }
                Scenario::Fanout | Scenario::Memory => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    members.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    room.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    drop(sender);
    let _ = writer.await;
}

/// The raw baseline's writer task, the textbook shape: a bounded queue of
/// [`RAW_QUEUE`] frames, fed into the sink all at once and flushed once per wake-up.
pub(crate) fn spawn_raw_writer<S>(mut sink: S) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<()>)
where
    S: futures_util::Sink<Message> + Unpin + Send + 'static,
{
    let (sender, mut queue) = mpsc::channel::<Message>(RAW_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = queue.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    (sender, writer)
}
