//! The server side: channels with their handlers, the options, and the router.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use network_core::{
    Adapter, Connection, Identity, InvalidConfig, Network, NetworkEvent, OrderedExecutor, Router, envelope,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cluster::{self, RoomQuestion};
use crate::error::{EmitError, RemoteError, SetupError, codes};
use crate::messenger::Messenger;
use crate::protocol::{self, Frame, ROOT, ROUTER, valid_channel};
use crate::state::{ChannelsState, Limits};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type JoinHook<N> = Arc<dyn Fn(JoinContext<N>) -> BoxFuture<Result<(), RemoteError>> + Send + Sync>;
type EventHandler<N> =
    Arc<dyn Fn(EventContext<N>, Value) -> BoxFuture<Result<Value, RemoteError>> + Send + Sync>;

/// One channel's behaviour: who may join, what happens on join, and its event handlers.
///
/// ```
/// use channels::{Channel, RemoteError};
/// use ws_server::Server;
///
/// let admin: Channel<Server> = Channel::new()
///     .on_join(|ctx| async move {
///         let is_admin = ctx.identity().is_some_and(|id| id.data["admin"] == true);
///         if is_admin { Ok(()) } else { Err(RemoteError::forbidden("admins only")) }
///     })
///     .on("shout", |ctx, text: String| async move {
///         ctx.messenger().emit_to_everyone("shout", &text).await.map_err(|e| RemoteError::internal(e.to_string()))?;
///         Ok(())
///     });
/// # let _ = admin;
/// ```
pub struct Channel<N: Network> {
    on_join: Option<JoinHook<N>>,
    handlers: HashMap<String, EventHandler<N>>,
}

impl<N: Network> Default for Channel<N> {
    fn default() -> Self {
        Self { on_join: None, handlers: HashMap::new() }
    }
}

impl<N: Network> fmt::Debug for Channel<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("on_join", &self.on_join.is_some())
            .field("events", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<N: Network> Channel<N> {
    /// A channel anyone may join, with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `hook` when a connection asks to join: `Err` refuses the join (a private
    /// channel) and the client gets the error; `Ok` admits it. The hook may put the
    /// connection in rooms. It runs in order with that connection's other frames.
    pub fn on_join<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(JoinContext<N>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), RemoteError>> + Send + 'static,
    {
        self.on_join = Some(Arc::new(move |ctx| Box::pin(hook(ctx))));
        self
    }

    /// Handles event `event`: the payload is decoded into `T` (a payload that does not fit
    /// is answered with `bad_request`), and the handler's result is the acknowledgement
    /// when the client asked for one (error-first). Handlers of one connection run one at
    /// a time, in arrival order; different connections run concurrently.
    pub fn on<T, R, F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(EventContext<N>, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, RemoteError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: EventHandler<N> = Arc::new(move |ctx, data| {
            let handler = handler.clone();
            Box::pin(async move {
                let payload: T = serde_json::from_value(data)
                    .map_err(|error| RemoteError::bad_request(format!("payload: {error}")))?;
                let reply = handler(ctx, payload).await?;
                serde_json::to_value(reply).map_err(|error| RemoteError::internal(format!("reply: {error}")))
            })
        });
        self.handlers.insert(event.to_owned(), erased);
        self
    }
}

/// Options of the channels router, and its channels.
#[non_exhaustive]
pub struct ChannelsConfig<N: Network> {
    /// Channels by path. The root channel `/` is always there: when not configured, it
    /// admits everyone and has no handlers.
    pub channels: HashMap<String, Channel<N>>,
    /// How long [`Messenger::emit_with_ack`] waits for a client's acknowledgement by
    /// default. Default 10 s.
    pub ack_timeout: Duration,
    /// Acknowledgements one connection may owe at once; more fail with
    /// [`AckError::TooManyPending`](crate::AckError::TooManyPending). Default 256.
    pub max_pending_acks: usize,
    /// Frames (joins, leaves, events) accepted but not yet handled, across all
    /// connections. When reached, the router stops taking frames until handlers finish,
    /// which holds back the sockets (backpressure). Default 4096.
    pub max_queued_frames: usize,
    /// Channels one connection may be in at once, `/` included; a `join` beyond is
    /// refused with `limit` (a `leave` frees a slot). Default 64.
    pub max_channels_per_connection: usize,
    /// Rooms one connection may be put in through [`Messenger::join_room`] (and the
    /// contexts' `join_room`), across its channels; beyond, `join_room` fails with
    /// [`EmitError::TooManyRooms`], which a hook or handler returning it with `?` answers
    /// as `limit`. Leaving a room or its channel frees a slot. The rooms a channel puts
    /// every member in (the channel's own, `user.{id}`, `session.{id}`) do not count.
    /// Default 256.
    pub max_rooms_per_connection: usize,
}

impl<N: Network> Default for ChannelsConfig<N> {
    fn default() -> Self {
        Self {
            channels: HashMap::new(),
            ack_timeout: Duration::from_secs(10),
            max_pending_acks: 256,
            max_queued_frames: 4096,
            max_channels_per_connection: 64,
            max_rooms_per_connection: 256,
        }
    }
}

impl<N: Network> fmt::Debug for ChannelsConfig<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelsConfig")
            .field("channels", &self.channels)
            .field("ack_timeout", &self.ack_timeout)
            .field("max_pending_acks", &self.max_pending_acks)
            .field("max_queued_frames", &self.max_queued_frames)
            .field("max_channels_per_connection", &self.max_channels_per_connection)
            .field("max_rooms_per_connection", &self.max_rooms_per_connection)
            .finish()
    }
}

impl<N: Network> ChannelsConfig<N> {
    /// Adds (or replaces) the channel at `path`.
    pub fn channel(mut self, path: &str, channel: Channel<N>) -> Self {
        self.channels.insert(path.to_owned(), channel);
        self
    }

    /// Sets [`ack_timeout`](Self::ack_timeout).
    pub fn ack_timeout(mut self, ack_timeout: Duration) -> Self {
        self.ack_timeout = ack_timeout;
        self
    }

    /// Sets [`max_pending_acks`](Self::max_pending_acks).
    pub fn max_pending_acks(mut self, max_pending_acks: usize) -> Self {
        self.max_pending_acks = max_pending_acks;
        self
    }

    /// Sets [`max_queued_frames`](Self::max_queued_frames).
    pub fn max_queued_frames(mut self, max_queued_frames: usize) -> Self {
        self.max_queued_frames = max_queued_frames;
        self
    }

    /// Sets [`max_channels_per_connection`](Self::max_channels_per_connection).
    pub fn max_channels_per_connection(mut self, max_channels_per_connection: usize) -> Self {
        self.max_channels_per_connection = max_channels_per_connection;
        self
    }

    /// Sets [`max_rooms_per_connection`](Self::max_rooms_per_connection).
    pub fn max_rooms_per_connection(mut self, max_rooms_per_connection: usize) -> Self {
        self.max_rooms_per_connection = max_rooms_per_connection;
        self
    }

    /// Attaches the channels router to `network` and returns the messenger that emits on
    /// it (on channel `/`).
    pub fn attach(mut self, network: &N) -> Result<Messenger<N>, SetupError> {
        self.validate()?;
        self.channels.entry(ROOT.to_owned()).or_default();
        let state = Arc::new(ChannelsState::new(Limits {
            ack_timeout: self.ack_timeout,
            max_pending_acks: self.max_pending_acks,
            max_rooms_per_connection: self.max_rooms_per_connection,
        }));
        let messenger = Messenger { network: network.clone(), state: state.clone(), channel: ROOT.into() };
        let worker = Arc::new(Worker {
            messenger: messenger.clone(),
            channels: self.channels,
            max_channels_per_connection: self.max_channels_per_connection,
        });
        let executor = OrderedExecutor::new(
            self.max_queued_frames,
            move |_key, (connection, work): (Connection, Work)| {
                let worker = worker.clone();
                let span = work.span(&connection);
                tracing::Instrument::instrument(async move { handle(&worker, &connection, work).await }, span)
            },
        );
        let inbox = network.adapter().subscribe(cluster::TOPIC);
        network.attach(ChannelsRouter { messenger: messenger.clone(), executor })?;
        if let Some(inbox) = inbox {
            let asker = messenger.clone();
            let ask_members = move |question: RoomQuestion| {
                let messenger = asker.channel(&question.channel);
                async move {
                    messenger
                        .local_room_acks(&question.room, &question.event, &question.data, question.timeout)
                        .await
                }
            };
            tokio::spawn(cluster::serve(network.clone(), state.cluster.clone(), inbox, ask_members));
        }
        Ok(messenger)
    }
}

impl<N: Network> ChannelsConfig<N> {
    /// Checks the bounds and the channel paths; the setters only store.
    fn validate(&self) -> Result<(), SetupError> {
        if let Some(path) = self.channels.keys().find(|path| !valid_channel(path)) {
            return Err(SetupError::InvalidChannel(path.clone()));
        }
        InvalidConfig::require_positive_duration("ack_timeout", self.ack_timeout)?;
        InvalidConfig::require_positive("max_pending_acks", self.max_pending_acks)?;
        InvalidConfig::require_positive("max_queued_frames", self.max_queued_frames)?;
        InvalidConfig::require_positive("max_channels_per_connection", self.max_channels_per_connection)?;
        InvalidConfig::require_positive("max_rooms_per_connection", self.max_rooms_per_connection)?;
        Ok(())
    }
}

/// What a join hook knows and can do.
pub struct JoinContext<N: Network> {
    connection: Connection,
    messenger: Messenger<N>,
}

/// What an event handler knows and can do.
pub struct EventContext<N: Network> {
    connection: Connection,
    messenger: Messenger<N>,
    event: String,
}

macro_rules! context_methods {
    ($context:ident) => {
        impl<N: Network> $context<N> {
            /// The connection concerned.
            pub fn connection(&self) -> &Connection {
                &self.connection
            }

            /// The connection's identity, if any.
            pub fn identity(&self) -> Option<Arc<Identity>> {
                self.connection.identity()
            }

            /// The channel path.
            pub fn channel(&self) -> &str {
                self.messenger.channel_path()
            }

            /// A messenger emitting on this channel.
            pub fn messenger(&self) -> &Messenger<N> {
                &self.messenger
            }

            /// Puts the connection in `room` of this channel.
            pub async fn join_room(&self, room: &str) -> Result<(), EmitError> {
                self.messenger.join_room(self.connection.id(), room).await
            }

            /// Takes the connection out of `room` of this channel.
            pub async fn leave_room(&self, room: &str) -> Result<(), EmitError> {
                self.messenger.leave_room(self.connection.id(), room).await
            }

            /// Emits `event` to this connection only.
            pub fn emit<T: Serialize + ?Sized>(&self, event: &str, payload: &T) -> Result<(), EmitError> {
                self.messenger.emit_to(self.connection.id(), event, payload)
            }

            /// Emits `event` to the other members of `room` (not to this connection).
            pub async fn broadcast_to_room<T: Serialize + ?Sized>(
                &self,
                room: &str,
                event: &str,
                payload: &T,
            ) -> Result<usize, EmitError> {
                self.messenger.emit_to_room_except(room, self.connection.id(), event, payload).await
            }
        }
    };
}

context_methods!(JoinContext);
context_methods!(EventContext);

impl<N: Network> EventContext<N> {
    /// The event's name.
    pub fn event(&self) -> &str {
        &self.event
    }
}

/// Work for one connection, handled in arrival order.
enum Work {
    /// Every connection's first work item: the root channel, answered with no frame.
    JoinRoot,
    Join {
        ch: String,
        id: Option<u64>,
    },
    Leave {
        ch: String,
        id: Option<u64>,
    },
    Emit {
        ch: String,
        ev: String,
        data: Value,
        id: Option<u64>,
    },
    /// The connection closed: forget its state once its earlier work is done.
    Closed,
}

impl Work {
    /// The span of this operation (debug level: the default pays a disabled span's check).
    fn span(&self, connection: &Connection) -> tracing::Span {
        let id = connection.id();
        match self {
            Self::JoinRoot => tracing::debug_span!("channels", op = "join", connection = %id, ch = ROOT),
            Self::Join { ch, .. } => tracing::debug_span!("channels", op = "join", connection = %id, ch),
            Self::Leave { ch, .. } => tracing::debug_span!("channels", op = "leave", connection = %id, ch),
            Self::Emit { ch, ev, .. } => {
                tracing::debug_span!("channels", op = "emit", connection = %id, ch, ev)
            }
            Self::Closed => tracing::debug_span!("channels", op = "closed", connection = %id),
        }
    }
}

/// What handles the connections' work: the messenger, and the channels it looks up.
struct Worker<N: Network> {
    messenger: Messenger<N>,
    channels: HashMap<String, Channel<N>>,
    max_channels_per_connection: usize,
}

/// The router: decodes frames, resolves acknowledgements, and queues the rest per
/// connection for in-order handling.
struct ChannelsRouter<N: Network> {
    messenger: Messenger<N>,
    executor: OrderedExecutor<(Connection, Work)>,
}

impl<N: Network> Router<N> for ChannelsRouter<N> {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Added(connection) => {
                // `or_default`: an `emit_with_ack` may have created the state already.
                self.messenger.state.lock().entry(connection.id()).or_default();
                self.enqueue(&connection, Work::JoinRoot).await;
            }
            NetworkEvent::Message { connection, message } => {
                match envelope::decode::<Frame>(ROUTER, &message) {
                    Ok(frame) => self.frame(&connection, frame).await,
                    Err(error) => {
                        tracing::debug!(connection = %connection.id(), %error, "malformed channels frame");
                        let error =
                            RemoteError::new(codes::MALFORMED, format!("not a channels frame: {error}"));
                        // Echo what can be read of the id, so the client fails the request it
                        // waits on now rather than at its timeout. An `ack`'s id is one of
                        // ours, so it goes back as `ack`, never as `id` (PROTOCOL.md 2.3).
                        let peek = envelope::peek(ROUTER, &message);
                        let answer = match (peek.t.as_deref(), peek.id) {
                            (Some("ack"), Some(ack)) => Frame::ack_error(error, ack),
                            (Some("ack"), None) => Frame::error(error, None, None),
                            (_, id) => Frame::error(error, id, None),
                        };
                        reply(&connection, &answer);
                    }
                }
            }
            NetworkEvent::Removed { connection, .. } => {
                if let Some(state) = self.messenger.state.lock().get_mut(&connection.id()) {
                    // Waiting acks fail with `Closed`: their senders are dropped here.
                    state.pending_acks.clear();
                }
                self.enqueue(&connection, Work::Closed).await;
            }
            _ => {}
        }
    }
}

impl<N: Network> ChannelsRouter<N> {
    async fn frame(&self, connection: &Connection, frame: Frame) {
        match frame {
            Frame::Join { ch, id } => self.enqueue(connection, Work::Join { ch, id }).await,
            Frame::Leave { ch, id } => self.enqueue(connection, Work::Leave { ch, id }).await,
            Frame::Emit { ch, ev, data, id } => {
                self.enqueue(connection, Work::Emit { ch, ev, data, id }).await
            }
            Frame::Ack { id, data, err } => {
                let waiting = self
                    .messenger
                    .state
                    .lock()
                    .get_mut(&connection.id())
                    .and_then(|state| state.pending_acks.remove(&id));
                match waiting {
                    // The waiter may have given up just now; nothing to do then.
                    Some(waiting) => drop(waiting.send(err.map_or(Ok(data.unwrap_or_default()), Err))),
                    None => {
                        let error = RemoteError::new(
                            codes::UNKNOWN_ACK,
                            format!("no acknowledgement {id} is waiting"),
                        );
                        // `ack`, not `id`: `id` would name the client's own request `id`.
                        reply(connection, &Frame::ack_error(error, id));
                    }
                }
            }
            Frame::Joined { id, .. } | Frame::Left { id, .. } | Frame::Error { id, .. } => {
                let error =
                    RemoteError::new(codes::UNEXPECTED, "only the server sends joined, left and error");
                reply(connection, &Frame::error(error, id, None));
            }
        }
    }

    /// Queues `work` behind the connection's earlier frames; waits while
    /// `max_queued_frames` are in flight.
    async fn enqueue(&self, connection: &Connection, work: Work) {
        self.executor.push(connection.id(), (connection.clone(), work)).await;
    }
}

async fn handle<N: Network>(worker: &Worker<N>, connection: &Connection, work: Work) {
    match work {
        Work::Closed => {
            worker.messenger.state.lock().remove(&connection.id());
        }
        Work::JoinRoot => {
            if let Err(error) = join(worker, connection, ROOT).await {
                reply(connection, &Frame::error(error, None, Some(ROOT.to_owned())));
            }
        }
        Work::Join { ch, id } => {
            let answer = match join(worker, connection, &ch).await {
                Ok(()) => Frame::Joined { ch, id },
                Err(error) => Frame::error(error, id, Some(ch)),
            };
            reply(connection, &answer);
        }
        Work::Leave { ch, id } => {
            let answer = match leave(&worker.messenger, connection, &ch).await {
                Ok(()) => Frame::Left { ch, id },
                Err(error) => Frame::error(error, id, Some(ch)),
            };
            reply(connection, &answer);
        }
        Work::Emit { ch, ev, data, id } => {
            let result = event(worker, connection, &ch, ev, data).await;
            match (id, result) {
                (Some(id), result) => reply(connection, &Frame::ack(id, result)),
                (None, Ok(_)) => {}
                (None, Err(error)) => reply(connection, &Frame::error(error, None, Some(ch))),
            }
        }
    }
}

async fn join<N: Network>(worker: &Worker<N>, connection: &Connection, ch: &str) -> Result<(), RemoteError> {
    let messenger = &worker.messenger;
    let state = &messenger.state;
    let Some(channel) = worker.channels.get(ch) else {
        return Err(RemoteError::new(codes::UNKNOWN_CHANNEL, format!("no channel {ch:?}")));
    };
    let (already, joined) = {
        let connections = state.lock();
        let state = connections.get(&connection.id());
        (state.is_some_and(|state| state.joined.contains(ch)), state.map_or(0, |state| state.joined.len()))
    };
    if already {
        return Ok(());
    }
    // Before the hook runs: a refused join costs no hook call. Frames of one connection are
    // handled one at a time, so no other join of it runs until this one is recorded.
    let max = worker.max_channels_per_connection;
    if joined >= max {
        return Err(RemoteError::new(codes::LIMIT, format!("at most {max} channels per connection")));
    }
    let scoped = messenger.channel(ch);
    if let Some(hook) = &channel.on_join {
        let ctx = JoinContext { connection: connection.clone(), messenger: scoped.clone() };
        run_guarded(hook(ctx)).await?;
    }
    let adapter = messenger.network.adapter();
    let id = connection.id();
    let mut rooms = vec![protocol::channel_room(ch)];
    if let Some(identity) = connection.identity() {
        rooms.extend(
            identity.user_id.as_deref().map(|user| protocol::scoped_room(ch, &protocol::user_room(user))),
        );
        rooms.extend(
            identity
                .session_id
                .as_deref()
                .map(|session| protocol::scoped_room(ch, &protocol::session_room(session))),
        );
    }
    for room in rooms {
        adapter.join(id, room).await.map_err(|error| RemoteError::internal(error.to_string()))?;
    }
    if let Some(connection_state) = state.lock().get_mut(&id) {
        connection_state.joined.insert(ch.to_owned());
    }
    if connection.is_closed() {
        // Closed while joining: the server may already have emptied its rooms.
        let _ = adapter.leave_all(id).await;
    }
    Ok(())
}

async fn leave<N: Network>(
    messenger: &Messenger<N>,
    connection: &Connection,
    ch: &str,
) -> Result<(), RemoteError> {
    let id = connection.id();
    let prefix = format!("{ch}#");
    let was_joined = messenger.state.lock().get_mut(&id).is_some_and(|state| {
        // The channel's rooms are left below, so their slots are free.
        state.rooms.retain(|room| !room.starts_with(&prefix));
        state.joined.remove(ch)
    });
    if !was_joined {
        return Err(RemoteError::new(codes::NOT_JOINED, format!("not in channel {ch:?}")));
    }
    let adapter = messenger.network.adapter();
    let rooms = adapter.rooms_of(id).await.map_err(|error| RemoteError::internal(error.to_string()))?;
    for room in rooms.iter().filter(|room| room.starts_with(&prefix) || &***room == ch) {
        adapter.leave(id, room).await.map_err(|error| RemoteError::internal(error.to_string()))?;
    }
    Ok(())
}

async fn event<N: Network>(
    worker: &Worker<N>,
    connection: &Connection,
    ch: &str,
    ev: String,
    data: Value,
) -> Result<Value, RemoteError> {
    let messenger = &worker.messenger;
    if !messenger.state.is_joined(connection.id(), ch) {
        return Err(RemoteError::new(
            codes::NOT_JOINED,
            format!("join channel {ch:?} before emitting on it"),
        ));
    }
    let handler = worker.channels.get(ch).and_then(|channel| channel.handlers.get(&ev)).cloned();
    let Some(handler) = handler else {
        return Err(RemoteError::new(codes::NO_HANDLER, format!("no handler for {ev:?} on {ch:?}")));
    };
    let ctx = EventContext { connection: connection.clone(), messenger: messenger.channel(ch), event: ev };
    run_guarded(handler(ctx, data)).await
}

/// Runs a hook; a panic becomes an `internal` error instead of a hung caller.
async fn run_guarded<T>(hook: BoxFuture<Result<T, RemoteError>>) -> Result<T, RemoteError> {
    match AssertUnwindSafe(hook).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!("a channels handler panicked");
            Err(RemoteError::internal("the handler failed"))
        }
    }
}

fn reply(connection: &Connection, frame: &Frame) {
    match envelope::json(ROUTER, frame) {
        Ok(message) => {
            if let Err(error) = connection.send(message) {
                tracing::debug!(connection = %connection.id(), %error, "channels reply not sent");
            }
        }
        Err(error) => tracing::error!(%error, "cannot encode a channels frame"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use network_core::Constraint;
    use ws_server::Server;

    use super::*;

    #[test]
    fn every_bound_must_be_positive_and_every_path_valid() {
        let base = ChannelsConfig::<Server>::default;
        assert!(base().validate().is_ok());
        let refused = |config: ChannelsConfig<Server>| match config.validate() {
            Err(SetupError::Config(error)) => error,
            other => panic!("expected a configuration error, got {other:?}"),
        };
        let positive = |field| InvalidConfig::new(field, Constraint::Positive);
        assert_eq!(refused(base().ack_timeout(Duration::ZERO)), positive("ack_timeout"));
        assert_eq!(refused(base().max_pending_acks(0)), positive("max_pending_acks"));
        assert_eq!(refused(base().max_queued_frames(0)), positive("max_queued_frames"));
        assert_eq!(refused(base().max_channels_per_connection(0)), positive("max_channels_per_connection"));
        assert_eq!(refused(base().max_rooms_per_connection(0)), positive("max_rooms_per_connection"));
        let bad_path = base().channel("no-slash", Channel::new());
        assert!(matches!(bad_path.validate(), Err(SetupError::InvalidChannel(path)) if path == "no-slash"));
    }
}
