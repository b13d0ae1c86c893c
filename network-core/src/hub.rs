//! The hub: where a network's connections, routers and application events meet.
//!
//! Servers and clients (and any other [`Network`]) own one [`HubDriver`]. Their socket
//! tasks report connections and frames through it; the hub routes each frame by its
//! envelope to the attached router or to the application, through bounded queues.
//! Applications and routers see the [`Hub`] side only (through [`Network::hub`]): its
//! connections, its routers and the application's event stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{mpsc, oneshot};

use crate::connection::{CloseFrame, Connection, ConnectionId, Link};
use crate::envelope;
use crate::error::AttachError;
use crate::heartbeat;
use crate::message::Message;
use crate::network::{Events, Network, NetworkEvent};
use crate::resume;
use crate::router::Router;
use crate::sync::{lock, read, write};

tokio::task_local! {
    static RESTORING: ConnectionId;
}

/// Whether the current task is a router handling the `Added` event of connection `id`
/// while its network restores state (a client that just reconnected). A client uses it
/// to send such frames ahead of its offline queue.
pub fn is_restoring(id: ConnectionId) -> bool {
    RESTORING.try_with(|restoring| *restoring == id).unwrap_or(false)
}

/// Queue bounds of a [`Hub`]. The networks check them when they start (a zero capacity
/// is refused, naming the field); [`HubDriver::new`] itself reads a zero as 1.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubConfig {
    /// Events waiting for each router. When full, the connections feeding the router wait.
    /// Default 1024.
    pub router_queue_capacity: usize,
    /// Events waiting for the application ([`Network::events`]). When full, connections
    /// wait (before the stream is taken, see [`UntakenEvents`]). Default 1024.
    pub event_queue_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self { router_queue_capacity: 1024, event_queue_capacity: 1024 }
    }
}

impl HubConfig {
    /// Sets [`router_queue_capacity`](Self::router_queue_capacity).
    pub fn router_queue_capacity(mut self, capacity: usize) -> Self {
        self.router_queue_capacity = capacity;
        self
    }

    /// Sets [`event_queue_capacity`](Self::event_queue_capacity).
    pub fn event_queue_capacity(mut self, capacity: usize) -> Self {
        self.event_queue_capacity = capacity;
        self
    }
}

/// What a hub does with the application's events before [`Network::events`] is taken.
///
/// The transport chooses, when it creates its [`HubDriver`]: the right answer depends on
/// what an event pins in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UntakenEvents {
    /// Discard them (with a debug log). For a network whose connections come from peers
    /// (a server): a kept event holds its [`Connection`], and with it the transport's
    /// socket, for as long as nobody takes the stream.
    Discard,
    /// Keep the first ones, up to [`HubConfig::event_queue_capacity`], for whoever takes
    /// the stream later; once that many wait, newer ones are discarded (with a debug log)
    /// rather than waited for, so that a network driven only by routers never stalls.
    /// For a network that starts connecting before the application can take the stream
    /// (a client, whose one connection lives as long as it does anyway).
    Keep,
}

/// A frame whose queue was full, waiting for room.
enum Blocked {
    Router(mpsc::Sender<Delivery>, Delivery),
    Application(NetworkEvent),
}

struct Delivery {
    event: NetworkEvent,
    /// Fired once the router has handled the event.
    handled: Option<oneshot::Sender<()>>,
    restoring: bool,
}

/// The open connections of a network, by id. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    connections: Arc<RwLock<HashMap<ConnectionId, Registered>>>,
}

/// A registered connection and its link, kept beside the handle so that a broadcast to
/// everyone reaches each socket's queue without reading the handle's state first (a cache
/// miss per member, a tenth of a fan-out to 10,000).
struct Registered {
    connection: Connection,
    link: Arc<dyn Link>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("len", &self.len()).finish()
    }
}

impl Registry {
    /// The open connection with this id.
    pub fn get(&self, id: ConnectionId) -> Option<Connection> {
        read(&self.connections).get(&id).map(|registered| registered.connection.clone())
    }

    /// Every open connection.
    pub fn all(&self) -> Vec<Connection> {
        read(&self.connections).values().map(|registered| registered.connection.clone()).collect()
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        read(&self.connections).len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for each connection whose id `ids` yields, under one read lock.
    pub fn for_each(&self, ids: impl IntoIterator<Item = ConnectionId>, mut f: impl FnMut(&Connection)) {
        let connections = read(&self.connections);
        for id in ids {
            if let Some(registered) = connections.get(&id) {
                f(&registered.connection);
            }
        }
    }

    /// Calls `f` with every open connection, under the registry's read lock.
    pub fn for_all(&self, mut f: impl FnMut(&Connection)) {
        for registered in read(&self.connections).values() {
            f(&registered.connection);
        }
    }

    /// Calls `f` with every open connection's id and link, under the registry's read lock.
    pub(crate) fn for_all_links(&self, mut f: impl FnMut(ConnectionId, &dyn Link)) {
        for (id, registered) in read(&self.connections).iter() {
            f(*id, registered.link.as_ref());
        }
    }

    fn insert(&self, connection: Connection) {
        let link = connection.link().clone();
        write(&self.connections).insert(connection.id(), Registered { connection, link });
    }

    fn remove(&self, id: ConnectionId) {
        write(&self.connections).remove(&id);
    }
}

/// What every clone of a [`Hub`] and its [`HubDriver`] share.
struct HubState {
    config: HubConfig,
    untaken: UntakenEvents,
    registry: Registry,
    routers: RwLock<HashMap<String, mpsc::Sender<Delivery>>>,
    events_tx: mpsc::Sender<NetworkEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<NetworkEvent>>>,
    events_taken: AtomicBool,
}

/// Connections, routers and the application's event queue of one network, as its users
/// see them (through [`Network::hub`]). Cheap to clone.
///
/// A hub is created with its [`HubDriver`], which the transport keeps for itself: only
/// the transport reports connections and frames.
#[derive(Clone)]
pub struct Hub {
    state: Arc<HubState>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.state.registry.len())
            .field("routers", &read(&self.state.routers).keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Hub {
    fn new(config: HubConfig, untaken: UntakenEvents) -> Self {
        let (events_tx, events_rx) = mpsc::channel(config.event_queue_capacity.max(1));
        Self {
            state: Arc::new(HubState {
                config,
                untaken,
                registry: Registry::default(),
                routers: RwLock::new(HashMap::new()),
                events_tx,
                events_rx: Mutex::new(Some(events_rx)),
                events_taken: AtomicBool::new(false),
            }),
        }
    }

    /// The open connections.
    pub fn registry(&self) -> &Registry {
        &self.state.registry
    }

    /// The connections open now.
    pub fn connections(&self) -> Vec<Connection> {
        self.state.registry.all()
    }

    /// The open connection with this id.
    pub fn connection(&self, id: ConnectionId) -> Option<Connection> {
        self.state.registry.get(id)
    }

    /// Names of the attached routers.
    pub fn router_names(&self) -> Vec<String> {
        read(&self.state.routers).keys().cloned().collect()
    }

    /// How many events wait in each attached router's inbox (by router name, in no
    /// particular order), each bounded by [`HubConfig::router_queue_capacity`]: a router
    /// whose queue stays near its bound is slower than its traffic, and the connections
    /// feeding it wait (for metrics and admin views).
    pub fn router_queue_depths(&self) -> Vec<(String, usize)> {
        read(&self.state.routers)
            .iter()
            .map(|(name, inbox)| (name.clone(), inbox.max_capacity() - inbox.capacity()))
            .collect()
    }

    /// How many events wait in the application's event queue, bounded by
    /// [`HubConfig::event_queue_capacity`].
    pub fn event_queue_depth(&self) -> usize {
        self.state.events_tx.max_capacity() - self.state.events_tx.capacity()
    }

    /// Spawns `router` on the current tokio runtime, fed by a bounded inbox.
    /// See [`Network::attach`].
    pub fn attach<N: Network, R: Router<N>>(&self, network: N, mut router: R) -> Result<(), AttachError> {
        let name = router.name().to_owned();
        envelope::validate_router_name(&name)?;
        if name == heartbeat::ROUTER || name == resume::ROUTER {
            return Err(AttachError::Reserved(name));
        }
        let (tx, mut inbox) = mpsc::channel::<Delivery>(self.state.config.router_queue_capacity.max(1));
        {
            let mut routers = write(&self.state.routers);
            if routers.contains_key(&name) {
                return Err(AttachError::NameTaken(name));
            }
            routers.insert(name.clone(), tx);
        }
        tokio::spawn(async move {
            while let Some(delivery) = inbox.recv().await {
                let id = delivery.event.connection().id();
                let handling = router.on_event(&network, delivery.event);
                if delivery.restoring {
                    RESTORING.scope(id, handling).await;
                } else {
                    handling.await;
                }
                if let Some(handled) = delivery.handled {
                    let _ = handled.send(());
                }
            }
            tracing::debug!(router = %name, "router stopped");
        });
        Ok(())
    }

    /// Takes the application's event stream. See [`Network::events`].
    pub fn take_events(&self) -> Option<Events> {
        let receiver = lock(&self.state.events_rx).take()?;
        self.state.events_taken.store(true, Ordering::Release);
        Some(Events { receiver })
    }

    fn routers(&self) -> Vec<mpsc::Sender<Delivery>> {
        read(&self.state.routers).values().cloned().collect()
    }

    async fn to_application(&self, event: NetworkEvent) {
        if let Some(event) = self.try_to_application(event)
            && self.state.events_tx.send(event).await.is_err()
        {
            tracing::debug!("the application dropped its events stream; event discarded");
        }
    }

    /// Queues `event` for the application, or discards it (nobody reads the queue, or its
    /// reader is gone); gives it back when the queue is full and has a reader, to be
    /// awaited.
    fn try_to_application(&self, event: NetworkEvent) -> Option<NetworkEvent> {
        let taken = self.state.events_taken.load(Ordering::Acquire);
        if !taken && self.state.untaken == UntakenEvents::Discard {
            tracing::debug!(connection = %event.connection().id(), "no consumer of events(); event discarded");
            return None;
        }
        match self.state.events_tx.try_send(event) {
            Ok(()) => None,
            // Not taken yet: nobody may ever read the queue, so a full one must not block.
            // (Read again: taken meanwhile, the queue has a reader and the event waits.)
            Err(mpsc::error::TrySendError::Full(event))
                if !taken && !self.state.events_taken.load(Ordering::Acquire) =>
            {
                tracing::debug!(connection = %event.connection().id(), "events() not taken and its queue full; event discarded");
                None
            }
            Err(mpsc::error::TrySendError::Full(event)) => Some(event),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("the application dropped its events stream; event discarded");
                None
            }
        }
    }
}

/// The transport's side of a [`Hub`]: what a server, a client or a test network calls to
/// report its connections and their frames. Cheap to clone.
///
/// A transport creates one with [`HubDriver::new`], keeps it (its [`Network`]
/// implementation hands out [`hub`](Self::hub) only), and for each connection calls
/// [`connection_added`](Self::connection_added), then [`message`](Self::message) for each
/// data frame, then [`connection_removed`](Self::connection_removed), all from the
/// connection's own task so that each connection's events stay in order. See "Writing a
/// transport" in the [crate docs](crate).
#[derive(Clone)]
pub struct HubDriver {
    hub: Hub,
}

impl std::fmt::Debug for HubDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HubDriver").field(&self.hub).finish()
    }
}

impl HubDriver {
    /// An empty hub and its driver. `untaken` says what happens to the application's
    /// events until it takes them.
    pub fn new(config: HubConfig, untaken: UntakenEvents) -> Self {
        Self { hub: Hub::new(config, untaken) }
    }

    /// The hub that the transport's [`Network::hub`] returns.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Registers `connection` and tells every router, then the application.
    ///
    /// With `restoring`, waits until every router has handled the event, and marks the
    /// routers' tasks meanwhile (see [`is_restoring`]): a client uses this on reconnect so
    /// that routers restore their state before its offline queue is flushed.
    pub async fn connection_added(&self, connection: &Connection, restoring: bool) {
        self.hub.state.registry.insert(connection.clone());
        let mut handled = Vec::new();
        for router in self.hub.routers() {
            let (tx, rx) = if restoring {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let delivery =
                Delivery { event: NetworkEvent::Added(connection.clone()), handled: tx, restoring };
            if router.send(delivery).await.is_ok() {
                handled.extend(rx);
            }
        }
        for rx in handled {
            // An error means the router task ended; nothing to wait for then.
            let _ = rx.await;
        }
        self.hub.to_application(NetworkEvent::Added(connection.clone())).await;
    }

    /// Routes a frame from `connection`: a heartbeat (`hb`) is answered on the connection
    /// at once ([`heartbeat`]); any other frame goes to the router its envelope names when
    /// that router is attached, otherwise to the application. Waits while the target queue
    /// is full.
    pub async fn message(&self, connection: &Connection, message: Message) {
        let name = envelope::router_name(&message);
        if name == Some(heartbeat::ROUTER) {
            // Answered here, not by a router task: a pong must not wait behind the routers'
            // work on earlier frames, and every network answers whatever is attached.
            if let Some(answer) = heartbeat::answer(&message)
                && let Err(error) = connection.send(answer)
            {
                tracing::debug!(connection = %connection.id(), %error, "heartbeat answer not sent");
            }
            return;
        }
        if name == Some(resume::ROUTER) {
            // The transport reads the session frames of a resumable session itself; one
            // reaching the hub belongs to no session (PROTOCOL.md 9: ignored).
            tracing::debug!(connection = %connection.id(), "session frame without a session: ignored");
            return;
        }
        let router = name.and_then(|name| read(&self.hub.state.routers).get(name).cloned());
        let event = NetworkEvent::Message { connection: connection.clone(), message };
        // Fast path without waiting; the waiting path is boxed so that its state does not
        // enlarge every connection task's future (and idle memory) for the rare full queue.
        let blocked = match router {
            Some(router) => match router.try_send(Delivery { event, handled: None, restoring: false }) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(delivery)) => Blocked::Router(router, delivery),
                Err(mpsc::error::TrySendError::Closed(delivery)) => {
                    tracing::warn!(connection = %connection.id(), "router task ended; frame goes to the application");
                    Blocked::Application(delivery.event)
                }
            },
            None => match self.hub.try_to_application(event) {
                None => return,
                Some(event) => Blocked::Application(event),
            },
        };
        Box::pin(self.deliver_blocked(blocked)).await;
    }

    async fn deliver_blocked(&self, blocked: Blocked) {
        match blocked {
            Blocked::Router(router, delivery) => {
                if let Err(lost) = router.send(delivery).await {
                    self.hub.to_application(lost.0.event).await;
                }
            }
            Blocked::Application(event) => self.hub.to_application(event).await,
        }
    }

    /// Unregisters `connection` and tells every router, then the application.
    pub async fn connection_removed(&self, connection: &Connection, frame: CloseFrame) {
        self.hub.state.registry.remove(connection.id());
        for router in self.hub.routers() {
            let event = NetworkEvent::Removed { connection: connection.clone(), frame: frame.clone() };
            let _ = router.send(Delivery { event, handled: None, restoring: false }).await;
        }
        self.hub.to_application(NetworkEvent::Removed { connection: connection.clone(), frame }).await;
    }

    /// Detaches every router; their tasks end once they have drained their inboxes.
    pub fn detach_all(&self) {
        write(&self.hub.state.routers).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::connection::{CloseCode, ConnectionMeta, Link};
    use crate::error::SendError;

    struct Silent;

    impl Link for Silent {
        fn send(&self, _message: Message) -> Result<(), SendError> {
            Ok(())
        }

        fn close(&self, _frame: CloseFrame) {}
    }

    fn connection() -> Connection {
        Connection::new(ConnectionId::next(), ConnectionMeta::default(), Arc::new(Silent)).0
    }

    fn driver(untaken: UntakenEvents) -> HubDriver {
        HubDriver::new(HubConfig::default().event_queue_capacity(2), untaken)
    }

    /// Reports a connection with one frame and its close: four events. Completes only if
    /// no report waits for room.
    async fn report_four_events(driver: &HubDriver) {
        let connection = connection();
        let reports = async {
            driver.connection_added(&connection, false).await;
            driver.message(&connection, Message::text("one")).await;
            driver.message(&connection, Message::text("two")).await;
            driver.connection_removed(&connection, CloseFrame::new(CloseCode::NORMAL, "")).await;
        };
        tokio::time::timeout(Duration::from_secs(1), reports).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_discarding_hub_drops_the_events_nobody_took() {
        let driver = driver(UntakenEvents::Discard);
        report_four_events(&driver).await;
        let mut events = driver.hub().take_events().unwrap();
        assert!(events.try_recv().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_keeping_hub_keeps_the_first_untaken_events_and_never_waits() {
        let driver = driver(UntakenEvents::Keep);
        report_four_events(&driver).await;
        let mut events = driver.hub().take_events().unwrap();
        assert!(matches!(events.try_recv(), Some(NetworkEvent::Added(_))));
        match events.try_recv() {
            Some(NetworkEvent::Message { message, .. }) => assert_eq!(message, Message::text("one")),
            other => panic!("expected the first frame, got {other:?}"),
        }
        assert!(events.try_recv().is_none(), "a capacity of two keeps two events");
    }

    #[tokio::test(start_paused = true)]
    async fn the_event_queue_depth_counts_what_waits() {
        let driver = driver(UntakenEvents::Keep);
        let hub = driver.hub().clone();
        assert_eq!(hub.event_queue_depth(), 0);
        report_four_events(&driver).await;
        assert_eq!(hub.event_queue_depth(), 2);
        let mut events = hub.take_events().unwrap();
        assert!(events.try_recv().is_some());
        assert_eq!(hub.event_queue_depth(), 1);
        assert!(hub.router_queue_depths().is_empty(), "no router attached");
    }

    #[tokio::test(start_paused = true)]
    async fn once_taken_a_full_queue_holds_the_reports_back() {
        let driver = driver(UntakenEvents::Keep);
        let mut events = driver.hub().take_events().unwrap();
        let connection = connection();
        driver.connection_added(&connection, false).await;
        driver.message(&connection, Message::text("one")).await;
        let third = driver.message(&connection, Message::text("two"));
        tokio::pin!(third);
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut third).await.is_err(), "the queue is full");
        assert!(matches!(events.recv().await, Some(NetworkEvent::Added(_))));
        tokio::time::timeout(Duration::from_secs(1), third).await.unwrap();
    }
}
