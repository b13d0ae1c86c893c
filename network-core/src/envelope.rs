//! The router envelope: how a frame names the router it is for.
//!
//! A frame for router `views` is a JSON text frame that starts with exactly
//! `{"$r":"views",` and carries the router's body under `"d"`:
//! `{"$r":"views","d":{"t":"open","view":"doc-7"}}`; or the same map in MessagePack
//! (a map whose first key is the string `"$r"`). Every other frame is an application
//! frame. See `docs/PROTOCOL.md`.
//!
//! Detection reads a few bytes at a fixed position, so application frames pay almost
//! nothing for it and are never parsed by the core.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{AttachError, DecodeError, EncodeError};
use crate::message::Message;

/// The longest router name: it must fit a MessagePack fixstr.
pub const MAX_ROUTER_NAME_LEN: usize = 31;

const JSON_PREFIX: &[u8] = br#"{"$r":""#;
const MSGPACK_KEY: &[u8] = &[0xa2, b'$', b'r'];

/// Checks a router name: 1 to 31 bytes of `a-z`, `0-9`, `_`, `-`, `.`.
pub fn validate_router_name(name: &str) -> Result<(), AttachError> {
    let plain = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b);
    if (1..=MAX_ROUTER_NAME_LEN).contains(&name.len()) && name.bytes().all(plain) {
        Ok(())
    } else {
        Err(AttachError::InvalidName(name.to_owned()))
    }
}

/// The router a frame is addressed to, or `None` for an application frame.
pub fn router_name(message: &Message) -> Option<&str> {
    let bytes = message.payload().as_ref();
    let name = match message {
        Message::Text(_) => {
            let rest = bytes.strip_prefix(JSON_PREFIX)?;
            let end = rest.iter().position(|&b| b == b'"')?;
            &rest[..end]
        }
        Message::Binary(_) => {
            let map_header_len = match *bytes.first()? {
                0x81..=0x8f => 1,
                0xde => 3,
                0xdf => 5,
                _ => return None,
            };
            let rest = bytes.get(map_header_len..)?.strip_prefix(MSGPACK_KEY)?;
            let len = match *rest.first()? {
                marker @ 0xa1..=0xbf => usize::from(marker - 0xa0),
                _ => return None,
            };
            rest.get(1..1 + len)?
        }
    };
    let name = std::str::from_utf8(name).ok()?;
    validate_router_name(name).ok().map(|()| name)
}

#[derive(Serialize)]
struct Outgoing<'a, T: ?Sized> {
    #[serde(rename = "$r")]
    router: &'a str,
    d: &'a T,
}

#[derive(Deserialize)]
struct Incoming<T> {
    #[serde(rename = "$r")]
    router: String,
    d: T,
}

/// A JSON text frame carrying `body` for `router`.
pub fn json<T: Serialize + ?Sized>(router: &str, body: &T) -> Result<Message, EncodeError> {
    Message::json(&Outgoing { router, d: body })
}

/// A MessagePack binary frame carrying `body` for `router`.
pub fn msgpack<T: Serialize + ?Sized>(router: &str, body: &T) -> Result<Message, EncodeError> {
    Message::msgpack(&Outgoing { router, d: body })
}

/// The body of an envelope for `router`, decoded from JSON or MessagePack.
pub fn decode<T: DeserializeOwned>(router: &str, message: &Message) -> Result<T, DecodeError> {
    let incoming: Incoming<T> = message.decode()?;
    if incoming.router == router {
        Ok(incoming.d)
    } else {
        Err(DecodeError::NotForRouter { expected: router.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_json_and_msgpack_envelopes() {
        let body = serde_json::json!({"t": "open", "view": "doc"});
        let text = json("views", &body).unwrap();
        assert_eq!(text.as_text().unwrap(), r#"{"$r":"views","d":{"t":"open","view":"doc"}}"#);
        assert_eq!(router_name(&text), Some("views"));
        let packed = msgpack("views", &body).unwrap();
        assert_eq!(router_name(&packed), Some("views"));
        let back: serde_json::Value = decode("views", &packed).unwrap();
        assert_eq!(back, body);
        assert!(matches!(
            decode::<serde_json::Value>("sync", &packed),
            Err(DecodeError::NotForRouter { .. })
        ));
    }

    #[test]
    fn application_frames_are_not_envelopes() {
        for frame in [
            Message::text("hello"),
            Message::text(r#"{"r":"views"}"#),
            Message::text(r#"{"$r":"BAD NAME","d":1}"#),
            Message::text(r#"{"$r":"#),
            Message::binary(vec![0x81, 0xa2, b'$']),
            Message::binary(vec![0x81, 0xa2, b'$', b'r', 0xa5, b'v']),
            Message::binary(Vec::new()),
            Message::msgpack(&serde_json::json!({"x": 1})).unwrap(),
        ] {
            assert_eq!(router_name(&frame), None, "{frame:?}");
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_router_name("views").is_ok());
        assert!(validate_router_name("chat.v2-x_1").is_ok());
        for bad in ["", "Views", "a b", "é", &"x".repeat(32)] {
            assert!(validate_router_name(bad).is_err(), "{bad}");
        }
    }
}
