//! The frames an application exchanges: text (JSON by convention) and binary
//! (MessagePack by convention, or raw bytes).

use std::fmt;

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{DecodeError, EncodeError};

/// Deepest nesting of arrays and maps [`Message::decode`] accepts, counted from the frame's
/// outermost value (in a router frame the envelope is level 1 and the body level 2).
///
/// serde_json fixes it at 127: its budget of 128 is spent on entering each array or map
/// and refused at 0. (`docs/PROTOCOL.md` once said 128, and a 127-level body was refused.)
const MAX_DEPTH: usize = 127;

/// UTF-8 text backed by [`Bytes`], so that cloning it is a reference-count increment.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    /// Checks that `bytes` are UTF-8 and wraps them without copying.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, DecodeError> {
        std::str::from_utf8(&bytes).map_err(DecodeError::Utf8)?;
        Ok(Self(bytes))
    }

    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        // The constructors only admit valid UTF-8; an empty string is never reached.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes, shared.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The UTF-8 bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Self(Bytes::from(value))
    }
}

impl From<&'static str> for Text {
    fn from(value: &'static str) -> Self {
        Self(Bytes::from_static(value.as_bytes()))
    }
}

/// One WebSocket data frame.
///
/// Cloning is cheap: the payload is shared [`Bytes`], so one encoded message can be
/// handed to thousands of connections without being encoded or copied again.
///
/// ```
/// use network_core::Message;
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Chat { from: String, text: String }
///
/// let chat = Chat { from: "ada".into(), text: "hi".into() };
/// let json = Message::json(&chat).unwrap();
/// assert_eq!(json.as_text(), Some(r#"{"from":"ada","text":"hi"}"#));
/// assert_eq!(json.decode::<Chat>().unwrap(), chat);
///
/// let packed = Message::msgpack(&chat).unwrap();
/// assert!(packed.is_binary());
/// assert_eq!(packed.decode::<Chat>().unwrap(), chat);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text frame; JSON by convention.
    Text(Text),
    /// A binary frame; MessagePack by convention, or raw bytes (a file, an image).
    Binary(Bytes),
}

impl Message {
    /// A text frame.
    pub fn text(text: impl Into<Text>) -> Self {
        Self::Text(text.into())
    }

    /// A binary frame carrying raw bytes.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Self::Binary(bytes.into())
    }

    /// A text frame holding `value` serialised as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let json = serde_json::to_vec(value).map_err(EncodeError::Json)?;
        // serde_json only writes UTF-8.
        Ok(Self::Text(Text(Bytes::from(json))))
    }

    /// A binary frame holding `value` serialised as MessagePack.
    ///
    /// Structs are written as maps keyed by field name (not as positional arrays), so that
    /// a peer in another language can read them without knowing the field order.
    pub fn msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let packed = rmp_serde::to_vec_named(value).map_err(EncodeError::MessagePack)?;
        Ok(Self::Binary(Bytes::from(packed)))
    }

    /// Decodes the payload: JSON for a text frame, MessagePack for a binary frame.
    ///
    /// Arrays and maps nested 127 levels deep decode; 128 or more are refused, in JSON
    /// (serde_json's fixed limit) and MessagePack alike, so a peer cannot overflow the
    /// decoding thread's stack. Inside a router envelope that leaves 126 levels for the body.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        match self {
            Self::Text(text) => serde_json::from_slice(text.as_bytes()).map_err(DecodeError::Json),
            Self::Binary(bytes) => {
                // rmp-serde allows 1024 levels, enough for a peer's frame to overflow a
                // 2 MiB thread stack; cap it at serde_json's limit. Its budget counts like
                // serde_json's (refused on reaching 0), hence one more than the levels.
                let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
                deserializer.set_max_depth(MAX_DEPTH + 1);
                T::deserialize(&mut deserializer).map_err(DecodeError::MessagePack)
            }
        }
    }

    /// The text of a text frame.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload bytes, whichever the frame type.
    pub fn payload(&self) -> &Bytes {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// Whether this is a text frame.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary frame.
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.debug_tuple("Text").field(text).finish(),
            Self::Binary(bytes) => write!(f, "Binary({} bytes)", bytes.len()),
        }
    }
}

impl From<String> for Message {
    fn from(value: String) -> Self {
        Self::text(value)
    }
}

impl From<&'static str> for Message {
    fn from(value: &'static str) -> Self {
        Self::text(value)
    }
}

impl From<Bytes> for Message {
    fn from(value: Bytes) -> Self {
        Self::Binary(value)
    }
}

impl From<Vec<u8>> for Message {
    fn from(value: Vec<u8>) -> Self {
        Self::Binary(Bytes::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_a_typed_error() {
        let err = Text::from_utf8(Bytes::from_static(&[0xff, 0xfe])).unwrap_err();
        assert!(matches!(err, DecodeError::Utf8(_)));
    }

    #[test]
    fn decode_errors_are_typed() {
        let text = Message::text("not json");
        assert!(matches!(text.decode::<u32>(), Err(DecodeError::Json(_))));
        let binary = Message::binary(vec![0xc1]);
        assert!(matches!(binary.decode::<u32>(), Err(DecodeError::MessagePack(_))));
    }

    /// `levels` nested arrays: `[[]]` is 2.
    fn nested(levels: usize) -> serde_json::Value {
        (1..levels).fold(serde_json::json!([]), |inner, _| serde_json::json!([inner]))
    }

    /// The documented boundary, the same in both encodings (serde_json's limit is not ours
    /// to change: this catches an upgrade that moves it).
    #[test]
    fn nesting_of_max_depth_decodes_and_one_more_is_refused() {
        for (levels, accepted) in [(MAX_DEPTH, true), (MAX_DEPTH + 1, false)] {
            let value = nested(levels);
            let text = Message::json(&value).unwrap();
            let packed = Message::msgpack(&value).unwrap();
            assert_eq!(text.decode::<serde_json::Value>().is_ok(), accepted, "JSON, {levels} levels");
            assert_eq!(
                packed.decode::<serde_json::Value>().is_ok(),
                accepted,
                "MessagePack, {levels} levels"
            );
        }
    }

    #[test]
    fn clones_share_the_payload() {
        let msg = Message::binary(vec![1u8; 64]);
        let copy = msg.clone();
        assert_eq!(msg.payload().as_ptr(), copy.payload().as_ptr());
    }
}
