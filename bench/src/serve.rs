//! `bench serve`: the server under test, on a current-thread runtime (one worker for both
//! implementations). The third implementation, Node `ws`, is `bench/node/server.js`.
//!
//! - `ours`: `ws_server::Server`. Echo sends each frame back to its sender; fan-out puts
//!   every connection except the publisher (path `/pub`) in one room and broadcasts each
//!   frame of the publisher to the room through the adapter, shared, never copied. Memory
//!   does what a real application does with an idle connection: joins it to a room on
//!   `Added`, and serves the views router (`views::ViewsConfig`) that the client opens a
//!   view through. With `--cluster-redis redis://HOST:PORT` it first joins the cluster on
//!   that Redis (`redis_adapter::RedisCluster`, default `RedisConfig`) and serves with that
//!   adapter (`Server::bind_with`): a fan-out broadcast then reaches this node's members and
//!   is published once to Redis, and every other node delivers it to its own members. The
//!   event loop is the same code for both adapters; it awaits each broadcast, as an
//!   application's handler would, which with Redis means until Redis took the publish.
//!   `--broadcast pipelined` instead polls each broadcast once in line (which delivers to
//!   this node's members and queues the publish, in the order the frames came) and awaits
//!   its receipt out of line, so that the next frame need not wait for Redis.
//! - `raw`: the textbook tokio-tungstenite server with no framework: `accept_hdr_async`,
//!   `split`, a writer task per connection fed by a bounded mpsc that feeds every queued
//!   frame and flushes once; fan-out walks a `Mutex<HashMap>` of those senders. Memory keeps
//!   each connection in that map and its id in a room set, and ignores what it reads.
//! - `bcast`: the other textbook raw server, on `tokio::sync::broadcast` (axum's chat
//!   example): the same accept path as `raw`, one broadcast channel for the fan-out, a
//!   writer task per connection that coalesces queued frames; lossy on lag (see [`bcast`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use network_core::{Adapter, AdapterError, Network, NetworkEvent, Room, Target};
use redis_adapter::{RedisCluster, RedisConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use ws_server::{Server, ServerConfig};

use crate::{Args, BoxError};

mod bcast;

/// Frames the raw baseline queues per connection before it drops (fan-out) or waits (echo).
pub(crate) const RAW_QUEUE: usize = 1024;
/// The raw baseline's read buffer: 4 KiB, the reference baseline (ours defaults
/// to 3 KiB since the memory re-measurement: `docs/DESIGN.md`, "Memory per connection").
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
    let cluster = args.str_or("cluster-redis", "");
    let pipelined = match args.str_or("broadcast", "awaited").as_str() {
        "awaited" => false,
        "pipelined" => true,
        other => return Err(format!("unknown --broadcast {other} (awaited or pipelined)").into()),
    };
    // The load generator floods single connections on purpose, and the raw baseline has no
    // rate limit: ours runs without one too (the limiter's policy is not what is measured).
    let config = ServerConfig::default().rate_limit(None);
    match implementation.as_str() {
        "ours" if cluster.is_empty() => runtime.block_on(async {
            ours(Server::bind(listen.as_str(), config).await?, scenario, pipelined).await
        }),
        "ours" => runtime.block_on(async {
            let cluster = RedisCluster::connect(RedisConfig::new(cluster)).await?;
            let server = Server::bind_with(listen.as_str(), config, cluster).await?;
            ours(server, scenario, pipelined).await
        }),
        "raw" if cluster.is_empty() => runtime.block_on(raw(&listen, scenario)),
        "bcast" if cluster.is_empty() => runtime.block_on(bcast::serve(&listen, scenario)),
        "raw" | "bcast" => Err("--cluster-redis is for --impl ours only".into()),
        other => Err(format!("unknown impl {other}").into()),
    }
}

fn announce(addr: std::net::SocketAddr) -> Result<(), BoxError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on ws://{addr}")?;
    stdout.flush()?;
    Ok(())
}

/// A broadcast whose outcome is awaited out of line (`--broadcast pipelined`).
type Pending = Pin<Box<dyn Future<Output = Result<usize, AdapterError>>>>;

/// Counts a broadcast that did not fully go out (with a cluster: not published to Redis)
/// and reports it on stderr (the driver shows it) at the 1st, 2nd, 4th, ... failure, so
/// that a storm of them does not become the work measured.
fn note_failure(failed: &mut u64, outcome: Result<usize, AdapterError>) {
    if let Err(error) = outcome {
        *failed += 1;
        if failed.is_power_of_two() {
            eprintln!("serve: broadcast failed ({failed} so far): {error}");
        }
    }
}

/// Serves `scenario` on `server`, whose adapter is this process's rooms or a cluster's;
/// `pipelined`: see the module doc.
async fn ours<A: Adapter>(server: Server<A>, scenario: Scenario, pipelined: bool) -> Result<(), BoxError> {
    announce(server.local_addr().ok_or("no local address")?)?;
    let mut events = server.events().ok_or("events already taken")?;
    let room: Room = Arc::from("all");
    let target = Target::room(room.clone());
    let mut publisher = None;
    let mut failed: u64 = 0;
    // Pipelined broadcasts waiting for their outcome; always empty when awaited in line.
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    if scenario == Scenario::Memory {
        // The router keeps its own state once attached; the `Presence` handle it returns
        // (for questions from server code) is not needed here.
        let _presence = views::ViewsConfig::default().attach(&server)?;
    }
    loop {
        let event = if pending.is_empty() {
            events.recv().await
        } else {
            tokio::select! {
                event = events.recv() => event,
                Some(outcome) = pending.next() => {
                    note_failure(&mut failed, outcome);
                    continue;
                }
            }
        };
        let Some(event) = event else { break };
        match (scenario, event) {
            (Scenario::Echo, NetworkEvent::Message { connection, message }) => {
                let _ = connection.send(message);
            }
            (Scenario::Fanout, NetworkEvent::Added(connection)) => {
                if connection.meta().path == "/pub" {
                    publisher = Some(connection.id());
                } else {
                    // Our own connection: answered from memory, with either adapter.
                    let _ = server.adapter().join(connection.id(), room.clone()).await;
                }
            }
            (Scenario::Fanout, NetworkEvent::Message { connection, message })
                if Some(connection.id()) == publisher =>
            {
                if pipelined {
                    let (server, target) = (server.clone(), target.clone());
                    let mut broadcast: Pending =
                        Box::pin(async move { server.adapter().broadcast(&target, message).await });
                    // The first poll runs the broadcast up to its first wait: with the Redis
                    // adapter, the local delivery and the queueing of the publish, here in
                    // the order the frames came; only the receipt is left to wait for.
                    match futures_util::poll!(broadcast.as_mut()) {
                        Poll::Ready(outcome) => note_failure(&mut failed, outcome),
                        Poll::Pending => pending.push(broadcast),
                    }
                } else {
                    let outcome = server.adapter().broadcast(&target, message).await;
                    note_failure(&mut failed, outcome);
                }
            }
            (Scenario::Memory, NetworkEvent::Added(connection)) => {
                let _ = server.adapter().join(connection.id(), room.clone()).await;
            }
            (Scenario::Fanout | Scenario::Memory, NetworkEvent::Removed { connection, .. }) => {
                let _ = server.adapter().leave_all(connection.id()).await;
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

/// The raw baselines' accept path: no Nagle, `accept_hdr_async_with_config` with a
/// [`RAW_READ_BUFFER`] read buffer. The connection, and whether it is the publisher (path
/// `/pub`); `None` when the handshake failed.
// tungstenite's handshake callback returns its own (large) `ErrorResponse`; not ours to box.
#[allow(clippy::result_large_err)]
pub(crate) async fn accept_raw(stream: TcpStream) -> Option<(WebSocketStream<TcpStream>, bool)> {
    let _ = stream.set_nodelay(true);
    let mut is_publisher = false;
    let callback = |request: &Request, response: Response| {
        is_publisher = request.uri().path() == "/pub";
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(RAW_READ_BUFFER);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await.ok()?;
    Some((ws, is_publisher))
}

async fn raw_connection(stream: TcpStream, id: u64, scenario: Scenario, members: Members, room: RoomSet) {
    let Some((ws, is_publisher)) = accept_raw(stream).await else { return };
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
