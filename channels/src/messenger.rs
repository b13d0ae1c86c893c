//! The messaging handle: emit to users, sessions, rooms and everyone, from anywhere.

use std::sync::Arc;
use std::time::Duration;

use network_core::{Adapter, ConnectionId, EncodeError, Message, Network, NodeId, Room, Target, envelope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::cluster;
use crate::error::{AckError, EmitError};
use crate::protocol::{self, ROUTER, valid_channel, valid_name};
use crate::state::ChannelsState;

/// An outgoing `emit` frame, serialised straight from the caller's payload.
#[derive(Serialize)]
struct EmitOut<'a, T: ?Sized> {
    t: &'static str,
    ch: &'a str,
    ev: &'a str,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
}

/// Emits events to connections of a server from anywhere in the application (an HTTP
/// handler, a background job): cheap to clone, `Send + Sync`.
///
/// Every emit is for one channel: `/` unless chosen with [`channel`](Self::channel). It
/// reaches the connections that joined that channel and are in the target room; the frame
/// is encoded once and shared between them. An emit that reaches nobody (an offline user)
/// returns `Ok(0)`. All fan-out goes through the network's room adapter.
pub struct Messenger<N: Network> {
    pub(crate) network: N,
    pub(crate) state: Arc<ChannelsState>,
    pub(crate) channel: Arc<str>,
}

impl<N: Network> Clone for Messenger<N> {
    fn clone(&self) -> Self {
        Self { network: self.network.clone(), state: self.state.clone(), channel: self.channel.clone() }
    }
}

impl<N: Network> std::fmt::Debug for Messenger<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger").field("channel", &self.channel).finish()
    }
}

impl<N: Network> Messenger<N> {
    /// The same messenger, emitting on channel `path`.
    pub fn channel(&self, path: &str) -> Self {
        Self { network: self.network.clone(), state: self.state.clone(), channel: path.into() }
    }

    /// The channel this messenger emits on.
    pub fn channel_path(&self) -> &str {
        &self.channel
    }

    /// The network it emits through.
    pub fn network(&self) -> &N {
        &self.network
    }

    /// Emits `event` to every connection of user `user_id` (every tab, every device).
    pub async fn emit_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        self.emit_to_rooms(&[protocol::user_room(user_id).as_str()], event, payload).await
    }

    /// Emits `event` to every connection of each of `user_ids`, each connection once.
    pub async fn emit_to_users<T: Serialize + ?Sized>(
        &self,
        user_ids: &[&str],
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        let rooms: Vec<String> = user_ids.iter().map(|user| protocol::user_room(user)).collect();
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        self.emit_to_rooms(&rooms, event, payload).await
    }

    /// Emits `event` to every connection of session `session_id`.
    pub async fn emit_to_session<T: Serialize + ?Sized>(
        &self,
        session_id: &str,
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        self.emit_to_rooms(&[protocol::session_room(session_id).as_str()], event, payload).await
    }

    /// Emits `event` to the members of `room`.
    pub async fn emit_to_room<T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        self.emit_to_rooms(&[room], event, payload).await
    }

    /// Emits `event` to the members of `room` except `except` (typically the sender).
    pub async fn emit_to_room_except<T: Serialize + ?Sized>(
        &self,
        room: &str,
        except: ConnectionId,
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        let target = self.target(&[room])?.except(except);
        self.broadcast(target, event, payload).await
    }

    /// Emits `event` to the members of any of `rooms`; a connection in several of them
    /// receives it once.
    pub async fn emit_to_rooms<T: Serialize + ?Sized>(
        &self,
        rooms: &[&str],
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        let target = self.target(rooms)?;
        self.broadcast(target, event, payload).await
    }

    /// Emits `event` to every connection in the channel.
    pub async fn emit_to_everyone<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        self.check_channel()?;
        let target = Target::room(protocol::channel_room(&self.channel));
        self.broadcast(target, event, payload).await
    }

    /// Emits `event` to one connection.
    pub fn emit_to<T: Serialize + ?Sized>(
        &self,
        connection: ConnectionId,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        let message = self.encode(event, payload, None)?;
        let connection = self.network.connection(connection).ok_or(EmitError::NoConnection)?;
        connection.send(message)?;
        Ok(())
    }

    /// Emits `event` to one connection and waits for its acknowledgement, up to the
    /// configured `ack_timeout`. Error-first: a handler error on the client comes back as
    /// [`AckError::Remote`].
    ///
    /// # Cancel safety
    /// Dropping the future forgets the request; a late acknowledgement is answered with
    /// `unknown_ack`.
    pub async fn emit_with_ack<R: DeserializeOwned, T: Serialize + ?Sized>(
        &self,
        connection: ConnectionId,
        event: &str,
        payload: &T,
    ) -> Result<R, AckError> {
        self.emit_with_ack_timeout(connection, event, payload, self.state.limits.ack_timeout).await
    }

    /// [`emit_with_ack`](Self::emit_with_ack) with an explicit timeout.
    pub async fn emit_with_ack_timeout<R: DeserializeOwned, T: Serialize + ?Sized>(
        &self,
        connection: ConnectionId,
        event: &str,
        payload: &T,
        timeout: Duration,
    ) -> Result<R, AckError> {
        let handle = self.network.connection(connection).ok_or(EmitError::NoConnection)?;
        let (tx, rx) = oneshot::channel();
        let id = self.state.register_ack(connection, tx)?;
        let pending = PendingAck { state: &self.state, connection, id };
        let message = self.encode(event, payload, Some(id))?;
        handle.send(message).map_err(EmitError::from)?;
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(AckError::Closed),
            Err(_) => return Err(AckError::Timeout(timeout)),
        };
        drop(pending);
        let value = reply.map_err(AckError::Remote)?;
        serde_json::from_value(value).map_err(AckError::Decode)
    }

    /// Emits `event` to every member of `room` of this channel, on every node, and
    /// collects their acknowledgements, each within the configured `ack_timeout`.
    ///
    /// The answer holds one entry per member that was reached (a value, or why there is
    /// none: its handler's error, a timeout, a closed connection), and the nodes that did
    /// not report in time (`unreachable`: their members' answers are unknown). A member
    /// in no entry was not in the room when the emit arrived at its node.
    pub async fn emit_with_ack_to_room<R: DeserializeOwned, T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        payload: &T,
    ) -> Result<RoomAcks<R>, EmitError> {
        let room = self.scoped(room)?;
        if !valid_name(event) {
            return Err(EmitError::InvalidName(event.to_owned()));
        }
        let data =
            serde_json::to_value(payload).map_err(|error| EmitError::Encode(EncodeError::Json(error)))?;
        let timeout = self.state.limits.ack_timeout;
        let (local, (remote, unreachable)) = tokio::join!(
            self.local_room_acks(&room, event, &data, timeout),
            cluster::ask_room(
                self.network.adapter(),
                &self.state.cluster,
                &self.channel,
                &room,
                event,
                &data,
                timeout
            )
        );
        let replies = local
            .into_iter()
            .chain(remote)
            .map(|(id, answer)| {
                (id, answer.and_then(|value| serde_json::from_value(value).map_err(AckError::Decode)))
            })
            .collect();
        Ok(RoomAcks { replies, unreachable })
    }

    /// This node's members of `room` (scoped) asked at once; each answer as JSON.
    pub(crate) async fn local_room_acks(
        &self,
        room: &Room,
        event: &str,
        data: &Value,
        timeout: Duration,
    ) -> cluster::Answers {
        let members = self.network.adapter().local_members(room);
        let asks = members.into_iter().map(|id| async move {
            (id, self.emit_with_ack_timeout::<Value, Value>(id, event, data, timeout).await)
        });
        futures_util::future::join_all(asks).await
    }

    /// Puts `connection` in `room` of this channel.
    ///
    /// A connection of this node is in at most `max_rooms_per_connection` such rooms:
    /// beyond, this fails with [`EmitError::TooManyRooms`] and the connection stays out.
    /// Joining a room it is in already succeeds and takes no second slot. A connection of
    /// this node that is closed (or closes while it joins) is left in no room and the join
    /// fails with [`EmitError::NoConnection`].
    pub async fn join_room(&self, connection: ConnectionId, room: &str) -> Result<(), EmitError> {
        let room = self.scoped(room)?;
        self.state.claim_room(connection, &room)?;
        let adapter = self.network.adapter();
        if let Err(error) = adapter.join(connection, room.clone()).await {
            self.state.release_room(connection, &room);
            return Err(error.into());
        }
        // The transport empties a closed connection's rooms once (`leave_all`), possibly
        // before a handler of its last frames joins one: leave again, or it stays for good.
        let gone = connection.node() == adapter.node()
            && self.network.hub().connection(connection).is_none_or(|open| open.is_closed());
        if gone {
            let left = adapter.leave(connection, &room).await;
            self.state.release_room(connection, &room);
            left?;
            return Err(EmitError::NoConnection);
        }
        Ok(())
    }

    /// Takes `connection` out of `room` of this channel, which frees its slot.
    pub async fn leave_room(&self, connection: ConnectionId, room: &str) -> Result<(), EmitError> {
        let room = self.scoped(room)?;
        self.network.adapter().leave(connection, &room).await?;
        self.state.release_room(connection, &room);
        Ok(())
    }

    /// The connections in `room` of this channel.
    pub async fn room_members(&self, room: &str) -> Result<Vec<ConnectionId>, EmitError> {
        let room = self.scoped(room)?;
        Ok(self.network.adapter().members(&room).await?)
    }

    fn check_channel(&self) -> Result<(), EmitError> {
        if valid_channel(&self.channel) {
            Ok(())
        } else {
            Err(EmitError::InvalidName(self.channel.to_string()))
        }
    }

    fn scoped(&self, room: &str) -> Result<Room, EmitError> {
        self.check_channel()?;
        if !valid_name(room) {
            return Err(EmitError::InvalidName(room.to_owned()));
        }
        Ok(protocol::scoped_room(&self.channel, room))
    }

    fn target(&self, rooms: &[&str]) -> Result<Target, EmitError> {
        let rooms = rooms.iter().map(|room| self.scoped(room)).collect::<Result<Vec<_>, _>>()?;
        Ok(Target::rooms(rooms))
    }

    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        id: Option<u64>,
    ) -> Result<Message, EmitError> {
        self.check_channel()?;
        if !valid_name(event) {
            return Err(EmitError::InvalidName(event.to_owned()));
        }
        let frame = EmitOut { t: "emit", ch: &self.channel, ev: event, data: payload, id };
        Ok(envelope::json(ROUTER, &frame)?)
    }

    async fn broadcast<T: Serialize + ?Sized>(
        &self,
        target: Target,
        event: &str,
        payload: &T,
    ) -> Result<usize, EmitError> {
        let message = self.encode(event, payload, None)?;
        Ok(self.network.adapter().broadcast(&target, message).await?)
    }
}

/// The answers to [`Messenger::emit_with_ack_to_room`].
#[derive(Debug)]
#[non_exhaustive]
pub struct RoomAcks<R> {
    /// Each member reached, with its value or why there is none; in no particular order.
    pub replies: Vec<(ConnectionId, Result<R, AckError>)>,
    /// Nodes that did not report in time (down, or Redis unreachable), in number order.
    pub unreachable: Vec<NodeId>,
}

/// Removes a pending acknowledgement when the waiting future ends, however it ends.
struct PendingAck<'a> {
    state: &'a ChannelsState,
    connection: ConnectionId,
    id: u64,
}

impl Drop for PendingAck<'_> {
    fn drop(&mut self) {
        self.state.forget_ack(self.connection, self.id);
    }
}
