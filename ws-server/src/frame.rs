//! Server-to-client frame headers.
//!
//! Server frames are never masked (RFC 6455 5.1), so the bytes of a frame are the same for
//! every recipient: a header of 2 to 10 bytes before the shared payload. The write path
//! sends header and payload as two slices of one vectored write, so a broadcast copies no
//! payload at all.

use network_core::Message;

/// The header of one final (unfragmented) data frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    pub(crate) const EMPTY: Self = Self { bytes: [0; 10], len: 0 };

    pub(crate) fn for_message(message: &Message) -> Self {
        Self::data(opcode(message), message.len())
    }

    /// The header of `message` sent compressed (permessage-deflate: RSV1 set) as
    /// `compressed_len` bytes.
    pub(crate) fn compressed(message: &Message, compressed_len: usize) -> Self {
        let mut header = Self::data(opcode(message), compressed_len);
        header.bytes[0] |= RSV1;
        header
    }

    fn data(opcode: u8, payload_len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The bit of a compressed message's first frame (RFC 7692 6).
const RSV1: u8 = 0x40;

fn opcode(message: &Message) -> u8 {
    if message.is_text() { 0x1 } else { 0x2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_encoding() {
        assert_eq!(Header::data(1, 5).as_slice(), &[0x81, 5]);
        assert_eq!(Header::data(2, 126).as_slice(), &[0x82, 126, 0, 126]);
        assert_eq!(Header::data(2, 65_535).as_slice(), &[0x82, 126, 0xff, 0xff]);
        assert_eq!(Header::data(2, 65_536).as_slice(), &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
