//! Heartbeats in the router envelope (router `hb`), answered by the core of every network.
//!
//! Page code in a browser can neither send a WebSocket ping nor see one, so it cannot tell
//! a dead server from a quiet one. It sends `{"$r":"hb","d":{"t":"ping","id":1}}` instead,
//! and the [`Hub`](crate::Hub) answers `{"$r":"hb","d":{"t":"pong","id":1}}` on the same
//! connection, before any router lookup: no router needs to be attached, and `hb` is a
//! reserved name that [`Network::attach`](crate::Network::attach) refuses with
//! [`AttachError::Reserved`](crate::AttachError::Reserved). See `docs/PROTOCOL.md`,
//! section 3.1.
//!
//! ```
//! use network_core::{heartbeat, Message};
//! let ping = Message::text(r#"{"$r":"hb","d":{"t":"ping","id":7}}"#);
//! let pong = heartbeat::answer(&ping).unwrap();
//! assert_eq!(pong.as_text(), Some(r#"{"$r":"hb","d":{"t":"pong","id":7}}"#));
//! ```

use serde::{Deserialize, Serialize};

use crate::envelope;
use crate::message::Message;

/// The reserved router name of heartbeat frames.
pub const ROUTER: &str = "hb";

/// The code of the `error` answering a body that is not a valid `ping`.
pub const MALFORMED: &str = "malformed";

/// One heartbeat frame, the body of an `hb` envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Frame {
    /// Client to server: are you there? Answered by a `Pong` with the same `id`.
    Ping {
        /// Chosen by the client (below 2^53 from JavaScript).
        id: u64,
    },
    /// Server to client: the answer to the `Ping` with this `id`.
    Pong {
        /// The ping's id.
        id: u64,
    },
    /// Server to client: the body was not a valid `Ping`.
    Error {
        /// [`MALFORMED`].
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The bad frame's `id`, when it had an unsigned integer one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

/// The frame to send back for `message`, an `hb` envelope (JSON or MessagePack): a `pong`
/// for a `ping`, an `error` for a body that is not a valid heartbeat frame, and nothing
/// for a `pong` or an `error` (answers are not answered, so two peers cannot loop).
/// Answers are JSON whatever the ping's encoding, as the routers answer.
pub fn answer(message: &Message) -> Option<Message> {
    let frame = match envelope::decode::<Frame>(ROUTER, message) {
        Ok(Frame::Ping { id }) => Frame::Pong { id },
        Ok(Frame::Pong { .. } | Frame::Error { .. }) => return None,
        Err(error) => Frame::Error {
            code: MALFORMED.to_owned(),
            message: format!("not a heartbeat frame: {error}"),
            id: envelope::peek(ROUTER, message).id,
        },
    };
    match envelope::json(ROUTER, &frame) {
        Ok(answer) => Some(answer),
        Err(error) => {
            // A frame of integers and short strings always encodes; logged, not trusted.
            tracing::error!(%error, "cannot encode a heartbeat frame");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_text(frame: &Message) -> Option<String> {
        answer(frame).map(|answer| answer.as_text().unwrap().to_owned())
    }

    #[test]
    fn pings_are_answered_in_json_whatever_their_encoding() {
        let ping = Message::text(r#"{"$r":"hb","d":{"t":"ping","id":9007199254740991}}"#);
        assert_eq!(answer_text(&ping).unwrap(), r#"{"$r":"hb","d":{"t":"pong","id":9007199254740991}}"#);
        let packed = envelope::msgpack(ROUTER, &Frame::Ping { id: 3 }).unwrap();
        assert_eq!(answer_text(&packed).unwrap(), r#"{"$r":"hb","d":{"t":"pong","id":3}}"#);
    }

    #[test]
    fn bad_bodies_get_malformed_with_their_id_and_answers_get_nothing() {
        for (body, id) in [
            (r#"{"t":"ping"}"#, None),
            (r#"{"t":"ping","id":-4}"#, None),
            (r#"{"t":"ping","id":"4"}"#, None),
            (r#"{"t":"pang","id":4}"#, Some(4)),
            (r#"{"id":4}"#, Some(4)),
            ("[1]", None),
        ] {
            let frame = Message::text(format!(r#"{{"$r":"hb","d":{body}}}"#));
            let answer: serde_json::Value = serde_json::from_str(&answer_text(&frame).unwrap()).unwrap();
            assert_eq!(answer["d"]["t"], "error", "{body}");
            assert_eq!(answer["d"]["code"], MALFORMED, "{body}");
            assert_eq!(answer["d"]["id"].as_u64(), id, "{body}");
        }
        for body in [r#"{"t":"pong","id":1}"#, r#"{"t":"error","code":"x","message":"y"}"#] {
            assert_eq!(answer_text(&Message::text(format!(r#"{{"$r":"hb","d":{body}}}"#))), None, "{body}");
        }
    }
}
