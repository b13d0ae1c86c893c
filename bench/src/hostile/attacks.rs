//! The attacks, from this process to the server on 127.0.0.1, each bounded in sockets and
//! in time (every wait has a deadline), each ending by itself.
//!
//! - `silent`: [`SILENT_SOCKETS`] TCP sockets that connect ([`SILENT_BATCH`] every
//!   [`SILENT_BATCH_EVERY`], all within [`SILENT_CONNECT_LIMIT`]) and never send a byte,
//!   held until [`SILENT_HOLD`] after the connect phase's deadline (so each is held at
//!   least that long). A socket counts as closed by the server when a read returns end of file or an
//!   error; the time is taken from its own connect.
//! - `partial`: [`PARTIAL_CONNECTIONS`] WebSocket connections (at most
//!   [`PARTIAL_IN_FLIGHT`] connecting and sending at once) each send the first fragment (FIN
//!   clear) of a binary message, [`PARTIAL_FRAGMENT`] bytes, and then only read; once all
//!   have sent, they hold [`PARTIAL_HOLD`] more. Reported: how each connection ended (the
//!   server's close code, or still open at the end).
//! - `burst`: [`BURST_READERS`] readers with a [`BURST_RECV_BUFFER`]-byte `SO_RCVBUF` (set
//!   before connect) read steadily, pausing [`BURST_PAUSE`] after each frame, while one
//!   publisher sends [`BURST_MESSAGES`] binary messages of [`BURST_MESSAGE`] bytes, as
//!   fast as its socket takes them, into the example server's relay (every application
//!   frame goes to every other connection). Reported: how many readers got every message,
//!   how the others ended, and how long the publisher took to send.
//! - `oversized`: [`OVERSIZED_CLIENTS`] clients, one after another, each send one binary
//!   message of [`OVERSIZED_MESSAGE`] bytes (in one frame; the server's limit is its default,
//!   1 MiB) and then read, as a plain client does; reported: how each one learned of the
//!   refusal (the close code, or a TCP reset, or end of file without a close frame: 1006),
//!   and whether its send wrote every byte or broke.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::BoxError;

/// Silent sockets opened.
const SILENT_SOCKETS: usize = 4000;
/// Silent sockets start their connects in batches of this many...
const SILENT_BATCH: usize = 100;
/// ...one batch every this long (10,000 connects a second): all 4,000 at once, or as fast
/// as connects complete, overflow the server's listen backlog (128), and the kernel then
/// retries the dropped SYNs 1 s and 3 s later, which measures the backlog rather than the
/// server.
const SILENT_BATCH_EVERY: Duration = Duration::from_millis(10);
/// Deadline of the connect phase: a socket not connected by then counts as failed.
const SILENT_CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// How long the silent sockets are held after the connect phase's deadline.
const SILENT_HOLD: Duration = Duration::from_secs(12);

/// Connections holding an unfinished message.
const PARTIAL_CONNECTIONS: usize = 600;
/// The first fragment's payload, in bytes: under the default 1 MiB message limit.
const PARTIAL_FRAGMENT: usize = 900_000;
/// Connections connecting and sending their fragment at once.
const PARTIAL_IN_FLIGHT: usize = 50;
/// Deadline for every connection to have sent its fragment.
const PARTIAL_SEND_LIMIT: Duration = Duration::from_secs(60);
/// How long the connections hold once all have sent.
const PARTIAL_HOLD: Duration = Duration::from_secs(5);

/// Slow readers of the relay.
const BURST_READERS: usize = 10;
/// Each reader's receive buffer (`SO_RCVBUF`, which Linux doubles), in bytes.
const BURST_RECV_BUFFER: u32 = 16 * 1024;
/// The readers' pause after each frame.
const BURST_PAUSE: Duration = Duration::from_millis(2);
/// Messages the publisher sends.
const BURST_MESSAGES: usize = 300;
/// Size of each message, in bytes.
const BURST_MESSAGE: usize = 20_000;
/// Deadline for the whole burst, from the publisher's first message.
const BURST_LIMIT: Duration = Duration::from_secs(60);
/// The fresh client connects once the publisher has sent this many messages.
const BURST_PROBE_AFTER: usize = 100;

/// Clients sending an oversized message, one after another.
const OVERSIZED_CLIENTS: usize = 10;
/// Size of the oversized message, in bytes.
const OVERSIZED_MESSAGE: usize = 24_000_000;
/// Deadline for each oversized client to learn how it ended.
const OVERSIZED_LIMIT: Duration = Duration::from_secs(30);
/// The fresh client connects while this oversized client (from 0) sends.
const OVERSIZED_PROBE_AT: usize = 4;
/// Delay of the fresh client after that oversized client started.
const OVERSIZED_PROBE_DELAY: Duration = Duration::from_millis(20);

/// Deadline for a WebSocket connect (and for a fragment's send) in the attacks.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Deadline for the fresh client, from its connect to its first message.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// One of the attacks.
#[derive(Clone, Copy)]
pub(super) enum Attack {
    Silent,
    Partial,
    Burst,
    Oversized,
}

impl Attack {
    pub(super) fn parse(name: &str) -> Result<Self, BoxError> {
        match name {
            "silent" => Ok(Self::Silent),
            "partial" => Ok(Self::Partial),
            "burst" => Ok(Self::Burst),
            "oversized" => Ok(Self::Oversized),
            _ => Err(format!("unknown attack {name:?} (silent, partial, burst, oversized)").into()),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Silent => "silent",
            Self::Partial => "partial",
            Self::Burst => "burst",
            Self::Oversized => "oversized",
        }
    }

    pub(super) fn description(self) -> String {
        match self {
            Self::Silent => format!(
                "{SILENT_SOCKETS} TCP sockets that never send, held at least {} s; \
                 close times from each socket's connect",
                SILENT_HOLD.as_secs()
            ),
            Self::Partial => format!(
                "{PARTIAL_CONNECTIONS} connections each send the first fragment (FIN clear) of a \
                 {PARTIAL_FRAGMENT}-byte binary message, then hold {} s",
                PARTIAL_HOLD.as_secs()
            ),
            Self::Burst => format!(
                "{BURST_READERS} readers (SO_RCVBUF {BURST_RECV_BUFFER} B, {} ms pause per frame), \
                 one publisher sending {BURST_MESSAGES} binary messages of {BURST_MESSAGE} B into the relay",
                BURST_PAUSE.as_millis()
            ),
            Self::Oversized => format!(
                "{OVERSIZED_CLIENTS} clients one after another each send one {OVERSIZED_MESSAGE}-byte binary \
                 message (server limit: its default)"
            ),
        }
    }

    /// The server's flags besides `--listen`: the relay for `burst`, echo for the others
    /// (so that the fresh client gets its own message back).
    pub(super) fn server_flags(self) -> &'static [&'static str] {
        match self {
            Self::Burst => &[],
            Self::Silent | Self::Partial | Self::Oversized => &["--echo"],
        }
    }
}

/// Runs `attack` against the server at `addr`; every socket it opened is closed when it
/// returns.
pub(super) async fn run(attack: Attack, addr: SocketAddr) -> Result<Report, BoxError> {
    match attack {
        Attack::Silent => silent(addr).await,
        Attack::Partial => partial(addr).await,
        Attack::Burst => burst(addr).await,
        Attack::Oversized => oversized(addr).await,
    }
}

/// What an attack saw.
pub(super) struct Report {
    /// The attack's own figures.
    pub(super) outcome: Vec<Figure>,
    /// The fresh client started while the attack held.
    pub(super) probe: Probe,
}

/// One figure of an attack's outcome.
#[derive(Clone)]
pub(super) struct Figure {
    pub(super) label: String,
    pub(super) value: f64,
    pub(super) unit: Unit,
}

/// The unit of a [`Figure`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Count,
    Seconds,
}

impl Figure {
    pub(super) fn count(label: impl Into<String>, count: usize) -> Self {
        Self { label: label.into(), value: count as f64, unit: Unit::Count }
    }

    /// Seconds, NaN for none.
    fn seconds(label: impl Into<String>, seconds: Option<f64>) -> Self {
        Self { label: label.into(), value: seconds.unwrap_or(f64::NAN), unit: Unit::Seconds }
    }

    pub(super) fn show(&self) -> String {
        let Self { label, value, unit } = self;
        match unit {
            Unit::Count if value.fract() == 0.0 => format!("{label} {value:.0}"),
            Unit::Count => format!("{label} {value:.1}"),
            Unit::Seconds if value.is_nan() => format!("{label} -"),
            Unit::Seconds => format!("{label} {value:.2} s"),
        }
    }
}

/// The fresh client's timings, from the start of its TCP connect.
#[derive(Default)]
pub(super) struct Probe {
    /// Until the 101 response.
    pub(super) upgraded: Option<Duration>,
    /// Until its first message.
    pub(super) first_message: Option<Duration>,
    /// Why it did not get its first message.
    pub(super) failure: Option<String>,
}

/// What gets the fresh client its first message once it is upgraded.
enum Trigger {
    /// It sends a text frame, which the server (`--echo`) sends back.
    Echo,
    /// Another connection sends a text frame, which the relay brings.
    Relay(Arc<Notify>),
}

/// How a connection of an attack ended.
enum End {
    /// Still open when the attack ended.
    Open,
    /// Got every message (burst readers), or wrote every byte (oversized sends).
    Complete,
    /// The server's close frame, with its code.
    Close(Option<u16>),
    /// A TCP reset.
    Reset,
    /// A write to a connection the server had dropped.
    BrokenPipe,
    /// End of file without a close frame (1006).
    Eof,
    ConnectFailed,
    Error(String),
}

impl End {
    fn close(frame: Option<CloseFrame>) -> Self {
        Self::Close(frame.map(|frame| u16::from(frame.code)))
    }

    fn of_error(error: &WsError) -> Self {
        match error {
            WsError::Io(error) if error.kind() == ErrorKind::ConnectionReset => Self::Reset,
            WsError::Io(error) if error.kind() == ErrorKind::BrokenPipe => Self::BrokenPipe,
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Self::Eof,
            other => Self::Error(other.to_string()),
        }
    }

    fn label(&self) -> String {
        match self {
            Self::Open => "still open".to_owned(),
            // A burst reader's, or an oversized client's send.
            Self::Complete => "complete".to_owned(),
            Self::Close(Some(code)) => format!("closed {code}"),
            Self::Close(None) => "closed without code".to_owned(),
            Self::Reset => "reset".to_owned(),
            Self::BrokenPipe => "broken pipe".to_owned(),
            Self::Eof => "EOF without close (1006)".to_owned(),
            Self::ConnectFailed => "connect failed".to_owned(),
            Self::Error(error) => format!("error ({error})"),
        }
    }
}

/// How many ended each way, as counts labelled `{prefix}{end}`, in label order.
fn tally(prefix: &str, ends: &[End]) -> Vec<Figure> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for end in ends {
        let label = format!("{prefix}{}", end.label());
        match counts.iter_mut().find(|(known, _)| *known == label) {
            Some((_, count)) => *count += 1,
            None => counts.push((label, 1)),
        }
    }
    counts.sort();
    counts.into_iter().map(|(label, count)| Figure::count(label, count)).collect()
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A fresh client: connects, and waits for its first message.
async fn probe(addr: SocketAddr, trigger: Trigger) -> Probe {
    let start = Instant::now();
    let mut probe = Probe::default();
    let attempt = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut ws, _) = tokio_tungstenite::client_async(url(addr), stream).await?;
        probe.upgraded = Some(start.elapsed());
        match &trigger {
            Trigger::Echo => ws.send(Message::text("probe")).await?,
            Trigger::Relay(ping) => ping.notify_one(),
        }
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    probe.first_message = Some(start.elapsed());
                    return Ok::<(), BoxError>(());
                }
                Some(Ok(Message::Close(frame))) => return Err(End::close(frame).label().into()),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
                None => return Err("ended".into()),
            }
        }
    };
    let result = tokio::time::timeout(PROBE_LIMIT, attempt).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => probe.failure = Some(format!("fresh client: {error}")),
        Err(_) => probe.failure = Some(format!("fresh client: nothing within {} s", PROBE_LIMIT.as_secs())),
    }
    probe
}

/// How a silent socket ended.
enum Silent {
    ConnectFailed,
    Held,
    /// Closed by the server this long after our connect; `reset` for an error rather than
    /// end of file.
    Closed {
        after: Duration,
        reset: bool,
    },
}

async fn silent(addr: SocketAddr) -> Result<Report, BoxError> {
    let start = Instant::now();
    let connected_by = tokio::time::Instant::now() + SILENT_CONNECT_LIMIT;
    let deadline = connected_by + SILENT_HOLD;
    // One permit per finished connect attempt.
    let attempted = Arc::new(Semaphore::new(0));
    let sockets: Vec<_> = (0..SILENT_SOCKETS)
        .map(|index| {
            let attempted = attempted.clone();
            let batch = u32::try_from(index / SILENT_BATCH).unwrap_or(u32::MAX);
            let begin = tokio::time::Instant::now() + SILENT_BATCH_EVERY.saturating_mul(batch);
            tokio::spawn(async move {
                let connected = tokio::time::timeout_at(connected_by, async {
                    tokio::time::sleep_until(begin).await;
                    TcpStream::connect(addr).await
                })
                .await;
                attempted.add_permits(1);
                let Ok(Ok(stream)) = connected else { return Silent::ConnectFailed };
                let since = Instant::now();
                let mut buf = [0_u8; 512];
                loop {
                    match tokio::time::timeout_at(deadline, stream.readable()).await {
                        Err(_) => return Silent::Held,
                        Ok(Err(_)) => return Silent::Closed { after: since.elapsed(), reset: true },
                        Ok(Ok(())) => match stream.try_read(&mut buf) {
                            Ok(0) => return Silent::Closed { after: since.elapsed(), reset: false },
                            // The server said something (an HTTP error, say): read on.
                            Ok(_) => {}
                            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                            Err(error) => {
                                let reset = error.kind() == ErrorKind::ConnectionReset;
                                return Silent::Closed { after: since.elapsed(), reset };
                            }
                        },
                    }
                }
            })
        })
        .collect();
    let all = u32::try_from(SILENT_SOCKETS)?;
    let _ = tokio::time::timeout_at(connected_by, attempted.acquire_many(all)).await;
    let connect_phase = start.elapsed();
    let probe = probe(addr, Trigger::Echo).await;

    let (mut connected, mut failed, mut resets) = (0, 0, 0);
    let mut closed_after = Vec::new();
    for socket in sockets {
        match socket.await? {
            Silent::ConnectFailed => failed += 1,
            Silent::Held => connected += 1,
            Silent::Closed { after, reset } => {
                connected += 1;
                resets += usize::from(reset);
                closed_after.push(after.as_secs_f64());
            }
        }
    }
    closed_after.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        (!closed_after.is_empty())
            .then(|| closed_after[((closed_after.len() - 1) as f64 * q).round() as usize])
    };
    let outcome = vec![
        Figure::count("connected", connected),
        Figure::count("connect failed", failed),
        Figure::seconds("connect phase", Some(connect_phase.as_secs_f64())),
        Figure::count("closed by the server", closed_after.len()),
        Figure::count("of them by reset", resets),
        Figure::seconds("first close after", quantile(0.0)),
        Figure::seconds("median close after", quantile(0.5)),
        Figure::seconds("last close after", quantile(1.0)),
    ];
    Ok(Report { outcome, probe })
}

async fn partial(addr: SocketAddr) -> Result<Report, BoxError> {
    let payload = Bytes::from(vec![0x5a_u8; PARTIAL_FRAGMENT]);
    let gate = Arc::new(Semaphore::new(PARTIAL_IN_FLIGHT));
    // One permit per connection done with its connect and send.
    let sent = Arc::new(Semaphore::new(0));
    let (stop, stopped) = watch::channel(false);
    let connections: Vec<_> = (0..PARTIAL_CONNECTIONS)
        .map(|_| {
            let (payload, gate, sent, stopped) =
                (payload.clone(), gate.clone(), sent.clone(), stopped.clone());
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let connected =
                    tokio::time::timeout(CONNECT_LIMIT, tokio_tungstenite::connect_async(url(addr))).await;
                let Ok(Ok((mut ws, _))) = connected else {
                    sent.add_permits(1);
                    return (End::ConnectFailed, false);
                };
                let frame = Frame::message(payload, OpCode::Data(Data::Binary), false);
                let sending = tokio::time::timeout(CONNECT_LIMIT, ws.send(Message::Frame(frame))).await;
                drop(permit);
                sent.add_permits(1);
                let (send_error, delivered) = match sending {
                    Ok(Ok(())) => (None, true),
                    Ok(Err(error)) => (Some(End::of_error(&error)), false),
                    Err(_) => (Some(End::Error("fragment not sent in time".to_owned())), false),
                };
                let end = read_until(&mut ws, stopped).await;
                match (end, send_error) {
                    (End::Close(code), _) => (End::Close(code), delivered),
                    (_, Some(send_error)) => (send_error, delivered),
                    (end, None) => (end, delivered),
                }
            })
        })
        .collect();
    let all = u32::try_from(PARTIAL_CONNECTIONS)?;
    let start = Instant::now();
    let _ = tokio::time::timeout(PARTIAL_SEND_LIMIT, sent.acquire_many(all)).await;
    let sent_after = start.elapsed();
    let hold_until = tokio::time::Instant::now() + PARTIAL_HOLD;
    let probe = probe(addr, Trigger::Echo).await;
    tokio::time::sleep_until(hold_until).await;
    stop.send_replace(true);

    let mut ends = Vec::new();
    let mut delivered = 0;
    for mut connection in connections {
        // Ended by the stop signal unless still connecting or sending (bounded by
        // CONNECT_LIMIT twice); a straggler past that is dropped.
        match tokio::time::timeout(CONNECT_LIMIT * 2, &mut connection).await {
            Ok(joined) => {
                let (end, sent) = joined?;
                delivered += usize::from(sent);
                ends.push(end);
            }
            Err(_) => {
                connection.abort();
                ends.push(End::Error("unfinished".to_owned()));
            }
        }
    }
    let mut outcome = vec![
        Figure::count("fragments sent", delivered),
        Figure::seconds("all sent after", Some(sent_after.as_secs_f64())),
    ];
    outcome.extend(tally("", &ends));
    Ok(Report { outcome, probe })
}

/// Returns once `stopped` is true (or its sender is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: dropped here, before any other await.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Reads (and drops) messages until the server closes or `stopped` turns true.
async fn read_until<S>(ws: &mut S, mut stopped: watch::Receiver<bool>) -> End
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        tokio::select! {
            () = until_stopped(&mut stopped) => return End::Open,
            message = ws.next() => match message {
                Some(Ok(Message::Close(frame))) => return End::close(frame),
                Some(Ok(_)) => {}
                Some(Err(error)) => return End::of_error(&error),
                None => return End::Eof,
            },
        }
    }
}

async fn burst(addr: SocketAddr) -> Result<Report, BoxError> {
    // One permit per reader (and the pinger) done connecting.
    let ready = Arc::new(Semaphore::new(0));
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = (0..BURST_READERS)
        .map(|_| tokio::spawn(burst_reader(addr, ready.clone(), stopped.clone())))
        .collect();
    let ping = Arc::new(Notify::new());
    let pinger = tokio::spawn(pinger(addr, ready.clone(), ping.clone(), stopped.clone()));
    let all = u32::try_from(BURST_READERS + 1)?;
    tokio::time::timeout(CONNECT_LIMIT, ready.acquire_many(all))
        .await
        .map_err(|_| "the readers did not connect in time")??
        .forget();

    let (mut publisher, _) = tokio::time::timeout(CONNECT_LIMIT, tokio_tungstenite::connect_async(url(addr)))
        .await
        .map_err(|_| "the publisher did not connect in time")??;
    let payload = Bytes::from(vec![0xb7_u8; BURST_MESSAGE]);
    let start = Instant::now();
    let limit = tokio::time::Instant::now() + BURST_LIMIT;
    let mut probing = None;
    let mut published = 0;
    let mut publisher_end = None;
    for sequence in 0..BURST_MESSAGES {
        if sequence == BURST_PROBE_AFTER {
            probing = Some(tokio::spawn(probe(addr, Trigger::Relay(ping.clone()))));
        }
        match tokio::time::timeout_at(limit, publisher.send(Message::Binary(payload.clone()))).await {
            Ok(Ok(())) => published += 1,
            Ok(Err(error)) => {
                publisher_end = Some(End::of_error(&error));
                break;
            }
            Err(_) => {
                publisher_end = Some(End::Error("still sending at the deadline".to_owned()));
                break;
            }
        }
    }
    let published_after = start.elapsed();
    let probing = probing.unwrap_or_else(|| tokio::spawn(probe(addr, Trigger::Relay(ping.clone()))));

    // The readers end by themselves (all read, or closed), or at the deadline.
    let deadline = tokio::spawn(async move {
        tokio::time::sleep_until(limit).await;
        stop.send_replace(true);
        stop
    });
    let mut ends = Vec::new();
    let mut fewest = usize::MAX;
    let mut slowest = None;
    for reader in readers {
        let (end, received, done_at) = reader.await?;
        fewest = fewest.min(received);
        if let (End::Complete, Some(done_at)) = (&end, done_at) {
            let after = done_at.saturating_duration_since(start).as_secs_f64();
            slowest = Some(slowest.map_or(after, |s: f64| s.max(after)));
        }
        ends.push(end);
    }
    let probe = probing.await?;
    deadline.abort();
    // The pinger drains until the end; ending it closes its connection.
    pinger.abort();
    drop(publisher);

    let mut outcome = tally("readers ", &ends);
    for figure in &mut outcome {
        if figure.label == "readers complete" {
            figure.label = format!("readers got all {BURST_MESSAGES}");
        }
    }
    outcome.push(Figure::count("fewest messages a reader got", fewest));
    outcome.push(Figure::seconds("last reader done after", slowest));
    outcome.push(Figure::count("published", published));
    outcome.push(Figure::seconds("publisher took", Some(published_after.as_secs_f64())));
    if let Some(end) = publisher_end {
        outcome.push(Figure::count(format!("publisher {}", end.label()), 1));
    }
    Ok(Report { outcome, probe })
}

/// A slow reader of the burst: how it ended, how many messages it got, and when it got
/// the last one.
async fn burst_reader(
    addr: SocketAddr,
    ready: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) -> (End, usize, Option<Instant>) {
    let connect = async {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(BURST_RECV_BUFFER)?;
        let stream = socket.connect(addr).await?;
        let (ws, _) = tokio_tungstenite::client_async(url(addr), stream).await?;
        Ok::<_, BoxError>(ws)
    };
    let connected = tokio::time::timeout(CONNECT_LIMIT, connect).await;
    ready.add_permits(1);
    let Ok(Ok(mut ws)) = connected else { return (End::ConnectFailed, 0, None) };
    let mut received = 0;
    loop {
        tokio::select! {
            () = until_stopped(&mut stopped) => return (End::Open, received, None),
            message = ws.next() => match message {
                Some(Ok(Message::Close(frame))) => return (End::close(frame), received, None),
                Some(Ok(message)) => {
                    if matches!(&message, Message::Binary(data) if data.len() == BURST_MESSAGE) {
                        received += 1;
                        if received == BURST_MESSAGES {
                            return (End::Complete, received, Some(Instant::now()));
                        }
                    }
                    tokio::time::sleep(BURST_PAUSE).await;
                }
                Some(Err(error)) => return (End::of_error(&error), received, None),
                None => return (End::Eof, received, None),
            },
        }
    }
}

/// A fast reader of the relay that sends one text frame when `ping` is notified (so that
/// the fresh client gets a relayed message), until `stopped` or aborted.
async fn pinger(
    addr: SocketAddr,
    ready: Arc<Semaphore>,
    ping: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let connected = tokio::time::timeout(CONNECT_LIMIT, tokio_tungstenite::connect_async(url(addr))).await;
    ready.add_permits(1);
    let Ok(Ok((ws, _))) = connected else { return };
    let (mut sink, mut stream) = ws.split();
    let mut pinged = false;
    loop {
        tokio::select! {
            () = until_stopped(&mut stopped) => return,
            () = ping.notified(), if !pinged => {
                pinged = true;
                let _ = sink.send(Message::text("ping")).await;
            }
            message = stream.next() => if !matches!(message, Some(Ok(_))) { return },
        }
    }
}

async fn oversized(addr: SocketAddr) -> Result<Report, BoxError> {
    let payload = Bytes::from(vec![0xc3_u8; OVERSIZED_MESSAGE]);
    let (mut reads, mut sends) = (Vec::new(), Vec::new());
    let mut slowest: f64 = 0.0;
    let mut probing = None;
    for client in 0..OVERSIZED_CLIENTS {
        if client == OVERSIZED_PROBE_AT {
            probing = Some(tokio::spawn(async move {
                tokio::time::sleep(OVERSIZED_PROBE_DELAY).await;
                probe(addr, Trigger::Echo).await
            }));
        }
        let start = Instant::now();
        let (read, send) = one_oversized(addr, payload.clone()).await;
        slowest = slowest.max(start.elapsed().as_secs_f64());
        reads.push(read);
        sends.push(send);
    }
    let probe = match probing {
        Some(probing) => probing.await?,
        None => probe(addr, Trigger::Echo).await,
    };
    let mut outcome = tally("", &reads);
    outcome.extend(tally("send: ", &sends));
    outcome.push(Figure::seconds("slowest client", Some(slowest)));
    Ok(Report { outcome, probe })
}

/// One client sending the oversized message, as a plain client does: the whole send
/// first, then reading. How the read ended (the close code, or how the connection broke),
/// and how the send did ([`End::Complete`]: every byte written).
async fn one_oversized(addr: SocketAddr, payload: Bytes) -> (End, End) {
    let config = WebSocketConfig::default().max_message_size(None).max_frame_size(None);
    let connected = tokio::time::timeout(
        CONNECT_LIMIT,
        tokio_tungstenite::connect_async_with_config(url(addr), Some(config), false),
    )
    .await;
    let Ok(Ok((mut ws, _))) = connected else { return (End::ConnectFailed, End::ConnectFailed) };
    let sent = tokio::time::timeout(OVERSIZED_LIMIT, ws.send(Message::Binary(payload))).await;
    let send = match sent {
        Ok(Ok(())) => End::Complete,
        Ok(Err(error)) => End::of_error(&error),
        Err(_) => End::Error(format!("not sent within {} s", OVERSIZED_LIMIT.as_secs())),
    };
    let (_stop, stopped) = watch::channel(false);
    let read = tokio::time::timeout(OVERSIZED_LIMIT, read_until(&mut ws, stopped)).await;
    let read =
        read.unwrap_or_else(|_| End::Error(format!("no answer within {} s", OVERSIZED_LIMIT.as_secs())));
    (read, send)
}
