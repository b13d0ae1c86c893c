//! The frames of the channels router, inside the envelope `{"$r":"ch","d":FRAME}`.
//!
//! Every frame is a JSON object tagged by `"t"`. See `docs/PROTOCOL.md`, section
//! "Channels", for the exchange rules; this module is the single definition both sides
//! decode with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RemoteError;

/// The router name in the envelope.
pub const ROUTER: &str = "ch";

/// The channel every connection is in from the start.
pub const ROOT: &str = "/";

/// Longest channel path, event name and room name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// One channels frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Frame {
    /// Client to server: join channel `ch`. Answered with `Joined` or `Error` carrying the
    /// same `id`.
    Join {
        /// The channel path.
        ch: String,
        /// Correlates the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: the connection is in channel `ch` (the answer to `Join`).
    Joined {
        /// The channel path.
        ch: String,
        /// The `id` of the `Join`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Client to server: leave channel `ch`. Answered with `Left`.
    Leave {
        /// The channel path.
        ch: String,
        /// Correlates the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: the connection left channel `ch`.
    Left {
        /// The channel path.
        ch: String,
        /// The `id` of the `Leave`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Either way: event `ev` on channel `ch` with payload `data`. With an `id`, the sender
    /// waits for an `Ack` with that id.
    Emit {
        /// The channel path.
        ch: String,
        /// The event name.
        ev: String,
        /// The payload (`null` when absent).
        #[serde(default)]
        data: Value,
        /// Set when the sender wants an acknowledgement.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Either way: the answer to the `Emit` with this `id`, error-first: `err` when the
    /// handler failed, otherwise `data`.
    Ack {
        /// The `id` of the `Emit`.
        id: u64,
        /// The handler's value: `Some` (`Some(Value::Null)` for a null result, sent as
        /// `"data":null`) on success, `None` (no field) beside `err`. Decoding reads an
        /// absent `data` and `"data":null` alike as `None`: use
        /// `data.unwrap_or_default()` for the value (PROTOCOL.md, section 2.3).
        #[serde(
            default,
            deserialize_with = "network_core::envelope::deserialize_result_data",
            skip_serializing_if = "Option::is_none"
        )]
        data: Option<Value>,
        /// The handler's error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<RemoteError>,
    },
    /// Server to client: a request could not be served. `id` names the client's request
    /// it answers (`Join`, `Leave`, `Emit`), when there is one; `ack` names the server's
    /// `Emit` whose `Ack` from the client it is about (`unknown_ack`, or a malformed
    /// `ack`). The two never share a frame, so a server's id cannot fail a client's
    /// request with the same number.
    Error {
        /// Machine-readable reason (see [`codes`](crate::codes)).
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The `id` of the client's request it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The `id` of the client's `Ack` it is about (an id of the server's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<u64>,
        /// The channel concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ch: Option<String>,
    },
}

impl Frame {
    /// An `Ack` answering `id` with `result`.
    pub fn ack(id: u64, result: Result<Value, RemoteError>) -> Self {
        match result {
            Ok(data) => Self::Ack { id, data: Some(data), err: None },
            Err(err) => Self::Ack { id, data: None, err: Some(err) },
        }
    }

    /// An `Error` frame from `error`, answering the client's request `id` if any.
    pub fn error(error: RemoteError, id: Option<u64>, ch: Option<String>) -> Self {
        Self::Error { code: error.code, message: error.message, id, ack: None, ch }
    }

    /// An `Error` frame about the client's `Ack` of the server's emit `ack`.
    pub fn ack_error(error: RemoteError, ack: u64) -> Self {
        Self::Error { code: error.code, message: error.message, id: None, ack: Some(ack), ch: None }
    }
}

/// Checks a channel path: `/` then up to 127 of `A-Z a-z 0-9 _ - . /`.
pub fn valid_channel(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= MAX_NAME_LEN
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
}

/// Checks an event or room name: 1 to 128 bytes without control characters or `#`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && !name.chars().any(|c| c.is_control() || c == '#')
}

/// The adapter room holding the members of `channel`.
pub(crate) fn channel_room(channel: &str) -> network_core::Room {
    channel.into()
}

/// The adapter room for room `room` of `channel` (rooms are per channel, as socket.io's
/// rooms are per namespace).
pub(crate) fn scoped_room(channel: &str, room: &str) -> network_core::Room {
    format!("{channel}#{room}").into()
}

/// The room of every connection of user `user_id`.
pub fn user_room(user_id: &str) -> String {
    format!("user.{user_id}")
}

/// The room of every connection of session `session_id`.
pub fn session_room(session_id: &str) -> String {
    format!("session.{session_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_shape() {
        let emit =
            Frame::Emit { ch: "/chat".into(), ev: "say".into(), data: serde_json::json!("hi"), id: Some(3) };
        assert_eq!(
            serde_json::to_string(&emit).unwrap(),
            r#"{"t":"emit","ch":"/chat","ev":"say","data":"hi","id":3}"#
        );
        let ack = Frame::ack(3, Err(RemoteError::new("forbidden", "no")));
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"t":"ack","id":3,"err":{"code":"forbidden","message":"no"}}"#
        );
        // A null result is `"data":null`; a failure has no `data` (PROTOCOL.md 2.3).
        assert_eq!(
            serde_json::to_string(&Frame::ack(4, Ok(Value::Null))).unwrap(),
            r#"{"t":"ack","id":4,"data":null}"#
        );
        for absent in [r#"{"t":"ack","id":4}"#, r#"{"t":"ack","id":4,"data":null}"#] {
            assert_eq!(
                serde_json::from_str::<Frame>(absent).unwrap(),
                Frame::Ack { id: 4, data: None, err: None }
            );
        }
        let unknown = Frame::ack_error(RemoteError::new("unknown_ack", "late"), 5);
        assert_eq!(
            serde_json::to_string(&unknown).unwrap(),
            r#"{"t":"error","code":"unknown_ack","message":"late","ack":5}"#
        );
        let join: Frame = serde_json::from_str(r#"{"t":"join","ch":"/admin"}"#).unwrap();
        assert_eq!(join, Frame::Join { ch: "/admin".into(), id: None });
        let bare: Frame = serde_json::from_str(r#"{"t":"emit","ch":"/","ev":"ping"}"#).unwrap();
        assert!(matches!(bare, Frame::Emit { data: Value::Null, id: None, .. }));
    }

    #[test]
    fn a_null_result_reads_as_none_in_messagepack_too() {
        // Found by the message_typed fuzz target: `[5, 2, NaN]` as MessagePack decoded to
        // `Ack { data: Some(Null) }` (a JSON value has no NaN), which encodes back to a frame
        // that decodes to `None`.
        let nan = [0xcb, 0xff, 0xff, 0xff, 0x93, 0x07, 0xa0, 0xc0, 0x00];
        let packed = network_core::Message::binary([&[0x93, 0x05, 0x02][..], &nan].concat());
        for frame in [
            packed,
            network_core::Message::msgpack(&serde_json::json!({"t": "ack", "id": 2, "data": null})).unwrap(),
        ] {
            let decoded: Frame = frame.decode().unwrap();
            assert_eq!(decoded, Frame::Ack { id: 2, data: None, err: None }, "{frame:?}");
            let again: Frame = network_core::Message::msgpack(&decoded).unwrap().decode().unwrap();
            assert_eq!(again, decoded);
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_channel("/") && valid_channel("/chat/room-1"));
        assert!(!valid_channel("chat") && !valid_channel("/a b") && !valid_channel("/a#b"));
        assert!(valid_name("message") && valid_name("user.42"));
        assert!(!valid_name("") && !valid_name("a#b") && !valid_name("a\nb"));
    }
}
