//! Errors of the channels router.

/// Machine-readable error codes carried by `Error` frames and error acks.
pub mod codes {
    /// The frame could not be decoded as a channels frame.
    pub const MALFORMED: &str = "malformed";
    /// The channel is not configured on the server.
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    /// The channel's authorization refused the join.
    pub const FORBIDDEN: &str = "forbidden";
    /// The event was emitted on a channel the connection has not joined.
    pub const NOT_JOINED: &str = "not_joined";
    /// No handler is registered for the event on that channel.
    pub const NO_HANDLER: &str = "no_handler";
    /// An `Ack` named an id that is not waiting (answered already, timed out, unknown).
    pub const UNKNOWN_ACK: &str = "unknown_ack";
    /// The payload did not have the shape the handler expects.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The handler failed unexpectedly (it panicked).
    pub const INTERNAL: &str = "internal";
    /// A frame that only the other side may send (a client sending `joined`).
    pub const UNEXPECTED: &str = "unexpected";
    /// The connection is at a per-connection limit: a `join` past
    /// `max_channels_per_connection`, or a join hook or handler whose
    /// [`join_room`](crate::Messenger::join_room) went past `max_rooms_per_connection`.
    /// Leaving a channel or a room frees a slot.
    pub const LIMIT: &str = "limit";
}

/// An error reported by the remote side: a handler's error-first reply, or a refusal.
///
/// Defined in `network-core`, shared by every router; see [`codes`] for the codes this
/// router uses.
pub use network_core::RemoteError;

/// An emit could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The payload could not be serialised.
    #[error("cannot encode the payload")]
    Encode(#[from] network_core::EncodeError),
    /// The room adapter failed (a backend spanning nodes is unreachable).
    #[error("room adapter failed")]
    Adapter(#[from] network_core::AdapterError),
    /// The channel path or event name is not valid (see `docs/PROTOCOL.md`).
    #[error("invalid channel or event name {0:?}")]
    InvalidName(String),
    /// The target connection is not open.
    #[error("no such connection")]
    NoConnection,
    /// The connection's outgoing queue refused the frame (full or closed).
    #[error("connection refused the frame")]
    Send(#[from] network_core::SendError),
    /// [`join_room`](crate::Messenger::join_room) would put the connection in more rooms
    /// than `max_rooms_per_connection` (the value here); it stays out of the room. Take it
    /// out of another room first. In a join hook or an event handler, `?` turns it into
    /// the client's `limit` answer.
    #[error("at most {0} rooms per connection")]
    TooManyRooms(usize),
}

/// Lets join hooks and event handlers use `?` on room and emit calls: a room limit reaches
/// the client as `limit`, anything else as `internal` (the client cannot fix it).
impl From<EmitError> for RemoteError {
    fn from(error: EmitError) -> Self {
        match error {
            EmitError::TooManyRooms(_) => RemoteError::new(codes::LIMIT, error.to_string()),
            other => RemoteError::internal(other.to_string()),
        }
    }
}

/// An emit that waits for an acknowledgement did not get a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The frame could not be sent.
    #[error("emit failed")]
    Emit(#[from] EmitError),
    /// The remote handler failed; its error-first reply is here.
    #[error("remote error")]
    Remote(#[source] RemoteError),
    /// No reply within the timeout; a late reply is answered with `unknown_ack`.
    #[error("no acknowledgement within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection closed before the reply came.
    #[error("connection closed before the acknowledgement")]
    Closed,
    /// Too many acknowledgements are already pending on this connection.
    #[error("too many pending acknowledgements")]
    TooManyPending,
    /// The reply did not decode into the expected type.
    #[error("cannot decode the acknowledgement")]
    Decode(#[source] serde_json::Error),
    /// The emit failed on the node that owns the connection (in a cluster); the reason
    /// is that node's.
    #[error("emit failed on the connection's node: {0}")]
    Elsewhere(String),
}

/// The channels router could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A configured channel path is not valid (see `docs/PROTOCOL.md`, section 5.1).
    #[error("invalid channel path {0:?}")]
    InvalidChannel(String),
    /// A [`ChannelsConfig`](crate::ChannelsConfig) value is out of range; the error names
    /// the field.
    #[error(transparent)]
    Config(#[from] network_core::InvalidConfig),
    /// The router could not be attached (a router named `ch` already is).
    #[error("cannot attach the channels router")]
    Attach(#[from] network_core::AttachError),
}
