//! The fault suite: the example's setup (a server with the channels, views and sync
//! routers; a client with the three router clients, the *watcher*) with a
//! `testkit::FaultProxy` between the watcher and its server, and a *bystander* connected
//! directly. Every scenario runs in each mode, on each adapter (the `suite!` table at the
//! end names them; a test is `faults::<scenario>::<mode>::<adapter>`):
//!
//! - **modes**: `restore`, a client without session resume: it reconnects as a new
//!   connection and restores (re-join of `/chat`, re-open of the view, re-subscribe to the
//!   book with its catch-up read) before it flushes its offline queue; `resume`, a client
//!   with `ClientConfig::resume`: the same connection goes on, nothing is restored, nothing
//!   lost or doubled either way.
//! - **adapters**: `local`, one server; `redis`, two nodes sharing rooms through a real
//!   Redis, the watcher on one and the bystander on the other, so that room broadcasts,
//!   view diffs and sync pushes cross nodes during the fault and after it (skipped with a
//!   message without `redis-server`, unless `CI` is set).
//!
//! In both modes:
//! - the client reconnects within its schedule once the network lets it;
//! - its offline queue reaches the server once, in order, after the client is back in its
//!   room;
//! - an acknowledged request made around the fault (a channels emit, a sync update) ends
//!   within its timeout (its answer, or `Closed`/`Timeout`) and is handled at most once;
//! - presence converges: the room and the view hold the client once after recovery;
//! - the bystander is served throughout.
//!
//! In `restore` mode a request whose frame the fault cut fails, and the servers see one
//! restore (one more join, view open and book read). In `resume` mode the client sees
//! `Resumed` and never `Reset`; the servers see no restore at all; every acknowledged
//! request (cut, frozen, in flight or queued offline) is answered and handled exactly
//! once; notes sent into the dying link arrive once, in order, before the offline ones;
//! the broadcasts, view changes and sync pushes of the outage arrive, in order, without a
//! resync; and the bystander sees no leave.
//!
//! Faults: a reset in the middle of a frame from either side, a reset while frames wait in
//! the network both ways, a half-open link (silent both ways, noticed by the client's
//! heartbeat; toward the server only, noticed by the server's; toward the client only), a
//! blackhole shorter than the resume window, and latency. In `resume` mode only: a reset
//! in the middle of a resume's replay; and the sessions that cannot resume, a blackhole
//! longer than the window (`expired`), a burst past the replay bound while the session is
//! detached, and one while the server still holds a half-open socket (`overflow`), each
//! ending in one `Reset`, one leave, and a restore. Every timeout is short, so that a mode
//! runs in a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use realtime::channels::client::{
    Channel as ClientChannel, ChannelsClient, ChannelsClientConfig, EventStream,
};
use realtime::channels::{AckError, Channel, ChannelsConfig, RemoteError};
use realtime::network_core::resume::Refusal;
use realtime::network_core::{Adapter, Connection, LocalAdapter, Network};
use realtime::sync::client::{
    ErrorStream, RequestError, Subscription, SyncClient, SyncClientConfig, TypedSyncStream,
};
use realtime::sync::{Route, SyncConfig};
use realtime::views::client::{ChangeStream, View, ViewsClient, ViewsClientConfig};
use realtime::views::{Presence, ViewsConfig};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use realtime::ws_server::{Server, ServerConfig};
use redis_adapter::RedisAdapter;
use serde::{Deserialize, Serialize};
use serde_json::json;
use testkit::{Admission, FaultProxy, Flow, ProxiedConnection, RedisServer};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const ROOM: &str = "/chat#lobby";
const VIEW: &str = "doc";
const BOOK: &str = "/api/book/1";
/// A sync path whose `update` only records its payload (a request besides the channels').
const TALLY: &str = "/api/tally";
const OFFLINE: usize = 20;
/// Notes sent into a link the fault has just broken, before the client notices.
const IN_FLIGHT: usize = 5;

/// The client's schedule and heartbeat.
const MIN_DELAY: Duration = Duration::from_millis(20);
const MAX_DELAY: Duration = Duration::from_millis(100);
const PING: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_millis(400);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// The server's heartbeat: it notices a dead socket after `SERVER_IDLE`.
const SERVER_PING: Duration = Duration::from_millis(200);
const SERVER_IDLE: Duration = Duration::from_millis(600);
/// The resume window: longer than every outage but the one meant to outlast it.
const WINDOW: Duration = Duration::from_secs(5);
/// The window of the outage that outlasts it. A refused resume says `expired` for one
/// window after the session ended (then `unknown`), so it must leave room for the client's
/// attempt in the blackhole to time out and the next one to come.
const SHORT_WINDOW: Duration = Duration::from_secs(1);
/// Slack for a debug build on a busy machine.
const MARGIN: Duration = Duration::from_millis(700);
/// A replay bound small enough for a test to exceed (the default is 1 MiB).
const REPLAY_BOUND: usize = 16 * 1024;

/// How the client comes back after a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Without session resume: a new connection that restores.
    Restore,
    /// With `ClientConfig::resume`.
    Resume,
}

impl Mode {
    /// An acknowledged request's timeout. Short without resume, so that requests lost with
    /// the link fail fast; with resume, long enough to outlast an outage, since such a
    /// request must then succeed.
    fn ack_timeout(self) -> Duration {
        match self {
            Self::Restore => Duration::from_secs(1),
            Self::Resume => Duration::from_secs(3),
        }
    }

    /// How the client comes back from an outage shorter than the window.
    fn back(self) -> Back {
        match self {
            Self::Restore => Back::Restored,
            Self::Resume => Back::Resumed,
        }
    }
}

/// How the watcher came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Back {
    /// As a new connection, after a restore.
    Restored,
    /// The same connection, resumed.
    Resumed,
}

/// The servers' configuration: a quick heartbeat, and sessions kept for `window`.
fn server_config(window: Duration) -> ServerConfig {
    ServerConfig::default()
        .ping_interval(Some(SERVER_PING))
        .idle_timeout(Some(SERVER_IDLE))
        .resume_window(Some(window))
}

/// The adapter under test, and how to start a scene's two nodes on it.
trait Backend: Adapter + Sized {
    /// The watcher's node, the bystander's (`None`: the same server), and the Redis they
    /// share; `None` when the adapter cannot run here (no `redis-server`).
    fn nodes(config: ServerConfig) -> impl Future<Output = Option<Nodes<Self>>>;
}

struct Nodes<A: Adapter> {
    node: Server<A>,
    other: Option<Server<A>>,
    redis: Option<RedisServer>,
}

impl Backend for LocalAdapter {
    async fn nodes(config: ServerConfig) -> Option<Nodes<Self>> {
        let node = Server::bind("127.0.0.1:0", config).await.unwrap();
        Some(Nodes { node, other: None, redis: None })
    }
}

impl Backend for RedisAdapter {
    async fn nodes(config: ServerConfig) -> Option<Nodes<Self>> {
        let redis = RedisServer::start()?;
        let mut nodes = redis_nodes_with(&redis.url(), 2, config).await;
        let other = nodes.pop();
        let node = nodes.pop().unwrap();
        Some(Nodes { node, other, redis: Some(redis) })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Book {
    id: String,
    title: String,
}

/// What the server's `note` handler saw: the note, and whether its sender was in `/chat`'s
/// lobby by then.
#[derive(Debug, PartialEq)]
struct Seen {
    text: String,
    restored: bool,
}

/// What the servers' handlers saw, on every node.
#[derive(Default)]
struct ServerLog {
    notes: Mutex<Vec<Seen>>,
    /// The payload of every request handled (a channels `echo`, a sync `update` of the
    /// tally).
    handled: Mutex<Vec<String>>,
    joins: AtomicUsize,
    opens: AtomicUsize,
    reads: Arc<AtomicUsize>,
}

/// The restores the servers have seen: joins of `/chat`, opens of the view, reads of the
/// book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Restores {
    joins: usize,
    opens: usize,
    reads: usize,
}

impl ServerLog {
    fn restores(&self) -> Restores {
        Restores {
            joins: self.joins.load(Ordering::SeqCst),
            opens: self.opens.load(Ordering::SeqCst),
            reads: self.reads.load(Ordering::SeqCst),
        }
    }
}

/// The channels, views and sync routers on `node`; returns its presence.
fn attach_routers<A: Adapter>(node: &Server<A>, log: &Arc<ServerLog>, store: &Books) -> Presence<Server<A>> {
    let (joins, notes, echoes, opens, tallies) =
        (log.clone(), log.clone(), log.clone(), log.clone(), log.clone());
    let chat = Channel::new()
        .on_join(move |ctx| {
            joins.joins.fetch_add(1, Ordering::SeqCst);
            async move { ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string())) }
        })
        .on("echo", move |_ctx, payload: String| {
            echoes.handled.lock().unwrap().push(payload.clone());
            async move { Ok(payload) }
        })
        .on("note", move |ctx, text: String| {
            let log = notes.clone();
            async move {
                let lobby = ctx.messenger().room_members("lobby").await;
                let lobby = lobby.map_err(|e| RemoteError::internal(e.to_string()))?;
                let restored = lobby.contains(&ctx.connection().id());
                log.notes.lock().unwrap().push(Seen { text, restored });
                Ok(())
            }
        })
        .on("say", |ctx, text: String| async move {
            ctx.broadcast_to_room("lobby", "said", &text)
                .await
                .map_err(|e| RemoteError::internal(e.to_string()))
        });
    ChannelsConfig::default().channel("/chat", chat).attach(node).unwrap();
    let presence = ViewsConfig::default()
        .diff_interval(Duration::from_millis(5))
        .authorize(move |_connection, _view| {
            opens.opens.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .attach(node)
        .unwrap();
    let book = book_route_counting_reads(store, &log.reads);
    let tally = Route::new().update(move |request| {
        tallies.handled.lock().unwrap().push(request.data.as_str().unwrap_or_default().to_owned());
        async move { Ok(request.data) }
    });
    SyncConfig::default().route("/api/book/:id", book).route(TALLY, tally).attach(node).unwrap();
    presence
}

fn key(connection: &Connection) -> String {
    format!("c:{}", connection.id().as_u64())
}

/// A client with the three router clients, joined, opened and subscribed.
struct Peer {
    _client: Client,
    _channels: ChannelsClient,
    _views: ViewsClient,
    sync: SyncClient,
    chat: ClientChannel,
    /// What the lobby said (the `say` handler's broadcasts).
    said: EventStream<String>,
    view: View,
    view_changes: ChangeStream,
    _book: Subscription,
    changes: TypedSyncStream<Book>,
    sync_errors: ErrorStream,
    lifecycle: broadcast::Receiver<ClientEvent>,
    ack_timeout: Duration,
}

impl Peer {
    async fn connect(addr: SocketAddr, resume: bool, ack_timeout: Duration) -> Self {
        let config = ClientConfig::default()
            .resume(resume)
            .min_reconnection_delay(MIN_DELAY)
            .max_reconnection_delay(MAX_DELAY)
            .ping_interval(Some(PING))
            .idle_timeout(IDLE)
            .connection_timeout(CONNECT_TIMEOUT);
        let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
        let lifecycle = client.lifecycle();
        let channels =
            ChannelsClient::attach(&client, ChannelsClientConfig::default().ack_timeout(ack_timeout))
                .unwrap();
        let views =
            ViewsClient::attach(&client, ViewsClientConfig::default().request_timeout(ack_timeout)).unwrap();
        let sync =
            SyncClient::attach(&client, SyncClientConfig::default().request_timeout(ack_timeout)).unwrap();
        let sync_errors = sync.errors();
        let chat = channels.channel("/chat").unwrap();
        let said = chat.on::<String>("said");
        within(chat.join()).await.unwrap();
        let view = within(views.open(VIEW)).await.unwrap();
        let view_changes = view.changes();
        let book = sync.sync(BOOK).unwrap();
        let changes = book.typed::<Book>();
        within(book.connect()).await.unwrap();
        Self {
            _client: client,
            _channels: channels,
            _views: views,
            sync,
            chat,
            said,
            view,
            view_changes,
            _book: book,
            changes,
            sync_errors,
            lifecycle,
            ack_timeout,
        }
    }

    /// Waits for the lifecycle event `pick` accepts.
    async fn until<T>(&mut self, pick: impl Fn(&ClientEvent) -> Option<T>) -> T {
        within(async {
            loop {
                match self.lifecycle.recv().await {
                    Ok(event) => {
                        if let Some(found) = pick(&event) {
                            return found;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => panic!("lifecycle ended"),
                }
            }
        })
        .await
    }

    async fn closed(&mut self) {
        self.until(|event| matches!(event, ClientEvent::Closed { .. }).then_some(())).await;
    }

    async fn open(&mut self) {
        self.until(|event| matches!(event, ClientEvent::Open).then_some(())).await;
    }

    /// Waits until the link is back as `back` says: `Open`, or `Resumed` (a `Reset` or an
    /// `Open` before it fails the test).
    async fn back(&mut self, back: Back) {
        match back {
            Back::Restored => self.open().await,
            Back::Resumed => {
                self.until(|event| match event {
                    ClientEvent::Resumed => Some(()),
                    ClientEvent::Reset { reason, .. } => panic!("the resume was refused: {reason}"),
                    ClientEvent::Open => panic!("opened as a new connection instead of resuming"),
                    _ => None,
                })
                .await
            }
        }
    }

    /// Waits for the book with `title` (from a push or a catch-up read); returns whether a
    /// snapshot (a read) came on the way.
    async fn book_titled(&mut self, title: &str) -> bool {
        let mut snapshot = false;
        loop {
            let message = within(self.changes.recv()).await.unwrap().unwrap();
            snapshot |= message.snapshot;
            if message.data.title == title {
                return snapshot;
            }
        }
    }

    /// Emits the offline notes, numbered (queued by the client while the link is down).
    fn send_offline(&self) {
        for i in 0..OFFLINE {
            self.chat.emit("note", &format!("offline-{i}")).unwrap();
        }
    }

    /// An acknowledged emit: its answer or a typed error, never later than its timeout.
    async fn echo(&self, payload: &str) -> Result<String, AckError> {
        echo(self.chat.clone(), payload.to_owned(), self.ack_timeout).await
    }

    /// [`echo`](Self::echo) in a task of its own, so that a fault can hit it in flight.
    fn echo_task(&self, payload: &str) -> InFlight {
        let request = echo(self.chat.clone(), payload.to_owned(), self.ack_timeout);
        tokio::spawn(async move { request.await.map(drop).map_err(|e| e.to_string()) })
    }

    /// A sync `update` of the tally with `payload`, in a task of its own: its answer or a
    /// typed error (`Closed`, `Timeout`), never later than its timeout.
    fn tally_task(&self, payload: &str) -> InFlight {
        let (sync, payload, limit) = (self.sync.clone(), payload.to_owned(), self.ack_timeout);
        tokio::spawn(async move {
            let result = timeout(limit + MARGIN, sync.update::<_, String>(TALLY, &payload))
                .await
                .expect("a sync request hung past its timeout");
            match result {
                Ok(answer) => {
                    assert_eq!(answer, payload);
                    Ok(())
                }
                Err(error @ (RequestError::Closed | RequestError::Timeout(_))) => Err(error.to_string()),
                Err(other) => panic!("unexpected error {other:?}"),
            }
        })
    }

    /// Emits the in-flight notes, numbered, into a link the client has not yet seen die.
    fn send_in_flight(&self) {
        for i in 0..IN_FLIGHT {
            self.chat.emit("note", &format!("in-flight-{i}")).unwrap();
        }
    }

    /// The client's own copy of the view lists exactly `keys` (sorted).
    async fn until_view(&self, keys: &[String]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut view: Vec<String> = self.view.members().into_iter().map(|m| m.key).collect();
            view.sort();
            if view == keys {
                return;
            }
            assert!(Instant::now() < deadline, "the client's view {view:?} never became {keys:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many times the view changes so far showed `member` leave.
    fn leaves_of(&mut self, member: &str) -> usize {
        let mut leaves = 0;
        while let Some(change) = self.view_changes.try_recv() {
            leaves += change.left.iter().filter(|m| m.key == member).count();
        }
        leaves
    }
}

async fn echo(chat: ClientChannel, payload: String, ack_timeout: Duration) -> Result<String, AckError> {
    let started = Instant::now();
    let result = timeout(ack_timeout + MARGIN, chat.emit_with_ack::<String, _>("echo", &payload))
        .await
        .expect("an acknowledged emit hung past its timeout");
    match &result {
        Ok(answer) => assert_eq!(answer, &payload),
        Err(AckError::Closed | AckError::Timeout(_)) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
    assert!(started.elapsed() <= ack_timeout + MARGIN);
    result
}

/// An acknowledged request in a task of its own: `Ok`, or the text of its typed error
/// (`Closed`, `Timeout`), checked to have come within its timeout.
type InFlight = JoinHandle<Result<(), String>>;

/// A client of the bystander's node with the view open, and its key there.
struct Newcomer {
    _client: Client,
    _views: ViewsClient,
    _view: View,
    key: String,
}

/// The servers, the proxy, the watcher behind it and the bystander, set up and checked.
struct Scene<A: Adapter> {
    /// The watcher's server, behind the proxy.
    node: Server<A>,
    /// The bystander's server, if not `node`.
    other: Option<Server<A>>,
    presence: Presence<Server<A>>,
    proxy: FaultProxy,
    log: Arc<ServerLog>,
    watcher: Peer,
    bystander: Peer,
    /// The watcher's first connection on `node`.
    watcher_conn: Connection,
    bystander_conn: Connection,
    /// The restores counted once both peers were set up.
    baseline: Restores,
    /// Requests made around the fault (by name), settled once the watcher is back.
    pending: Vec<(&'static str, InFlight)>,
    /// Whether the in-flight notes were sent.
    in_flight: bool,
    /// A client that opened the view while the watcher was away.
    newcomer: Option<Newcomer>,
    /// Dropped last: the nodes need it until they go.
    _redis: Option<RedisServer>,
}

impl<A: Backend> Scene<A> {
    /// `None` when the adapter cannot run here.
    async fn setup(mode: Mode, config: ServerConfig) -> Option<Self> {
        let Nodes { node, other, redis } = A::nodes(config).await?;
        let log = Arc::<ServerLog>::default();
        // One store: the nodes serve the same data, as an application behind a database does.
        let store =
            Arc::new(Mutex::new(BTreeMap::from([("1".to_owned(), json!({"id": "1", "title": "Dune"}))])));
        let presence = attach_routers(&node, &log, &store);
        if let Some(other) = &other {
            attach_routers(other, &log, &store);
        }
        let proxy = FaultProxy::start(node.local_addr().unwrap()).await;
        let bystanders_node = other.as_ref().unwrap_or(&node);
        let bystander = Peer::connect(bystanders_node.local_addr().unwrap(), false, mode.ack_timeout()).await;
        let watcher = Peer::connect(proxy.addr(), mode == Mode::Resume, mode.ack_timeout()).await;
        let link = proxy.connection().await;
        let watcher_conn = server_side(&node, &link).await;
        let bystander_conn = bystanders_node
            .connections()
            .into_iter()
            .find(|c| c.id() != watcher_conn.id())
            .expect("the bystander");
        let mut scene = Self {
            node,
            other,
            presence,
            proxy,
            log,
            watcher,
            bystander,
            watcher_conn,
            bystander_conn,
            baseline: Restores { joins: 0, opens: 0, reads: 0 },
            pending: Vec::new(),
            in_flight: false,
            newcomer: None,
            _redis: redis,
        };
        scene.until_members(&scene.watcher_conn.clone()).await;
        assert_eq!(scene.watcher.echo("before").await.unwrap(), "before");
        // The lifecycle and the view changes so far are the setup's.
        while scene.watcher.lifecycle.try_recv().is_ok() {}
        while scene.bystander.view_changes.try_recv().is_some() {}
        scene.baseline = scene.log.restores();
        Some(scene)
    }

    /// The view's members (sorted) when the watcher's connection is `watcher`: the watcher,
    /// the bystander, and the newcomer once it came.
    fn view_keys(&self, watcher: &Connection) -> Vec<String> {
        let mut keys = vec![key(watcher), key(&self.bystander_conn)];
        keys.extend(self.newcomer.as_ref().map(|newcomer| newcomer.key.clone()));
        keys.sort();
        keys
    }

    /// Polls until the room holds exactly `watcher` and the bystander, and the view them
    /// (and the newcomer), as the server and both peers see it.
    async fn until_members(&self, watcher: &Connection) {
        let keys = self.view_keys(watcher);
        let mut ids = vec![watcher.id(), self.bystander_conn.id()];
        ids.sort();
        let deadline = Instant::now() + WAIT;
        loop {
            let mut view: Vec<String> = self.presence.members(VIEW).into_iter().map(|m| m.key).collect();
            view.sort();
            let mut room = self.node.adapter().members(ROOM).await.unwrap();
            room.sort();
            if view == keys && room == ids {
                break;
            }
            assert!(Instant::now() < deadline, "view {view:?} / room {room:?} never became {keys:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.watcher.until_view(&keys).await;
        self.bystander.until_view(&keys).await;
    }

    /// Sends the in-flight notes (see [`Peer::send_in_flight`]).
    fn send_in_flight(&mut self) {
        self.watcher.send_in_flight();
        self.in_flight = true;
    }

    /// What happens while the watcher is away: it queues the offline notes, an
    /// acknowledged emit and a sync request; the bystander changes the book (a push) and
    /// says something to the lobby (a broadcast), both from its own node, and is answered;
    /// a newcomer opens the view there (a diff). Adds what was said to `said`.
    async fn while_away(&mut self, title: &str, said: &mut Vec<String>) {
        self.watcher.send_offline();
        self.pending.push(("the offline emit", self.watcher.echo_task("offline")));
        self.pending.push(("the offline sync request", self.watcher.tally_task("offline tally")));
        let _: Book = within(self.bystander.sync.update(BOOK, &json!({"title": title}))).await.unwrap();
        said.push("while away".to_owned());
        self.bystander.chat.emit("say", "while away").unwrap();
        assert_eq!(self.bystander.echo("meanwhile").await.unwrap(), "meanwhile");
        let node = self.other.as_ref().unwrap_or(&self.node);
        let client =
            Client::connect(format!("ws://{}/", node.local_addr().unwrap()), ClientConfig::default());
        let client = client.unwrap();
        let views = ViewsClient::attach(&client, ViewsClientConfig::default()).unwrap();
        let view = within(views.open(VIEW)).await.unwrap();
        let key = view.you().expect("the newcomer's key");
        // Its open is not a restore.
        self.baseline.opens += 1;
        self.newcomer = Some(Newcomer { _client: client, _views: views, _view: view, key });
    }

    /// Waits, at most `limit`, until the server has ended the watcher's first session: the
    /// connection is gone, and the bystander saw it leave.
    async fn until_session_ended(&self, limit: Duration) {
        let (gone, left) = (self.watcher_conn.id(), key(&self.watcher_conn));
        let ended = async {
            while self.node.connections().iter().any(|c| c.id() == gone)
                || self.bystander.view.members().iter().any(|m| m.key == left)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        timeout(limit, ended).await.expect("the session was not ended in time");
    }

    /// The client's resume is refused for `reason` (the frames sent into the dark reported
    /// unconfirmed), and the link opens as a new connection.
    async fn refused(&mut self, reason: Refusal) {
        let (refused, unconfirmed) = self
            .watcher
            .until(|event| match event {
                ClientEvent::Reset { reason, unconfirmed } => Some((*reason, *unconfirmed)),
                ClientEvent::Resumed => panic!("resumed a session the server cannot resume"),
                _ => None,
            })
            .await;
        assert_eq!(refused, reason);
        if self.in_flight {
            assert!(unconfirmed >= IN_FLIGHT, "{unconfirmed} frames unconfirmed");
        }
        self.watcher.open().await;
    }

    /// The network comes back once the server has ended the session (for `reason`): the
    /// resume is refused, and the client restores.
    async fn back_after_the_end(&mut self, reason: Refusal, title: &str) {
        self.until_session_ended(WAIT).await;
        self.proxy.set_admission(Admission::Forward);
        self.refused(reason).await;
        self.restored_once(title).await;
    }

    /// After a refused resume: restored as after any reconnect without resume, and the
    /// bystander saw one leave in all.
    async fn restored_once(&mut self, title: &str) {
        self.check_recovered(Back::Restored, title, &[]).await;
        assert_eq!(self.bystander.leaves_of(&key(&self.watcher_conn)), 1, "one leave");
    }

    /// A request whose frame the fault cut or froze: without resume it cannot have
    /// succeeded (the server never got it whole); with resume it is sent again, and
    /// settled with the others.
    async fn lost_with_the_link(&mut self, back: Back, name: &'static str, request: InFlight) {
        match back {
            Back::Restored => {
                let result = request.await.unwrap();
                assert!(result.is_err(), "{name} succeeded though its frame was lost");
            }
            Back::Resumed => self.pending.push((name, request)),
        }
    }

    /// The bystander says more than the replay bound to the lobby.
    fn burst_past_the_replay_bound(&self) {
        let kilobyte = "x".repeat(1024);
        for _ in 0..2 * REPLAY_BOUND / 1024 {
            self.bystander.chat.emit("say", &kilobyte).unwrap();
        }
    }

    /// Waits for the requests made around the fault: with a resume, each must have
    /// succeeded (and so was handled, once: `check_recovered` finds no payload twice);
    /// after a restore, any typed end goes.
    async fn settle(&mut self, back: Back) {
        for (name, request) in std::mem::take(&mut self.pending) {
            let result = request.await.unwrap();
            if back == Back::Resumed {
                assert!(result.is_ok(), "{name} failed across a resume: {result:?}");
            }
        }
    }

    /// The watcher's connection now: the first one if resumed, else the newest link's.
    async fn watcher_now(&self, back: Back) -> Connection {
        match back {
            Back::Resumed => {
                let kept = self.node.connections().into_iter().find(|c| c.id() == self.watcher_conn.id());
                kept.expect("the resumed connection is gone")
            }
            Back::Restored => {
                let now = server_side(&self.node, &self.proxy.connection().await).await;
                assert_ne!(now.id(), self.watcher_conn.id());
                now
            }
        }
    }

    /// Everything checked once the watcher is back as `back`: the book shows `title`; the
    /// view and room hold the watcher once, beside the bystander; the offline notes came
    /// after it was back in the lobby, in order, once; the lobby's broadcasts reach it
    /// (with a resume, every one since the fault: `said`); each emit was handled at most
    /// once; both peers are served; and the servers saw one restore, or none with a resume
    /// (which also means no resync, no `Reset` and no leave).
    async fn check_recovered(&mut self, back: Back, title: &str, said: &[String]) {
        self.settle(back).await;
        let read = self.watcher.book_titled(title).await;
        let now = self.watcher_now(back).await;
        self.until_members(&now).await;
        // An anonymous member's key is its connection's: kept by a resume.
        assert_eq!(self.watcher.view.you(), Some(key(&now)));

        // The in-flight notes (with a resume; without, those not lost with the link), then
        // the offline ones, each after the rejoin, in order, none twice. A marker sent last
        // shows that all have arrived.
        self.watcher.chat.emit("note", "marker").unwrap();
        let mut seen = Vec::new();
        within(async {
            loop {
                seen.extend(std::mem::take(&mut *self.log.notes.lock().unwrap()));
                if seen.iter().any(|s| s.text == "marker") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // Without resume, an in-flight note that the old connection carried may be handled
        // after the server took that connection out of the lobby.
        let in_flight = (0..if self.in_flight { IN_FLIGHT } else { 0 }).map(|i| format!("in-flight-{i}"));
        let in_flight = in_flight.filter_map(|text| match back {
            Back::Resumed => Some(Seen { text, restored: true }),
            Back::Restored => {
                seen.iter().find(|s| s.text == text).map(|s| Seen { text, restored: s.restored })
            }
        });
        let expected: Vec<Seen> = in_flight
            .chain((0..OFFLINE).map(|i| Seen { text: format!("offline-{i}"), restored: true }))
            .chain([Seen { text: "marker".into(), restored: true }])
            .collect();
        assert_eq!(seen, expected);

        // The lobby reaches the watcher, across nodes; a marker said last shows all came.
        self.bystander.chat.emit("say", "marker").unwrap();
        let mut heard = Vec::new();
        while heard.last().is_none_or(|text| text != "marker") {
            heard.push(within(self.watcher.said.recv()).await.unwrap().unwrap());
        }
        if back == Back::Resumed {
            let expected: Vec<String> = said.iter().cloned().chain(["marker".to_owned()]).collect();
            assert_eq!(heard, expected, "the lobby's broadcasts across the resume");
        }

        // Both are served.
        assert_eq!(self.watcher.echo("after").await.unwrap(), "after");
        assert_eq!(self.bystander.echo("still").await.unwrap(), "still");
        let handled = self.log.handled.lock().unwrap().clone();
        for payload in &handled {
            assert_eq!(handled.iter().filter(|p| *p == payload).count(), 1, "{payload:?} handled twice");
        }

        let restores = self.log.restores();
        let events: Vec<ClientEvent> =
            std::iter::from_fn(|| self.watcher.lifecycle.try_recv().ok()).collect();
        assert!(!events.iter().any(|e| matches!(e, ClientEvent::Reset { .. })), "{events:?}");
        match back {
            Back::Restored => {
                let Restores { joins, opens, reads } = self.baseline;
                assert_eq!(restores, Restores { joins: joins + 1, opens: opens + 1, reads: reads + 1 });
            }
            Back::Resumed => {
                assert_eq!(restores, self.baseline, "a resumed client restored");
                assert!(!read, "a resumed subscription read its book again");
                let resync = self.watcher.sync_errors.try_recv();
                assert!(resync.is_none(), "a resumed subscription: {resync:?}");
                assert_eq!(self.bystander.leaves_of(&key(&self.watcher_conn)), 0, "a resumed member left");
                assert!(!events.iter().any(|e| matches!(e, ClientEvent::Open)), "{events:?}");
            }
        }
    }
}

/// The server's connection behind `link`.
async fn server_side<A: Adapter>(node: &Server<A>, link: &ProxiedConnection) -> Connection {
    within(async {
        loop {
            let found =
                node.connections().into_iter().find(|c| c.meta().remote_addr == Some(link.upstream_addr()));
            match found {
                Some(connection) => return connection,
                None => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await
}

/// Reset mid-frame: the fault cuts the current connection; new ones are refused until the
/// outage's actions are done, so that the client queues offline meanwhile.
async fn reset_mid_frame<A: Backend>(mode: Mode, flow: Flow) {
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(WINDOW)).await else { return };
    let back = mode.back();
    let link = scene.proxy.connection().await;
    scene.proxy.set_admission(Admission::Refuse);
    link.reset_after(flow, 3);
    let mut said = Vec::new();
    let cut = match flow {
        // A frame from the server: the answer to an emit, or the bystander's broadcast to
        // the lobby, whichever comes first; the other is lost with the link.
        Flow::ToClient => {
            scene.pending.push(("the emit whose answer was cut", scene.watcher.echo_task("answer cut")));
            said.push("cut after 3 bytes".to_owned());
            scene.bystander.chat.emit("say", "cut after 3 bytes").unwrap();
            None
        }
        // A frame from the client: an acknowledged emit.
        _ => Some(scene.watcher.echo_task("cut")),
    };
    // The emit's task writes its frame first (the current-thread runtime runs it at this
    // yield); the notes follow it into the cut.
    tokio::task::yield_now().await;
    scene.send_in_flight();
    scene.watcher.closed().await;
    within(link.closed()).await;
    // Exactly 3 bytes of the next frames crossed (less than any frame's header and
    // payload: the client read a partial frame, or the server did).
    let crossed = if flow == Flow::ToClient { link.bytes_to_client() } else { link.bytes_to_server() };
    // Counted from when the proxy armed the cut: a ping or a diff may cross just before.
    assert_eq!(crossed, link.bytes_when_armed(flow) + 3);
    if let Some(cut) = cut {
        scene.lost_with_the_link(back, "the emit whose frame was cut", cut).await;
    }
    scene.while_away("Dune Messiah", &mut said).await;
    scene.proxy.until(|stats| stats.refused >= 1).await;

    let restored_at = Instant::now();
    scene.proxy.set_admission(Admission::Forward);
    scene.watcher.back(back).await;
    let took = restored_at.elapsed();
    assert!(took <= MAX_DELAY + MARGIN, "reconnected {took:?} after the network came back");
    scene.check_recovered(back, "Dune Messiah", &said).await;
}

/// A link that goes silent in `flow` without closing. Both ways, the client's heartbeat
/// notices; toward the server only, the server's heartbeat does (the client still hears
/// its pings); toward the client only, the client's does (the server still hears it).
async fn half_open<A: Backend>(mode: Mode, flow: Flow) {
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(WINDOW)).await else { return };
    let back = mode.back();
    let first = scene.proxy.connection().await;
    let frozen_at = Instant::now();
    assert!(first.freeze(flow));
    // In flight into the dead link.
    let emit = scene.watcher.echo_task("into the void");
    scene.send_in_flight();
    scene.watcher.closed().await;
    let noticed = frozen_at.elapsed();
    let heartbeat = if flow == Flow::ToServer { SERVER_IDLE } else { PING + IDLE };
    assert!(noticed <= heartbeat + MARGIN, "the drop was noticed after {noticed:?}");
    scene.lost_with_the_link(back, "the emit into the frozen link", emit).await;
    // The client reconnects at once: these may happen before or after it is back.
    let mut said = Vec::new();
    scene.while_away("Children of Dune", &mut said).await;
    scene.watcher.back(back).await;
    // The new connection flows; the frozen one is dropped by the server (its own heartbeat,
    // or the resume that replaces it).
    let second = scene.proxy.connection_after(first.number()).await;
    assert!(!second.is_closed());
    scene.check_recovered(back, "Children of Dune", &said).await;
    if flow == Flow::Both {
        // The server dropped the frozen connection (the members above are only the new one
        // and the bystander), but its FIN is stuck in the frozen proxy, as in a dead NAT.
        assert!(!first.is_closed());
    }
}

/// The whole network goes dark: the open link freezes (with the in-flight notes in it),
/// new connections vanish.
async fn go_dark<A: Backend>(scene: &mut Scene<A>) {
    scene.proxy.set_admission(Admission::Blackhole);
    assert_eq!(scene.proxy.freeze_all(Flow::Both), 1);
    scene.send_in_flight();
    scene.watcher.closed().await;
}

async fn blackhole<A: Backend>(mode: Mode) {
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(WINDOW)).await else { return };
    let back = mode.back();
    go_dark(&mut scene).await;
    let mut said = Vec::new();
    scene.while_away("God Emperor of Dune", &mut said).await;
    // Several connection attempts die in the blackhole (each after its timeout).
    scene.proxy.until(|stats| stats.blackholed >= 2).await;

    let restored_at = Instant::now();
    scene.proxy.set_admission(Admission::Forward);
    scene.watcher.back(back).await;
    // An attempt in the blackhole when it ended waits for its connection timeout.
    let took = restored_at.elapsed();
    assert!(took <= CONNECT_TIMEOUT + MAX_DELAY + MARGIN, "reconnected {took:?} after the blackhole");
    scene.check_recovered(back, "God Emperor of Dune", &said).await;
}

/// A blackhole that outlasts the resume window: the server ends the session (one leave),
/// the client's resume is refused (`expired`), and it restores as a new connection; the
/// frames it had sent into the dark are reported unconfirmed, not sent again.
async fn blackhole_past_the_window<A: Backend>(mode: Mode) {
    assert_eq!(mode, Mode::Resume, "without resume there is no window to outlast");
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(SHORT_WINDOW)).await else { return };
    go_dark(&mut scene).await;
    scene.while_away("Dune: House Atreides", &mut Vec::new()).await;
    // The server notices the dead socket (its idle timeout), keeps the session for the
    // window, then ends it.
    scene.back_after_the_end(Refusal::Expired, "Dune: House Atreides").await;
}

/// More than the replay bound is sent to a session while it is away: the server ends it at
/// once (one leave), the client's resume is refused (`overflow`), and it restores as a new
/// connection.
async fn burst_past_the_replay_bound<A: Backend>(mode: Mode) {
    assert_eq!(mode, Mode::Resume, "without resume there is no replay buffer");
    let config = server_config(WINDOW).max_replay_size(REPLAY_BOUND);
    let Some(mut scene) = Scene::<A>::setup(mode, config).await else { return };
    scene.proxy.set_admission(Admission::Refuse);
    assert!(scene.proxy.connection().await.reset());
    scene.watcher.closed().await;
    scene.while_away("Sandworms of Dune", &mut Vec::new()).await;
    scene.burst_past_the_replay_bound();
    scene.back_after_the_end(Refusal::Overflow, "Sandworms of Dune").await;
}

/// A half-open link while more than the replay bound is sent to the session: the server,
/// which still holds the frozen socket, forgets the oldest frames; the client's resume is
/// refused (`overflow`), and the server, knowing the session can never resume, ends it at
/// once (one leave) rather than keep it, and its presence, for the window.
async fn half_open_past_the_replay_bound<A: Backend>(mode: Mode) {
    assert_eq!(mode, Mode::Resume, "without resume there is no replay buffer");
    let config = server_config(WINDOW).max_replay_size(REPLAY_BOUND);
    let Some(mut scene) = Scene::<A>::setup(mode, config).await else { return };
    assert!(scene.proxy.connection().await.freeze(Flow::Both));
    scene.send_in_flight();
    scene.burst_past_the_replay_bound();
    scene.watcher.closed().await;
    // The client reconnects at once: this may happen before or after its resume.
    scene.while_away("Navigator of Dune", &mut Vec::new()).await;
    scene.refused(Refusal::Overflow).await;
    scene.until_session_ended(MARGIN).await;
    scene.restored_once("Navigator of Dune").await;
}

/// A reset in the middle of the frames a resume replays: the client resumes again, from
/// what it did receive, and gets the rest once. (If the cut lands before the client read
/// `resumed`, its attempt fails and the next one replays everything: once either way.)
async fn reset_during_the_replay<A: Backend>(mode: Mode) {
    assert_eq!(mode, Mode::Resume, "without resume there is no replay");
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(WINDOW)).await else { return };
    let first = scene.proxy.connection().await;
    scene.proxy.set_admission(Admission::Refuse);
    assert!(first.reset());
    scene.watcher.closed().await;
    let mut said = Vec::new();
    scene.while_away("Dune Messiah", &mut said).await;
    // About 50 KiB to replay, in letters that do not repeat: permessage-deflate (on by
    // default at both ends) would shrink 1,000 equal letters to a few bytes, and the cut
    // below counts bytes on the wire.
    let mut seed = 0x2545_f491_u32;
    for i in 0..50 {
        let noise: String = (0..1000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect();
        let text = format!("replayed {i} {noise}");
        scene.bystander.chat.emit("say", &text).unwrap();
        said.push(text);
    }
    scene.proxy.until(|stats| stats.refused >= 1).await;
    // The latency holds the next link's first bytes to the client while the cut is armed:
    // 8 KiB is past the handshake's answer and `resumed`, inside the replay.
    scene.proxy.set_latency(Flow::ToClient, Duration::from_millis(100));
    scene.proxy.set_admission(Admission::Forward);
    let second = scene.proxy.connection_after(first.number()).await;
    second.reset_after(Flow::ToClient, 8 * 1024);
    within(second.closed()).await;
    scene.proxy.set_latency(Flow::ToClient, Duration::ZERO);
    scene.watcher.back(Back::Resumed).await;
    scene.check_recovered(Back::Resumed, "Dune Messiah", &said).await;
    assert!(scene.proxy.stats().forwarded >= 3, "{:?}", scene.proxy.stats());
}

/// A reset while frames wait in the network both ways (held by the proxy's latency, and
/// lost with the link): the watcher's emit and notes, the bystander's broadcasts.
async fn reset_with_frames_in_the_network<A: Backend>(mode: Mode) {
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(WINDOW)).await else { return };
    let back = mode.back();
    let link = scene.proxy.connection().await;
    scene.proxy.set_latency(Flow::Both, Duration::from_millis(100));
    scene.pending.push(("the emit lost in the network", scene.watcher.echo_task("in the network")));
    scene.send_in_flight();
    let mut said = Vec::new();
    for i in 0..5 {
        let text = format!("in the network {i}");
        scene.bystander.chat.emit("say", &text).unwrap();
        said.push(text);
    }
    scene.proxy.until(|stats| stats.queued_to_server > 0 && stats.queued_to_client > 0).await;
    scene.proxy.set_admission(Admission::Refuse);
    assert!(link.reset());
    scene.proxy.set_latency(Flow::Both, Duration::ZERO);
    scene.watcher.closed().await;
    scene.while_away("Heretics of Dune", &mut said).await;
    scene.proxy.until(|stats| stats.refused >= 1).await;
    scene.proxy.set_admission(Admission::Forward);
    scene.watcher.back(back).await;
    scene.check_recovered(back, "Heretics of Dune", &said).await;
}

async fn latency<A: Backend>(mode: Mode) {
    let Some(mut scene) = Scene::<A>::setup(mode, server_config(WINDOW)).await else { return };
    let latency = Duration::from_millis(80);
    scene.proxy.set_latency(Flow::Both, latency);
    let started = Instant::now();
    assert_eq!(scene.watcher.echo("slow").await.unwrap(), "slow");
    assert!(started.elapsed() >= latency * 2, "a round trip under twice the latency");
    // A push crosses too, after the latency.
    let _: Book = within(scene.bystander.sync.update(BOOK, &json!({"title": "Heretics"}))).await.unwrap();
    assert!(!scene.watcher.book_titled("Heretics").await, "a read on a live link");
    // Heartbeats keep the link alive through the latency: no reconnect for a few idle
    // timeouts, and the view still holds each once.
    let quiet = timeout(IDLE * 3, scene.watcher.closed()).await;
    assert!(quiet.is_err(), "the client dropped a slow but live link");
    let link = scene.proxy.connection().await;
    assert_eq!(link.number(), 1);
    let now = server_side(&scene.node, &link).await;
    assert_eq!(now.id(), scene.watcher_conn.id());
    scene.until_members(&now).await;
    assert_eq!(scene.log.restores(), scene.baseline);
}

macro_rules! mode {
    (restore) => {
        Mode::Restore
    };
    (resume) => {
        Mode::Resume
    };
}

/// Runs `scenario` on `adapter` in `mode`, with the arguments `args` (a parenthesised list).
macro_rules! run {
    ($scenario:ident, $adapter:ty, $mode:ident, ($($arg:expr),*)) => {
        $scenario::<$adapter>(mode!($mode) $(, $arg)*).await
    };
}

/// The table: each scenario (with its arguments), in each mode listed, on each adapter.
macro_rules! suite {
    ($($name:ident: $scenario:ident $args:tt in [$($mode:ident),+];)*) => {$(
        mod $name {
            $(
                mod $mode {
                    use super::super::*;

                    #[tokio::test]
                    async fn local() {
                        run!($scenario, LocalAdapter, $mode, $args);
                    }

                    #[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
                    #[tokio::test]
                    async fn redis() {
                        run!($scenario, RedisAdapter, $mode, $args);
                    }
                }
            )+
        }
    )*};
}

suite! {
    a_reset_in_a_frame_from_the_server: reset_mid_frame(Flow::ToClient) in [restore, resume];
    a_reset_in_a_frame_from_the_client: reset_mid_frame(Flow::ToServer) in [restore, resume];
    a_half_open_link_detected_by_the_heartbeat: half_open(Flow::Both) in [restore, resume];
    a_link_silent_toward_the_server: half_open(Flow::ToServer) in [restore, resume];
    a_link_silent_toward_the_client: half_open(Flow::ToClient) in [restore, resume];
    a_blackhole_shorter_than_the_window: blackhole() in [restore, resume];
    a_blackhole_longer_than_the_window: blackhole_past_the_window() in [resume];
    a_burst_past_the_replay_bound: burst_past_the_replay_bound() in [resume];
    a_reset_during_the_replay: reset_during_the_replay() in [resume];
    a_half_open_link_past_the_replay_bound: half_open_past_the_replay_bound() in [resume];
    a_reset_with_frames_in_the_network: reset_with_frames_in_the_network() in [restore, resume];
    latency_slows_but_breaks_nothing: latency() in [restore, resume];
}
