//! Deeply nested MessagePack from a peer is refused with an error, as deeply nested JSON
//! is, instead of overflowing the stack of the task that decodes it (a whole-process
//! abort). rmp-serde allows 1024 levels by default, which overflows a 2 MiB thread stack
//! (tokio's worker default) in a debug build.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use network_core::{DecodeError, Message, envelope};

/// `depth` nested one-element arrays around a nil.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x91; depth];
    bytes.push(0xc0);
    bytes
}

#[test]
fn nesting_past_the_limit_is_a_decode_error() {
    for depth in [129, 1000, 1023, 100_000] {
        let frame = Message::binary(nested_arrays(depth));
        let result = frame.decode::<serde_json::Value>();
        assert!(matches!(result, Err(DecodeError::MessagePack(_))), "depth {depth}: {result:?}");
    }
}

#[test]
fn an_envelope_with_a_deep_body_is_a_decode_error() {
    // {"$r":"views","d":[[[...]]]}
    let mut bytes = vec![0x82, 0xa2, b'$', b'r', 0xa5];
    bytes.extend_from_slice(b"views");
    bytes.extend_from_slice(&[0xa1, b'd']);
    bytes.extend_from_slice(&nested_arrays(1000));
    let frame = Message::binary(bytes);
    assert_eq!(envelope::router_name(&frame), Some("views"));
    assert!(envelope::decode::<serde_json::Value>("views", &frame).is_err());
}

#[test]
fn nesting_within_the_limit_still_decodes() {
    // The same depth serde_json accepts for JSON text.
    let json = format!("{}null{}", "[".repeat(127), "]".repeat(127));
    let value: serde_json::Value = Message::text(json).decode().unwrap();
    let packed = Message::msgpack(&value).unwrap();
    assert_eq!(packed.decode::<serde_json::Value>().unwrap(), value);
}
