//! The server handle: listening, accepting, upgrading, shutting down.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::Either;
use network_core::{
    Adapter, AdapterError, AdapterFactory, Bytes, ConnectionId, ConnectionIds, ConnectionMeta, Hub,
    HubDriver, Identity, LocalAdapter, Network, NodeId, UntakenEvents,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::connection::Accepted;
use crate::error::ServerError;
use crate::flusher::Flusher;
use crate::handshake::{self, Accept, HandshakeRequest, Reject, SocketStart};
use crate::pending::{PendingHandshake, PendingHandshakes};
use crate::pressure::Pressure;
use crate::relay::{Carried, Relays};
use crate::resume::{Handoff, HandoffSocket, Plan, Resolution, Sessions};

/// What the connection machinery needs of the adapter, without its type: the machinery
/// stays one (non-generic) copy whatever the adapter, at the price of one boxed future
/// per closed connection.
pub(crate) trait RoomCleanup: Send + Sync {
    fn leave_all(
        &self,
        id: ConnectionId,
    ) -> Pin<Box<dyn Future<Output = Result<(), AdapterError>> + Send + '_>>;

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// [`Adapter::publish`], for session relays (see [`crate::relay`]).
    fn publish(
        &self,
        topic: &'static str,
        to: Option<NodeId>,
        payload: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), AdapterError>> + Send + '_>>;
}

impl<A: Adapter> RoomCleanup for A {
    fn publish(
        &self,
        topic: &'static str,
        to: Option<NodeId>,
        payload: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<(), AdapterError>> + Send + '_>> {
        Box::pin(Adapter::publish(self, topic, to, payload))
    }

    fn leave_all(
        &self,
        id: ConnectionId,
    ) -> Pin<Box<dyn Future<Output = Result<(), AdapterError>> + Send + '_>> {
        Box::pin(Adapter::leave_all(self, id))
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Adapter::shutdown(self))
    }
}

pub(crate) struct Inner {
    pub(crate) config: ServerConfig,
    /// Reports the connections to the hub that [`Network::hub`] hands out.
    pub(crate) hub: HubDriver,
    /// The server's adapter, for leaving rooms when a connection closes.
    pub(crate) rooms: Arc<dyn RoomCleanup>,
    /// Numbers connections with the adapter's node.
    ids: ConnectionIds,
    local_addr: Option<SocketAddr>,
    /// Cancelled by `shutdown`: stop accepting, send 1001 to everyone.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the shutdown deadline passes: drop whatever is left.
    pub(crate) abort: CancellationToken,
    tasks: TaskTracker,
    open: AtomicUsize,
    /// Writes broadcasts for every connection (see [`crate::flusher`]).
    pub(crate) flusher: Flusher,
    /// The server-wide memory budgets and congestion (see [`crate::pressure`]).
    pub(crate) pressure: Arc<Pressure>,
    /// Connections accepted and not yet upgraded (see [`crate::pending`]).
    pending: Arc<PendingHandshakes>,
    /// Resumable sessions (see [`crate::resume`]).
    pub(crate) sessions: Sessions,
    /// Sessions resumed across nodes (see [`crate::relay`]).
    pub(crate) relays: Relays,
}

/// A WebSocket server: a [`Network`] of the connections it accepted.
///
/// `A` is its room adapter: [`LocalAdapter`] (rooms in this process) unless the server
/// was started with another one (`bind_with` and friends), such as a cluster adapter
/// sharing rooms with other nodes.
///
/// Cheap to clone; every clone is the same server. It runs until
/// [`shutdown`](Self::shutdown) (dropping the handles does not stop it, as with a spawned
/// task).
///
/// ```no_run
/// use network_core::{Network, NetworkEvent};
/// use ws_server::{Server, ServerConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
/// println!("listening on ws://{}", server.local_addr().unwrap());
/// let mut events = server.events().unwrap();
/// while let Some(event) = events.recv().await {
///     if let NetworkEvent::Message { connection, message } = event {
///         let _ = connection.send(message); // echo
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Server<A: Adapter = LocalAdapter> {
    inner: Arc<Inner>,
    adapter: Arc<A>,
}

impl<A: Adapter> Clone for Server<A> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), adapter: self.adapter.clone() }
    }
}

impl<A: Adapter> std::fmt::Debug for Server<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.inner.local_addr)
            .field("connections", &self.inner.hub.hub().registry().len())
            .finish()
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port; see [`local_addr`](Self::local_addr)) and
    /// starts accepting on the current tokio runtime.
    pub async fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> Result<Self, ServerError> {
        Self::bind_with(addr, config, LocalAdapter::new).await
    }

    /// Starts accepting on an existing tokio listener.
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Result<Self, ServerError> {
        Self::from_listener_with(listener, config, LocalAdapter::new)
    }

    /// Starts accepting on an existing `std` listener (made non-blocking here).
    pub fn from_std_listener(
        listener: std::net::TcpListener,
        config: ServerConfig,
    ) -> Result<Self, ServerError> {
        listener.set_nonblocking(true).map_err(ServerError::Listener)?;
        let listener = TcpListener::from_std(listener).map_err(ServerError::Listener)?;
        Self::from_listener(listener, config)
    }

    /// A server without a listener of its own: connections reach it through a route of an
    /// existing HTTP server (see `axum_route`, feature `axum`).
    pub fn detached(config: ServerConfig) -> Result<Self, ServerError> {
        Self::detached_with(config, LocalAdapter::new)
    }
}

/// Binds the first of the addresses `addr` resolves to that can be bound, as
/// `TcpListener::bind` does, but keeps the address that failed for the error.
async fn bind_first(addr: impl ToSocketAddrs) -> Result<TcpListener, ServerError> {
    let mut last_failure = None;
    for candidate in tokio::net::lookup_host(addr).await.map_err(ServerError::Resolve)? {
        match TcpListener::bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(source) => last_failure = Some(ServerError::Bind { addr: candidate, source }),
        }
    }
    Err(last_failure.unwrap_or_else(|| {
        ServerError::Resolve(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no socket address"))
    }))
}

impl<A: Adapter> Server<A> {
    /// [`bind`](Server::bind) with the adapter `factory` builds (a cluster adapter, say).
    pub async fn bind_with<F>(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        factory: F,
    ) -> Result<Self, ServerError>
    where
        F: AdapterFactory<Adapter = A>,
    {
        config.validate()?;
        let listener = bind_first(addr).await?;
        Self::from_listener_with(listener, config, factory)
    }

    /// [`from_listener`](Server::from_listener) with the adapter `factory` builds.
    pub fn from_listener_with<F>(
        listener: TcpListener,
        config: ServerConfig,
        factory: F,
    ) -> Result<Self, ServerError>
    where
        F: AdapterFactory<Adapter = A>,
    {
        config.validate()?;
        let local_addr = listener.local_addr().map_err(ServerError::Listener)?;
        let server = Self::new(config, Some(local_addr), factory);
        let inner = server.inner.clone();
        server.inner.tasks.spawn(accept_loop(inner, listener));
        Ok(server)
    }

    /// [`detached`](Server::detached) with the adapter `factory` builds.
    pub fn detached_with<F>(config: ServerConfig, factory: F) -> Result<Self, ServerError>
    where
        F: AdapterFactory<Adapter = A>,
    {
        config.validate()?;
        Ok(Self::new(config, None, factory))
    }

    fn new<F: AdapterFactory<Adapter = A>>(
        config: ServerConfig,
        local_addr: Option<SocketAddr>,
        factory: F,
    ) -> Self {
        // Peers' connections: an event kept for nobody would keep its socket open.
        let hub = HubDriver::new(config.hub.clone(), UntakenEvents::Discard);
        let adapter = Arc::new(factory.build(hub.hub().registry().clone()));
        let ids = ConnectionIds::new(adapter.node(), first_counter());
        // Relays need a cluster (an adapter that carries messages to other nodes) and a
        // runtime to read them on.
        let relay_inbox = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|runtime| Some((runtime, adapter.subscribe(crate::relay::TOPIC)?)));
        let node = adapter.node();
        // Registered now, so that a scrape shows them (at zero) before the first connection.
        crate::metrics::handles();
        let server = Self {
            inner: Arc::new(Inner {
                hub,
                rooms: adapter.clone(),
                ids,
                local_addr,
                shutdown: CancellationToken::new(),
                abort: CancellationToken::new(),
                tasks: TaskTracker::new(),
                open: AtomicUsize::new(0),
                flusher: Flusher::new(),
                pending: PendingHandshakes::new(),
                sessions: Sessions::new(
                    config.resume_window,
                    config.max_replay_size,
                    node,
                    relay_inbox.is_some(),
                ),
                relays: Relays::new(),
                pressure: Arc::new(Pressure::new(
                    config.max_total_outgoing_size,
                    config.max_total_incoming_size,
                )),
                config,
            }),
            adapter,
        };
        if let Some((runtime, inbox)) = relay_inbox {
            // Not a tracked task: shutdown waits for the tracked ones before it shuts the
            // adapter down, and only that ends the inbox. A weak handle, so that a server
            // dropped without a shutdown is not kept alive by its own reader.
            runtime.spawn(crate::relay::dispatch(Arc::downgrade(&server.inner), inbox));
        }
        server
    }

    /// The address the server listens on (`None` for a [`detached`](Self::detached) one).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr
    }

    /// The options the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Stops accepting, sends a close frame 1001 to every connection, and waits for them
    /// to close until `shutdown_timeout`; what is left then is dropped. Routers are
    /// detached, then the adapter is shut down (a cluster adapter leaves its cluster).
    /// Calling it again waits for the same shutdown.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(self.inner.config.shutdown_timeout, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("shutdown deadline passed: dropping the remaining connections");
            self.inner.abort.cancel();
            self.inner.tasks.wait().await;
        }
        self.inner.hub.detach_all();
        self.inner.flusher.stop();
        self.inner.rooms.shutdown().await;
    }

    /// What the server holds now: for metrics and admin views, read when asked (nothing is
    /// counted on the hot paths for it).
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            connections: self.inner.open.load(Ordering::Acquire),
            pending_handshakes: self.inner.pending.len(),
            outgoing_queue_bytes: self.inner.pressure.outgoing_bytes(),
        }
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Runs the upgrade of one connection already accepted elsewhere, on any byte stream
    /// (a TLS stream, a Unix socket): reads the HTTP request, runs the handshake hook,
    /// then serves the WebSocket until it closes.
    pub async fn serve_stream<S>(&self, stream: S, remote_addr: Option<SocketAddr>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        upgrade_stream(self.inner.clone(), stream, remote_addr).await;
    }

    #[cfg(feature = "axum")]
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl<A: Adapter> Network for Server<A> {
    type Adapter = A;

    fn hub(&self) -> &Hub {
        self.inner.hub.hub()
    }

    fn adapter(&self) -> &A {
        &self.adapter
    }
}

/// A snapshot of a [`Server`], from [`Server::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Open connections, as counted against `max_connections` (handshakes that passed that
    /// check included).
    pub connections: usize,
    /// Sockets still in their handshake (TLS or HTTP).
    pub pending_handshakes: usize,
    /// Bytes counted against `max_total_outgoing_size`: what every connection's outgoing
    /// queue holds, plus at most 4 KiB per non-empty queue that it drew ahead.
    pub outgoing_queue_bytes: usize,
}

/// Where a cluster node's connection counter starts: anywhere in the lower half of the
/// counter space, so that a node restarted under the same number is unlikely to reuse ids
/// its previous run handed out (other nodes may still name them for a moment).
fn first_counter() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // Nanoseconds mixed with the process id: two nodes started in the same instant differ.
    now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 20)
}

impl Inner {
    #[cfg(feature = "axum")]
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Reserves a connection slot and numbers the connection, or refuses with 503 at the
    /// cap, during shutdown, or when the node has no ids left.
    pub(crate) fn reserve_slot(self: &Arc<Self>) -> Result<Slot, Reject> {
        if self.shutdown.is_cancelled() {
            return Err(Reject::new(http::StatusCode::SERVICE_UNAVAILABLE, "server shutting down"));
        }
        let Some(id) = self.ids.next() else {
            tracing::error!(node = %self.ids.node(), "connection ids exhausted: restart this node");
            return Err(Reject::new(http::StatusCode::SERVICE_UNAVAILABLE, "connection ids exhausted"));
        };
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = Slot { inner: self.clone(), id };
        crate::metrics::handles().connections.increment(1.0);
        match self.config.max_connections {
            Some(max) if open > max => {
                Err(Reject::new(http::StatusCode::SERVICE_UNAVAILABLE, "too many connections"))
            }
            _ => Ok(slot),
        }
    }

    /// Registers a connection that starts its handshake, evicting the oldest pending ones
    /// past `max_pending_handshakes`, or past `max_connections` counting open ones too.
    pub(crate) fn admit_handshake(&self) -> PendingHandshake {
        let max_pending = self.config.max_pending_handshakes;
        let max_connections = self.config.max_connections;
        self.pending.admit(|pending| {
            pending > max_pending
                || max_connections.is_some_and(|max| pending + self.open.load(Ordering::Acquire) > max)
        })
    }

    /// Runs the handshake hook, if any (only then is the request copied for it).
    pub(crate) async fn decide(&self, request: &HandshakeRequest) -> Result<Accept, Reject> {
        match &self.config.handshake {
            Some(hook) => hook.decide(request.clone()).await,
            None => Ok(Accept::new()),
        }
    }
}

/// A counted open connection and its id; dropping it frees the slot.
pub(crate) struct Slot {
    inner: Arc<Inner>,
    pub(crate) id: ConnectionId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.open.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::handles().connections.decrement(1.0);
    }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = inner.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote_addr)) => {
                let inner_for_task = inner.clone();
                #[cfg(feature = "tls")]
                if let Some(tls) = &inner.config.tls {
                    inner.tasks.spawn(serve_tls(inner_for_task, tls.clone(), stream, remote_addr));
                    continue;
                }
                inner.tasks.spawn(serve_tcp(inner_for_task, stream, remote_addr));
            }
            Err(error) => {
                // Running out of file descriptors (or a peer resetting before accept)
                // must not end the loop; back off briefly so a full table can drain.
                tracing::warn!(%error, "accept failed");
                tokio::select! {
                    () = inner.shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
    tracing::debug!("accept loop stopped");
}

/// The task of one accepted TCP connection. Not an `async fn`: its arguments would keep
/// their slots in the task's future for the connection's whole life.
fn serve_tcp(
    inner: Arc<Inner>,
    stream: TcpStream,
    remote_addr: SocketAddr,
) -> impl Future<Output = ()> + Send {
    // Writes are coalesced by the outbox; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    upgrade_stream(inner, stream, Some(remote_addr))
}

/// The task of one accepted TCP connection when the server has TLS: its TLS handshake,
/// then as [`serve_tcp`].
#[cfg(feature = "tls")]
async fn serve_tls(
    inner: Arc<Inner>,
    tls: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    remote_addr: SocketAddr,
) {
    if let Some(stream) = crate::tls::accept(&inner, tls, stream).await {
        upgrade_stream(inner, stream, Some(remote_addr)).await;
    }
}

/// Upgrades `stream`, then serves what the upgrade decided. The returned future lives as
/// long as the connection, so it holds only the upgrade's boxed future (freed once done)
/// and what serving needs: an `async fn`'s arguments, and locals moved out before an
/// `.await` while still in scope, would keep their slots for the connection's life.
fn upgrade_stream<S>(
    inner: Arc<Inner>,
    stream: S,
    remote_addr: Option<SocketAddr>,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: the handshake's buffers and request would otherwise stay part of the
    // connection task's future (and its memory) for the connection's whole life.
    let upgrading = Box::pin(async move {
        let mut stream = stream;
        let upgrade = upgrade(&inner, &mut stream, remote_addr).await;
        (inner, stream, remote_addr, upgrade)
    });
    async move {
        let (serving, slot) = {
            let (inner, stream, remote_addr, upgrade) = upgrading.await;
            match upgrade {
                None => return,
                Some(Upgrade::Relay { start, carried }) => {
                    let relay: Pin<Box<dyn Future<Output = ()> + Send>> =
                        Box::pin(crate::relay::carry(inner, stream, start.leftover, carried));
                    (Either::Right(relay), None)
                }
                Some(Upgrade::Resume { start, session, seen }) => {
                    let handoff =
                        Handoff { socket: HandoffSocket::Local { io: Box::new(stream), start }, seen };
                    if !inner.sessions.hand_over(&session, handoff) {
                        // The session ended since the check: the socket closes, and the
                        // client's next attempt is refused with the reason.
                        tracing::debug!(?remote_addr, "session ended before its resume");
                    }
                    return;
                }
                Some(Upgrade::Fresh(upgraded)) => {
                    let Upgraded { start, meta, identity, slot, plan } = *upgraded;
                    let accepted = Accepted { id: slot.id, start, meta, identity };
                    (serve_accepted(inner, stream, accepted, plan), Some(slot))
                }
            }
        };
        serving.await;
        drop(slot);
    }
}

/// Serves an accepted new connection, with a session if its plan says so. Synchronous
/// set-up, as [`connection::serve`](crate::connection::serve) explains; a session's
/// future is boxed, so that plain connections do not carry its size.
pub(crate) fn serve_accepted<S>(
    inner: Arc<Inner>,
    io: S,
    accepted: Accepted,
    plan: Plan,
) -> Either<impl Future<Output = ()> + Send, Pin<Box<dyn Future<Output = ()> + Send>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use crate::connection::{serve, serve_session};
    crate::metrics::handles().connections_total.increment(1);
    use network_core::resume::{Refusal, SessionFrame};
    let session = match plan {
        Plan::New(refused) => inner.sessions.open(accepted.id).map(|session| (session, refused)),
        Plan::Plain | Plan::Disabled => None,
    };
    match session {
        Some((session, refused)) => {
            let refused = refused.map(|reason| SessionFrame::Refused { reason }.encode());
            let first = refused.into_iter().chain([inner.sessions.welcome(&session)]).collect();
            let io: crate::resume::BoxedIo = Box::new(io);
            Either::Right(Box::pin(serve_session(inner, io, accepted, session, first)))
        }
        None => {
            let disabled = matches!(plan, Plan::Disabled)
                .then(|| SessionFrame::Refused { reason: Refusal::Disabled }.encode());
            Either::Left(serve(inner, io, accepted, disabled))
        }
    }
}

/// What an accepted upgrade hands to the connection.
struct Upgraded {
    start: SocketStart,
    meta: ConnectionMeta,
    identity: Option<Identity>,
    slot: Slot,
    plan: Plan,
}

/// What an upgrade turned out to be.
enum Upgrade {
    /// A new connection (boxed: the variants differ much in size).
    Fresh(Box<Upgraded>),
    /// The resume of a session: the socket goes to it.
    Resume { start: SocketStart, session: Arc<crate::resume::Resumable>, seen: u64 },
    /// The resume of another node's session, through this one.
    Relay { start: SocketStart, carried: Carried },
}

/// What the checks of an upgrade decided, before it is answered.
enum Outcome {
    Resume(Arc<crate::resume::Resumable>, u64),
    Relay(Carried),
    Fresh(Slot, crate::handshake::Accept, Plan),
}

/// Reads and checks the upgrade request, runs the hook, and answers it; `None` when the
/// upgrade was refused or failed (the refusal is written here).
async fn upgrade<S>(inner: &Arc<Inner>, stream: &mut S, remote_addr: Option<SocketAddr>) -> Option<Upgrade>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let pending = inner.admit_handshake();
    let upgraded = tokio::time::timeout(inner.config.handshake_timeout, async {
        tokio::select! {
            upgraded = async {
                let raw = handshake::read_request(stream, remote_addr, inner.config.max_handshake_size).await?;
                let switching =
                    handshake::validate(&raw.method, raw.version, &raw.request.headers, &inner.config)?;
                let plan = match inner.sessions.resolve(&raw.request)? {
                    // The session's token is the credential: no hook, no new slot.
                    Resolution::Resume(session, seen) => {
                        return Ok(Some((raw, switching, Outcome::Resume(session, seen))));
                    }
                    Resolution::Relay(token, id, seen) => match crate::relay::claim(inner, id, &token, seen).await {
                        // The relay carries the socket with tungstenite: no compression.
                        Ok(carried) => return Ok(Some((raw, switching.uncompressed(), Outcome::Relay(carried)))),
                        Err(refusal) => Plan::New(Some(refusal)),
                    },
                    Resolution::Fresh(plan) => plan,
                };
                let slot = inner.reserve_slot()?;
                let accept = inner.decide(&raw.request).await?;
                Ok::<_, Reject>(Some((raw, switching, Outcome::Fresh(slot, accept, plan))))
            } => upgraded,
            () = pending.evicted() => Ok(None),
        }
    })
    .await;
    let (raw, switching, outcome) = match upgraded {
        Ok(Ok(Some(upgrade))) => upgrade,
        Ok(Ok(None)) => {
            tracing::debug!(?remote_addr, "pending handshake evicted by newer connections");
            crate::metrics::handshake_refused("evicted");
            return None;
        }
        Ok(Err(reject)) => {
            tracing::debug!(?remote_addr, status = %reject.status, reason = %reject.reason, "upgrade refused");
            crate::metrics::handshake_refused(reject.status.as_u16().to_string());
            let _ = handshake::write_reject(stream, &reject).await;
            return None;
        }
        Err(_) => {
            tracing::debug!(?remote_addr, "handshake timed out");
            crate::metrics::handshake_refused("timeout");
            return None;
        }
    };
    if let Err(error) = handshake::write_accept(stream, &switching).await {
        tracing::debug!(?remote_addr, %error, "writing the upgrade response failed");
        return None;
    }
    let start = SocketStart { leftover: raw.leftover, deflate: switching.deflate };
    Some(match outcome {
        Outcome::Resume(session, seen) => Upgrade::Resume { start, session, seen },
        Outcome::Relay(carried) => Upgrade::Relay { start, carried },
        Outcome::Fresh(slot, accept, plan) => Upgrade::Fresh(Box::new(Upgraded {
            start,
            meta: raw.request.into_meta(),
            identity: accept.identity,
            slot,
            plan,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection task's future lives as long as the connection: every byte of it is
    /// paid by each idle connection (docs/DESIGN.md, "Memory per connection").
    #[tokio::test]
    async fn the_connection_task_stays_small() {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let remote = stream.peer_addr().unwrap();
        let task = serve_tcp(server.inner.clone(), stream, remote);
        let size = std::mem::size_of_val(&task);
        println!("connection task: {size} bytes");
        // 2,328 bytes with tungstenite's reader and the upgrade's arguments kept, 1,568 now
        // (rustc 1.95, debug and release). tokio's task cell is the future plus 72 bytes,
        // aligned to 128 on x86_64: 1,664 bytes today; the bound is that step's end, so a
        // change that costs every idle connection 128 more bytes fails here.
        assert!(size <= 1664 - 72, "the connection task takes {size} bytes");
    }
}
