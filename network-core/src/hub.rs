//! The hub: where a network's connections, routers and application events meet.
//!
//! Servers and clients (and any other [`Network`]) own one [`Hub`]. Their socket tasks
//! report connections and frames to it; it routes each frame by its envelope to the
//! attached router or to the application, through bounded queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{mpsc, oneshot};

use crate::connection::{CloseFrame, Connection, ConnectionId};
use crate::envelope;
use crate::error::AttachError;
use crate::heartbeat;
use crate::message::Message;
use crate::network::{Events, Network, NetworkEvent};
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
/// is refused, naming the field); [`Hub::new`] itself reads a zero as 1.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HubConfig {
    /// Events waiting for each router. When full, the connections feeding the router wait.
    /// Default 1024.
    pub router_queue_capacity: usize,
    /// Events waiting for the application ([`Network::events`]). When full, connections
    /// wait. Default 1024.
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
    connections: Arc<RwLock<HashMap<ConnectionId, Connection>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("len", &self.len()).finish()
    }
}

impl Registry {
    /// The open connection with this id.
    pub fn get(&self, id: ConnectionId) -> Option<Connection> {
        read(&self.connections).get(&id).cloned()
    }

    /// Every open connection.
    pub fn all(&self) -> Vec<Connection> {
        read(&self.connections).values().cloned().collect()
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
            if let Some(connection) = connections.get(&id) {
                f(connection);
            }
        }
    }

    /// Calls `f` with every open connection, under the registry's read lock.
    pub fn for_all(&self, mut f: impl FnMut(&Connection)) {
        for connection in read(&self.connections).values() {
            f(connection);
        }
    }

    fn insert(&self, connection: Connection) {
        write(&self.connections).insert(connection.id(), connection);
    }

    fn remove(&self, id: ConnectionId) {
        write(&self.connections).remove(&id);
    }
}

struct Shared {
    config: HubConfig,
    registry: Registry,
    routers: RwLock<HashMap<String, mpsc::Sender<Delivery>>>,
    events_tx: mpsc::Sender<NetworkEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<NetworkEvent>>>,
    events_taken: AtomicBool,
}

/// Connections, routers and the application's event queue of one network. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.shared.registry.len())
            .field("routers", &read(&self.shared.routers).keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Self {
        let (events_tx, events_rx) = mpsc::channel(config.event_queue_capacity.max(1));
        Self {
            shared: Arc::new(Shared {
                config,
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
        &self.shared.registry
    }

    /// The connections open now.
    pub fn connections(&self) -> Vec<Connection> {
        self.shared.registry.all()
    }

    /// The open connection with this id.
    pub fn connection(&self, id: ConnectionId) -> Option<Connection> {
        self.shared.registry.get(id)
    }

    /// Names of the attached routers.
    pub fn router_names(&self) -> Vec<String> {
        read(&self.shared.routers).keys().cloned().collect()
    }

    /// Spawns `router` on the current tokio runtime, fed by a bounded inbox.
    /// See [`Network::attach`].
    pub fn attach<N: Network, R: Router<N>>(&self, network: N, mut router: R) -> Result<(), AttachError> {
        let name = router.name().to_owned();
        envelope::validate_router_name(&name)?;
        if name == heartbeat::ROUTER {
            return Err(AttachError::Reserved(name));
        }
        let (tx, mut inbox) = mpsc::channel::<Delivery>(self.shared.config.router_queue_capacity.max(1));
        {
            let mut routers = write(&self.shared.routers);
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

    /// Registers `connection` and tells every router, then the application.
    ///
    /// With `restoring`, waits until every router has handled the event, and marks the
    /// routers' tasks meanwhile (see [`is_restoring`]): a client uses this on reconnect so
    /// that routers restore their state before its offline queue is flushed.
    pub async fn connection_added(&self, connection: &Connection, restoring: bool) {
        self.shared.registry.insert(connection.clone());
        let mut handled = Vec::new();
        for router in self.routers() {
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
        self.to_application(NetworkEvent::Added(connection.clone())).await;
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
        let router = name.and_then(|name| read(&self.shared.routers).get(name).cloned());
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
            None => Blocked::Application(event),
        };
        Box::pin(self.deliver_blocked(blocked)).await;
    }

    async fn deliver_blocked(&self, blocked: Blocked) {
        match blocked {
            Blocked::Router(router, delivery) => {
                if let Err(lost) = router.send(delivery).await {
                    self.to_application(lost.0.event).await;
                }
            }
            Blocked::Application(event) => self.to_application(event).await,
        }
    }

    /// Unregisters `connection` and tells every router, then the application.
    pub async fn connection_removed(&self, connection: &Connection, frame: CloseFrame) {
        self.shared.registry.remove(connection.id());
        for router in self.routers() {
            let event = NetworkEvent::Removed { connection: connection.clone(), frame: frame.clone() };
            let _ = router.send(Delivery { event, handled: None, restoring: false }).await;
        }
        self.to_application(NetworkEvent::Removed { connection: connection.clone(), frame }).await;
    }

    /// Takes the application's event stream. See [`Network::events`].
    pub fn take_events(&self) -> Option<Events> {
        let receiver = lock(&self.shared.events_rx).take()?;
        self.shared.events_taken.store(true, Ordering::Release);
        Some(Events { receiver })
    }

    /// Detaches every router; their tasks end once they have drained their inboxes.
    pub fn detach_all(&self) {
        write(&self.shared.routers).clear();
    }

    fn routers(&self) -> Vec<mpsc::Sender<Delivery>> {
        read(&self.shared.routers).values().cloned().collect()
    }

    async fn to_application(&self, event: NetworkEvent) {
        if !self.shared.events_taken.load(Ordering::Acquire) {
            tracing::debug!(connection = %event.connection().id(), "no consumer of events(); event discarded");
            return;
        }
        let event = match self.shared.events_tx.try_send(event) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(event)) => event,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("the application dropped its events stream; event discarded");
                return;
            }
        };
        if self.shared.events_tx.send(event).await.is_err() {
            tracing::debug!("the application dropped its events stream; event discarded");
        }
    }
}
