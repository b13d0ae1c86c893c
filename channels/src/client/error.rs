//! Errors of the client side of the channels router.

use std::time::Duration;

use network_core::SendError;

use crate::error::RemoteError;

/// [`ChannelsClient::channel`](super::ChannelsClient::channel) was given a path that is not
/// a channel path: `/` then up to 127 of `A-Z a-z 0-9 _ - . /` (see `docs/PROTOCOL.md`,
/// section 5.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid channel path {0:?}")]
pub struct InvalidChannel(pub String);

/// [`Channel::join`](super::Channel::join) did not end with the channel joined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The server refused: code `unknown_channel` (no such channel on the server) or
    /// `forbidden` (its authorization said no; the message says why), or another code (but
    /// `limit`, which is [`Limit`](Self::Limit)). The channel is forgotten: it is not
    /// re-joined after reconnects. Retrying makes sense only once something changed (a
    /// login).
    #[error("join refused")]
    Refused(#[source] RemoteError),
    /// The server refused with `limit`: the connection is in as many channels as the
    /// server allows (`max_channels_per_connection`), or the channel's join hook could not
    /// put it in another room (`max_rooms_per_connection`; the message says which). The
    /// channel is forgotten; leave another channel, then join again.
    #[error("join refused by a per-connection limit")]
    Limit(#[source] RemoteError),
    /// No answer within [`join_timeout`](super::ChannelsClientConfig::join_timeout), most
    /// often because the link is down. The channel stays wanted: a late `joined` still
    /// joins it and it is joined on every reconnect. Call
    /// [`leave`](super::Channel::leave) to give up on it.
    #[error("no answer to the join within {0:?}")]
    Timeout(Duration),
    /// [`leave`](super::Channel::leave) was called for the channel before the join was
    /// answered.
    #[error("the channel was left before the join was answered")]
    Left,
    /// The network closed for good (the client was closed or dropped) before an answer.
    #[error("channels client closed")]
    Closed,
    /// The join frame could not be queued: the client's queue is full or the client is
    /// closed. Nothing changed (a channel that was not wanted still is not); retry later.
    #[error("cannot send the join")]
    Send(#[source] SendError),
}

/// [`Channel::leave`](super::Channel::leave) could not confirm that the channel was left.
/// In every case the channel is forgotten locally: it is not re-joined after reconnects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaveError {
    /// The server refused with a code other than `not_joined` (which counts as success).
    #[error("leave refused")]
    Refused(#[source] RemoteError),
    /// No answer within [`join_timeout`](super::ChannelsClientConfig::join_timeout).
    #[error("no answer to the leave within {0:?}")]
    Timeout(Duration),
    /// The network closed for good before an answer.
    #[error("channels client closed")]
    Closed,
    /// The leave frame could not be queued: the client's queue is full or the client is
    /// closed.
    #[error("cannot send the leave")]
    Send(#[source] SendError),
}

/// A problem that no caller is waiting for, delivered on
/// [`ChannelsClient::errors`](super::ChannelsClient::errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackgroundError {
    /// The server sent an `error` frame that answers no pending request: an event emitted
    /// without acknowledgement on a channel not joined (`not_joined`) or that no handler
    /// took (`no_handler`, `bad_request`), a frame it could not read (`malformed`).
    #[error("the server reported an error")]
    Server {
        /// The code and message.
        #[source]
        error: RemoteError,
        /// The channel concerned, when the server named one.
        channel: Option<String>,
    },
    /// The server reported a problem with an acknowledgement this client sent for the
    /// server's emit `ack`: it came too late or answered nothing (`unknown_ack`), or the
    /// server could not read it (`malformed`). Nothing waits on it on this side; the
    /// server's emit failed or timed out there.
    #[error("the server refused the acknowledgement of its emit {ack}")]
    Ack {
        /// The id of the server's emit (the server's id space, not this client's).
        ack: u64,
        /// The server's code and message.
        #[source]
        error: RemoteError,
    },
    /// A channel joined before a reconnect was refused when it was re-joined after it (its
    /// authorization changed, or the new server has no such channel). It is forgotten.
    #[error("re-joining channel {channel:?} after a reconnect was refused")]
    RejoinRefused {
        /// The channel path.
        channel: String,
        /// The server's code and message.
        #[source]
        error: RemoteError,
    },
}
