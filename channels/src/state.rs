//! What the router and every [`Messenger`](crate::Messenger) share: each connection's
//! channels, rooms and pending acknowledgements, the limits on them, and the room
//! questions waiting on other nodes.
//!
//! Its own module so that the server side's dependencies point one way: `server` (the
//! router and its configuration) uses `messenger`, which uses `state`, which uses
//! `cluster` (the room questions' bookkeeping); `cluster` knows none of them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use network_core::{ConnectionId, Room};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::cluster::Collectors;
use crate::error::{AckError, EmitError, RemoteError};

/// One connection's channels, rooms and pending acknowledgements.
#[derive(Default)]
pub(crate) struct ConnectionState {
    pub(crate) joined: HashSet<String>,
    /// The rooms `join_room` put the connection in (scoped names), for
    /// `max_rooms_per_connection`.
    pub(crate) rooms: HashSet<Room>,
    next_ack_id: u64,
    pub(crate) pending_acks: HashMap<u64, oneshot::Sender<Result<Value, RemoteError>>>,
}

/// The bounds of [`ChannelsConfig`](crate::ChannelsConfig) that the messenger enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) ack_timeout: Duration,
    pub(crate) max_pending_acks: usize,
    pub(crate) max_rooms_per_connection: usize,
}

/// The channels router's state, shared by the router and the messengers.
pub(crate) struct ChannelsState {
    pub(crate) limits: Limits,
    connections: Mutex<HashMap<ConnectionId, ConnectionState>>,
    /// Room acknowledgement questions this node waits on other nodes for.
    pub(crate) cluster: Arc<Collectors>,
}

impl ChannelsState {
    pub(crate) fn new(limits: Limits) -> Self {
        Self { limits, connections: Mutex::new(HashMap::new()), cluster: Arc::default() }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<ConnectionId, ConnectionState>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register_ack(
        &self,
        connection: ConnectionId,
        reply: oneshot::Sender<Result<Value, RemoteError>>,
    ) -> Result<u64, AckError> {
        let mut connections = self.lock();
        // The caller checked that the connection is open; the router may not have seen its
        // `Added` yet.
        let state = connections.entry(connection).or_default();
        if state.pending_acks.len() >= self.limits.max_pending_acks {
            return Err(AckError::TooManyPending);
        }
        state.next_ack_id += 1;
        let id = state.next_ack_id;
        state.pending_acks.insert(id, reply);
        Ok(id)
    }

    pub(crate) fn forget_ack(&self, connection: ConnectionId, id: u64) {
        if let Some(state) = self.lock().get_mut(&connection) {
            state.pending_acks.remove(&id);
        }
    }

    pub(crate) fn is_joined(&self, connection: ConnectionId, channel: &str) -> bool {
        self.lock().get(&connection).is_some_and(|state| state.joined.contains(channel))
    }

    /// Counts `room` for `connection` before it joins it: `Err` at the limit. Connections
    /// this router does not track (not open, or on another node) are not counted.
    pub(crate) fn claim_room(&self, connection: ConnectionId, room: &Room) -> Result<(), EmitError> {
        let mut connections = self.lock();
        let Some(state) = connections.get_mut(&connection) else { return Ok(()) };
        if !state.rooms.contains(room) {
            let max = self.limits.max_rooms_per_connection;
            if state.rooms.len() >= max {
                return Err(EmitError::TooManyRooms(max));
            }
            state.rooms.insert(room.clone());
        }
        Ok(())
    }

    /// Frees the slot of `room` (it was left, or joining it failed).
    pub(crate) fn release_room(&self, connection: ConnectionId, room: &Room) {
        if let Some(state) = self.lock().get_mut(&connection) {
            state.rooms.remove(room);
        }
    }
}
