//! Soak: hundreds of clients connect, join a room and open views, send acknowledged
//! messages that are relayed to their room, and drop at random (clean reconnects, whole
//! clients replaced, TCP connections cut, connections frozen without a FIN) while they keep
//! working. Afterwards:
//!
//! 1. **Membership is exact.** The server has exactly one connection per client that is
//!    open (none for clients closed for good), every room and view holds exactly the
//!    connections really connected, each connection is in exactly the rooms it should be
//!    in, and every client's own copy of its views lists the same members as the server.
//! 2. **No acknowledged message was lost.** What the library promises, and so what is
//!    checked: an `emit_with_ack` answered `Ok` was handled by the server (the handler
//!    records it before answering); no message is handled twice (the client sends at most
//!    once); one connection's messages are handled in the order sent; and a relay reaches
//!    every member of the room at the moment of the relay whose connection survives to the
//!    end (the server never skips a frame for an open connection, and the client's event
//!    streams never drop). Nothing is promised for a message in flight when a connection
//!    drops (its ack fails with `Closed`, and it may or may not have been handled), nor for
//!    relays to connections that dropped afterwards; those are counted, not checked.
//! 3. **Nothing is left behind.** Once every client is closed and the server shut down, no
//!    task of the runtime is alive (clients dropped, replaced or cut mid-way leak nothing).
//!
//! Half of the clients connect through a TCP proxy (`testkit::FaultProxy`) so that their
//! connection can be cut (both sockets closed) or frozen (nothing forwarded, no FIN: only
//! the heartbeats of both sides notice); the others connect directly. The server's and the
//! clients' heartbeats are short (ping 1 s, idle 4 s) so that frozen connections resolve
//! before the end. The check after the load is a bounded poll (up to 30 s) until everything
//! agrees, then once more a heartbeat later.
//!
//! Every client's behaviour comes from one seeded generator: the seed is printed, and
//! `SOAK_SEED=<seed>` replays the same choices (timing still varies). `SOAK_SECONDS` sets
//! the length of the load phase (default 25) and `SOAK_CLIENTS` the number of clients
//! (default 240).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::rng::Rng;
use realtime::channels::client::{ChannelsClient, ChannelsClientConfig};
use realtime::channels::{AckError, Channel, ChannelsConfig, RemoteError};
use realtime::network_core::{Adapter, Connection, ConnectionId, Network};
use realtime::views::client::{ViewsClient, ViewsClientConfig};
use realtime::views::{Presence, ViewsConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use serde::{Deserialize, Serialize};
use testkit::{FaultProxy, Flow};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

const ROOMS: u32 = 12;
const VIEWS: u32 = 8;
/// The view clients open and close at random.
const HOT: &str = "hot";
/// Server and client heartbeats: a frozen connection is noticed within about 5 s.
const PING: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(4);
/// How long the system may take to settle after the load stops (frozen connections need
/// an idle timeout, then a reconnection).
const SETTLE: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// One message: which client sent it, and its number among that client's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct Say {
    slot: u32,
    seq: u64,
}

/// What the server's handler saw.
#[derive(Default)]
struct ServerLog {
    /// Every handled message with its connection, in handling order.
    handled: Mutex<Vec<(ConnectionId, Say)>>,
    /// Every relay with the room's members (sender excluded) just before it was sent.
    relays: Mutex<Vec<(Say, Vec<ConnectionId>)>>,
}

fn room_of(slot: u32) -> String {
    format!("r{}", slot % ROOMS)
}

fn view_of(slot: u32) -> String {
    format!("v{}", slot % VIEWS)
}

/// Slots with an even number go through the proxy, so that their TCP connection can be cut
/// or frozen; the others connect directly.
fn proxied(slot: u32) -> bool {
    slot.is_multiple_of(2)
}

/// The `(slot, generation)` a server connection belongs to, from its query string.
fn owner(connection: &Connection) -> Option<(u32, u32)> {
    let meta = connection.meta();
    Some((meta.query_param("slot")?.parse().ok()?, meta.query_param("gen")?.parse().ok()?))
}

async fn start_server(log: Arc<ServerLog>) -> (Server, Presence<Server>) {
    let config = ServerConfig::default().ping_interval(Some(PING)).idle_timeout(Some(IDLE));
    let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
    let internal = |error: realtime::channels::EmitError| RemoteError::internal(error.to_string());
    let chat = Channel::new()
        .on_join(move |ctx| async move {
            let room = ctx.connection().meta().query_param("room").unwrap_or("none").to_owned();
            ctx.join_room(&room).await.map_err(internal)
        })
        .on("say", move |ctx, say: Say| {
            let log = log.clone();
            async move {
                let id = ctx.connection().id();
                let room = ctx.connection().meta().query_param("room").unwrap_or("none").to_owned();
                log.handled.lock().unwrap().push((id, say));
                let mut members = ctx.messenger().room_members(&room).await.map_err(internal)?;
                members.retain(|member| *member != id);
                ctx.broadcast_to_room(&room, "relay", &say).await.map_err(internal)?;
                log.relays.lock().unwrap().push((say, members));
                Ok(())
            }
        });
    ChannelsConfig::default().channel("/chat", chat).attach(&server).unwrap();
    let presence = ViewsConfig::default().attach(&server).unwrap();
    (server, presence)
}

/// What every client task shares.
struct World {
    server: Server,
    log: Arc<ServerLog>,
    proxy: FaultProxy,
    acked: Mutex<HashSet<Say>>,
    /// The server's id of every connection frozen: settled means the server has closed
    /// them all (a freeze right at the end of the load leaves an open connection that
    /// agrees with everything until the server's idle timeout ends it). Ids, not peer
    /// addresses: once the server has closed a frozen connection, the proxy may open a new
    /// one from the same local port, which a check by address took for the frozen one.
    frozen: Mutex<Vec<ConnectionId>>,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    acked: AtomicU64,
    ack_closed: AtomicU64,
    ack_timeout: AtomicU64,
    ack_other: AtomicU64,
    reconnects: AtomicU64,
    replaced: AtomicU64,
    cut: AtomicU64,
    frozen: AtomicU64,
    hot_toggles: AtomicU64,
    retired: AtomicU64,
    max_ack_ms: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One generation of a slot: a client and its routers.
struct Live {
    slot: u32,
    generation: u32,
    client: Client,
    channels: ChannelsClient,
    views: ViewsClient,
    hot: bool,
    /// Relays received by this generation.
    received: Arc<Mutex<HashSet<Say>>>,
}

impl Live {
    async fn connect(world: &World, slot: u32, generation: u32) -> Self {
        let addr = if proxied(slot) { world.proxy.addr() } else { world.server.local_addr().unwrap() };
        let config = ClientConfig::default()
            .min_reconnection_delay(ms(20))
            .max_reconnection_delay(ms(300))
            .jitter(0.5)
            .ping_interval(Some(PING))
            .idle_timeout(IDLE)
            .connection_timeout(Duration::from_secs(3))
            .query_param("slot", slot.to_string())
            .query_param("gen", generation.to_string())
            .query_param("room", room_of(slot));
        let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
        let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default()).unwrap();
        let views = ViewsClient::attach(&client, ViewsClientConfig::default()).unwrap();
        let chat = channels.channel("/chat").unwrap();
        let received = Arc::new(Mutex::new(HashSet::new()));
        let mut relays = chat.on::<Say>("relay");
        let sink = received.clone();
        // Ends when the client is closed or dropped (its router is detached).
        tokio::spawn(async move {
            while let Some(relay) = relays.recv().await {
                sink.lock().unwrap().insert(relay.expect("relay payload"));
            }
        });
        // Both stay wanted across reconnects even if the first answer is late.
        let _ = timeout(Duration::from_secs(10), chat.join()).await;
        let _ = timeout(Duration::from_secs(10), views.open(&view_of(slot))).await;
        Live { slot, generation, client, channels, views, hot: false, received }
    }

    /// The server connection of this generation that is still open, if any.
    fn server_connection(&self, world: &World) -> Option<Connection> {
        world
            .server
            .connections()
            .into_iter()
            .find(|c| owner(c) == Some((self.slot, self.generation)) && !c.is_closed())
    }
}

/// Runs one slot until `until`; returns its last generation, or `None` if it retired.
async fn run_slot(world: Arc<World>, slot: u32, mut rng: Rng, until: Instant) -> Option<Live> {
    sleep(rng.millis(0, 2000)).await;
    let mut live = Live::connect(&world, slot, 0).await;
    let mut seq = 0;
    // For diagnostics.
    let mut last_action = "start";
    let stats = &world.stats;
    while Instant::now() < until {
        sleep(rng.millis(300, 1500)).await;
        let roll = rng.range(0..1000);
        let action = match roll {
            0..=699 => "emit",
            700..=759 => "reconnect",
            760..=819 => "replace",
            820..=879 => "cut",
            880..=899 => "freeze",
            900..=996 => "toggle",
            _ => "retire",
        };
        match action {
            "emit" => {
                seq += 1;
                let say = Say { slot, seq };
                let chat = live.channels.channel("/chat").unwrap();
                let before = live.server_connection(&world).map(|c| c.id());
                let sent = Instant::now();
                match chat.emit_with_ack_timeout::<(), _>("say", &say, Duration::from_secs(5)).await {
                    Ok(()) => {
                        world.acked.lock().unwrap().insert(say);
                        Stats::add(&stats.acked);
                        let took = sent.elapsed();
                        stats.max_ack_ms.fetch_max(took.as_millis() as u64, Ordering::Relaxed);
                    }
                    Err(AckError::Closed) => Stats::add(&stats.ack_closed),
                    Err(AckError::Timeout(_)) => {
                        Stats::add(&stats.ack_timeout);
                        let after = live.server_connection(&world).map(|c| c.id());
                        if before.is_some() && before == after && live.client.is_open() {
                            let handled = world.log.handled.lock().unwrap().iter().any(|(_, s)| *s == say);
                            eprintln!(
                                "slot {slot}: {say:?} timed out on connection {before:?}, open throughout \
                                 (previous action: {last_action}); handled: {handled}"
                            );
                        }
                    }
                    Err(error) => {
                        eprintln!("slot {slot}: ack error {error:?}");
                        Stats::add(&stats.ack_other);
                    }
                }
            }
            "reconnect" => {
                live.client.reconnect();
                Stats::add(&stats.reconnects);
            }
            "replace" => {
                let generation = live.generation + 1;
                drop(live);
                live = Live::connect(&world, slot, generation).await;
                Stats::add(&stats.replaced);
            }
            "cut" if proxied(slot) => {
                let upstream = live.server_connection(&world).and_then(|c| c.meta().remote_addr);
                if upstream
                    .and_then(|addr| world.proxy.connection_seen_as(addr))
                    .is_some_and(|link| link.close())
                {
                    Stats::add(&stats.cut);
                }
            }
            "freeze" if proxied(slot) => {
                let upstream = live.server_connection(&world);
                if let Some((id, addr)) = upstream.and_then(|c| Some((c.id(), c.meta().remote_addr?)))
                    && world.proxy.connection_seen_as(addr).is_some_and(|link| link.freeze(Flow::Both))
                {
                    world.frozen.lock().unwrap().push(id);
                    Stats::add(&stats.frozen);
                }
            }
            "toggle" => {
                let limit = Duration::from_secs(10);
                if live.hot {
                    let _ = timeout(limit, live.views.close_name(HOT)).await;
                } else {
                    match timeout(limit, live.views.open(HOT)).await {
                        Ok(Ok(_)) | Err(_) => {}
                        Ok(Err(error)) => eprintln!("slot {slot}: open {HOT}: {error:?}"),
                    }
                }
                live.hot = !live.hot;
                Stats::add(&stats.hot_toggles);
            }
            "retire" => {
                let _ = timeout(Duration::from_secs(5), live.client.close()).await;
                Stats::add(&stats.retired);
                return None;
            }
            _ => {} // a cut or freeze rolled by a direct client: think again
        }
        last_action = action;
    }
    Some(live)
}

/// Everything that differs between what the server (and the clients) hold and the truth
/// (which clients are open and what they want); empty when they agree.
async fn mismatches(
    world: &World,
    presence: &Presence<Server>,
    log: &ServerLog,
    lives: &[Live],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut say = |problem: String| {
        if problems.len() < 20 {
            problems.push(problem);
        }
    };
    let closed: Vec<u32> = lives.iter().filter(|live| !live.client.is_open()).map(|live| live.slot).collect();
    if !closed.is_empty() {
        say(format!("clients not open: {closed:?}"));
    }

    // One server connection per open client, none for anything else.
    let wanted: HashMap<(u32, u32), &Live> =
        lives.iter().map(|live| ((live.slot, live.generation), live)).collect();
    let mut by_owner: BTreeMap<(u32, u32), Vec<ConnectionId>> = BTreeMap::new();
    for connection in world.server.connections() {
        match owner(&connection) {
            Some(key) => by_owner.entry(key).or_default().push(connection.id()),
            None => say(format!("connection {} without slot", connection.id())),
        }
    }
    let mut final_connection: HashMap<ConnectionId, &Live> = HashMap::new();
    for (key, ids) in &by_owner {
        match wanted.get(key) {
            Some(live) if ids.len() == 1 => {
                final_connection.insert(ids[0], live);
            }
            Some(_) => say(format!("slot {key:?} has {} connections: {ids:?}", ids.len())),
            None => say(format!("connections {ids:?} of {key:?}, which is not a live client")),
        }
    }
    let missing: Vec<_> = wanted.keys().filter(|key| !by_owner.contains_key(key)).collect();
    if !missing.is_empty() {
        say(format!("live clients without a server connection: {missing:?}"));
    }
    let frozen = world.frozen.lock().unwrap().clone();
    let still_frozen: Vec<ConnectionId> =
        world.server.connections().iter().map(Connection::id).filter(|id| frozen.contains(id)).collect();
    if !still_frozen.is_empty() {
        say(format!("frozen connections the server has not closed yet: {still_frozen:?}"));
    }

    // Rooms: exactly the live connections, each in exactly its rooms.
    let adapter = world.server.adapter();
    let mut expected_rooms: BTreeMap<String, BTreeSet<ConnectionId>> = BTreeMap::new();
    for (id, live) in &final_connection {
        let mut rooms = vec![
            "/".to_owned(),
            "/chat".to_owned(),
            format!("/chat#{}", room_of(live.slot)),
            format!("views:{}", view_of(live.slot)),
        ];
        if live.hot {
            rooms.push(format!("views:{HOT}"));
        }
        let rooms: BTreeSet<String> = rooms.into_iter().collect();
        let actual: BTreeSet<String> =
            adapter.rooms_of(*id).await.unwrap().into_iter().map(|room| room.to_string()).collect();
        if actual != rooms {
            say(format!("connection {id} of slot {} is in {actual:?}, expected {rooms:?}", live.slot));
        }
        for room in rooms {
            expected_rooms.entry(room).or_default().insert(*id);
        }
    }
    let mut names: Vec<String> = (0..ROOMS).map(|r| format!("/chat#r{r}")).collect();
    names.extend((0..VIEWS).map(|v| format!("views:v{v}")));
    names.extend(["/".to_owned(), "/chat".to_owned(), format!("views:{HOT}")]);
    for name in names {
        let actual: BTreeSet<ConnectionId> = adapter.members(&name).await.unwrap().into_iter().collect();
        let expected = expected_rooms.remove(&name).unwrap_or_default();
        if actual != expected {
            let extra: Vec<_> = actual.difference(&expected).collect();
            let absent: Vec<_> = expected.difference(&actual).collect();
            say(format!("room {name}: extra {extra:?}, missing {absent:?}"));
        }
    }

    // Views: the server's members, and each client's copy of its views.
    let mut expected_views: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, live) in &final_connection {
        let key = format!("c:{}", id.as_u64());
        expected_views.entry(view_of(live.slot)).or_default().insert(key.clone());
        if live.hot {
            expected_views.entry(HOT.to_owned()).or_default().insert(key);
        }
    }
    let open_views: Vec<String> = expected_views.keys().cloned().collect();
    if presence.views() != open_views {
        say(format!("open views {:?}, expected {open_views:?}", presence.views()));
    }
    for (name, expected) in &expected_views {
        let actual: BTreeSet<String> = presence.members(name).into_iter().map(|member| member.key).collect();
        if &actual != expected {
            let extra: Vec<_> = actual.difference(expected).collect();
            let absent: Vec<_> = expected.difference(&actual).collect();
            say(format!("view {name}: extra {extra:?}, missing {absent:?}"));
        }
    }
    for live in final_connection.values() {
        let mut names = vec![view_of(live.slot)];
        if live.hot {
            names.push(HOT.to_owned());
        }
        for name in names {
            let Ok(Ok(view)) = timeout(ms(200), live.views.open(&name)).await else {
                say(format!("slot {}: view {name} is not open on the client", live.slot));
                continue;
            };
            let seen: BTreeSet<String> = view.members().into_iter().map(|member| member.key).collect();
            let expected = expected_views.get(&name).cloned().unwrap_or_default();
            if seen != expected {
                let extra: Vec<_> = seen.difference(&expected).collect();
                let absent: Vec<_> = expected.difference(&seen).collect();
                say(format!("slot {} sees view {name} with extra {extra:?}, missing {absent:?}", live.slot));
            }
        }
    }

    // Relays reached every member that was in the room and is still connected.
    let relays = log.relays.lock().unwrap();
    let mut undelivered = 0;
    for (message, members) in relays.iter() {
        for member in members {
            if let Some(live) = final_connection.get(member)
                && !live.received.lock().unwrap().contains(message)
            {
                undelivered += 1;
                if undelivered <= 5 {
                    say(format!("relay {message:?} not received by slot {} ({member})", live.slot));
                }
            }
        }
    }
    if undelivered > 5 {
        say(format!("{undelivered} relays not received in all"));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_keeps_membership_exact_and_loses_no_acknowledged_message() {
    let seed = Rng::seed_from_env("SOAK_SEED");
    let clients = env_u64("SOAK_CLIENTS", 240) as u32;
    let load = Duration::from_secs(env_u64("SOAK_SECONDS", 25));
    println!("soak: seed {seed} (replay with SOAK_SEED={seed}), {clients} clients, {load:?} of load");
    let started = Instant::now();
    let rng = Rng::new(seed);

    let log = Arc::new(ServerLog::default());
    let (server, presence) = start_server(log.clone()).await;
    let proxy = FaultProxy::start(server.local_addr().unwrap()).await;
    let world = Arc::new(World {
        server,
        log: log.clone(),
        proxy,
        acked: Mutex::default(),
        frozen: Mutex::default(),
        stats: Stats::default(),
    });

    let until = Instant::now() + load;
    let mut tasks = JoinSet::new();
    for slot in 0..clients {
        tasks.spawn(run_slot(world.clone(), slot, rng.fork(u64::from(slot)), until));
    }
    // Every slot finishes its last action (each bounded by a timeout) soon after `until`.
    let mut lives = Vec::new();
    let joined = timeout(load + Duration::from_secs(60), async {
        while let Some(result) = tasks.join_next().await {
            lives.extend(result.expect("slot task panicked"));
        }
    })
    .await;
    assert!(joined.is_ok(), "slot tasks did not finish");
    lives.sort_by_key(|live| live.slot);
    let load_done = started.elapsed();

    // Settle: poll until everything agrees (frozen connections first need an idle
    // timeout on each side).
    let deadline = Instant::now() + SETTLE;
    let mut problems;
    loop {
        problems = mismatches(&world, &presence, &log, &lives).await;
        if problems.is_empty() || Instant::now() >= deadline {
            break;
        }
        sleep(ms(250)).await;
    }
    let settled = started.elapsed() - load_done;
    println!(
        "soak: settled, {} tasks alive, {}",
        tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        resident()
    );
    let stats = &world.stats;
    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    println!(
        "soak: acked {} (slowest {} ms), ack closed {}, ack timeout {}, other {}; reconnects {}, replaced {}, cut {}, frozen {}, \
         hot toggles {}, retired {}; {} live clients; load {load_done:?}, settled in {settled:?}",
        count(&stats.acked),
        count(&stats.max_ack_ms),
        count(&stats.ack_closed),
        count(&stats.ack_timeout),
        count(&stats.ack_other),
        count(&stats.reconnects),
        count(&stats.replaced),
        count(&stats.cut),
        count(&stats.frozen),
        count(&stats.hot_toggles),
        count(&stats.retired),
        lives.len(),
    );
    assert!(problems.is_empty(), "seed {seed}: not settled after {SETTLE:?}:\n{}", problems.join("\n"));
    // Still true a heartbeat later: nothing was about to change.
    sleep(PING + ms(200)).await;
    let problems = mismatches(&world, &presence, &log, &lives).await;
    assert!(problems.is_empty(), "seed {seed}: changed after settling:\n{}", problems.join("\n"));

    // Acknowledged messages were handled, once each, in order per connection.
    let handled = log.handled.lock().unwrap().clone();
    let mut seen = HashSet::new();
    let mut last_per_connection: HashMap<ConnectionId, u64> = HashMap::new();
    for (connection, say) in &handled {
        assert!(seen.insert(*say), "seed {seed}: {say:?} handled twice");
        let last = last_per_connection.entry(*connection).or_default();
        assert!(*last < say.seq, "seed {seed}: {say:?} handled after seq {last} on connection {connection}");
        *last = say.seq;
    }
    let acked = world.acked.lock().unwrap().clone();
    let lost: Vec<_> = acked.iter().filter(|say| !seen.contains(say)).collect();
    assert!(lost.is_empty(), "seed {seed}: acknowledged but never handled: {lost:?}");
    let enough = u64::from(clients) * load.as_secs() / 4;
    assert!(
        acked.len() as u64 >= enough,
        "seed {seed}: too little traffic ({} acked, expected {enough})",
        acked.len()
    );
    let survivors: HashSet<ConnectionId> = world.server.connections().iter().map(Connection::id).collect();
    {
        let relays = log.relays.lock().unwrap();
        let deliveries: usize = relays.iter().map(|(_, members)| members.len()).sum();
        let checked: usize = relays
            .iter()
            .map(|(_, members)| members.iter().filter(|id| survivors.contains(id)).count())
            .sum();
        println!(
            "soak: {} handled ({} without ack), {} relays to {deliveries} members, {checked} of them to \
             connections open at the end (checked received)",
            handled.len(),
            handled.len() - acked.len(),
            relays.len(),
        );
    }

    // Close everything, bounded.
    let closing = timeout(Duration::from_secs(20), async {
        let mut closes = JoinSet::new();
        for live in lives {
            closes.spawn(async move { live.client.close().await });
        }
        while closes.join_next().await.is_some() {}
    })
    .await;
    assert!(closing.is_ok(), "clients did not close");
    let World { server, proxy, .. } = Arc::try_unwrap(world).ok().expect("no slot task holds the world");
    // Frozen connections go first, so that shutdown has nobody to wait for.
    drop(proxy);
    timeout(Duration::from_secs(20), server.shutdown()).await.expect("shutdown");
    // Every client, connection and router task ends (the views flusher ends with its
    // router once the presence handle is gone).
    drop(presence);
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > 0 && Instant::now() < deadline {
        sleep(ms(50)).await;
    }
    println!(
        "soak: {} tasks alive at the end, {}; total {:?}",
        metrics.num_alive_tasks(),
        resident(),
        started.elapsed()
    );
    assert_eq!(metrics.num_alive_tasks(), 0, "seed {seed}: tasks left behind after closing everything");
}

/// The process's resident memory, where `/proc` tells it.
fn resident() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status.lines().find(|line| line.starts_with("VmRSS:")).map(|line| line[6..].trim().to_owned());
    format!("resident {}", rss.unwrap_or_else(|| "unknown".to_owned()))
}
