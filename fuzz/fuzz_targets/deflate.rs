//! permessage-deflate as a peer controls it (`ws-protocol`): the extension offers a server
//! reads, the answers a client reads, and the compressed messages either side inflates.
//!
//! The first byte picks what the rest is: an offer header, an answer header, or a
//! compressed message. Never panics; in addition, an accepted offer's answer is one a
//! client accepts with the same window, an inflated message never exceeds the maximum,
//! the budget callback is told exactly the bytes produced, and what inflates compresses
//! and inflates back to itself at every window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_protocol::deflate::{self, InflateError};

/// The maximum a fuzzed message may inflate to (small, so that bombs are cut early).
const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 3 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            if let Some(agreement) = deflate::accept_offer(text.split('\n')) {
                let answer = agreement.response();
                let read = deflate::read_response([answer.as_str()]);
                assert_eq!(read.map(|agreed| agreed.map(|a| a.server_window_bits)), Ok(Some(agreement.server_window_bits)));
            }
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            let _ = deflate::read_response(text.split('\n'));
        }
        _ => {
            let mut charged = 0;
            match deflate::inflate(rest, MAX, |bytes| {
                charged += bytes;
                true
            }) {
                Ok(inflated) => {
                    assert!(inflated.len() <= MAX);
                    assert_eq!(charged, inflated.len());
                    for bits in [deflate::MIN_WINDOW_BITS, 11, deflate::MAX_WINDOW_BITS] {
                        let again = deflate::compress(&inflated, bits).unwrap_or_default();
                        assert_eq!(deflate::inflate(&again, MAX, |_| true).as_deref(), Ok(&inflated[..]));
                    }
                }
                Err(InflateError::TooBig { max }) => assert!(max == MAX && charged <= MAX + 1),
                Err(_) => {}
            }
        }
    }
});
