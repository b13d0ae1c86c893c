//! The one computation both ends of an upgrade share (RFC 6455 4.2.2): the
//! `Sec-WebSocket-Accept` value of a `Sec-WebSocket-Key`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// The GUID of RFC 6455 1.3, hashed after the key.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for `key`: the base64 of the SHA-1 of the key and the GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    BASE64.encode(sha1.finalize())
}

/// A fresh `Sec-WebSocket-Key`: the base64 of 16 random bytes, given by the caller.
pub fn key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_one_of_rfc_6455() {
        // RFC 6455 1.3's example.
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(key([0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
    }
}
