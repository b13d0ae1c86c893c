//! `bench features load`: the load generator, on a current-thread runtime.
//!
//! - storm: prints `ready` once every client is restored, `down` once every client lost its
//!   link (the driver killed the server), then `connected SECONDS` and `restored SECONDS`
//!   (seconds since `down`) when every client is connected and restored again, and a JSON
//!   line of details.
//! - churn and syncpush: print `measuring` when the 1 s warm-up ends and then one JSON line
//!   of results.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use channels::client::ChannelsClient;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use views::client::ViewsClient;
use ws_client::{Client, ClientConfig, ClientEvent};

use super::wire::{self, Envelope, STORM_GROUP};
use super::{Impl, Scenario, say};
use crate::hist::spread;
use crate::{Args, BoxError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Traffic before the measured window.
const WARMUP: Duration = Duration::from_secs(1);
/// Deadline for opening the connections of one scenario.
const CONNECT_DEADLINE: Duration = Duration::from_secs(60);
/// Connections (or storm clients) set up at once.
const CONNECT_BATCH: usize = 100;
/// Deadline for a request's answer during set-up.
const ANSWER_DEADLINE: Duration = Duration::from_secs(20);
/// How often the storm's census samples the clients.
const CENSUS_INTERVAL: Duration = Duration::from_millis(20);
/// Deadline for every storm client to be restored, at the start and after the restart.
const RESTORE_DEADLINE: Duration = Duration::from_secs(120);
/// Deadline for every storm client to notice that the server is gone.
const DOWN_DEADLINE: Duration = Duration::from_secs(30);
/// Sync pushes tracked at once; far more than the window.
const RING: usize = 4096;

pub(super) fn main(args: &Args) -> Result<(), BoxError> {
    let scenario = Scenario::parse(&args.required("scenario")?)?;
    let implementation = Impl::parse(&args.str_or("impl", "raw"))?;
    let url = args.required("url")?;
    let seconds: f64 = args.num_or("seconds", 10.0)?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err("need --seconds > 0".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(async move {
        match scenario {
            Scenario::Storm => storm(args, implementation, &url).await,
            Scenario::Churn => churn(args, &url, seconds).await,
            Scenario::SyncPush => syncpush(args, &url, seconds).await,
        }
    });
    // The client tasks run forever; leave without waiting for them (or for 5,000 closes).
    if let Err(error) = result {
        eprintln!("bench features load: {error}");
        std::process::exit(1);
    }
    std::process::exit(0)
}

/// Opens `count` raw connections to `url`, `CONNECT_BATCH` at a time.
async fn connect_all(url: &str, count: usize) -> Result<Vec<Ws>, BoxError> {
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let mut all = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + CONNECT_DEADLINE;
    while all.len() < count {
        let batch = CONNECT_BATCH.min(count - all.len());
        let attempts = (0..batch)
            .map(|_| tokio_tungstenite::connect_async_with_config(url.to_owned(), Some(config), true));
        let results = tokio::time::timeout_at(deadline, futures_util::future::join_all(attempts))
            .await
            .map_err(|_| format!("connecting {count} clients to {url} took too long"))?;
        for result in results {
            all.push(result?.0);
        }
    }
    Ok(all)
}

/// Reads frames until the answer to request `id` (the first frame carrying it), counting
/// the member changes of the diffs met on the way; `None` when the connection ends.
async fn answer(ws: &mut Ws, id: u64, changes: &AtomicU64) -> Option<Envelope> {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let Some(frame) = Envelope::decode(text.as_str()) else { continue };
        count_changes(&frame, changes);
        if frame.d.id == Some(id) {
            return Some(frame);
        }
    }
    None
}

/// Adds the entries of a `diff` (joins plus leaves) to `changes`; returns how many.
fn count_changes(frame: &Envelope, changes: &AtomicU64) -> u64 {
    if frame.d.t != "diff" {
        return 0;
    }
    let entries = frame.d.joins.as_ref().map_or(0, Vec::len) + frame.d.leaves.as_ref().map_or(0, Vec::len);
    changes.fetch_add(entries as u64, Ordering::Relaxed);
    entries as u64
}

/// Sends `text` and waits (bounded) for the answer with id `id`.
async fn request(ws: &mut Ws, text: String, id: u64, changes: &AtomicU64) -> Result<Envelope, BoxError> {
    ws.send(Message::text(text)).await?;
    tokio::time::timeout(ANSWER_DEADLINE, answer(ws, id, changes))
        .await
        .map_err(|_| "no answer within the deadline")?
        .ok_or_else(|| "connection ended before the answer".into())
}

// ---------------------------------------------------------------------------------------
// Reconnect storm
// ---------------------------------------------------------------------------------------

/// Where a raw storm client is: down, connected, or restored (both answers received).
const DOWN: u8 = 0;
/// Bits of a raw storm client's state: the link is up, `joined` came, `state` came.
const CONNECTED: u8 = 1;
const JOINED: u8 = 2;
const SYNCED: u8 = 4;

/// One storm client, as the census sees it.
enum Probe {
    /// Our client and its router handles.
    Ours { client: Client, channel: channels::client::Channel, view: views::client::View },
    /// A raw client's state (`DOWN`, or bits of `CONNECTED`, `JOINED`, `SYNCED`).
    Raw(Arc<AtomicU8>),
}

/// What the census sees of one client.
#[derive(Clone, Copy)]
struct Status {
    /// The link is up (ours: `Client::is_open`, the restore frames are queued).
    connected: bool,
    /// The server's `joined` arrived on this link.
    joined: bool,
    /// The server's `state` of the view arrived on this link.
    synced: bool,
}

impl Status {
    fn restored(self) -> bool {
        self.connected && self.joined && self.synced
    }
}

impl Probe {
    fn status(&self) -> Status {
        match self {
            Self::Ours { client, channel, view } => {
                let connected = client.is_open();
                Status {
                    connected,
                    joined: connected && channel.is_joined(),
                    synced: connected && view.is_synced(),
                }
            }
            Self::Raw(state) => {
                let state = state.load(Ordering::Relaxed);
                Status {
                    connected: state & CONNECTED != 0,
                    joined: state & JOINED != 0,
                    synced: state & SYNCED != 0,
                }
            }
        }
    }
}

/// What the storm's clients report about their reconnections.
struct StormStats {
    /// Set once every client is restored the first time: from then on delays are recorded.
    storm: AtomicBool,
    /// Attempts that failed during the storm.
    failed: AtomicU64,
    /// The first reconnection delay (ms) each client drew after the kill, 0 until then.
    first_delay_ms: Box<[AtomicU64]>,
}

impl StormStats {
    fn record_delay(&self, client: usize, delay: Duration) {
        if self.storm.load(Ordering::Relaxed)
            && let Some(slot) = self.first_delay_ms.get(client)
        {
            let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
            let _ = slot.compare_exchange(0, millis, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

async fn storm(args: &Args, implementation: Impl, url: &str) -> Result<(), BoxError> {
    let clients: usize = args.num_or("clients", 5000)?;
    if clients == 0 {
        return Err("need --clients > 0".into());
    }
    let stats = Arc::new(StormStats {
        storm: AtomicBool::new(false),
        failed: AtomicU64::new(0),
        first_delay_ms: (0..clients).map(|_| AtomicU64::new(0)).collect(),
    });
    let mut probes = Vec::with_capacity(clients);
    let deadline = tokio::time::Instant::now() + RESTORE_DEADLINE;
    while probes.len() < clients {
        let batch = CONNECT_BATCH.min(clients - probes.len());
        let start = probes.len();
        let made =
            (start..start + batch).map(|index| storm_client(implementation, url, index, stats.clone()));
        let results = tokio::time::timeout_at(deadline, futures_util::future::join_all(made))
            .await
            .map_err(|_| format!("setting up {clients} storm clients took too long"))?;
        for probe in results {
            probes.push(probe?);
        }
    }
    wait_census(&probes, RESTORE_DEADLINE, "every client restored", |_, restored| restored == clients)
        .await?;
    stats.storm.store(true, Ordering::Relaxed);
    say("ready")?;
    wait_census(&probes, DOWN_DEADLINE, "every client down", |connected, _| connected == 0).await?;
    let down = Instant::now();
    say("down")?;
    // Restored counts per second since `down`, to see the shape of the recovery.
    let mut timeline = Vec::new();
    let mut connected_at = None;
    let mut restored_at = None;
    let mut next_mark = Duration::ZERO;
    let give_up = down + RESTORE_DEADLINE;
    let mut last = (0, 0);
    // Per client, when the census first saw it connected, joined, synced (since `down`).
    let mut seen: Vec<[Option<Duration>; 3]> = vec![[None; 3]; clients];
    while restored_at.is_none() && Instant::now() < give_up {
        let since = down.elapsed();
        let (mut connected, mut restored) = (0, 0);
        for (index, probe) in probes.iter().enumerate() {
            let marks = &mut seen[index];
            let status = if marks.iter().all(Option::is_some) {
                // Restored once is restored for this storm: skip the locks.
                Status { connected: true, joined: true, synced: true }
            } else {
                probe.status()
            };
            for (mark, reached) in marks.iter_mut().zip([status.connected, status.joined, status.synced]) {
                if reached && mark.is_none() {
                    *mark = Some(since);
                }
            }
            connected += usize::from(status.connected);
            restored += usize::from(status.restored());
        }
        last = (connected, restored);
        if since >= next_mark {
            timeline.push(restored);
            next_mark += Duration::from_secs(1);
        }
        if connected_at.is_none() && connected == clients {
            connected_at = Some(since.as_secs_f64());
            say(&format!("connected {:.3}", since.as_secs_f64()))?;
        }
        if restored == clients {
            restored_at = Some(since.as_secs_f64());
            say(&format!("restored {:.3}", since.as_secs_f64()))?;
        }
        tokio::time::sleep(CENSUS_INTERVAL).await;
    }
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let delays: Vec<u64> = stats.first_delay_ms.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    // Connected to joined and to synced (the server's answers), and restored minus the delay
    // drawn (what the reconnection cost beyond the wait), per client, in ms.
    let lag = |to: usize| -> Vec<u64> {
        seen.iter().filter_map(|marks| Some(millis(marks[to]?.saturating_sub(marks[0]?)))).collect()
    };
    let beyond_delay: Vec<u64> = seen
        .iter()
        .zip(&delays)
        .filter_map(|(marks, delay)| {
            let restored = marks[1]?.max(marks[2]?);
            Some(millis(restored).saturating_sub(*delay))
        })
        .collect();
    let result = serde_json::json!({
        "clients": clients,
        "connected_after_down_s": connected_at,
        "restored_after_down_s": restored_at,
        "connected": last.0,
        "restored": last.1,
        "failed_attempts": stats.failed.load(Ordering::Relaxed),
        "first_delay_ms": spread(delays.into_iter().filter(|d| *d > 0).collect()),
        "connected_to_joined_ms": spread(lag(1)),
        "connected_to_synced_ms": spread(lag(2)),
        "restored_beyond_delay_ms": spread(beyond_delay),
        "restored_per_second_since_down": timeline,
    });
    say(&result.to_string())?;
    if restored_at.is_none() {
        return Err(
            format!("only {} of {clients} clients restored within {RESTORE_DEADLINE:?}", last.1).into()
        );
    }
    Ok(())
}

/// How many clients are connected, and how many restored.
fn census(probes: &[Probe]) -> (usize, usize) {
    probes.iter().map(Probe::status).fold((0, 0), |(connected, restored), status| {
        (connected + usize::from(status.connected), restored + usize::from(status.restored()))
    })
}

/// Samples the census until `done(connected, restored)`, at most `limit`.
async fn wait_census(
    probes: &[Probe],
    limit: Duration,
    what: &str,
    done: impl Fn(usize, usize) -> bool,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        let (connected, restored) = census(probes);
        if done(connected, restored) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(
                format!("timed out waiting for {what} ({connected} connected, {restored} restored)").into()
            );
        }
        tokio::time::sleep(CENSUS_INTERVAL).await;
    }
}

/// The storm's `index`-th client: its room and view are `index / STORM_GROUP`.
async fn storm_client(
    implementation: Impl,
    url: &str,
    index: usize,
    stats: Arc<StormStats>,
) -> Result<Probe, BoxError> {
    let group = index / STORM_GROUP;
    let room = format!("r{group}");
    let view_name = format!("v{group}");
    match implementation {
        Impl::Ours => {
            // The client's defaults are the point of the scenario: reconnection delays and all.
            let config = ClientConfig::default().query_param("room", room);
            let client = Client::connect(url, config)?;
            let mut lifecycle = client.lifecycle();
            tokio::spawn(async move {
                loop {
                    match lifecycle.recv().await {
                        Ok(ClientEvent::Reconnecting { delay, .. }) => stats.record_delay(index, delay),
                        Ok(ClientEvent::Failed { .. }) if stats.storm.load(Ordering::Relaxed) => {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
            let channels = ChannelsClient::attach(&client, Default::default())?;
            let views = ViewsClient::attach(&client, Default::default())?;
            let channel = channels.channel(wire::STORM_CHANNEL)?;
            let (joined, view) = tokio::join!(channel.join(), views.open(&view_name));
            joined?;
            let view = view?;
            Ok(Probe::Ours { client, channel, view })
        }
        Impl::Raw => {
            let state = Arc::new(AtomicU8::new(DOWN));
            let url = format!("{url}/?room={room}");
            tokio::spawn(raw_storm_client(url, view_name, index, state.clone(), stats));
            Ok(Probe::Raw(state))
        }
    }
}

/// A small random number generator (splitmix64), seeded per client: the bench needs no
/// more than a spread of delays.
fn splitmix(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A raw client reconnecting on `ws_client`'s default schedule: the minimum delay drawn
/// once in 1-5 s, times 1.3 per failed attempt, at most 10 s; the count starts over after
/// 5 s of uptime; an attempt times out after 4 s. After each connect it sends `join` and
/// `open` and counts as restored when both answers arrived.
async fn raw_storm_client(
    url: String,
    view: String,
    index: usize,
    state: Arc<AtomicU8>,
    stats: Arc<StormStats>,
) {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut seed = u64::from(nanos) ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let min_delay = Duration::from_millis(1000 + splitmix(&mut seed) % 4000);
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let mut attempt: u32 = 0;
    loop {
        if attempt > 0 {
            let exponent = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
            let delay = min_delay.mul_f64(1.3f64.powi(exponent).min(1e3)).min(Duration::from_secs(10));
            stats.record_delay(index, delay);
            tokio::time::sleep(delay).await;
        }
        let connecting = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(Duration::from_secs(4), connecting).await else {
            if stats.storm.load(Ordering::Relaxed) {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
            attempt = attempt.saturating_add(1);
            continue;
        };
        let opened = Instant::now();
        state.store(CONNECTED, Ordering::Relaxed);
        let (join_id, open_id) = (1, 2);
        let sent = async {
            ws.feed(Message::text(wire::join(join_id))).await?;
            ws.feed(Message::text(wire::open(&view, open_id))).await?;
            ws.flush().await
        };
        if sent.await.is_ok() {
            let (mut joined, mut opened_view) = (false, false);
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else { continue };
                if joined && opened_view {
                    // Restored: later frames are diffs of the view, not needed.
                    continue;
                }
                let Some(frame) = Envelope::decode(text.as_str()) else { continue };
                if frame.d.id == Some(join_id) && frame.d.t == "joined" {
                    joined = true;
                    state.fetch_or(JOINED, Ordering::Relaxed);
                }
                if frame.d.id == Some(open_id) && frame.d.t == "state" {
                    opened_view = true;
                    state.fetch_or(SYNCED, Ordering::Relaxed);
                }
            }
        }
        state.store(DOWN, Ordering::Relaxed);
        attempt = if opened.elapsed() >= Duration::from_secs(5) { 1 } else { attempt.saturating_add(1) };
    }
}

// ---------------------------------------------------------------------------------------
// Presence churn
// ---------------------------------------------------------------------------------------

struct ChurnCounts {
    /// Opens and closes answered.
    operations: AtomicU64,
    /// Member changes (diff entries) received by every connection.
    changes: AtomicU64,
    /// Member changes received by the observers.
    observed: AtomicU64,
    /// Connections that ended before the run did.
    lost: AtomicU64,
}

async fn churn(args: &Args, url: &str, seconds: f64) -> Result<(), BoxError> {
    let togglers: usize = args.num_or("togglers", 1000)?;
    let views: usize = args.num_or("views", 10)?;
    let observers_per_view: usize = args.num_or("observers", 5)?;
    if togglers == 0 || views == 0 {
        return Err("need --togglers > 0 and --views > 0".into());
    }
    let counts = Arc::new(ChurnCounts {
        operations: AtomicU64::new(0),
        changes: AtomicU64::new(0),
        observed: AtomicU64::new(0),
        lost: AtomicU64::new(0),
    });
    let observers = connect_all(url, views * observers_per_view).await?;
    for (index, mut ws) in observers.into_iter().enumerate() {
        let view = format!("v{}", index % views);
        request(&mut ws, wire::open(&view, 1), 1, &counts.changes).await?;
        tokio::spawn(observer(ws, counts.clone()));
    }
    for (index, ws) in connect_all(url, togglers).await?.into_iter().enumerate() {
        tokio::spawn(toggler(ws, format!("v{}", index % views), counts.clone()));
    }
    let snapshot = |counts: &ChurnCounts| {
        [&counts.operations, &counts.changes, &counts.observed].map(|count| count.load(Ordering::Relaxed))
    };
    tokio::time::sleep(WARMUP).await;
    let before = snapshot(&counts);
    let start = Instant::now();
    say("measuring")?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let after = snapshot(&counts);
    let elapsed = start.elapsed().as_secs_f64();
    let [operations, changes, observed] = [0, 1, 2].map(|i| after[i] - before[i]);
    let result = serde_json::json!({
        "seconds": elapsed,
        "count": operations,
        "rate": operations as f64 / elapsed,
        "changes": changes,
        "observed": observed,
        "lost_connections": counts.lost.load(Ordering::Relaxed),
    });
    say(&result.to_string())
}

async fn observer(mut ws: Ws, counts: Arc<ChurnCounts>) {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let Some(frame) = Envelope::decode(text.as_str()) else { continue };
        let entries = count_changes(&frame, &counts.changes);
        counts.observed.fetch_add(entries, Ordering::Relaxed);
    }
    counts.lost.fetch_add(1, Ordering::Relaxed);
}

/// Opens and closes `view` in a loop, one request in flight.
async fn toggler(mut ws: Ws, view: String, counts: Arc<ChurnCounts>) {
    let mut id: u64 = 0;
    loop {
        id += 1;
        let frame = if id % 2 == 1 { wire::open(&view, id) } else { wire::close(&view, id) };
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
        if answer(&mut ws, id, &counts.changes).await.is_none() {
            break;
        }
        counts.operations.fetch_add(1, Ordering::Relaxed);
    }
    counts.lost.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------
// Sync push
// ---------------------------------------------------------------------------------------

struct PushCounts {
    /// Deliveries of pushes.
    delivered: AtomicU64,
    /// Pushes every subscriber received.
    completed: AtomicU64,
    /// Deliveries seen per sequence slot.
    per_slot: Box<[AtomicU64]>,
    /// Completed pushes not yet reported to the server.
    owed: AtomicU64,
    /// Wakes the control connection when `owed` grows.
    wake: Notify,
    /// Connections that ended before the run did.
    lost: AtomicU64,
}

async fn syncpush(args: &Args, url: &str, seconds: f64) -> Result<(), BoxError> {
    let subscribers: usize = args.num_or("subscribers", 1000)?;
    let window: u64 = args.num_or("window", 16)?;
    if subscribers == 0 || window == 0 || window >= RING as u64 {
        return Err("need --subscribers > 0 and 0 < --window < 4096".into());
    }
    let counts = Arc::new(PushCounts {
        delivered: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        per_slot: (0..RING).map(|_| AtomicU64::new(0)).collect(),
        owed: AtomicU64::new(window),
        wake: Notify::new(),
        lost: AtomicU64::new(0),
    });
    let unused = AtomicU64::new(0);
    for mut ws in connect_all(url, subscribers).await? {
        request(&mut ws, wire::sub(1), 1, &unused).await?;
        tokio::spawn(subscriber(ws, subscribers as u64, counts.clone()));
    }
    let control = connect_all(&format!("{url}{}", wire::CONTROL_PATH), 1).await?;
    for ws in control {
        tokio::spawn(controller(ws, counts.clone()));
    }
    // The initial window is owed already.
    counts.wake.notify_one();
    tokio::time::sleep(WARMUP).await;
    let before = [&counts.delivered, &counts.completed].map(|c| c.load(Ordering::Relaxed));
    let start = Instant::now();
    say("measuring")?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let after = [&counts.delivered, &counts.completed].map(|c| c.load(Ordering::Relaxed));
    let elapsed = start.elapsed().as_secs_f64();
    let (delivered, completed) = (after[0] - before[0], after[1] - before[1]);
    let result = serde_json::json!({
        "seconds": elapsed,
        "count": delivered,
        "rate": delivered as f64 / elapsed,
        "pushes": completed,
        "push_rate": completed as f64 / elapsed,
        "lost_connections": counts.lost.load(Ordering::Relaxed),
    });
    say(&result.to_string())
}

async fn subscriber(mut ws: Ws, subscribers: u64, counts: Arc<PushCounts>) {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let Some(seq) = wire::push_seq(text.as_str()) else { continue };
        counts.delivered.fetch_add(1, Ordering::Relaxed);
        let slot = &counts.per_slot[(seq % RING as u64) as usize];
        if slot.fetch_add(1, Ordering::Relaxed) + 1 == subscribers {
            slot.store(0, Ordering::Relaxed);
            counts.completed.fetch_add(1, Ordering::Relaxed);
            counts.owed.fetch_add(1, Ordering::Relaxed);
            counts.wake.notify_one();
        }
    }
    counts.lost.fetch_add(1, Ordering::Relaxed);
}

/// Returns the completed pushes to the server as credits, one frame per wake-up.
async fn controller(mut ws: Ws, counts: Arc<PushCounts>) {
    loop {
        counts.wake.notified().await;
        let owed = counts.owed.swap(0, Ordering::Relaxed);
        if owed > 0 && ws.send(Message::text(owed.to_string())).await.is_err() {
            break;
        }
    }
    counts.lost.fetch_add(1, Ordering::Relaxed);
}
