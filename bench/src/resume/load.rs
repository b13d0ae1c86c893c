//! `bench resume load`: the load generator and conductor of one run (see the
//! [module docs](super)): a `FaultProxy`, N `ws_client::Client`s through it, the outage and
//! the recovery, and the server's memory and CPU read from `/proc`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use network_core::{Network, NetworkEvent};
use testkit::{Admission, FaultProxy};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use ws_client::{Client, ClientConfig, ClientEvent};

use super::{CONTROL_PATH, HELLO, Mode, burst_done, burst_request, burst_seq, say};
use crate::child::{clock_ticks, cpu_ticks, open_files, waiting_seconds};
use crate::hist::spread;
use crate::run::settled_resident_kib;
use crate::{Args, BoxError};

/// Clients started at once during set-up.
const CONNECT_BATCH: usize = 100;
/// Deadline for one batch of clients to be connected (their `hello` received).
const BATCH_DEADLINE: Duration = Duration::from_secs(60);
/// Deadline for every client to see its link close after a reset.
const CLOSE_DEADLINE: Duration = Duration::from_secs(30);
/// Deadline for the server's answer to `burst`.
const BURST_DEADLINE: Duration = Duration::from_secs(60);
/// Deadline for every client to be back after the reset.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(120);
/// After all are back, the counts are read this much later (a late duplicate would show).
const STABLE: Duration = Duration::from_millis(500);
/// How often the waits look at the counters.
const POLL: Duration = Duration::from_millis(5);

/// How long the clients stay connected after the detached phase's resume before the timed
/// reset: past the client's `min_uptime` (5 s), so that their retry count starts over.
const UPTIME: Duration = Duration::from_secs(6);

/// Where the run is; the clients' tasks record their events against it.
const SETUP: u8 = 0;
/// After the reset that detaches the sessions while the proxy refuses them (resume only).
const DETACH: u8 = 1;
/// After the timed reset.
const OUTAGE: u8 = 2;

/// What one client saw, as its task records it. Instants are ns since [`Tracker::base`],
/// 0 for "not yet".
#[derive(Default)]
struct Record {
    hellos: AtomicU64,
    /// The burst frame expected next (= burst frames received in order + 1).
    next_seq: AtomicU64,
    /// Burst frames received, in all.
    frames: AtomicU64,
    /// Burst frames received with another number than `next_seq`.
    sequence_errors: AtomicU64,
    /// The phase in which the client last saw its link close, plus one (0: never).
    closed_in: AtomicU8,
    /// The first `Connecting` after the timed reset.
    attempt_at: AtomicU64,
    /// `Resumed` after the timed reset.
    resumed_at: AtomicU64,
    /// Back after the timed reset (see the module docs).
    back_at: AtomicU64,
}

/// The clients of one group and what they saw.
struct Tracker {
    mode: Mode,
    missed: u64,
    base: Instant,
    phase: AtomicU8,
    records: Box<[Record]>,
    /// Clients whose first `hello` arrived.
    connected: AtomicUsize,
    /// Clients that saw their link close in each phase.
    closed: [AtomicUsize; 3],
    /// `Resumed` events in each phase.
    resumed: [AtomicUsize; 3],
    /// Clients back after the timed reset.
    back: AtomicUsize,
    /// `Reset` events (a refused resume), in all, and their reasons.
    resets: AtomicU64,
    reset_reasons: std::sync::Mutex<Vec<String>>,
    /// Lifecycle events lost because a client's task fell behind.
    lagged: AtomicU64,
}

impl Tracker {
    fn new(mode: Mode, missed: u64, clients: usize, base: Instant) -> Arc<Self> {
        Arc::new(Self {
            mode,
            missed,
            base,
            phase: AtomicU8::new(SETUP),
            records: (0..clients)
                .map(|_| Record { next_seq: AtomicU64::new(1), ..Record::default() })
                .collect(),
            connected: AtomicUsize::new(0),
            closed: Default::default(),
            resumed: Default::default(),
            back: AtomicUsize::new(0),
            resets: AtomicU64::new(0),
            reset_reasons: std::sync::Mutex::default(),
            lagged: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    fn frame(&self, record: &Record, text: &str) {
        if text == HELLO {
            let hellos = record.hellos.fetch_add(1, Ordering::Relaxed) + 1;
            if hellos == 1 {
                self.connected.fetch_add(1, Ordering::Relaxed);
            }
            if self.mode == Mode::Plain && self.phase() == OUTAGE {
                self.mark_back(record);
            }
        } else if let Some(seq) = burst_seq(text) {
            record.frames.fetch_add(1, Ordering::Relaxed);
            if record.next_seq.load(Ordering::Relaxed) == seq {
                record.next_seq.fetch_add(1, Ordering::Relaxed);
            } else {
                record.sequence_errors.fetch_add(1, Ordering::Relaxed);
            }
            self.check_resumed(record);
        }
    }

    fn lifecycle(&self, record: &Record, event: ClientEvent) {
        let phase = self.phase();
        match event {
            // Counted once per client and phase.
            ClientEvent::Closed { .. }
                if record.closed_in.swap(phase + 1, Ordering::Relaxed) != phase + 1 =>
            {
                self.closed[usize::from(phase)].fetch_add(1, Ordering::Relaxed);
            }
            ClientEvent::Connecting { .. } if phase == OUTAGE => {
                let _ =
                    record.attempt_at.compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed);
            }
            ClientEvent::Resumed => {
                self.resumed[usize::from(phase)].fetch_add(1, Ordering::Relaxed);
                if phase == OUTAGE {
                    let _ = record.resumed_at.compare_exchange(
                        0,
                        self.now(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    self.check_resumed(record);
                }
            }
            ClientEvent::Reset { reason, .. } => {
                self.resets.fetch_add(1, Ordering::Relaxed);
                let mut reasons =
                    self.reset_reasons.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if reasons.len() < 8 {
                    reasons.push(reason.to_string());
                }
            }
            _ => {}
        }
    }

    /// Resume: back once resumed with every burst frame in.
    fn check_resumed(&self, record: &Record) {
        if self.mode == Mode::Resume
            && self.phase() == OUTAGE
            && record.resumed_at.load(Ordering::Relaxed) != 0
            && record.next_seq.load(Ordering::Relaxed) > self.missed
        {
            self.mark_back(record);
        }
    }

    fn mark_back(&self, record: &Record) {
        if record.back_at.compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.back.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sum(&self, field: impl Fn(&Record) -> &AtomicU64) -> u64 {
        self.records.iter().map(|record| field(record).load(Ordering::Relaxed)).sum()
    }
}

/// Records one client's events until the process ends; holds the client.
async fn watch(client: Client, tracker: Arc<Tracker>, index: usize) {
    let Some(mut events) = client.events() else { return };
    let mut lifecycle = client.lifecycle();
    let record = &tracker.records[index];
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(NetworkEvent::Message { message, .. }) => {
                    if let Some(text) = message.as_text() {
                        tracker.frame(record, text);
                    }
                }
                Some(_) => {}
                None => break,
            },
            event = lifecycle.recv() => match event {
                Ok(event) => tracker.lifecycle(record, event),
                Err(RecvError::Lagged(lost)) => {
                    tracker.lagged.fetch_add(lost, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
}

/// Waits until `done()`, polling, at most `limit`.
async fn wait_until(limit: Duration, what: &str, done: impl Fn() -> bool) -> Result<(), BoxError> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// The server's RSS once settled, read off this runtime's thread (it sleeps between reads).
async fn settled(pid: u32) -> Result<f64, BoxError> {
    tokio::task::spawn_blocking(move || settled_resident_kib(pid).map_err(|error| error.to_string()))
        .await?
        .map_err(Into::into)
}

/// The clients' configuration: the defaults, resume on or off, the delay if fixed.
fn config(mode: Mode, delay: Option<Duration>) -> ClientConfig {
    let config = ClientConfig::default().resume(mode == Mode::Resume);
    match delay {
        Some(delay) => config.min_reconnection_delay(delay),
        None => config,
    }
}

/// Starts the tracker's clients at `url`, `CONNECT_BATCH` at a time, each connected once
/// its `hello` came; returns handles on them.
async fn connect_group(
    url: &str,
    config: &ClientConfig,
    tracker: &Arc<Tracker>,
) -> Result<Vec<Client>, BoxError> {
    let clients = tracker.records.len();
    let mut handles = Vec::with_capacity(clients);
    let mut started = 0;
    while started < clients {
        let batch = CONNECT_BATCH.min(clients - started);
        for index in started..started + batch {
            let client = Client::connect(url, config.clone())?;
            handles.push(client.clone());
            tokio::spawn(watch(client, tracker.clone(), index));
        }
        started += batch;
        wait_until(BATCH_DEADLINE, "a batch of clients to connect", || {
            tracker.connected.load(Ordering::Relaxed) >= started
        })
        .await?;
    }
    Ok(handles)
}

/// Per client back, the milliseconds from the reset (at `reset_ns`) or from its first
/// reconnection attempt to being back.
fn back_after(tracker: &Tracker, reset_ns: u64, from_attempt: bool) -> Vec<u64> {
    tracker
        .records
        .iter()
        .filter_map(|record| {
            let back = record.back_at.load(Ordering::Relaxed);
            let from = if from_attempt { record.attempt_at.load(Ordering::Relaxed) } else { reset_ns };
            (back != 0 && from != 0).then(|| back.saturating_sub(from) / 1_000_000)
        })
        .collect()
}

pub(super) fn main(args: &Args) -> Result<(), BoxError> {
    let url = args.required("url")?;
    let server_pid: u32 = args.required("server-pid")?.parse().map_err(|_| "--server-pid: not a pid")?;
    let mode = Mode::parse(&args.required("mode")?)?;
    let clients: usize = args.num_or("clients", 5000)?;
    let missed: u64 = args.num_or("missed", 100)?;
    let delay = match args.str_or("reconnect-delay", "default").as_str() {
        "default" => None,
        millis => Some(Duration::from_millis(
            millis
                .parse()
                .map_err(|_| format!("--reconnect-delay: default or milliseconds, not {millis}"))?,
        )),
    };
    if clients == 0 {
        return Err("need --clients > 0".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(run(&url, server_pid, mode, clients, missed, delay));
    // The clients' tasks run forever; leave without waiting for them.
    match result {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("bench resume load: {error}");
            std::process::exit(1)
        }
    }
}

async fn run(
    url: &str,
    server_pid: u32,
    mode: Mode,
    clients: usize,
    missed: u64,
    delay: Option<Duration>,
) -> Result<(), BoxError> {
    let ticks = clock_ticks();
    let own_pid = std::process::id();
    let target: SocketAddr = url.trim_start_matches("ws://").parse()?;
    let (mut control, _) = tokio_tungstenite::connect_async(format!("{url}{CONTROL_PATH}")).await?;
    let base_kib = settled(server_pid).await?;

    let proxy = FaultProxy::start(target).await;
    let base = Instant::now();
    let config = config(mode, delay);
    let tracker = Tracker::new(mode, missed, clients, base);
    let setup = Instant::now();
    connect_group(&proxy.url(), &config, &tracker).await?;
    let setup_seconds = setup.elapsed().as_secs_f64();
    say("connected")?;
    let attached_kib = settled(server_pid).await?;
    let attached_files = open_files(server_pid)?;
    let detached = match mode {
        Mode::Resume => {
            Some(detached_memory(&proxy, &tracker, url, &config, server_pid, attached_kib).await?)
        }
        Mode::Plain => None,
    };

    // The outage: every proxied connection reset at once; the burst once all saw it.
    let cpu_before = cpu_ticks(server_pid)?;
    let load_cpu_before = cpu_ticks(own_pid)?;
    let waited_before = waiting_seconds(server_pid)?;
    tracker.phase.store(OUTAGE, Ordering::Relaxed);
    let reset_ns = tracker.now();
    let reset_at = Instant::now();
    let reset = proxy.reset_all();
    wait_until(CLOSE_DEADLINE, "every client to see the reset", || {
        tracker.closed[usize::from(OUTAGE)].load(Ordering::Relaxed) >= clients
    })
    .await?;
    let all_closed = reset_at.elapsed().as_secs_f64();
    control.send(WsMessage::text(burst_request(missed))).await?;
    let answer = burst_done(missed);
    tokio::time::timeout(BURST_DEADLINE, async {
        while let Some(frame) = control.next().await {
            if let Ok(WsMessage::Text(text)) = frame
                && text.as_str() == answer
            {
                return Ok(());
            }
        }
        Err::<(), BoxError>("the control connection ended".into())
    })
    .await
    .map_err(|_| "no answer to the burst in time")??;
    let burst_sent = reset_at.elapsed().as_secs_f64();
    let early = tracker
        .records
        .iter()
        .filter(|record| {
            let at = record.attempt_at.load(Ordering::Relaxed);
            at != 0 && at.saturating_sub(reset_ns) < (burst_sent * 1e9) as u64
        })
        .count();
    let recovered = wait_until(RECOVERY_DEADLINE, "every client to be back", || {
        tracker.back.load(Ordering::Relaxed) >= clients
    })
    .await;
    let all_back = tracker.records.iter().map(|r| r.back_at.load(Ordering::Relaxed)).max().unwrap_or(0);
    let all_back = recovered.is_ok().then(|| all_back.saturating_sub(reset_ns) as f64 / 1e9);
    let window = reset_at.elapsed().as_secs_f64();
    let server_cpu = (cpu_ticks(server_pid)? - cpu_before) / ticks;
    let load_cpu = (cpu_ticks(own_pid)? - load_cpu_before) / ticks;
    let waited = waiting_seconds(server_pid)? - waited_before;
    tokio::time::sleep(STABLE).await;

    let frames = tracker.sum(|r| &r.frames);
    let short =
        tracker.records.iter().filter(|record| record.next_seq.load(Ordering::Relaxed) <= missed).count();
    let new_sessions =
        tracker.records.iter().filter(|record| record.hellos.load(Ordering::Relaxed) > 1).count();
    let mut result = serde_json::json!({
        "mode": mode.name(),
        "clients": clients,
        "missed": missed,
        "reconnect_delay_ms": delay.map(|d| d.as_millis() as u64),
        "setup_s": setup_seconds,
        "reset": reset,
        "all_closed_s": all_closed,
        "burst_sent_s": burst_sent,
        "attempts_before_burst_sent": early,
        "back": tracker.back.load(Ordering::Relaxed),
        "all_back_s": all_back,
        "reset_to_back_ms": spread(back_after(&tracker, reset_ns, false)),
        "attempt_to_back_ms": spread(back_after(&tracker, reset_ns, true)),
        "server_cpu_s": server_cpu,
        "server_cpu_share": server_cpu / window,
        "load_cpu_share": load_cpu / window,
        "server_waiting_share": waited / window,
        "frames_delivered": frames,
        "frames_expected": clients as u64 * missed,
        "sequence_errors": tracker.sum(|r| &r.sequence_errors),
        "clients_short": short,
        "reset_events": tracker.resets.load(Ordering::Relaxed),
        "reset_reasons": *tracker.reset_reasons.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        "new_sessions": new_sessions,
        "lagged_events": tracker.lagged.load(Ordering::Relaxed),
        "base_kib": base_kib,
        "attached_kib": attached_kib,
        "attached_bytes_each": (attached_kib - base_kib) * 1024.0 / clients as f64,
        "attached_open_files": attached_files,
    });
    if let Err(error) = recovered {
        result["error"] = serde_json::Value::from(error.to_string());
    }
    if let (Some(result), Some(serde_json::Value::Object(detached))) = (result.as_object_mut(), detached) {
        result.extend(detached);
    }
    say(&result.to_string())
}

/// Step 2 of the module docs: what a detached session holds. The clients resume at the
/// end, and have been up for [`UPTIME`] when it returns.
async fn detached_memory(
    proxy: &FaultProxy,
    tracker: &Tracker,
    url: &str,
    config: &ClientConfig,
    server_pid: u32,
    attached_kib: f64,
) -> Result<serde_json::Value, BoxError> {
    let clients = tracker.records.len();
    proxy.set_admission(Admission::Refuse);
    tracker.phase.store(DETACH, Ordering::Relaxed);
    let detached_at = Instant::now();
    proxy.reset_all();
    wait_until(CLOSE_DEADLINE, "every client to see the reset", || {
        tracker.closed[usize::from(DETACH)].load(Ordering::Relaxed) >= clients
    })
    .await?;
    let detached_kib = settled(server_pid).await?;
    // A detached session needs no socket: the lost one's descriptor should be gone.
    let detached_files = open_files(server_pid)?;
    // As many new sessions, straight to the server (not through the proxy): they take over
    // what the lost sockets freed.
    let refill = Tracker::new(Mode::Resume, 0, clients, tracker.base);
    let refill_clients = connect_group(&format!("{url}/"), config, &refill).await?;
    let refilled_kib = settled(server_pid).await?;
    let closing = futures_util::future::join_all(refill_clients.iter().map(Client::close));
    tokio::time::timeout(CLOSE_DEADLINE, closing)
        .await
        .map_err(|_| "closing the refill clients took too long")?;
    drop(refill_clients);
    // The detached sessions resume (an untimed resume after a longer outage).
    proxy.set_admission(Admission::Forward);
    wait_until(RECOVERY_DEADLINE, "every detached session to resume", || {
        tracker.resumed[usize::from(DETACH)].load(Ordering::Relaxed) >= clients
    })
    .await?;
    let detached_for = detached_at.elapsed().as_secs_f64();
    tokio::time::sleep(UPTIME).await;
    Ok(serde_json::json!({
        "detached_kib": detached_kib,
        "detached_open_files": detached_files,
        "detached_plus_attached_kib": refilled_kib,
        "detached_bytes_each": (refilled_kib - attached_kib) * 1024.0 / clients as f64,
        "all_resumed_after_detached_s": detached_for,
    }))
}
