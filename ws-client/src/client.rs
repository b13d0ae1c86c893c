//! The client handle.

use std::fmt;
use std::sync::Arc;

use network_core::{
    AttachError, CloseCode, CloseFrame, Connection, ConnectionId, ConnectionMeta, Hub, HubDriver,
    LocalAdapter, Message, Network, Router, SendError, UntakenEvents,
};
use tokio::sync::broadcast;

use crate::config::ClientConfig;
use crate::driver::Driver;
use crate::error::{ConfigError, FlushError};
use crate::event::ClientEvent;
use crate::offline::{Offline, Sent};
use crate::state::{ClientLink, ClientState, Drain, Phase};
use crate::url::{self, UrlSource};

struct Inner {
    state: Arc<ClientState>,
    hub: Hub,
    adapter: LocalAdapter,
    connection: Connection,
}

/// Closes the client when the last application handle is dropped.
struct Guard(Arc<ClientState>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.request_close(CloseFrame::new(CloseCode::GOING_AWAY, "client dropped"));
    }
}

/// A reconnecting WebSocket client: one logical [`Connection`] to a server that survives
/// reconnects, with an offline queue, lifecycle events and the [`Network`] trait for
/// routers. See the [crate docs](crate) for the design.
///
/// Cheap to clone; all clones drive the same client. Dropping the last clone held by the
/// application closes the client (code 1001); the clones that attached routers receive
/// do not keep it open.
///
/// ```no_run
/// use ws_client::{Client, ClientConfig};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::connect("ws://127.0.0.1:9000/ws", ClientConfig::default())?;
/// client.send("hello")?; // queued until the link is open
/// client.flush().await?; // written
/// client.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// `None` in the handles given to routers, so that they do not keep the client open.
    _guard: Option<Arc<Guard>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connection", &self.inner.connection.id())
            .field("phase", &self.inner.state.phase())
            .field("queued", &self.inner.state.queued())
            .finish()
    }
}

impl Client {
    /// Starts a client for `url` (a `ws://` or `wss://` URL, or a
    /// [`UrlSource::provider`]) and returns at once; connecting happens in a task spawned
    /// on the current tokio runtime. The first attempt starts immediately (unless
    /// [`ClientConfig::start_closed`]).
    ///
    /// On a multi-threaded runtime the first connection can open, and even close, before
    /// the caller's next statement runs. Nothing is lost for that: until
    /// [`events`](Network::events) is taken, the client keeps the application's events (up
    /// to [`HubConfig::event_queue_capacity`](network_core::HubConfig::event_queue_capacity)
    /// of them; later ones are discarded rather than waited for, so a client that never
    /// takes its events never stalls), and [`lifecycle`](Self::lifecycle)'s first receiver
    /// has every [`ClientEvent`] since `connect`. Routers see what follows their attach;
    /// the router clients of this workspace adopt a connection already open.
    ///
    /// Fails, spawning nothing, when the configuration is inconsistent, a fixed URL is
    /// invalid, or there is no current runtime.
    pub fn connect(url: impl Into<UrlSource>, config: ClientConfig) -> Result<Self, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let settings = config.validate()?;
        let config = &settings.config;
        let source = url.into();
        let meta = match source.as_fixed() {
            Some(raw) => {
                let target = url::prepare(raw, &config.query)
                    .map_err(|(url, reason)| ConfigError::InvalidUrl { url, reason })?;
                ConnectionMeta::new(target.uri.path()).query(target.uri.query().map(str::to_owned))
            }
            None => ConnectionMeta::default(),
        }
        .headers(config.headers.clone());
        let id = ConnectionId::next();
        let state = Arc::new(ClientState::new(
            id,
            config.max_enqueued_messages,
            config.max_enqueued_bytes,
            config.lifecycle_capacity,
            config.resume,
        ));
        let (connection, signal) = Connection::new(id, meta, Arc::new(ClientLink(state.clone())));
        // Kept until taken: connecting starts now, before the caller can take `events()`.
        let hub_driver = HubDriver::new(config.hub.clone(), UntakenEvents::Keep);
        let hub = hub_driver.hub().clone();
        let adapter = LocalAdapter::new(hub.registry().clone());
        let driver = Driver::new(state.clone(), hub_driver, connection.clone(), signal, source, settings);
        runtime.spawn(driver.run());
        let inner = Arc::new(Inner { state: state.clone(), hub, adapter, connection });
        Ok(Self { inner, _guard: Some(Arc::new(Guard(state))) })
    }

    /// The client's one connection: same id and identity across reconnects. Routers see it
    /// in `Added` after every (re)connect and in `Removed` after every disconnect.
    pub fn connection(&self) -> &Connection {
        &self.inner.connection
    }

    /// Sends `message` to the server, or queues it while the link is down. Never waits.
    ///
    /// [`SendError::Full`] when `max_enqueued_messages` or `max_enqueued_bytes` is
    /// reached (nothing is dropped: the message comes back; retry after
    /// [`flush`](Self::flush) or drop it), [`SendError::Closed`] after
    /// [`close`](Self::close). Same as `self.connection().send(message)`.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.inner.state.send(message.into(), Offline::Buffer).map(drop)
    }

    /// Sends `message` with an offline policy: what happens to it while the link is down
    /// (see [`Offline`]). Never waits. `send_with(message, Offline::Buffer)` is
    /// [`send`](Self::send).
    ///
    /// `Ok` says what became of the message ([`Sent::Dropped`] for a volatile message
    /// while the link is down or routers restore). The errors are those of `send`:
    /// [`SendError::Full`] past a bound (after discarding expired messages, and counting
    /// the room left by the message an [`Offline::Latest`] replaces),
    /// [`SendError::Closed`] after [`close`](Self::close).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use ws_client::{Client, ClientConfig, Offline, Sent};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::connect("ws://127.0.0.1:9000/ws", ClientConfig::default())?;
    /// if client.send_with("typing", Offline::Volatile)? == Sent::Dropped {
    ///     // offline: nobody will see it, and that is fine
    /// }
    /// client.send_with(r#"{"cursor":[3,4]}"#, Offline::latest("cursor"))?;
    /// client.send_with("quote 42.1", Offline::Expire(Duration::from_secs(5)))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_with(&self, message: impl Into<Message>, offline: Offline) -> Result<Sent, SendError> {
        self.inner.state.send(message.into(), offline)
    }

    /// How many messages wait to be written.
    pub fn queued(&self) -> usize {
        self.inner.state.queued()
    }

    /// Whether the link is open (and routers have restored).
    pub fn is_open(&self) -> bool {
        self.inner.state.phase() == Phase::Open
    }

    /// Whether the client was closed ([`close`](Self::close), [`Link::close`] through the
    /// connection, or the last handle dropped).
    ///
    /// [`Link::close`]: network_core::Link::close
    pub fn is_closed(&self) -> bool {
        self.inner.state.phase() == Phase::Closed
    }

    /// A receiver of [`ClientEvent`]s.
    ///
    /// The first call returns a receiver that has every event since
    /// [`connect`](Self::connect); later calls see events from the moment they subscribe.
    /// The channel is bounded by [`ClientConfig::lifecycle_capacity`]: a receiver that
    /// falls further behind loses the oldest events and gets
    /// [`RecvError::Lagged`](broadcast::error::RecvError::Lagged) once; the client never
    /// waits for receivers.
    pub fn lifecycle(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.state.subscribe()
    }

    /// Reconnects now with the retry count reset: closes an open link (code 1000,
    /// reason `reconnect`), abandons an attempt in progress or a backoff wait, and resumes
    /// a client that ran out of retries, declined to reconnect or started closed. Does
    /// nothing after [`close`](Self::close).
    pub fn reconnect(&self) {
        self.inner.state.request_reconnect();
    }

    /// Waits until every message queued so far (and any sent meanwhile) has been written
    /// to the socket.
    ///
    /// "Written" means handed to the operating system, not received by the server: a
    /// WebSocket has no acknowledgements. While the link is down it waits for the
    /// reconnection. Fails with [`FlushError::Stopped`] if the client stops reconnecting
    /// (retries exhausted, reconnection declined, or started closed) and with
    /// [`FlushError::Closed`] if it is closed. Bound it with `tokio::time::timeout`.
    ///
    /// Do not await it in a router's `on_event`: the queue is not written while routers
    /// handle `Added`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only stops the waiting; nothing is unqueued.
    pub async fn flush(&self) -> Result<(), FlushError> {
        match self.inner.state.drained().await {
            Drain::Done | Drain::Pending => Ok(()),
            Drain::Closed(0) => Ok(()),
            Drain::Closed(unsent) => Err(FlushError::Closed { unsent }),
            Drain::Stopped(unsent) => Err(FlushError::Stopped { unsent }),
        }
    }

    /// Closes for good with code 1000: see [`close_with`](Self::close_with).
    ///
    /// # Cancel safety
    /// Cancel safe: the close goes on in the background if the future is dropped.
    pub async fn close(&self) {
        self.close_with(CloseCode::NORMAL, "").await;
    }

    /// Closes for good with `code` and `reason`, and waits until the client has finished.
    ///
    /// From the call on, sends fail with [`SendError::Closed`] and messages still queued
    /// are dropped (call [`flush`](Self::flush) first to write them). An open link sends
    /// the close frame (codes that may not be sent, like 1006, become 1000; the reason is
    /// cut to 123 bytes) and waits up to [`ClientConfig::close_timeout`] for the server's,
    /// delivering frames that arrive meanwhile; routers then see `Removed` and are
    /// detached. Later calls only wait.
    ///
    /// Do not await it in a router's `on_event` (the client waits for its routers while
    /// closing); a router closes with [`Connection::close`], which does not wait.
    ///
    /// # Cancel safety
    /// Cancel safe: the close goes on in the background if the future is dropped.
    pub async fn close_with(&self, code: CloseCode, reason: impl Into<String>) {
        self.inner.state.request_close(CloseFrame::new(code, reason));
        self.closed().await;
    }

    /// Waits until the client has closed for good and returns the close frame it closed
    /// with. (The connection's own [`Connection::closed`] resolves at every disconnect.)
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn closed(&self) -> CloseFrame {
        let mut terminated = self.inner.state.terminated.subscribe();
        match terminated.wait_for(Option::is_some).await {
            Ok(frame) => frame.clone().unwrap_or_else(|| CloseFrame::new(CloseCode::ABNORMAL, "")),
            // The sender lives in `ClientState`, which `self` keeps alive.
            Err(_) => CloseFrame::new(CloseCode::ABNORMAL, ""),
        }
    }

    /// A handle that does not keep the client open (given to routers).
    fn unguarded(&self) -> Self {
        Self { inner: self.inner.clone(), _guard: None }
    }
}

impl Network for Client {
    type Adapter = LocalAdapter;

    fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    fn adapter(&self) -> &LocalAdapter {
        &self.inner.adapter
    }

    /// Attaches `router`, giving it a handle that does not keep the client open: dropping
    /// the application's last handle still closes the client, which then detaches its
    /// routers.
    fn attach<R: Router<Self>>(&self, router: R) -> Result<(), AttachError> {
        self.inner.hub.attach(self.unguarded(), router)
    }
}
