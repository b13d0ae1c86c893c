//! `bench load`: the load generator, on a current-thread runtime, cheap per message.
//!
//! - echo: each of N connections keeps K frames in flight: a 64-byte JSON object in a text
//!   frame (`--payload json`), or the same map in MessagePack in a binary frame
//!   (`--payload msgpack`); a round trip's latency is measured from the send instants kept
//!   in a per-connection FIFO (one clock read per send and per reply).
//! - fan-out: N subscribers (path `/sub`) and one publisher (path `/pub`) that keeps K
//!   64-byte trigger frames in flight. Each frame carries its sequence number; subscribers
//!   count deliveries in a shared per-sequence counter, and only the delivery that
//!   completes a broadcast reads the clock, records the broadcast's latency and lets the
//!   publisher send the next frame. With `--member-urls URL,URL` (the cross-node scenario)
//!   the subscribers are split evenly over those servers (the first ones take the
//!   remainder) while the publisher stays on `--url`.
//!
//! - memory: N connections (path `/sub`) that each send one views `open` frame for a view
//!   (`idle-{i / per_view}`, `--per-view`, default 1: a view each) and then only read. With `--await-state 1` (ours, the only
//!   implementation with the views router) it waits until every connection got its `state`
//!   answer. It prints `connected N` and holds the connections, reading (so pings are
//!   answered), until killed or [`MEMORY_HOLD`] has passed.
//!
//! A fan-out broadcast that can no longer complete gives its window place back, so that a
//! server that drops frames (`bcast` on lag) is measured rather than stalled: as soon as a
//! member gets a later frame than the one it expected (it skipped some), or, as a backstop,
//! once the broadcast is [`ABANDON_AFTER`] old. Such broadcasts are counted
//! (`broadcasts_lost` in the results and the check); their deliveries still count.
//!
//! With `--protocol socketio` (default `ws`) the same scenarios speak Engine.IO v4 /
//! Socket.IO v5 to the socket.io and socketioxide peers: see [`socketio`].
//!
//! Echo and fan-out print `measuring` when the warm-up ends and then one JSON line of
//! results. Fan-out then checks that every member got every frame exactly once: the
//! publisher stops, the in-flight frames drain, and a line `check {JSON}` gives the frames
//! sent, the deliveries counted against sent x members, the frames a member got out of
//! sequence (a duplicate, a loss or a reordering each count), and the members that did not
//! end on the last frame sent.

mod socketio;

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod member;

use crate::hist::Histogram;
use crate::{Args, BoxError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Broadcasts tracked at once; far more than any in-flight window used.
const RING: usize = 4096;
/// Traffic before the measured window.
const WARMUP: Duration = Duration::from_secs(1);
/// Fan-out check: the longest the in-flight frames may take to drain after the publisher
/// stopped...
const DRAIN_BOUND: Duration = Duration::from_secs(10);
/// ...and how long the counts must then stay unchanged (a late duplicate would show)...
const DRAIN_STABLE: Duration = Duration::from_millis(300);
/// ...or, while deliveries are missing, how long nothing may have moved before the check
/// counts them as lost rather than late.
const DRAIN_STALLED: Duration = Duration::from_secs(2);
/// Fan-out: a broadcast not complete after this long gives its window place back and counts
/// as lost (a backstop: a member's sequence gap gives it back at once). Far above the
/// slowest completion seen (Node `ws`, 10,000 members, 32 in flight: p99 about 4 s).
const ABANDON_AFTER: Duration = Duration::from_secs(10);
/// How often the backstop looks at the oldest broadcasts in flight.
const ABANDON_SCAN: Duration = Duration::from_millis(100);
/// Connections opened at once.
const CONNECT_BATCH: usize = 100;
/// Read buffer of each load connection in the echo and fan-out scenarios.
const LOAD_READ_BUFFER: usize = 16 * 1024;
/// Read buffer of each idle connection in the memory scenario: small, because 10,000 of
/// them only ever read a `state` frame and pings.
const IDLE_READ_BUFFER: usize = 4 * 1024;
/// The longest the memory scenario holds its connections if nobody kills the load first,
/// so that a load generator whose driver died does not linger.
pub(crate) const MEMORY_HOLD: Duration = Duration::from_secs(300);
/// The echo payload: a small JSON envelope, 64 bytes.
const ECHO_PAYLOAD: &str = r#"{"r":"bench","t":"echo","d":{"n":1,"s":"0123456789abcdef012345"}}"#;

/// The echo payload as a value, for its MessagePack form: the same map as [`ECHO_PAYLOAD`]
/// (fields in the same order, named keys).
#[derive(Serialize)]
struct EchoEnvelope {
    r: &'static str,
    t: &'static str,
    d: EchoBody,
}

/// The body of [`EchoEnvelope`].
#[derive(Serialize)]
struct EchoBody {
    n: u32,
    s: &'static str,
}

const ECHO_ENVELOPE: EchoEnvelope =
    EchoEnvelope { r: "bench", t: "echo", d: EchoBody { n: 1, s: "0123456789abcdef012345" } };

/// How long opening `connections` connections may take: 30 s, plus 5 ms for each (10,000
/// take a few seconds on loopback; the margin is for a loaded machine).
pub(crate) fn connect_deadline(connections: usize) -> Duration {
    Duration::from_secs(30)
        + Duration::from_millis(5).saturating_mul(u32::try_from(connections).unwrap_or(u32::MAX))
}

/// Fan-out frame `seq` of `size` bytes (at least 8): the sequence number (8 bytes,
/// little-endian), then zeros up to 64 bytes (the default), or, for larger sizes, JSON rows
/// as an application broadcasts them (`{"id":4711,"user":"user-3","status":"online",
/// "typing":false}`, ...) whose values change from one frame to the next (ids, users and
/// states drawn from `seq`), so that compression sees a realistic stream: the same keys,
/// not the same message again.
pub(crate) fn broadcast_frame(size: usize, seq: u64) -> Vec<u8> {
    let mut frame = seq.to_le_bytes().to_vec();
    if size > 64 {
        let mut json = String::from("[");
        let mut n = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        while json.len() < size {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let status = ["online", "away", "busy"][(n >> 33) as usize % 3];
            let typing = (n >> 40) & 1 == 0;
            json.push_str(&format!(
                r#"{{"id":{},"user":"user-{}","status":"{status}","typing":{typing}}},"#,
                (n >> 44) % 100_000,
                (n >> 24) % 1000
            ));
        }
        frame.extend_from_slice(&json.as_bytes()[..size - 8]);
    }
    frame.resize(size, 0);
    frame
}

/// The echo frame for `--payload`: built once, cloned per send (a reference count).
fn echo_frame(payload: &str) -> Result<Message, BoxError> {
    match payload {
        "json" => Ok(Message::text(ECHO_PAYLOAD)),
        "msgpack" => {
            let packed = network_core::Message::msgpack(&ECHO_ENVELOPE)?;
            Ok(Message::Binary(packed.payload().clone()))
        }
        other => Err(format!("unknown payload {other} (json or msgpack)").into()),
    }
}

/// What the load generator's connection tasks share: the clock, counters and histogram.
struct LoadState {
    base: Instant,
    measuring: AtomicBool,
    count: AtomicU64,
    hist: Histogram,
    /// Fan-out: deliveries seen per sequence slot.
    delivered: Box<[AtomicU64]>,
    /// Fan-out: when each slot's trigger was sent, in ns since `base`.
    sent_at: Box<[AtomicU64]>,
    /// Fan-out: the sequence number + 1 of the broadcast each slot holds while it holds a
    /// window place, 0 once it completed or was given up; whoever swaps it to 0 returns
    /// the place, so that a place is returned once.
    pending_seq: Box<[AtomicU64]>,
    /// Fan-out: broadcasts given up on (a member skipped the frame, or it took longer than
    /// [`ABANDON_AFTER`]).
    lost_broadcasts: AtomicU64,
    /// Fan-out: broadcasts that reached every subscriber.
    completed: AtomicU64,
    /// Fan-out: free places in the in-flight window.
    window: Semaphore,
    /// Connections that ended before the run did.
    lost: AtomicU64,
    /// Fan-out: set after the measured window; the publisher sends nothing more.
    stopping: AtomicBool,
    /// Fan-out: frames the publisher sent, in all.
    sent: AtomicU64,
    /// Fan-out: frames a member got with another sequence number than the one after its
    /// previous frame (the first expected is 0).
    sequence_errors: AtomicU64,
    /// Fan-out: the sequence number each member expects next (= frames it got in order).
    next_seq: Box<[AtomicU64]>,
    /// Fan-out: bytes the members read from their sockets (frames as sent, compressed ones
    /// compressed).
    wire_bytes: AtomicU64,
}

impl LoadState {
    /// Nothing counted yet, the fan-out window closed, for `connections` members.
    fn new(connections: usize) -> Self {
        Self {
            base: Instant::now(),
            measuring: AtomicBool::new(false),
            count: AtomicU64::new(0),
            hist: Histogram::new(),
            delivered: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            sent_at: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            pending_seq: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            lost_broadcasts: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            window: Semaphore::new(0),
            lost: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            sequence_errors: AtomicU64::new(0),
            next_seq: (0..connections).map(|_| AtomicU64::new(0)).collect(),
            wire_bytes: AtomicU64::new(0),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Echo: a reply came for the frame sent at `sent_at`.
    fn round_trip(&self, sent_at: Instant) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.measuring.load(Ordering::Relaxed) {
            self.hist.record(u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Fan-out: the publisher sends frame `seq` now.
    fn mark_sent(&self, seq: u64) {
        let slot = (seq % RING as u64) as usize;
        // The slot's previous broadcast ended a ring ago; a lost one may have left a count.
        self.delivered[slot].store(0, Ordering::Relaxed);
        self.sent_at[slot].store(self.nanos(), Ordering::Relaxed);
        self.pending_seq[slot].store(seq + 1, Ordering::Relaxed);
    }

    /// Fan-out: member `index` (of `members`) got frame `seq`; the delivery that completes
    /// the broadcast records its latency and frees its place in the window.
    fn deliver(&self, index: usize, seq: u64, members: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        // One member's frames come in the publisher's order (one node delivers them in
        // order, and the cluster keeps one node's broadcasts in order), so anything but
        // the next number is a duplicate, a loss or a reordering.
        let expected = self.next_seq[index].swap(seq + 1, Ordering::Relaxed);
        if expected != seq {
            self.sequence_errors.fetch_add(1, Ordering::Relaxed);
            // This member skipped `expected..seq`: those broadcasts cannot complete. At most
            // a ring's worth can be in flight, so older ones are long ended.
            for skipped in expected.max(seq.saturating_sub(RING as u64))..seq {
                self.abandon_broadcast(skipped);
            }
        }
        let slot = (seq % RING as u64) as usize;
        if self.delivered[slot].fetch_add(1, Ordering::Relaxed) + 1 == members && self.end_broadcast(seq) {
            self.completed.fetch_add(1, Ordering::Relaxed);
            if self.measuring.load(Ordering::Relaxed) {
                let took = self.nanos().saturating_sub(self.sent_at[slot].load(Ordering::Relaxed));
                self.hist.record(took / 1000);
            }
        }
    }

    /// Ends broadcast `seq` (completed or given up), returning its window place; false
    /// when it had already ended.
    fn end_broadcast(&self, seq: u64) -> bool {
        let slot = (seq % RING as u64) as usize;
        let ended =
            self.pending_seq[slot].compare_exchange(seq + 1, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        if ended {
            self.window.add_permits(1);
        }
        ended
    }

    /// Gives up on broadcast `seq` if it is still in flight.
    fn abandon_broadcast(&self, seq: u64) {
        if self.end_broadcast(seq) {
            self.lost_broadcasts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) fn main(args: &Args) -> Result<(), BoxError> {
    let scenario = args.required("scenario")?;
    let url = args.required("url")?;
    let connections: usize = args.num_or("connections", 100)?;
    let in_flight: usize = args.num_or("in-flight", 1)?;
    let seconds: f64 = args.num_or("seconds", 10.0)?;
    let socketio = match args.str_or("protocol", "ws").as_str() {
        "ws" => false,
        "socketio" => true,
        other => return Err(format!("unknown --protocol {other} (ws or socketio)").into()),
    };
    if scenario == "memory" && socketio {
        return socketio::memory(&url, connections);
    }
    if scenario == "memory" {
        let await_state = args.num_or("await-state", 0u8)? != 0;
        let per_view: usize = args.num_or("per-view", 1)?;
        let deflate = args.num_or("deflate", 0u8)? != 0;
        return memory(&url, connections, per_view, await_state, deflate);
    }
    let echo = echo_frame(&args.str_or("payload", "json"))?;
    let payload_size: usize = args.num_or("payload-size", 64)?;
    if payload_size < 8 {
        return Err("--payload-size must be at least 8".into());
    }
    let deflate = args.num_or("deflate", 0u8)? != 0;
    let member_urls: Vec<String> = args
        .str_or("member-urls", &url)
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if member_urls.is_empty() {
        return Err("--member-urls needs at least one URL".into());
    }
    if socketio && member_urls != [url.clone()] {
        return Err("--protocol socketio takes no --member-urls".into());
    }
    if connections == 0 || in_flight == 0 || in_flight >= RING || !seconds.is_finite() || seconds <= 0.0 {
        return Err("need connections > 0, 0 < in-flight < 4096, seconds > 0".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let shared = Arc::new(LoadState::new(connections));
        match scenario.as_str() {
            "echo" | "fanout" if socketio => {
                socketio::start(&scenario, &url, connections, in_flight, &shared).await?;
            }
            "echo" => {
                for ws in connect_all(&url, connections, LOAD_READ_BUFFER).await? {
                    tokio::spawn(echo_client(ws, echo.clone(), in_flight, shared.clone()));
                }
            }
            "fanout" => {
                let mut subscribers = Vec::with_capacity(connections);
                for (index, member_url) in member_urls.iter().enumerate() {
                    // An even split; the first `connections % n` servers take one more.
                    let share = connections / member_urls.len()
                        + usize::from(index < connections % member_urls.len());
                    subscribers.extend(connect_members(&format!("{member_url}/sub"), share, deflate).await?);
                }
                for (index, member) in subscribers.into_iter().enumerate() {
                    tokio::spawn(subscriber(member, index, connections as u64, shared.clone()));
                }
                let publisher_ws = connect_all(&format!("{url}/pub"), 1, LOAD_READ_BUFFER).await?;
                open_window(&shared, connections, in_flight).await;
                for ws in publisher_ws {
                    tokio::spawn(publisher(ws, payload_size, shared.clone()));
                }
                tokio::spawn(abandon_stale(shared.clone()));
            }
            other => return Err(format!("unknown scenario {other}").into()),
        }
        tokio::time::sleep(WARMUP).await;
        let start_count = shared.count.load(Ordering::Relaxed);
        let start_completed = shared.completed.load(Ordering::Relaxed);
        let start_lost = shared.lost_broadcasts.load(Ordering::Relaxed);
        let start_wire = shared.wire_bytes.load(Ordering::Relaxed);
        let start = Instant::now();
        shared.measuring.store(true, Ordering::Relaxed);
        say("measuring")?;
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        shared.measuring.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        let count = shared.count.load(Ordering::Relaxed) - start_count;
        let completed = shared.completed.load(Ordering::Relaxed) - start_completed;
        let wire = shared.wire_bytes.load(Ordering::Relaxed) - start_wire;
        let result = serde_json::json!({
            "scenario": scenario,
            "connections": connections,
            "in_flight": in_flight,
            "seconds": elapsed,
            "count": count,
            "rate": count as f64 / elapsed,
            "broadcasts": completed,
            "broadcasts_lost": shared.lost_broadcasts.load(Ordering::Relaxed) - start_lost,
            "p50_us": shared.hist.quantile(0.50),
            "p99_us": shared.hist.quantile(0.99),
            "lost_connections": shared.lost.load(Ordering::Relaxed),
            "wire_bytes_per_delivery": if count > 0 { wire as f64 / count as f64 } else { 0.0 },
        });
        say(&result.to_string())?;
        if scenario == "fanout" {
            say(&format!("check {}", drain_and_check(&shared, connections).await))?;
        }
        // The client tasks run forever; leave without waiting for them.
        std::process::exit(0)
    })
}

/// Fan-out: stops the publisher, waits until the frames in flight have reached every
/// member (or [`DRAIN_BOUND`] passed), and counts what every member got against what was
/// sent, over the whole run (warm-up included).
async fn drain_and_check(shared: &LoadState, connections: usize) -> serde_json::Value {
    shared.stopping.store(true, Ordering::Relaxed);
    let members = connections as u64;
    let snapshot = || (shared.sent.load(Ordering::Relaxed), shared.count.load(Ordering::Relaxed));
    let deadline = Instant::now() + DRAIN_BOUND;
    let mut last = snapshot();
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = snapshot();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if (now.1 >= now.0 * members && stable_since.elapsed() >= DRAIN_STABLE)
            || stable_since.elapsed() >= DRAIN_STALLED
        {
            break;
        }
    }
    let (sent, delivered) = snapshot();
    let incomplete = shared.next_seq.iter().filter(|next| next.load(Ordering::Relaxed) != sent).count();
    serde_json::json!({
        "sent": sent,
        "members": members,
        "delivered": delivered,
        "expected": sent * members,
        "sequence_errors": shared.sequence_errors.load(Ordering::Relaxed),
        "members_incomplete": incomplete,
        "broadcasts_lost": shared.lost_broadcasts.load(Ordering::Relaxed),
    })
}

/// Fan-out: lets the server register every member before the first broadcast (a broadcast
/// that misses one never completes and keeps its window place), then opens the publisher's
/// window of `in_flight` frames. The pause is 300 ms, plus 0.1 ms per member (1.3 s for
/// 10,000).
async fn open_window(shared: &LoadState, connections: usize, in_flight: usize) {
    let per_member =
        Duration::from_micros(100).saturating_mul(u32::try_from(connections).unwrap_or(u32::MAX));
    tokio::time::sleep(Duration::from_millis(300) + per_member).await;
    shared.window.add_permits(in_flight);
}

fn say(line: &str) -> Result<(), BoxError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

/// Opens `connections` fan-out members on `url`, [`CONNECT_BATCH`] at a time, offering
/// permessage-deflate with `deflate`.
async fn connect_members(
    url: &str,
    connections: usize,
    deflate: bool,
) -> Result<Vec<member::Member>, BoxError> {
    let mut all = Vec::with_capacity(connections);
    let deadline = tokio::time::Instant::now() + connect_deadline(connections);
    while all.len() < connections {
        let batch = CONNECT_BATCH.min(connections - all.len());
        let results = tokio::time::timeout_at(
            deadline,
            futures_util::future::join_all((0..batch).map(|_| member::connect(url, deflate))),
        )
        .await
        .map_err(|_| format!("connecting {connections} clients to {url} took too long"))?;
        for result in results {
            all.push(result?);
        }
    }
    Ok(all)
}

async fn connect_all(url: &str, connections: usize, read_buffer_size: usize) -> Result<Vec<Ws>, BoxError> {
    connect_all_then(url, connections, read_buffer_size, None, |ws| async { Ok(ws) }).await
}

/// Opens `connections` WebSockets to `url`, [`CONNECT_BATCH`] at a time, each going through
/// `handshake` (a protocol's own opening) before it counts as connected.
async fn connect_all_then<H, F>(
    url: &str,
    connections: usize,
    read_buffer_size: usize,
    extensions: Option<&str>,
    handshake: H,
) -> Result<Vec<Ws>, BoxError>
where
    H: Fn(Ws) -> F,
    F: std::future::Future<Output = Result<Ws, BoxError>>,
{
    let config = WebSocketConfig::default().read_buffer_size(read_buffer_size);
    let mut all = Vec::with_capacity(connections);
    let deadline = tokio::time::Instant::now() + connect_deadline(connections);
    while all.len() < connections {
        let batch = CONNECT_BATCH.min(connections - all.len());
        let attempts = (0..batch).map(|_| async {
            let mut request = url.into_client_request()?;
            if let Some(offer) = extensions {
                request.headers_mut().insert("sec-websocket-extensions", offer.parse()?);
            }
            let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
            handshake(ws).await
        });
        let results = tokio::time::timeout_at(deadline, futures_util::future::join_all(attempts))
            .await
            .map_err(|_| format!("connecting {connections} clients to {url} took too long"))?;
        for result in results {
            all.push(result?);
        }
    }
    Ok(all)
}

async fn echo_client(mut ws: Ws, frame: Message, in_flight: usize, shared: Arc<LoadState>) {
    if let Some(mut sent) = fill_echo_window(&mut ws, &frame, in_flight).await {
        while let Some(Ok(message)) = ws.next().await {
            if !message.is_text() && !message.is_binary() {
                continue;
            }
            if !echo_again(&mut ws, &frame, &mut sent, &shared).await {
                break;
            }
        }
    }
    shared.lost.fetch_add(1, Ordering::Relaxed);
}

/// Echo: sends the first `in_flight` frames in one flush; their send instants, oldest
/// first, or `None` when the connection failed.
async fn fill_echo_window(ws: &mut Ws, frame: &Message, in_flight: usize) -> Option<VecDeque<Instant>> {
    let mut sent = VecDeque::with_capacity(in_flight);
    for _ in 0..in_flight {
        ws.feed(frame.clone()).await.ok()?;
        sent.push_back(Instant::now());
    }
    ws.flush().await.ok()?;
    Some(sent)
}

/// Echo: a reply came; records the oldest frame's round trip and sends the next frame.
/// `false` when the connection failed.
async fn echo_again(ws: &mut Ws, frame: &Message, sent: &mut VecDeque<Instant>, shared: &LoadState) -> bool {
    if let Some(sent_at) = sent.pop_front() {
        shared.round_trip(sent_at);
    }
    if ws.send(frame.clone()).await.is_err() {
        return false;
    }
    sent.push_back(Instant::now());
    true
}

/// Counts one member's deliveries until its connection ends.
async fn subscriber(member: member::Member, index: usize, members: u64, shared: Arc<LoadState>) {
    member
        .run(&shared.wire_bytes, |payload| {
            if let Some(seq) = payload.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                shared.deliver(index, u64::from_le_bytes(seq), members);
            }
        })
        .await;
    shared.lost.fetch_add(1, Ordering::Relaxed);
}

async fn publisher(mut ws: Ws, payload_size: usize, shared: Arc<LoadState>) {
    let mut seq: u64 = 0;
    let trigger = |seq: u64| {
        let frame = broadcast_frame(payload_size, seq);
        shared.mark_sent(seq);
        Message::Binary(Bytes::from(frame))
    };
    loop {
        let Ok(permit) = shared.window.acquire().await else { break };
        permit.forget();
        if shared.stopping.load(Ordering::Relaxed) {
            // The check after the measured window: nothing more to send.
            return;
        }
        if ws.feed(trigger(seq)).await.is_err() {
            break;
        }
        seq += 1;
        // Everything else the window allows goes in the same flush.
        while let Ok(permit) = shared.window.try_acquire() {
            permit.forget();
            if ws.feed(trigger(seq)).await.is_err() {
                break;
            }
            seq += 1;
        }
        if ws.flush().await.is_err() {
            break;
        }
        shared.sent.store(seq, Ordering::Relaxed);
    }
    shared.lost.fetch_add(1, Ordering::Relaxed);
}

/// Fan-out's backstop: gives up on the broadcasts in flight for longer than
/// [`ABANDON_AFTER`], oldest first (they were sent in sequence order).
async fn abandon_stale(shared: Arc<LoadState>) {
    let limit = u64::try_from(ABANDON_AFTER.as_nanos()).unwrap_or(u64::MAX);
    let mut oldest: u64 = 0;
    loop {
        tokio::time::sleep(ABANDON_SCAN).await;
        let sent = shared.sent.load(Ordering::Relaxed);
        let now = shared.nanos();
        while oldest < sent {
            let slot = (oldest % RING as u64) as usize;
            if shared.pending_seq[slot].load(Ordering::Relaxed) == oldest + 1 {
                if now.saturating_sub(shared.sent_at[slot].load(Ordering::Relaxed)) < limit {
                    break;
                }
                shared.abandon_broadcast(oldest);
            }
            oldest += 1;
        }
    }
}

/// The memory scenario's load: opens `connections` idle connections, `per_view` of them in
/// each view, announces `connected N`, and holds them.
/// With `deflate` the connections offer permessage-deflate as a browser does (they then
/// receive nothing large enough to be compressed: `state` answers are small).
fn memory(
    url: &str,
    connections: usize,
    per_view: usize,
    await_state: bool,
    deflate: bool,
) -> Result<(), BoxError> {
    if connections == 0 || per_view == 0 {
        return Err("need connections > 0 and per-view > 0".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let offer = deflate.then_some("permessage-deflate; client_max_window_bits");
        let all = connect_all_then(&format!("{url}/sub"), connections, IDLE_READ_BUFFER, offer, |ws| async {
            Ok(ws)
        })
        .await?;
        let states = Arc::new(AtomicU64::new(0));
        let all_answered = Arc::new(tokio::sync::Notify::new());
        let expected = connections as u64;
        for (index, ws) in all.into_iter().enumerate() {
            tokio::spawn(idle_client(ws, index / per_view, expected, states.clone(), all_answered.clone()));
        }
        if await_state {
            let deadline = connect_deadline(connections);
            // `notified()` is registered before the count is checked, so no wake-up is lost.
            loop {
                let notified = all_answered.notified();
                if states.load(Ordering::Relaxed) >= expected {
                    break;
                }
                tokio::time::timeout(deadline, notified).await.map_err(|_| {
                    format!("only {} of {connections} views answered `state`", states.load(Ordering::Relaxed))
                })?;
            }
        }
        say(&format!("connected {connections}"))?;
        tokio::time::sleep(MEMORY_HOLD).await;
        // The idle tasks run forever; leave without waiting for them.
        std::process::exit(0)
    })
}

/// One idle connection of the memory scenario: opens view `idle-{view}` (the frame of
/// `docs/PROTOCOL.md` section 6, as raw JSON), counts its `state` answer, then only reads.
async fn idle_client(
    mut ws: Ws,
    view: usize,
    expected: u64,
    states: Arc<AtomicU64>,
    all_answered: Arc<tokio::sync::Notify>,
) {
    let open = format!(r#"{{"$r":"views","d":{{"t":"open","view":"idle-{view}"}}}}"#);
    if ws.send(Message::text(open)).await.is_err() {
        return;
    }
    let mut answered = false;
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        if !answered && text.as_str().contains(r#""t":"state""#) {
            answered = true;
            if states.fetch_add(1, Ordering::Relaxed) + 1 >= expected {
                all_answered.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messagepack_payload_is_the_json_payload() {
        assert_eq!(serde_json::to_string(&ECHO_ENVELOPE).unwrap(), ECHO_PAYLOAD);
        let Message::Binary(packed) = echo_frame("msgpack").unwrap() else { panic!("not binary") };
        let value: serde_json::Value = decode_packed(&packed);
        assert_eq!(value, serde_json::from_str::<serde_json::Value>(ECHO_PAYLOAD).unwrap());
    }

    /// A broadcast ends once, whoever ends it: its window place comes back once, and it
    /// counts as lost only when given up before it completed.
    #[test]
    fn a_broadcast_returns_its_window_place_once() {
        let shared = LoadState::new(2);
        for seq in 0..3 {
            shared.pending_seq[seq as usize].store(seq + 1, Ordering::Relaxed);
        }
        // Completed, then given up by a late gap: one place, not lost.
        assert!(shared.end_broadcast(0));
        shared.abandon_broadcast(0);
        // Given up, then completed late: one place, lost.
        shared.abandon_broadcast(1);
        assert!(!shared.end_broadcast(1));
        // A broadcast of another lap of the ring is not this one.
        shared.abandon_broadcast(2 + RING as u64);
        assert_eq!(shared.window.available_permits(), 2);
        assert_eq!(shared.lost_broadcasts.load(Ordering::Relaxed), 1);
        assert_eq!(shared.pending_seq[2].load(Ordering::Relaxed), 3);
    }

    /// Decodes through `network_core::Message`, the helpers the application would use.
    fn decode_packed(packed: &Bytes) -> serde_json::Value {
        network_core::Message::binary(packed.clone()).decode().unwrap()
    }
}
