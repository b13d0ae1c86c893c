//! The fault suite: the example's setup (a server with the channels, views and sync routers;
//! a client with the three router clients) with a `testkit::FaultProxy` between them, and
//! for each fault the guarantees the library gives today, without session resume:
//!
//! - the client reconnects within its schedule once the network lets it;
//! - it restores first (re-join of `/chat`, re-open of the view, re-subscribe to the book
//!   and its catch-up read), and only then flushes its offline queue, in order, nothing
//!   duplicated;
//! - an acknowledged emit made around the fault succeeds or fails with a typed error
//!   (`Closed` or `Timeout`), never later than its timeout;
//! - presence converges: the view shows the client once after recovery;
//! - the server keeps serving a bystander connected directly.
//!
//! Faults: a reset in the middle of a frame from either side, a half-open link that the
//! client's heartbeat detects, a blackhole that lasts several connection timeouts, and
//! latency. Every timeout here is short so that the whole suite runs in a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use realtime::channels::client::{Channel as ClientChannel, ChannelsClient, ChannelsClientConfig};
use realtime::channels::{AckError, Channel, ChannelsConfig, RemoteError};
use realtime::network_core::{Adapter, Connection, Network};
use realtime::sync::SyncConfig;
use realtime::sync::client::{Subscription, SyncClient, SyncClientConfig, TypedSyncStream};
use realtime::views::client::{View, ViewsClient, ViewsClientConfig};
use realtime::views::{Presence, ViewsConfig};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use realtime::ws_server::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use testkit::{Admission, FaultProxy, Flow, ProxiedConnection};
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout};

const ROOM: &str = "/chat#lobby";
const VIEW: &str = "doc";
const BOOK: &str = "/api/book/1";
const OFFLINE: usize = 20;

/// The client's schedule and timeouts.
const MIN_DELAY: Duration = Duration::from_millis(20);
const MAX_DELAY: Duration = Duration::from_millis(100);
const PING: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_millis(400);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const ACK_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for a debug build on a busy machine.
const MARGIN: Duration = Duration::from_millis(700);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Book {
    id: String,
    title: String,
}

/// What the server's `note` handler saw: the note, and whether its sender had rejoined
/// `/chat` by then.
#[derive(Debug, PartialEq)]
struct Seen {
    text: String,
    restored: bool,
}

struct World {
    server: Server,
    presence: Presence<Server>,
    proxy: FaultProxy,
    seen: Arc<Mutex<Vec<Seen>>>,
    store: Books,
}

impl World {
    async fn start() -> Self {
        let config = ServerConfig::default()
            .ping_interval(Some(Duration::from_millis(200)))
            .idle_timeout(Some(Duration::from_millis(600)));
        let server = Server::bind("127.0.0.1:0", config).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let chat = Channel::new()
            .on_join(|ctx| async move {
                ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string()))
            })
            .on("echo", |_ctx, payload: Value| async move { Ok(payload) })
            .on("note", move |ctx, text: String| {
                let log = log.clone();
                async move {
                    let lobby = ctx.messenger().room_members("lobby").await;
                    let lobby = lobby.map_err(|e| RemoteError::internal(e.to_string()))?;
                    let restored = lobby.contains(&ctx.connection().id());
                    log.lock().unwrap().push(Seen { text, restored });
                    Ok(())
                }
            })
            .on("say", |ctx, text: String| async move {
                ctx.broadcast_to_room("lobby", "said", &text)
                    .await
                    .map_err(|e| RemoteError::internal(e.to_string()))
            });
        ChannelsConfig::default().channel("/chat", chat).attach(&server).unwrap();
        let presence =
            ViewsConfig::default().diff_interval(Duration::from_millis(5)).attach(&server).unwrap();
        let store =
            Arc::new(Mutex::new(BTreeMap::from([("1".to_owned(), json!({"id": "1", "title": "Dune"}))])));
        let book = book_route(&store);
        SyncConfig::default().route("/api/book/:id", book).attach(&server).unwrap();

        let proxy = FaultProxy::start(server.local_addr().unwrap()).await;
        Self { server, presence, proxy, seen, store }
    }

    /// The server's connection behind `link`.
    async fn server_side(&self, link: &ProxiedConnection) -> Connection {
        within(async {
            loop {
                let found = self
                    .server
                    .connections()
                    .into_iter()
                    .find(|c| c.meta().remote_addr == Some(link.upstream_addr()));
                match found {
                    Some(connection) => return connection,
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
        .await
    }

    /// Polls until the view and the room hold exactly `expected` (and nobody else).
    async fn until_members(&self, expected: &[&Connection]) {
        let mut keys: Vec<String> = expected.iter().map(|c| format!("c:{}", c.id().as_u64())).collect();
        keys.sort();
        let mut ids: Vec<_> = expected.iter().map(|c| c.id()).collect();
        ids.sort();
        let deadline = Instant::now() + WAIT;
        loop {
            let mut view: Vec<String> = self.presence.members(VIEW).into_iter().map(|m| m.key).collect();
            view.sort();
            let mut room = self.server.adapter().members(ROOM).await.unwrap();
            room.sort();
            if view == keys && room == ids {
                return;
            }
            assert!(Instant::now() < deadline, "view {view:?} / room {room:?} never became {keys:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The plain frames seen so far.
    fn seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// Changes the book's title behind the watcher's back (as another client would).
    fn retitle(&self, title: &str) {
        self.store.lock().unwrap().insert("1".into(), json!({"id": "1", "title": title}));
    }
}

/// A client with the three router clients, joined, opened and subscribed.
struct Peer {
    _client: Client,
    _channels: ChannelsClient,
    _views: ViewsClient,
    sync: SyncClient,
    chat: ClientChannel,
    view: View,
    _book: Subscription,
    changes: TypedSyncStream<Book>,
    lifecycle: broadcast::Receiver<ClientEvent>,
}

impl Peer {
    async fn connect(addr: SocketAddr) -> Self {
        let config = ClientConfig::default()
            .min_reconnection_delay(MIN_DELAY)
            .max_reconnection_delay(MAX_DELAY)
            .ping_interval(Some(PING))
            .idle_timeout(IDLE)
            .connection_timeout(CONNECT_TIMEOUT);
        let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
        let lifecycle = client.lifecycle();
        let channels =
            ChannelsClient::attach(&client, ChannelsClientConfig::default().ack_timeout(ACK_TIMEOUT))
                .unwrap();
        let views =
            ViewsClient::attach(&client, ViewsClientConfig::default().request_timeout(ACK_TIMEOUT)).unwrap();
        let sync =
            SyncClient::attach(&client, SyncClientConfig::default().request_timeout(ACK_TIMEOUT)).unwrap();
        let chat = channels.channel("/chat").unwrap();
        within(chat.join()).await.unwrap();
        let view = within(views.open(VIEW)).await.unwrap();
        let book = sync.sync(BOOK).unwrap();
        let changes = book.typed::<Book>();
        within(book.connect()).await.unwrap();
        Self {
            _client: client,
            _channels: channels,
            _views: views,
            sync,
            chat,
            view,
            _book: book,
            changes,
            lifecycle,
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

    /// Waits for the book's catch-up read with `title` (pushes before it are skipped).
    async fn caught_up(&mut self, title: &str) {
        loop {
            let message = within(self.changes.recv()).await.unwrap().unwrap();
            if message.snapshot && message.data.title == title {
                return;
            }
        }
    }

    /// Emits the offline notes, numbered (queued by the client while the link is down).
    fn send_offline(&self) {
        for i in 0..OFFLINE {
            self.chat.emit("note", &format!("offline-{i}")).unwrap();
        }
    }

    /// The client's own copy of the view lists exactly `expected`.
    async fn until_view(&self, expected: &[&Connection]) {
        let mut keys: Vec<String> = expected.iter().map(|c| format!("c:{}", c.id().as_u64())).collect();
        keys.sort();
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
}

/// An acknowledged emit: its answer or a typed error, never later than its timeout.
async fn echo_within_timeout(chat: &ClientChannel, payload: &str) -> Result<String, AckError> {
    let started = Instant::now();
    let result = timeout(ACK_TIMEOUT + MARGIN, chat.emit_with_ack::<String, _>("echo", payload))
        .await
        .expect("an acknowledged emit hung past its timeout");
    match &result {
        Ok(answer) => assert_eq!(answer, payload),
        Err(AckError::Closed | AckError::Timeout(_)) => {}
        Err(other) => panic!("unexpected error {other:?}"),
    }
    assert!(started.elapsed() <= ACK_TIMEOUT + MARGIN);
    result
}

/// Everything the fault suite checks after the watcher is back: the offline frames came
/// after the restore, in order, once; the book caught up; the view and room hold the
/// watcher once, beside the bystander; the bystander is still served.
async fn check_recovered(
    world: &World,
    watcher: &mut Peer,
    bystander: &Peer,
    bystander_conn: &Connection,
    title: &str,
) {
    watcher.caught_up(title).await;
    let link = world.proxy.connection().await;
    let now = world.server_side(&link).await;
    world.until_members(&[&now, bystander_conn]).await;
    watcher.until_view(&[&now, bystander_conn]).await;
    bystander.until_view(&[&now, bystander_conn]).await;

    // The offline notes, each after the rejoin, in order, none twice. A marker sent last
    // shows that all have arrived.
    watcher.chat.emit("note", "marker").unwrap();
    let mut seen = Vec::new();
    within(async {
        loop {
            seen.extend(world.seen());
            if seen.iter().any(|s| s.text == "marker") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let expected: Vec<Seen> = (0..OFFLINE)
        .map(|i| Seen { text: format!("offline-{i}"), restored: true })
        .chain([Seen { text: "marker".into(), restored: true }])
        .collect();
    assert_eq!(seen, expected);

    // Both are served.
    assert_eq!(echo_within_timeout(&watcher.chat, "after").await.unwrap(), "after");
    assert_eq!(echo_within_timeout(&bystander.chat, "still").await.unwrap(), "still");
}

/// The world, a watcher through the proxy, and a bystander connected directly.
async fn setup() -> (World, Peer, Peer, Connection) {
    let world = World::start().await;
    let bystander = Peer::connect(world.server.local_addr().unwrap()).await;
    let mut watcher = Peer::connect(world.proxy.addr()).await;
    let link = world.proxy.connection().await;
    let watcher_conn = world.server_side(&link).await;
    let bystander_conn =
        world.server.connections().into_iter().find(|c| c.id() != watcher_conn.id()).expect("the bystander");
    world.until_members(&[&watcher_conn, &bystander_conn]).await;
    watcher.until_view(&[&watcher_conn, &bystander_conn]).await;
    assert_eq!(echo_within_timeout(&watcher.chat, "before").await.unwrap(), "before");
    // The lifecycle so far is the first connection's.
    while watcher.lifecycle.try_recv().is_ok() {}
    (world, watcher, bystander, bystander_conn)
}

/// Reset mid-frame: the fault cuts the current connection; new ones are refused until
/// `refused_for` has passed, so that the client queues offline meanwhile.
async fn reset_mid_frame(flow: Flow) {
    let (world, mut watcher, bystander, bystander_conn) = setup().await;
    let link = world.proxy.connection().await;
    world.proxy.set_admission(Admission::Refuse);
    link.reset_after(flow, 3);
    let emit = match flow {
        // A frame from the server: the bystander says something to the lobby.
        Flow::ToClient => {
            bystander.chat.emit("say", "a frame cut after 3 bytes").unwrap();
            None
        }
        // A frame from the client: an acknowledged emit, cut after 3 bytes.
        _ => {
            let chat = watcher.chat.clone();
            Some(tokio::spawn(async move { echo_within_timeout(&chat, "cut").await }))
        }
    };
    watcher.closed().await;
    within(link.closed()).await;
    // Exactly 3 bytes of the next frames crossed (less than any frame's header and
    // payload: the client read a partial frame, or the server did).
    let cut = |link: &ProxiedConnection| {
        if flow == Flow::ToClient { link.bytes_to_client() } else { link.bytes_to_server() }
    };
    // Counted from when the proxy armed the cut: a ping or a diff may cross just before.
    assert_eq!(cut(&link), link.bytes_when_armed(flow) + 3);
    if let Some(emit) = emit {
        // Its frame never reached the server whole: it cannot have succeeded.
        assert!(matches!(emit.await.unwrap(), Err(AckError::Closed | AckError::Timeout(_))));
    }
    // Offline: queued, with an acknowledged emit, while the network refuses.
    watcher.send_offline();
    let chat = watcher.chat.clone();
    let offline_emit = tokio::spawn(async move { echo_within_timeout(&chat, "offline").await });
    world.retitle("Dune Messiah");
    assert_eq!(echo_within_timeout(&bystander.chat, "meanwhile").await.unwrap(), "meanwhile");
    world.proxy.until(|stats| stats.refused >= 1).await;

    let restored_at = Instant::now();
    world.proxy.set_admission(Admission::Forward);
    watcher.open().await;
    let took = restored_at.elapsed();
    assert!(took <= MAX_DELAY + MARGIN, "reconnected {took:?} after the network came back");
    let _ = offline_emit.await.unwrap();
    check_recovered(&world, &mut watcher, &bystander, &bystander_conn, "Dune Messiah").await;
}

#[tokio::test]
async fn a_reset_in_a_frame_from_the_server_is_recovered() {
    reset_mid_frame(Flow::ToClient).await;
}

#[tokio::test]
async fn a_reset_in_a_frame_from_the_client_is_recovered() {
    reset_mid_frame(Flow::ToServer).await;
}

#[tokio::test]
async fn a_half_open_link_is_detected_by_the_client_heartbeat() {
    let (world, mut watcher, bystander, bystander_conn) = setup().await;
    let first = world.proxy.connection().await;
    let frozen_at = Instant::now();
    assert!(first.freeze(Flow::Both));
    // In flight into the dead link: fails when the client gives up on it, or times out.
    let chat = watcher.chat.clone();
    let emit = tokio::spawn(async move { echo_within_timeout(&chat, "into the void").await });
    watcher.closed().await;
    let noticed = frozen_at.elapsed();
    assert!(noticed <= PING + IDLE + MARGIN, "the client noticed after {noticed:?}");
    assert!(matches!(emit.await.unwrap(), Err(AckError::Closed | AckError::Timeout(_))));
    world.retitle("Children of Dune");
    watcher.send_offline();
    watcher.open().await;
    // The new connection flows; the frozen one is dropped by the server's own heartbeat.
    let second = world.proxy.connection_after(first.number()).await;
    assert!(!second.is_closed());
    check_recovered(&world, &mut watcher, &bystander, &bystander_conn, "Children of Dune").await;
    // The server dropped the frozen connection (the members above are only the new one and
    // the bystander), but its FIN is stuck in the frozen proxy, as in a dead NAT.
    assert!(!first.is_closed());
}

#[tokio::test]
async fn a_blackhole_is_survived_and_left_on_schedule() {
    let (world, mut watcher, bystander, bystander_conn) = setup().await;
    // The whole network goes dark: the open link freezes, new connections vanish.
    world.proxy.set_admission(Admission::Blackhole);
    assert_eq!(world.proxy.freeze_all(Flow::Both), 1);
    watcher.closed().await;
    watcher.send_offline();
    let chat = watcher.chat.clone();
    let offline_emit = tokio::spawn(async move { echo_within_timeout(&chat, "in the dark").await });
    world.retitle("God Emperor of Dune");
    // Several connection attempts die in the blackhole (each after its timeout).
    world.proxy.until(|stats| stats.blackholed >= 2).await;
    assert_eq!(echo_within_timeout(&bystander.chat, "meanwhile").await.unwrap(), "meanwhile");

    let restored_at = Instant::now();
    world.proxy.set_admission(Admission::Forward);
    watcher.open().await;
    // An attempt in the blackhole when it ended waits for its connection timeout.
    let took = restored_at.elapsed();
    assert!(took <= CONNECT_TIMEOUT + MAX_DELAY + MARGIN, "reconnected {took:?} after the blackhole");
    // Answered after the reconnect, or timed out in the dark: either way within its time.
    let _ = offline_emit.await.unwrap();
    check_recovered(&world, &mut watcher, &bystander, &bystander_conn, "God Emperor of Dune").await;
}

#[tokio::test]
async fn latency_slows_but_breaks_nothing() {
    let (world, mut watcher, bystander, bystander_conn) = setup().await;
    let latency = Duration::from_millis(80);
    world.proxy.set_latency(Flow::Both, latency);
    let started = Instant::now();
    assert_eq!(echo_within_timeout(&watcher.chat, "slow").await.unwrap(), "slow");
    assert!(started.elapsed() >= latency * 2, "a round trip under twice the latency");
    // A push crosses too, after the latency.
    let _: Book = within(bystander.sync.update(BOOK, &json!({"title": "Heretics"}))).await.unwrap();
    loop {
        let message = within(watcher.changes.recv()).await.unwrap().unwrap();
        if message.data.title == "Heretics" {
            break;
        }
    }
    // Heartbeats keep the link alive through the latency: no reconnect for a few idle
    // timeouts, and the view still holds each once.
    let quiet = timeout(IDLE * 3, watcher.closed()).await;
    assert!(quiet.is_err(), "the client dropped a slow but live link");
    let link = world.proxy.connection().await;
    assert_eq!(link.number(), 1);
    let now = world.server_side(&link).await;
    world.until_members(&[&now, &bystander_conn]).await;
    watcher.until_view(&[&now, &bystander_conn]).await;
}
