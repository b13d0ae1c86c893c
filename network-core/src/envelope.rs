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

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

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

/// What can still be read of a router body that did not decode as one of the router's
/// frames: its `t` and its `id`, each only when it has the expected type.
///
/// Routers answer a bad frame with an `error` that echoes the frame's `id` (PROTOCOL.md,
/// section 2.3), so that the client can fail the request it is waiting on instead of
/// waiting for its timeout. See [`peek`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peek {
    /// The body's `t`, when it is a string.
    pub t: Option<String>,
    /// The body's `id`, when it is an unsigned integer that fits 64 bits.
    pub id: Option<u64>,
}

/// Deserializes the `data` of a successful result (an `ack`, a `reply`) so that an absent
/// field and `null` both read as `None`, whatever the decoder: PROTOCOL.md section 2.3 says
/// they mean the same, and decoders differ on `null` inside an `Option` (JSON gives `None`,
/// MessagePack through a buffered tagged enum may give `Some(Null)`), which made a decoded
/// frame encode to a different one. Use with `#[serde(default, deserialize_with = ...)]`.
pub fn deserialize_result_data<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    let data = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(data.filter(|value| !value.is_null()))
}

/// Reads `t` and `id` of the body of an envelope for `router`, ignoring everything else
/// in it: a wrong type elsewhere (or of `t` or `id` themselves) does not stop it.
///
/// Returns an empty [`Peek`] when the frame is not an envelope for `router`, when its
/// body is not a map, or when the frame cannot be parsed at all (invalid JSON, nesting
/// past the limit of [`Message::decode`]). Meant for the error path: it decodes the
/// frame a second time.
///
/// ```
/// use network_core::{envelope, Message};
/// let frame = Message::text(r#"{"$r":"ch","d":{"t":"join","ch":5,"id":3}}"#);
/// let peek = envelope::peek("ch", &frame);
/// assert_eq!((peek.t.as_deref(), peek.id), (Some("join"), Some(3)));
/// assert_eq!(envelope::peek("ch", &Message::text(r#"{"$r":"ch","d":{"id":-1}}"#)).id, None);
/// ```
pub fn peek(router: &str, message: &Message) -> Peek {
    match message.decode::<Incoming<PeekBody>>() {
        Ok(incoming) if incoming.router == router => incoming.d.0,
        _ => Peek::default(),
    }
}

/// A body read for [`peek`]: a map, whose `t` and `id` are kept when they have the right
/// type.
struct PeekBody(Peek);

impl<'de> Deserialize<'de> for PeekBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = PeekBody;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PeekBody, A::Error> {
                let mut peek = Peek::default();
                while let Some(key) = map.next_key::<Scalar>()? {
                    let value = map.next_value::<Scalar>()?;
                    match key {
                        Scalar::Str(key) if key == "t" => {
                            peek.t = if let Scalar::Str(t) = value { Some(t) } else { None };
                        }
                        Scalar::Str(key) if key == "id" => {
                            peek.id = if let Scalar::U64(id) = value { Some(id) } else { None };
                        }
                        _ => {}
                    }
                }
                Ok(PeekBody(peek))
            }
        }
        deserializer.deserialize_map(BodyVisitor)
    }
}

/// Any value, keeping only what [`peek`] can use: a string or an unsigned integer.
/// Everything else is read and dropped (nested values through [`IgnoredAny`], within the
/// decoder's nesting limit).
enum Scalar {
    Str(String),
    U64(u64),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(value.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Scalar, E> {
                Ok(Scalar::U64(value))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Scalar, E> {
                Ok(u64::try_from(value).map_or(Scalar::Other, Scalar::U64))
            }
            fn visit_u128<E: de::Error>(self, value: u128) -> Result<Scalar, E> {
                Ok(u64::try_from(value).map_or(Scalar::Other, Scalar::U64))
            }
            fn visit_i128<E: de::Error>(self, value: i128) -> Result<Scalar, E> {
                Ok(u64::try_from(value).map_or(Scalar::Other, Scalar::U64))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(deserializer)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Scalar, A::Error> {
                // MessagePack extension types arrive as enums; nothing in them is an id.
                let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
                de::VariantAccess::newtype_variant::<IgnoredAny>(variant)?;
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
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
    fn peek_reads_t_and_id_whatever_else_is_wrong() {
        let text = |s: &str| Message::text(s.to_owned());
        let peek_of = |frame: &Message| {
            let peek = peek("ch", frame);
            (peek.t, peek.id)
        };
        assert_eq!(
            peek_of(&text(r#"{"$r":"ch","d":{"t":"nope","id":7,"x":[1,{"a":null}]}}"#)),
            (Some("nope".into()), Some(7))
        );
        assert_eq!(
            peek_of(&text(r#"{"$r":"ch","d":{"id":18446744073709551615,"t":3}}"#)),
            (None, Some(u64::MAX))
        );
        for bad_id in ["-1", "1.5", "1e3", "\"7\"", "null", "[7]", "{\"id\":7}", "18446744073709551616"] {
            let frame = text(&format!(r#"{{"$r":"ch","d":{{"t":"join","id":{bad_id}}}}}"#));
            assert_eq!(peek_of(&frame), (Some("join".into()), None), "{bad_id}");
        }
        for nothing in [
            r#"{"$r":"ch","d":[1,2]}"#,
            r#"{"$r":"ch","d":7}"#,
            r#"{"$r":"ch"}"#,
            r#"{"$r":"ch","d":{"id":3"#,
            r#"{"$r":"sync","d":{"id":3}}"#,
        ] {
            assert_eq!(peek_of(&text(nothing)), (None, None), "{nothing}");
        }
        let packed = msgpack("ch", &serde_json::json!({"t": "ack", "id": 5, "err": "not a map"})).unwrap();
        assert_eq!(peek_of(&packed), (Some("ack".into()), Some(5)));
        // An integer key and a bin value (MessagePack only) do not stop it:
        // {"$r":"ch","d":{1:bin[1,2],"id":9,"t":"x"}}.
        let odd = Message::binary(vec![
            0x82, 0xa2, b'$', b'r', 0xa2, b'c', b'h', 0xa1, b'd', 0x83, 0x01, 0xc4, 0x02, 1, 2, 0xa2, b'i',
            b'd', 0x09, 0xa1, b't', 0xa1, b'x',
        ]);
        assert_eq!(peek_of(&odd), (Some("x".into()), Some(9)));
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
