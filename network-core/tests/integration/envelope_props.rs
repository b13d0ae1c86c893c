//! Property tests of the envelope codec and of decoding peer bytes: envelopes round-trip
//! for every valid router name and body, no input makes detection, decoding or `peek`
//! panic, and `peek` finds a body's `id` and `t` whatever the other fields hold.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::Bytes;
use network_core::{Message, Text, envelope};
use proptest::prelude::*;

/// Cases per property: enough to walk the strategies, few enough to keep `cargo test` fast.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, ..ProptestConfig::default() }
}

/// Every name `validate_router_name` accepts: 1 to 31 of `a-z 0-9 _ - .`.
fn router_names() -> impl Strategy<Value = String> {
    "[a-z0-9_.-]{1,31}"
}

/// A text frame when the bytes are UTF-8.
fn text(bytes: &[u8]) -> Option<Message> {
    Text::from_utf8(Bytes::copy_from_slice(bytes)).ok().map(Message::Text)
}

/// Bytes that reach past the first checks of `router_name`: arbitrary bytes, and bytes
/// behind the JSON prefix or a MessagePack map header and `"$r"` key.
fn peer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tail = proptest::collection::vec(any::<u8>(), 0..64);
    let map_header = prop_oneof![
        (0x80u8..=0x8f).prop_map(|b| vec![b]),
        any::<[u8; 2]>().prop_map(|len| [&[0xde][..], &len].concat()),
        any::<[u8; 4]>().prop_map(|len| [&[0xdf][..], &len].concat()),
    ];
    prop_oneof![
        tail.clone(),
        tail.clone().prop_map(|tail| [&br#"{"$r":""#[..], &tail].concat()),
        (map_header, tail).prop_map(|(header, tail)| [&header[..], &[0xa2, b'$', b'r'], &tail].concat()),
    ]
}

/// Envelopes built by `envelope::json` and `envelope::msgpack` name their router and give
/// their body back.
mod envelopes_round_trip {
    use std::fmt::Debug;

    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::*;

    fn check<T>(name: &str, body: &T) -> Result<(), TestCaseError>
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        for frame in [envelope::json(name, body).unwrap(), envelope::msgpack(name, body).unwrap()] {
            prop_assert_eq!(envelope::router_name(&frame), Some(name), "{:?}", frame);
            let back: T = envelope::decode(name, &frame).unwrap();
            prop_assert_eq!(&back, body);
        }
        Ok(())
    }

    /// JSON values without floats (which JSON text does not round-trip bit for bit).
    pub(super) fn json_values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn strings(name in router_names(), body in any::<String>()) {
            check(&name, &body)?;
        }

        #[test]
        fn integers(name in router_names(), signed in any::<i64>(), unsigned in any::<u64>()) {
            check(&name, &signed)?;
            check(&name, &unsigned)?;
        }

        #[test]
        fn nested_vecs_of_strings(
            name in router_names(),
            body in proptest::collection::vec(proptest::collection::vec(any::<String>(), 0..4), 0..4),
        ) {
            check(&name, &body)?;
        }

        #[test]
        fn json_values_without_floats(name in router_names(), body in json_values()) {
            check(&name, &body)?;
        }
    }
}

/// `router_name` reads peer bytes: it never panics, and any name it returns is valid.
mod router_name_is_total {
    use super::*;

    fn check(frame: &Message) -> Result<(), TestCaseError> {
        if let Some(name) = envelope::router_name(frame) {
            prop_assert!(envelope::validate_router_name(name).is_ok(), "{:?} from {:?}", name, frame);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn on_arbitrary_bytes(bytes in peer_bytes()) {
            check(&Message::binary(bytes.clone()))?;
            if let Some(frame) = text(&bytes) {
                check(&frame)?;
            }
        }

        #[test]
        fn on_arbitrary_text(tail in any::<String>()) {
            check(&Message::text(tail.clone()))?;
            check(&Message::text(format!(r#"{{"$r":"{tail}"#)))?;
        }
    }
}

/// `Message::decode` reads peer bytes: it returns an error on garbage, never panics.
mod decode_is_total {
    use serde_json::Value;

    use super::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn on_arbitrary_bytes(bytes in peer_bytes()) {
            let _ = Message::binary(bytes.clone()).decode::<Value>();
            if let Some(frame) = text(&bytes) {
                let _ = frame.decode::<Value>();
            }
        }
    }
}

/// `envelope::peek` reads the `id` and `t` of any map body, in JSON and MessagePack,
/// whatever its other fields hold, and never panics on peer bytes.
mod peek_reads_any_map_body {
    use serde_json::{Map, Value};

    use super::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn finds_id_and_t(
            name in router_names(),
            id in any::<u64>(),
            t in ".{0,12}",
            others in proptest::collection::btree_map("[a-s]{1,6}", envelopes_round_trip::json_values(), 0..6),
        ) {
            let mut body: Map<String, Value> = others.into_iter().collect();
            body.insert("t".into(), Value::from(t.clone()));
            body.insert("id".into(), Value::from(id));
            let body = Value::Object(body);
            for frame in [envelope::json(&name, &body).unwrap(), envelope::msgpack(&name, &body).unwrap()] {
                let peek = envelope::peek(&name, &frame);
                prop_assert_eq!(peek.id, Some(id));
                prop_assert_eq!(peek.t.as_deref(), Some(t.as_str()));
            }
        }

        #[test]
        fn an_id_of_another_type_is_not_read(name in router_names(), id in envelopes_round_trip::json_values()) {
            prop_assume!(!id.is_u64());
            let body = serde_json::json!({"id": id});
            for frame in [envelope::json(&name, &body).unwrap(), envelope::msgpack(&name, &body).unwrap()] {
                prop_assert_eq!(envelope::peek(&name, &frame).id, None);
            }
        }

        #[test]
        fn is_total(bytes in peer_bytes()) {
            let _ = envelope::peek("views", &Message::binary(bytes.clone()));
            if let Some(frame) = text(&bytes) {
                let _ = envelope::peek("views", &frame);
            }
        }
    }
}
