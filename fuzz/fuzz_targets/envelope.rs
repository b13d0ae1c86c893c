//! Peer bytes through everything network-core does with a frame: envelope detection
//! (`envelope::router_name`), envelope decoding, the lenient `envelope::peek` of the error
//! path, and plain `Message::decode`, for the bytes as a binary frame and, when they are
//! UTF-8, as a text frame.
//!
//! Never panics; in addition, a detected name is valid, a body that decodes encodes back
//! into an envelope for the same router, and `peek` reads the same `t` and `id` as a full
//! decode of the body does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use network_core::{Bytes, Message, Text, envelope};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    check(&Message::Binary(bytes.clone()));
    if let Ok(text) = Text::from_utf8(bytes) {
        check(&Message::Text(text));
    }
});

fn check(frame: &Message) {
    let _ = frame.decode::<Value>();
    let Some(name) = envelope::router_name(frame) else {
        let _ = envelope::decode::<Value>("views", frame);
        let _ = envelope::peek("views", frame);
        return;
    };
    assert!(envelope::validate_router_name(name).is_ok(), "invalid name {name:?} detected");
    let peek = envelope::peek(name, frame);
    let Ok(body) = envelope::decode::<Value>(name, frame) else { return };
    if let Value::Object(map) = &body {
        assert_eq!(peek.t.as_deref(), map.get("t").and_then(Value::as_str), "t of {body}");
        assert_eq!(peek.id, map.get("id").and_then(Value::as_u64), "id of {body}");
    }
    let again = if frame.is_text() { envelope::json(name, &body) } else { envelope::msgpack(name, &body) };
    let again = again.expect("a decoded body encodes");
    assert_eq!(envelope::router_name(&again), Some(name));
    let back = envelope::decode::<Value>(name, &again).expect("a re-encoded envelope decodes");
    if frame.is_binary() {
        // MessagePack carries integers and floats exactly; JSON text may not (serde_json
        // parses floats approximately without its `float_roundtrip` feature).
        assert_eq!(back, body);
    }
}
