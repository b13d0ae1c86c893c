//! `Message::decode` into typed values, as the routers and applications use it: each
//! router's `Frame` (internally tagged enums with defaults), the views `Member` and
//! `ViewInfo`, `RemoteError`, `Identity`, and plain values (integers, floats, strings,
//! byte strings, maps, tuples, options), from the input as a binary frame (rmp-serde, with
//! the 128-level depth cap) and, when it is UTF-8, as a text frame (serde_json). The
//! `envelope` target decodes into `serde_json::Value` only; typed decoding takes other
//! paths through both decoders (tag buffering, integer range checks, borrowed strings).
//!
//! Never panics; in addition, a value that decodes encodes again as MessagePack (and as
//! JSON) and the MessagePack decodes back to an equal value.
#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use network_core::{Bytes, Identity, Message, RemoteError, Text};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    check_all(&Message::Binary(bytes.clone()));
    if let Ok(text) = Text::from_utf8(bytes) {
        check_all(&Message::Text(text));
    }
});

fn check_all(frame: &Message) {
    check::<channels::protocol::Frame>(frame);
    check::<views::protocol::Frame>(frame);
    check::<sync::protocol::Frame>(frame);
    check::<views::Member>(frame);
    check::<views::ViewInfo>(frame);
    check::<RemoteError>(frame);
    check::<Identity>(frame);
    check::<Value>(frame);
    check::<u64>(frame);
    check::<i32>(frame);
    check::<f64>(frame);
    check::<String>(frame);
    check::<Option<bool>>(frame);
    check::<Vec<u8>>(frame);
    check::<(u8, String, Option<i64>)>(frame);
    check::<BTreeMap<String, Vec<u32>>>(frame);
    check::<sync::Op>(frame);
}

fn check<T: DeserializeOwned + Serialize + PartialEq + Debug>(frame: &Message) {
    let Ok(value) = frame.decode::<T>() else { return };
    // JSON cannot hold every value (non-string map keys, NaN): encoding may fail, never panic.
    let _ = Message::json(&value);
    let packed = Message::msgpack(&value).expect("a decoded value encodes as MessagePack");
    let back = packed.decode::<T>().expect("re-encoded MessagePack decodes");
    if !has_nan(&value) {
        assert_eq!(back, value, "MessagePack round trip of {frame:?}");
    }
}

/// NaN is not equal to itself: a float that decoded as NaN cannot compare equal.
fn has_nan<T: Debug>(value: &T) -> bool {
    format!("{value:?}").contains("NaN")
}
