//! A TCP proxy on 127.0.0.1:0 that injects the faults real networks have: latency,
//! resets (also in the middle of a frame), half-open links, and blackholes.
//!
//! [`FaultProxy::start`] forwards every connection made to [`FaultProxy::addr`] to a
//! target address. Each accepted connection gets its own upstream connection and one task
//! that carries both directions; a [`ProxiedConnection`] handle controls it, and the proxy
//! has the same controls for every connection at once:
//!
//! - **Latency** ([`ProxiedConnection::set_latency`], [`FaultProxy::set_latency`]): every
//!   chunk read is written `latency` after it was read, per direction. Chunks leave in the
//!   order they came, so a latency lowered meanwhile never reorders bytes (a chunk waits
//!   for the ones before it).
//! - **Reset** ([`ProxiedConnection::reset`]): both sockets are closed abortively, with a
//!   linger of zero (`TcpStream::set_zero_linger`) before the drop, so both peers get a
//!   TCP RST, never a FIN, and bytes the proxy still queued are lost.
//!   [`ProxiedConnection::reset_after`] forwards `k` more bytes in a direction and resets
//!   the connection as soon as a byte beyond them is in hand: the receiver gets exactly the
//!   first `k` bytes of what comes next, so with `k` smaller than the next frame the reset
//!   lands inside it. [`ProxiedConnection::close`] is the orderly variant: both sockets are
//!   dropped, so the peers read a FIN (Linux still sends a RST for a socket closed with
//!   bytes it had received and the proxy had not read).
//! - **Half-open** ([`ProxiedConnection::freeze`], [`ProxiedConnection::thaw`]): the
//!   proxy stops reading and writing one direction, or both, and keeps both sockets open.
//!   To the peers it looks like a laptop that went to sleep or a NAT entry that died: no
//!   FIN, no RST, only silence (and, once the kernel buffers fill, a sender that blocks).
//!   Thawing delivers what waited, in order, nothing lost.
//! - **Blackhole** ([`FaultProxy::set_admission`]): [`Admission::Blackhole`] accepts new
//!   connections, reads and discards what they send, and never connects them to the
//!   target nor answers (until the client gives up or the proxy is dropped);
//!   [`Admission::Refuse`] resets each new connection as soon as it is accepted (the kernel
//!   completes the handshake first, so the client's connect fails with a reset, or succeeds
//!   and its first read fails; a closed port would refuse the connect itself, but reopening
//!   a port is racy).
//!   Admission concerns new connections only; freeze the open ones too for a whole
//!   network outage.
//! - **Counts** ([`FaultProxy::stats`], [`ProxiedConnection::bytes_to_server`]): connections
//!   accepted, forwarded, open, blackholed and refused, and bytes forwarded per direction.
//!   [`FaultProxy::connection`], [`FaultProxy::connection_after`] and [`FaultProxy::until`]
//!   await a state of the proxy instead of sleeping; every one of them panics after
//!   [`WAIT`](crate::WAIT).
//!
//! # Bounds
//! Each direction reads into a buffer of [`CHUNK_SIZE`] bytes and queues at most
//! [`MAX_QUEUED_CHUNKS`] chunks (so at most 1 MiB per direction) waiting for their time to
//! be written. When the queue is full, or the destination does not take bytes, the proxy
//! stops reading that direction: the sender's TCP window closes (backpressure), nothing is
//! dropped. A frozen direction reads nothing at all.
//!
//! # Dropping
//! Dropping the [`FaultProxy`] stops accepting and closes every connection it carries
//! (frozen ones included) as [`ProxiedConnection::close`] does; every task of the proxy
//! ends.
//!
//! ```
//! use std::time::Duration;
//! use testkit::{FaultProxy, Flow, within};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A server that says hello, behind the proxy.
//! let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let target = server.local_addr().unwrap();
//! tokio::spawn(async move {
//!     while let Ok((mut socket, _)) = server.accept().await {
//!         let _ = socket.write_all(b"hello").await;
//!         let _ = socket.read(&mut [0; 1]).await; // holds the socket until the peer ends
//!     }
//! });
//! let proxy = FaultProxy::start(target).await;
//! proxy.set_latency(Flow::ToClient, Duration::from_millis(20));
//! let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
//! let link = proxy.connection().await;
//! let mut hello = [0; 5];
//! within(client.read_exact(&mut hello)).await.unwrap();
//! assert_eq!(&hello, b"hello");
//! assert_eq!(link.bytes_to_client(), 5);
//! link.reset();
//! within(link.closed()).await;
//! assert!(client.read(&mut [0; 1]).await.is_err()); // a RST, not an end of stream
//! # }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use crate::within;

/// The size of the read buffer of each direction of a connection, in bytes.
pub const CHUNK_SIZE: usize = 16 * 1024;
/// How many chunks (each at most [`CHUNK_SIZE`] bytes) a direction holds waiting for their
/// latency; when it is full the proxy stops reading that direction.
pub const MAX_QUEUED_CHUNKS: usize = 64;

/// One direction of a connection, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// From the client (the side that connected to the proxy) to the target.
    ToServer,
    /// From the target to the client.
    ToClient,
    /// Both directions.
    Both,
}

impl Flow {
    /// The indices of the directions: 0 for [`Flow::ToServer`], 1 for [`Flow::ToClient`].
    fn directions(self) -> &'static [usize] {
        match self {
            Self::ToServer => &[TO_SERVER],
            Self::ToClient => &[TO_CLIENT],
            Self::Both => &[TO_SERVER, TO_CLIENT],
        }
    }
}

const TO_SERVER: usize = 0;
const TO_CLIENT: usize = 1;

/// What the proxy does with the connections it accepts from now on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Admission {
    /// Connect each to the target and forward (the default).
    #[default]
    Forward,
    /// Accept each, read and discard what it sends, never answer nor connect it to the
    /// target. It ends when the client closes it or the proxy is dropped.
    Blackhole,
    /// Reset each as soon as it is accepted.
    Refuse,
}

/// The proxy's counters, from [`FaultProxy::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Connections accepted, whatever became of them.
    pub accepted: u64,
    /// Connections connected to the target and forwarded.
    pub forwarded: u64,
    /// Forwarded connections open now.
    pub open: usize,
    /// Connections accepted into the blackhole.
    pub blackholed: u64,
    /// Connections refused (reset at once), or whose connect to the target failed.
    pub refused: u64,
    /// Bytes written to the target, over every connection.
    pub bytes_to_server: u64,
    /// Bytes written to clients, over every connection.
    pub bytes_to_client: u64,
    /// Bytes read from clients and not yet written to the target (waiting for their
    /// latency, a frozen direction, or the target's window), over every open connection.
    pub queued_to_server: u64,
    /// Bytes read from the target and not yet written to clients, over every open
    /// connection.
    pub queued_to_client: u64,
}

impl ProxyStats {
    fn queued_mut(&mut self, direction: usize) -> &mut u64 {
        if direction == TO_SERVER { &mut self.queued_to_server } else { &mut self.queued_to_client }
    }
}

/// How a connection is to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Both sockets dropped with a zero linger: RST.
    Reset,
    /// Both sockets dropped: FIN.
    Close,
}

/// What the handles ask of a connection's task.
#[derive(Clone, Copy, Debug, Default)]
struct Control {
    latency: [Duration; 2],
    frozen: [bool; 2],
    /// Bytes each direction may still forward before the connection is reset.
    reset_after: [Option<u64>; 2],
    /// Bumped by every `reset_after`, so that the task takes a new budget once.
    reset_epoch: u64,
    end: Option<End>,
}

/// What the proxy's handle, its accept loop and the connections' tasks share.
struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    /// Bumped on every change of [`State`], for the waits.
    changed: watch::Sender<()>,
}

struct State {
    admission: Admission,
    /// For new connections.
    latency: [Duration; 2],
    open: BTreeMap<u64, ProxiedConnection>,
    stats: ProxyStats,
    /// Set when the proxy is dropped: blackholed connections end.
    stopped: bool,
}

impl Shared {
    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let result = change(&mut self.state.lock().unwrap());
        self.changed.send_replace(());
        result
    }

    fn read<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.state.lock().unwrap())
    }
}

/// The proxy; see the [module docs](self). Dropping it closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).field("target", &self.shared.target).finish()
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port that forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(State {
                admission: Admission::Forward,
                latency: [Duration::ZERO; 2],
                open: BTreeMap::new(),
                stats: ProxyStats::default(),
                stopped: false,
            }),
            changed: watch::Sender::new(()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Self { addr, shared, accept }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`, the proxy's address as a WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        self.shared.read(|state| state.stats)
    }

    /// Waits until `wanted` holds for the counters, and returns them; panics after [`WAIT`](crate::WAIT).
    pub async fn until(&self, mut wanted: impl FnMut(&ProxyStats) -> bool) -> ProxyStats {
        self.wait_for(|state| Some(state.stats).filter(|stats| wanted(stats))).await
    }

    /// The forwarded connections open now, oldest first.
    pub fn connections(&self) -> Vec<ProxiedConnection> {
        self.shared.read(|state| state.open.values().cloned().collect())
    }

    /// The newest open forwarded connection, waiting for one to exist; panics after
    /// [`WAIT`](crate::WAIT).
    pub async fn connection(&self) -> ProxiedConnection {
        self.wait_for(|state| state.open.values().next_back().cloned()).await
    }

    /// The oldest open forwarded connection whose [`number`](ProxiedConnection::number) is
    /// above `number`, waiting for one; panics after [`WAIT`](crate::WAIT). `connection_after(0)` is the
    /// oldest open one; `connection_after(link.number())` the one that replaced `link`.
    pub async fn connection_after(&self, number: u64) -> ProxiedConnection {
        self.wait_for(|state| state.open.range(number + 1..).next().map(|(_, link)| link.clone())).await
    }

    /// The open connection that the target sees as coming from `addr` (its peer address,
    /// as `ws_server` reports it in `ConnectionMeta::remote_addr`).
    pub fn connection_seen_as(&self, addr: SocketAddr) -> Option<ProxiedConnection> {
        self.shared.read(|state| state.open.values().find(|link| link.upstream_addr() == addr).cloned())
    }

    /// Sets what happens to the connections accepted from now on.
    pub fn set_admission(&self, admission: Admission) {
        self.shared.update(|state| state.admission = admission);
    }

    /// Sets the latency of `flow` for every open connection and the ones to come.
    pub fn set_latency(&self, flow: Flow, latency: Duration) {
        let open = self.shared.update(|state| {
            for &direction in flow.directions() {
                state.latency[direction] = latency;
            }
            state.open.values().cloned().collect::<Vec<_>>()
        });
        for link in open {
            link.set_latency(flow, latency);
        }
    }

    /// Freezes `flow` of every open connection (later ones flow); returns how many were
    /// open.
    pub fn freeze_all(&self, flow: Flow) -> usize {
        self.for_all(|link| link.freeze(flow))
    }

    /// Thaws `flow` of every open connection; returns how many were open.
    pub fn thaw_all(&self, flow: Flow) -> usize {
        self.for_all(|link| link.thaw(flow))
    }

    /// Resets every open connection; returns how many were open.
    pub fn reset_all(&self) -> usize {
        self.for_all(ProxiedConnection::reset)
    }

    /// Closes every open connection; returns how many were open.
    pub fn close_all(&self) -> usize {
        self.for_all(ProxiedConnection::close)
    }

    fn for_all(&self, act: impl Fn(&ProxiedConnection) -> bool) -> usize {
        self.connections().iter().filter(|link| act(link)).count()
    }

    async fn wait_for<T>(&self, mut found: impl FnMut(&State) -> Option<T>) -> T {
        let mut changed = self.shared.changed.subscribe();
        within(async {
            loop {
                changed.borrow_and_update();
                if let Some(value) = self.shared.read(&mut found) {
                    return value;
                }
                // The sender lives in `shared`, which `self` holds.
                let _ = changed.changed().await;
            }
        })
        .await
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        let open = self.shared.update(|state| {
            state.stopped = true;
            state.open.values().cloned().collect::<Vec<_>>()
        });
        for link in open {
            link.close();
        }
    }
}

/// A handle on one forwarded connection: cheap to clone, and still usable (as a no-op)
/// once the connection has ended.
#[derive(Clone)]
pub struct ProxiedConnection {
    link: Arc<Link>,
}

struct Link {
    number: u64,
    client_addr: SocketAddr,
    upstream_addr: SocketAddr,
    control: watch::Sender<Control>,
    bytes: [AtomicU64; 2],
    /// `bytes` when the task took the latest `reset_after`.
    armed_at: [AtomicU64; 2],
}

impl fmt::Debug for ProxiedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxiedConnection")
            .field("number", &self.link.number)
            .field("client_addr", &self.link.client_addr)
            .field("upstream_addr", &self.link.upstream_addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl ProxiedConnection {
    /// The connection's number in the proxy's order of acceptance, from 1 (blackholed and
    /// refused connections take numbers too).
    pub fn number(&self) -> u64 {
        self.link.number
    }

    /// The client's address.
    pub fn client_addr(&self) -> SocketAddr {
        self.link.client_addr
    }

    /// The proxy's address on its connection to the target: what the target sees as the
    /// peer address.
    pub fn upstream_addr(&self) -> SocketAddr {
        self.link.upstream_addr
    }

    /// Bytes written to the target so far.
    pub fn bytes_to_server(&self) -> u64 {
        self.link.bytes[TO_SERVER].load(Ordering::Relaxed)
    }

    /// Bytes written to the client so far.
    pub fn bytes_to_client(&self) -> u64 {
        self.link.bytes[TO_CLIENT].load(Ordering::Relaxed)
    }

    /// Both sockets are closed.
    pub fn is_closed(&self) -> bool {
        self.link.control.is_closed()
    }

    /// Waits until both sockets are closed.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits.
    pub async fn closed(&self) {
        self.link.control.closed().await;
    }

    /// Sets the latency of `flow`: each chunk read from now on is written `latency` after
    /// it was read (and never before the chunks read earlier).
    pub fn set_latency(&self, flow: Flow, latency: Duration) {
        self.control(|control| {
            for &direction in flow.directions() {
                control.latency[direction] = latency;
            }
        });
    }

    /// Stops forwarding `flow` without closing anything (half-open); returns whether the
    /// connection was open.
    pub fn freeze(&self, flow: Flow) -> bool {
        self.control(|control| flow.directions().iter().for_each(|&d| control.frozen[d] = true))
    }

    /// Forwards `flow` again, what waited first; returns whether the connection was open.
    pub fn thaw(&self, flow: Flow) -> bool {
        self.control(|control| flow.directions().iter().for_each(|&d| control.frozen[d] = false))
    }

    /// Resets both sockets now (RST to both peers; queued bytes are lost); returns whether
    /// the connection was open.
    pub fn reset(&self) -> bool {
        self.control(|control| control.end = Some(End::Reset))
    }

    /// Closes both sockets now (FIN to both peers; queued bytes are lost); returns whether
    /// the connection was open.
    pub fn close(&self) -> bool {
        self.control(|control| control.end = Some(End::Close))
    }

    /// The bytes written in `flow`'s direction (a single direction) when the connection's
    /// task took the latest [`reset_after`](Self::reset_after): the count the allowance
    /// starts from, whatever crossed between the call and the task acting on it.
    pub fn bytes_when_armed(&self, flow: Flow) -> u64 {
        let direction = flow.directions().first().copied().unwrap_or(TO_SERVER);
        self.link.armed_at[direction].load(Ordering::Relaxed)
    }

    /// Forwards `bytes` more bytes in each direction of `flow`, then resets the connection
    /// as soon as the next byte of such a direction has been read: the receiver gets
    /// exactly `bytes` bytes of what comes next, then a RST. With [`Flow::Both`] the first
    /// direction to overrun its allowance resets. Replaces an earlier `reset_after`;
    /// returns whether the connection was open.
    pub fn reset_after(&self, flow: Flow, bytes: u64) -> bool {
        self.control(|control| {
            control.reset_after = [None; 2];
            for &direction in flow.directions() {
                control.reset_after[direction] = Some(bytes);
            }
            control.reset_epoch += 1;
        })
    }

    fn control(&self, change: impl FnOnce(&mut Control)) -> bool {
        // Read before the change: on a multi-threaded runtime the connection's task may
        // act on it (a reset) and close before a check made afterwards. `send_modify`
        // notifies even without receivers.
        let open = !self.is_closed();
        self.link.control.send_modify(change);
        open
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut number = 0;
    loop {
        let (client, client_addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors, say: try again later rather than spin.
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        number += 1;
        let admission = shared.update(|state| {
            state.stats.accepted += 1;
            match state.admission {
                Admission::Forward => {}
                Admission::Blackhole => state.stats.blackholed += 1,
                Admission::Refuse => state.stats.refused += 1,
            }
            state.admission
        });
        match admission {
            // Connected in a task of its own, so that one slow connect does not hold up
            // the next accept.
            Admission::Forward => drop(tokio::spawn(connect(client, client_addr, number, shared.clone()))),
            Admission::Blackhole => drop(tokio::spawn(blackhole(client, shared.clone()))),
            Admission::Refuse => reset(client),
        }
    }
}

/// Drops `socket` with a zero linger: the peer gets a RST.
fn reset(socket: TcpStream) {
    // Should the option fail, the drop still closes the socket, with a FIN.
    let _ = socket.set_zero_linger();
}

/// Reads and discards until the client ends or the proxy is dropped.
async fn blackhole(mut client: TcpStream, shared: Arc<Shared>) {
    let mut changed = shared.changed.subscribe();
    let mut sink = vec![0u8; CHUNK_SIZE];
    loop {
        if shared.read(|state| state.stopped) {
            return;
        }
        tokio::select! {
            read = client.read(&mut sink) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            _ = changed.changed() => {}
        }
    }
}

async fn connect(client: TcpStream, client_addr: SocketAddr, number: u64, shared: Arc<Shared>) {
    let upstream = match TcpStream::connect(shared.target).await {
        Ok(upstream) => upstream,
        Err(_) => {
            shared.update(|state| state.stats.refused += 1);
            return reset(client);
        }
    };
    let (Ok(upstream_addr), Ok(()), Ok(())) =
        (upstream.local_addr(), client.set_nodelay(true), upstream.set_nodelay(true))
    else {
        return;
    };
    let (link, control) = shared.update(|state| {
        let control = Control { latency: state.latency, ..Control::default() };
        let (sender, receiver) = watch::channel(control);
        let link = ProxiedConnection {
            link: Arc::new(Link {
                number,
                client_addr,
                upstream_addr,
                control: sender,
                bytes: [AtomicU64::new(0), AtomicU64::new(0)],
                armed_at: [AtomicU64::new(0), AtomicU64::new(0)],
            }),
        };
        if state.stopped {
            // Dropped meanwhile: close at once.
            link.link.control.send_modify(|control| control.end = Some(End::Close));
        }
        state.stats.forwarded += 1;
        state.open.insert(number, link.clone());
        state.stats.open = state.open.len();
        (link, receiver)
    });
    carry(client, upstream, &link, control, &shared).await;
    shared.update(|state| {
        state.open.remove(&number);
        state.stats.open = state.open.len();
    });
}

/// The bytes of one direction waiting to be written, each chunk with the time it is due.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes of the front chunk already written.
    written: usize,
    /// The source ended (or failed): a FIN follows the queue.
    source_ended: bool,
    /// The FIN has been passed on.
    fin_sent: bool,
}

impl Queue {
    fn may_read(&self, frozen: bool) -> bool {
        !frozen && !self.source_ended && self.chunks.len() < MAX_QUEUED_CHUNKS
    }

    /// The next bytes to write, at most `limit`, and when they are due; a placeholder when
    /// there are none (the write branch is then disabled).
    fn front(&self, limit: Option<u64>) -> (Instant, &[u8]) {
        match self.chunks.front() {
            Some((due, chunk)) => {
                let rest = &chunk[self.written..];
                let limit = limit.map_or(rest.len(), |limit| usize::try_from(limit).unwrap_or(usize::MAX));
                (*due, &rest[..rest.len().min(limit)])
            }
            None => (Instant::now(), &[]),
        }
    }

    fn advance(&mut self, written: usize) {
        self.written += written;
        if self.chunks.front().is_some_and(|(_, chunk)| self.written == chunk.len()) {
            self.chunks.pop_front();
            self.written = 0;
        }
    }
}

/// Carries both directions until the connection ends, then closes both sockets as asked.
async fn carry(
    mut client: TcpStream,
    mut upstream: TcpStream,
    link: &ProxiedConnection,
    mut control: watch::Receiver<Control>,
    shared: &Shared,
) {
    let end = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let ends = Ends { client_read, client_write, upstream_read, upstream_write };
        ends.run(link, &mut control, shared).await
    };
    if end == End::Reset {
        reset(client);
        reset(upstream);
    }
    // The sockets are dropped before `control` (the receiver), so `closed()` means closed.
    drop(control);
}

struct Ends<'a> {
    client_read: ReadHalf<'a>,
    client_write: WriteHalf<'a>,
    upstream_read: ReadHalf<'a>,
    upstream_write: WriteHalf<'a>,
}

/// What one turn of the loop saw.
enum Step {
    Control,
    Read(usize, io::Result<usize>),
    Wrote(usize, io::Result<usize>),
}

impl Ends<'_> {
    async fn run(
        self,
        link: &ProxiedConnection,
        control: &mut watch::Receiver<Control>,
        shared: &Shared,
    ) -> End {
        let mut queues = [Queue::default(), Queue::default()];
        let end = self.forward(&mut queues, link, control, shared).await;
        // What was still queued is lost with the sockets.
        shared.update(|state| {
            for (direction, queue) in queues.iter().enumerate() {
                let left: usize = queue.chunks.iter().map(|(_, chunk)| chunk.len()).sum();
                *state.stats.queued_mut(direction) -= (left - queue.written) as u64;
            }
        });
        end
    }

    async fn forward(
        mut self,
        queues: &mut [Queue; 2],
        link: &ProxiedConnection,
        control: &mut watch::Receiver<Control>,
        shared: &Shared,
    ) -> End {
        let mut to_server_buf = vec![0u8; CHUNK_SIZE];
        let mut to_client_buf = vec![0u8; CHUNK_SIZE];
        let mut budget: [Option<u64>; 2] = [None; 2];
        let mut epoch = 0;
        loop {
            let now = *control.borrow_and_update();
            if let Some(end) = now.end {
                return end;
            }
            if now.reset_epoch != epoch {
                epoch = now.reset_epoch;
                budget = now.reset_after;
                for direction in [TO_SERVER, TO_CLIENT] {
                    let bytes = link.link.bytes[direction].load(Ordering::Relaxed);
                    link.link.armed_at[direction].store(bytes, Ordering::Relaxed);
                }
            }
            for direction in [TO_SERVER, TO_CLIENT] {
                let queue = &mut queues[direction];
                // A byte beyond the allowance is in hand: the reset lands here.
                if budget[direction] == Some(0) && !queue.chunks.is_empty() {
                    return End::Reset;
                }
                if queue.source_ended && queue.chunks.is_empty() && !queue.fin_sent && !now.frozen[direction]
                {
                    queue.fin_sent = true;
                    let to = if direction == TO_SERVER {
                        &mut self.upstream_write
                    } else {
                        &mut self.client_write
                    };
                    // A failed shutdown means the destination is gone; its read ends too.
                    let _ = to.shutdown().await;
                }
            }
            if queues.iter().all(|queue| queue.fin_sent) {
                return End::Close;
            }
            let [to_server, to_client] = &*queues;
            let (server_due, server_bytes) = to_server.front(budget[TO_SERVER]);
            let (client_due, client_bytes) = to_client.front(budget[TO_CLIENT]);
            let step = tokio::select! {
                changed = control.changed() => match changed {
                    Ok(()) => Step::Control,
                    Err(_) => return End::Close,
                },
                read = self.client_read.read(&mut to_server_buf), if to_server.may_read(now.frozen[TO_SERVER]) => {
                    Step::Read(TO_SERVER, read)
                }
                read = self.upstream_read.read(&mut to_client_buf), if to_client.may_read(now.frozen[TO_CLIENT]) => {
                    Step::Read(TO_CLIENT, read)
                }
                wrote = write_when_due(&mut self.upstream_write, server_due, server_bytes),
                    if !now.frozen[TO_SERVER] && !server_bytes.is_empty() => Step::Wrote(TO_SERVER, wrote),
                wrote = write_when_due(&mut self.client_write, client_due, client_bytes),
                    if !now.frozen[TO_CLIENT] && !client_bytes.is_empty() => Step::Wrote(TO_CLIENT, wrote),
            };
            match step {
                Step::Control => {}
                Step::Read(direction, read) => {
                    let queue = &mut queues[direction];
                    match read {
                        Ok(0) | Err(_) => queue.source_ended = true,
                        Ok(n) => {
                            let buf = if direction == TO_SERVER { &to_server_buf } else { &to_client_buf };
                            queue
                                .chunks
                                .push_back((Instant::now() + now.latency[direction], buf[..n].to_vec()));
                            shared.update(|state| *state.stats.queued_mut(direction) += n as u64);
                        }
                    }
                }
                Step::Wrote(_, Err(_) | Ok(0)) => return End::Close,
                Step::Wrote(direction, Ok(n)) => {
                    queues[direction].advance(n);
                    if let Some(left) = &mut budget[direction] {
                        *left = left.saturating_sub(n as u64);
                    }
                    link.link.bytes[direction].fetch_add(n as u64, Ordering::Relaxed);
                    shared.update(|state| {
                        *state.stats.queued_mut(direction) -= n as u64;
                        if direction == TO_SERVER {
                            state.stats.bytes_to_server += n as u64;
                        } else {
                            state.stats.bytes_to_client += n as u64;
                        }
                    });
                }
            }
        }
    }
}

/// Writes `bytes` once `due`. Cancel safe: a cancelled write wrote nothing.
async fn write_when_due(to: &mut WriteHalf<'_>, due: Instant, bytes: &[u8]) -> io::Result<usize> {
    sleep_until(due).await;
    to.write(bytes).await
}

#[cfg(test)]
mod tests;
