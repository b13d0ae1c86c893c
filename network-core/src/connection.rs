//! The connection handle shared by servers, clients and routers.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::error::SendError;
use crate::message::Message;
use crate::sync::{lock, read, write};

/// The identifier of a connection, unique within a process (and, on a server node of a
/// cluster, across the cluster) and cheap to copy.
///
/// A server node's ids carry its [`NodeId`] in bits 37 to 52 (see [`ConnectionIds`]), so
/// every id stays below 2^53 and is exact as a JavaScript number. A client keeps the same
/// id across reconnects: it names the logical link to the server, not one TCP socket.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// A fresh id, never returned before by this process.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The server node that owns this connection ([`NodeId::STANDALONE`] outside a
    /// cluster).
    pub fn node(self) -> NodeId {
        // Ids of node 0 come from a process-wide counter that never reaches bit 37 in
        // practice; bits above 52 are never set by `ConnectionIds`.
        NodeId((self.0 >> ConnectionIds::COUNTER_BITS) as u16)
    }

    /// The id as a number (for logs and wire formats).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`as_u64`](Self::as_u64).
    pub fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The number of a server node in a cluster: unique among the live nodes, claimed by the
/// cluster adapter when the node starts. [`NodeId::STANDALONE`] (0) outside a cluster.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(u16);

impl NodeId {
    /// The node of a server that is not part of a cluster, and of clients.
    pub const STANDALONE: Self = Self(0);

    /// Node number `number`.
    pub const fn new(number: u16) -> Self {
        Self(number)
    }

    /// The node number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

/// Hands out the ids of one server node's connections.
///
/// An id is `node << 37 | counter`: unique across a cluster whose nodes have distinct
/// numbers, below 2^53 (a JavaScript number holds it exactly), 2^37 connections per node
/// run. A standalone server ([`NodeId::STANDALONE`]) uses the process-wide
/// [`ConnectionId::next`], so that several servers in one process never share an id.
#[derive(Debug)]
pub struct ConnectionIds {
    node: NodeId,
    next: AtomicU64,
}

impl ConnectionIds {
    const COUNTER_BITS: u32 = 37;
    const COUNTER_MASK: u64 = (1 << Self::COUNTER_BITS) - 1;

    /// Ids for `node`, counting from `first` (a cluster node starts at an offset of its
    /// own, so that a restarted node does not hand out the ids its previous run used while
    /// other nodes may still name them). `first` is taken modulo 2^36, leaving at least
    /// 2^36 ids.
    pub fn new(node: NodeId, first: u64) -> Self {
        Self { node, next: AtomicU64::new((first & (Self::COUNTER_MASK >> 1)).max(1)) }
    }

    /// The node these ids belong to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// A fresh id; `None` once this node has handed out 2^37 ids (restart it, or refuse
    /// new connections).
    pub fn next(&self) -> Option<ConnectionId> {
        if self.node == NodeId::STANDALONE {
            return Some(ConnectionId::next());
        }
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        (counter <= Self::COUNTER_MASK)
            .then(|| ConnectionId((u64::from(self.node.0) << Self::COUNTER_BITS) | counter))
    }
}

/// A WebSocket close status code (RFC 6455 section 7.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint goes away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the WebSocket protocol.
    pub const PROTOCOL: Self = Self(1002);
    /// 1003: a frame type the endpoint cannot accept.
    pub const UNSUPPORTED: Self = Self(1003);
    /// 1006: no close frame was received (abrupt drop, idle timeout). Never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a policy was violated (for example a slow consumer whose queue overflowed).
    pub const POLICY: Self = Self(1008);
    /// 1009: a message was bigger than the configured maximum.
    pub const TOO_BIG: Self = Self(1009);
    /// 1011: the endpoint hit an internal error.
    pub const INTERNAL: Self = Self(1011);
    /// 1013: the endpoint is overloaded (for example, at its connection cap); retry later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a connection closed: the code and reason of the close frame, sent or received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// A short human-readable reason (at most 123 bytes on the wire).
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, self.reason)
        }
    }
}

/// Who a connection belongs to, attached by a handshake hook or by an authentication step
/// after the handshake. Rooms, presence and sync key their per-user state on it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Identity {
    /// The application's user id, when the peer is logged in.
    pub user_id: Option<String>,
    /// The application's session id (one login on one device).
    pub session_id: Option<String>,
    /// Public metadata the application wants routers to see (a display name, a colour).
    pub data: serde_json::Value,
}

impl Identity {
    /// The identity of user `user_id`.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self { user_id: Some(user_id.into()), ..Self::default() }
    }

    /// Sets the session id.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the public metadata.
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// What is known of a connection from its handshake.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ConnectionMeta {
    /// The peer's socket address, when the transport knows it.
    pub remote_addr: Option<SocketAddr>,
    /// The request path of the handshake (`/ws`).
    pub path: String,
    /// The raw query string of the handshake, without `?`.
    pub query: Option<String>,
    /// The handshake's request headers (cookies included). A server leaves out the
    /// upgrade's own headers (`Connection`, `Upgrade`, `Sec-WebSocket-Key`,
    /// `-Version`, `-Extensions`); its handshake hook sees them all.
    pub headers: http::HeaderMap,
}

impl ConnectionMeta {
    /// Metadata with the given path and nothing else.
    pub fn new(path: impl Into<String>) -> Self {
        Self { path: path.into(), ..Self::default() }
    }

    /// Sets the remote address.
    pub fn remote_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.remote_addr = addr;
        self
    }

    /// Sets the query string.
    pub fn query(mut self, query: Option<String>) -> Self {
        self.query = query;
        self
    }

    /// Sets the headers.
    pub fn headers(mut self, headers: http::HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// The raw (not percent-decoded) value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// The transport side of a [`Connection`]: what a server or client implements so that
/// routers can send on its connections without knowing the socket.
pub trait Link: Send + Sync + 'static {
    /// Queues `message` for sending without waiting. See [`Connection::send`].
    fn send(&self, message: Message) -> Result<(), SendError>;

    /// Queues `message` as part of a fan-out: like [`send`](Self::send), but a transport
    /// may hold it for a moment so that a burst of broadcasts reaches the socket in one
    /// write. By reference, since the same message goes to many connections: a transport
    /// that copies small frames into its buffer takes no reference count on the payload
    /// (errors carry a clone). The default is [`send`](Self::send) of a clone.
    fn send_batched(&self, message: &Message) -> Result<(), SendError> {
        self.send(message.clone())
    }

    /// Starts a close handshake with `frame`. Idempotent: only the first call counts.
    fn close(&self, frame: CloseFrame);
}

/// What a [`Connection`]'s clones and its [`ClosedSignal`] share.
struct ConnectionState {
    id: ConnectionId,
    meta: ConnectionMeta,
    identity: RwLock<Option<Arc<Identity>>>,
    /// Shared with the transport, which often holds the same object (a server's outbox):
    /// one pointer from the handle to the socket's queue, not two.
    link: Arc<dyn Link>,
    /// Why the connection closed, once it has. A mutex and a `Notify` rather than a
    /// `watch` channel: a few dozen bytes per connection instead of a few hundred.
    closed: Mutex<Option<CloseFrame>>,
    closed_changed: Notify,
}

impl ConnectionState {
    fn closed_frame(&self) -> MutexGuard<'_, Option<CloseFrame>> {
        lock(&self.closed)
    }
}

/// A handle to one connection: cheap to clone, `Send + Sync`, usable from any task.
///
/// On a server it is one peer; on a client it is the link to the server, and it stays the
/// same (same id, same identity) across reconnects.
#[derive(Clone)]
pub struct Connection {
    state: Arc<ConnectionState>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.state.id)
            .field("path", &self.state.meta.path)
            .field("remote_addr", &self.state.meta.remote_addr)
            .finish()
    }
}

impl Connection {
    /// Creates a handle over a transport's `link`. Transports call this; applications get
    /// connections from their network. The returned [`ClosedSignal`] must be fired by the
    /// transport when the connection has closed.
    pub fn new(id: ConnectionId, meta: ConnectionMeta, link: Arc<dyn Link>) -> (Self, ClosedSignal) {
        let state = Arc::new(ConnectionState {
            id,
            meta,
            identity: RwLock::new(None),
            link,
            closed: Mutex::new(None),
            closed_changed: Notify::new(),
        });
        (Self { state: state.clone() }, ClosedSignal { state })
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.state.id
    }

    /// What the handshake said about the peer.
    pub fn meta(&self) -> &ConnectionMeta {
        &self.state.meta
    }

    /// The identity attached by a handshake hook or by [`set_identity`](Self::set_identity).
    pub fn identity(&self) -> Option<Arc<Identity>> {
        read(&self.state.identity).clone()
    }

    /// Attaches an identity (after an authentication message, for example).
    pub fn set_identity(&self, identity: Identity) {
        *write(&self.state.identity) = Some(Arc::new(identity));
    }

    /// Queues `message` without waiting.
    ///
    /// On success the message is in the connection's bounded outgoing queue (or already
    /// written). [`SendError::Full`] means the bound was hit: a server then closes the
    /// connection as a slow consumer; a client reports it and keeps running.
    /// [`SendError::Closed`] means the connection is gone. Both hand the message back.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        // Counted before the link takes it (it may be written at once); a refused message
        // comes back in the error and is not counted.
        let (binary, len) = (message.is_binary(), message.len());
        let result = self.state.link.send(message);
        if result.is_ok() {
            crate::metrics::count(binary, len, 1);
        }
        result
    }

    /// Queues `message` as part of a fan-out to many connections: the transport may hold
    /// it briefly so that a burst of broadcasts coalesces into one write per connection
    /// (see [`Link::send_batched`]). Errors as [`send`](Self::send). Adapters use it; a reply
    /// to one connection should use [`send`](Self::send).
    pub fn send_batched(&self, message: &Message) -> Result<(), SendError> {
        self.state.link.send_batched(message)
    }

    /// The transport's link (rooms keep it, so that a broadcast reaches the socket's queue
    /// without first reading this handle's state).
    pub(crate) fn link(&self) -> &Arc<dyn Link> {
        &self.state.link
    }

    /// Starts closing with `code` and `reason`; [`closed`](Self::closed) tells when done.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        self.state.link.close(CloseFrame::new(code, reason));
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.state.closed_frame().is_some()
    }

    /// Waits until the connection has closed and returns why.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future loses nothing.
    pub async fn closed(&self) -> CloseFrame {
        loop {
            // Registered before the check, so a close between the two is not missed.
            let changed = self.state.closed_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(frame) = self.state.closed_frame().clone() {
                return frame;
            }
            changed.await;
        }
    }
}

/// Held by the transport; fires [`Connection::closed`].
pub struct ClosedSignal {
    state: Arc<ConnectionState>,
}

impl fmt::Debug for ClosedSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedSignal").field("id", &self.state.id).finish()
    }
}

impl ClosedSignal {
    /// Records that the connection closed with `frame` and wakes every `closed()` waiter.
    /// Later calls do nothing.
    pub fn fire(&self, frame: CloseFrame) {
        let mut closed = self.state.closed_frame();
        if closed.is_none() {
            *closed = Some(frame);
            drop(closed);
            self.state.closed_changed.notify_waiters();
        }
    }

    /// Forgets a previous close, for a client link that reconnects.
    pub fn reset(&self) {
        self.state.closed_frame().take();
    }
}
