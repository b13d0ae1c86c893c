//! `bench features serve`: the server under test, on a current-thread runtime (one worker
//! for both implementations). It prints `listening on ws://ADDR` once it accepts.
//!
//! - `ours`: `ws_server::Server` with default settings and, per scenario, the channels
//!   router (channel `/storm`, whose `on_join` puts the connection in the room named by its
//!   query parameter `room`) and the views router (storm); the views router (churn); the
//!   sync router with route `/api/model/:id` and a push loop (sync push).
//! - `raw`: tokio-tungstenite with no framework: `accept_hdr_async_with_config`, `split`, a
//!   writer task per connection fed by a bounded mpsc that feeds every queued frame and
//!   flushes once, a frame decoder, and the rooms, views and subscribers in maps behind
//!   one `Mutex`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use channels::RemoteError;
use futures_util::StreamExt;
use network_core::{Network, NetworkEvent};
use sync::{Op, Route, SyncConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use views::ViewsConfig;
use ws_server::{Server, ServerConfig};

use super::wire::{self, Envelope, PUSH_PAD, PushPayload};
use super::{Impl, Scenario, say};
use crate::serve::{RAW_READ_BUFFER, spawn_raw_writer};
use crate::{Args, BoxError};

/// The most credits the control connection may grant at once: the load generator's window
/// is far smaller, so this only bounds a confused peer.
const MAX_CREDITS: usize = 4096;

pub(super) fn main(args: &Args) -> Result<(), BoxError> {
    let implementation = Impl::parse(&args.required("impl")?)?;
    let scenario = Scenario::parse(&args.required("scenario")?)?;
    let listen = args.str_or("listen", "127.0.0.1:0");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match implementation {
        Impl::Ours => runtime.block_on(ours(&listen, scenario)),
        Impl::Raw => runtime.block_on(raw(&listen, scenario)),
    }
}

/// The room a storm connection asks for in its query (`room=NAME`).
fn room_of(query: Option<&str>) -> String {
    query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("room="))
        .unwrap_or("none")
        .to_owned()
}

/// Parses a control frame: the number of pushes the load generator saw complete.
fn credits(text: &str) -> usize {
    text.trim().parse::<usize>().unwrap_or(0).min(MAX_CREDITS)
}

async fn ours(listen: &str, scenario: Scenario) -> Result<(), BoxError> {
    // No rate limit: the scenarios flood on purpose, and the raw baseline has none.
    let server = Server::bind(listen, ServerConfig::default().rate_limit(None)).await?;
    let mut events = server.events().ok_or("events already taken")?;
    let credits_granted = Arc::new(Semaphore::new(0));
    match scenario {
        Scenario::Storm => {
            let channel = channels::Channel::new().on_join(|ctx: channels::JoinContext<Server>| async move {
                let room = room_of(ctx.connection().meta().query.as_deref());
                ctx.join_room(&room).await.map_err(|error| RemoteError::internal(error.to_string()))
            });
            channels::ChannelsConfig::default().channel(wire::STORM_CHANNEL, channel).attach(&server)?;
            ViewsConfig::default().attach(&server)?;
        }
        Scenario::Churn => {
            ViewsConfig::default().attach(&server)?;
        }
        Scenario::SyncPush => {
            let sync = SyncConfig::default().route(wire::SYNC_PATTERN, Route::new()).attach(&server)?;
            let credits_granted = credits_granted.clone();
            tokio::spawn(async move {
                let mut seq = 0;
                // One push per credit: the window is the load generator's.
                while let Ok(permit) = credits_granted.acquire().await {
                    permit.forget();
                    let payload = PushPayload { seq, pad: PUSH_PAD };
                    if sync.push(wire::SYNC_PATH, Op::Change, &payload).await.is_err() {
                        break;
                    }
                    seq += 1;
                }
            });
        }
    }
    say(&format!("listening on ws://{}", server.local_addr().ok_or("no local address")?))?;
    // Frames no router claims: only the control connection's credits. Draining them keeps
    // the application's queue from holding back the readers.
    while let Some(event) = events.recv().await {
        if let NetworkEvent::Message { connection, message } = event
            && connection.meta().path == wire::CONTROL_PATH
        {
            credits_granted.add_permits(credits(message.as_text().unwrap_or("")));
        }
    }
    Ok(())
}

/// The raw server's state, behind one lock.
#[derive(Default)]
struct RawState {
    /// Every connection's writer queue.
    peers: HashMap<u64, mpsc::Sender<Message>>,
    /// Storm rooms and their members (kept, as our channels router keeps them).
    rooms: HashMap<String, HashSet<u64>>,
    /// Views and their members.
    views: HashMap<String, BTreeSet<u64>>,
    /// Subscribers of the sync path.
    subscribers: HashMap<u64, mpsc::Sender<Message>>,
}

type SharedRawState = Arc<Mutex<RawState>>;

fn lock(shared: &SharedRawState) -> std::sync::MutexGuard<'_, RawState> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn raw(listen: &str, scenario: Scenario) -> Result<(), BoxError> {
    let listener = TcpListener::bind(listen).await?;
    let shared: SharedRawState = Arc::default();
    let credits_granted = Arc::new(Semaphore::new(0));
    if scenario == Scenario::SyncPush {
        let shared = shared.clone();
        let credits_granted = credits_granted.clone();
        tokio::spawn(async move {
            let mut seq = 0;
            while let Ok(permit) = credits_granted.acquire().await {
                permit.forget();
                // Encoded once per push; every subscriber gets the same bytes.
                let message = Message::text(wire::push(seq));
                for subscriber in lock(&shared).subscribers.values() {
                    let _ = subscriber.try_send(message.clone());
                }
                seq += 1;
            }
        });
    }
    say(&format!("listening on ws://{}", listener.local_addr()?))?;
    let mut next_id = 0;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: let some connections end.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        next_id += 1;
        tokio::spawn(raw_connection(stream, next_id, shared.clone(), credits_granted.clone()));
    }
}

/// Sends `text` to every member of `view` but `except`, dropping it for full queues.
fn broadcast_to_view(state: &RawState, view: &str, except: u64, text: String) {
    let message = Message::text(text);
    for member in state.views.get(view).into_iter().flatten() {
        if *member != except
            && let Some(peer) = state.peers.get(member)
        {
            let _ = peer.try_send(message.clone());
        }
    }
}

// tungstenite's handshake callback returns its own (large) `ErrorResponse`; not ours to box.
#[allow(clippy::result_large_err)]
async fn raw_connection(stream: TcpStream, id: u64, shared: SharedRawState, credits_granted: Arc<Semaphore>) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let mut query = None;
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        query = request.uri().query().map(str::to_owned);
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(RAW_READ_BUFFER);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let is_control = path == wire::CONTROL_PATH;
    let (sink, mut source) = ws.split();
    let (sender, writer) = spawn_raw_writer(sink);
    lock(&shared).peers.insert(id, sender.clone());
    let mut open_views: Vec<String> = Vec::new();
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else {
            if message.is_close() {
                break;
            }
            continue;
        };
        if is_control {
            credits_granted.add_permits(credits(text.as_str()));
            continue;
        }
        let Some(frame) = Envelope::decode(text.as_str()) else { continue };
        let reply = match (frame.router.as_str(), frame.d.t.as_str()) {
            ("ch", "join") => {
                let room = room_of(query.as_deref());
                lock(&shared).rooms.entry(room).or_default().insert(id);
                wire::joined(wire::STORM_CHANNEL, frame.d.id)
            }
            ("views", "open") => {
                let view = frame.d.view.unwrap_or_default();
                let mut state = lock(&shared);
                let members = state.views.entry(view.clone()).or_default();
                let fresh = members.insert(id);
                let reply = wire::state(&view, members.iter().copied(), frame.d.id);
                if fresh {
                    broadcast_to_view(&state, &view, id, wire::diff_join(&view, id));
                    open_views.push(view);
                }
                reply
            }
            ("views", "close") => {
                let view = frame.d.view.unwrap_or_default();
                let mut state = lock(&shared);
                let was_open = state.views.get_mut(&view).is_some_and(|members| members.remove(&id));
                if was_open {
                    broadcast_to_view(&state, &view, id, wire::diff_leave(&view, id));
                    open_views.retain(|open| *open != view);
                }
                wire::closed(&view, frame.d.id)
            }
            ("sync", "sub") => {
                lock(&shared).subscribers.insert(id, sender.clone());
                wire::subscribed(wire::SYNC_PATH, frame.d.id)
            }
            _ => continue,
        };
        if sender.send(Message::text(reply)).await.is_err() {
            break;
        }
    }
    {
        let mut state = lock(&shared);
        state.peers.remove(&id);
        state.subscribers.remove(&id);
        if let Some(members) = state.rooms.get_mut(&room_of(query.as_deref())) {
            members.remove(&id);
        }
        for view in &open_views {
            if let Some(members) = state.views.get_mut(view) {
                members.remove(&id);
            }
            broadcast_to_view(&state, view, id, wire::diff_leave(view, id));
        }
    }
    drop(sender);
    let _ = writer.await;
}
