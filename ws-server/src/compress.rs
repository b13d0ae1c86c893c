//! A message compressed once for all the connections it goes to.
//!
//! A broadcast hands the same [`Message`] to every member's outbox in turn, on one thread.
//! The first outbox that compresses it keeps the result here, beside a clone of the
//! payload, and the next ones find it by the payload's address and length: a broadcast to
//! 1,000 members that negotiated the same window is compressed once. The clone keeps the
//! payload's memory alive while it is remembered, so a new payload cannot take its address
//! (payloads are immutable `Bytes`: same address and length, same bytes). One message per
//! thread is remembered, until the next one is compressed there.

use std::cell::RefCell;

use bytes::Bytes;
use network_core::Message;

/// The last message compressed on this thread.
struct Remembered {
    payload: Bytes,
    window_bits: u8,
    /// `None` if the compressor failed (the message is then sent as it is).
    compressed: Option<Bytes>,
}

thread_local! {
    static LAST: RefCell<Option<Remembered>> = const { RefCell::new(None) };
}

/// `message`'s payload compressed for a peer whose window is `window_bits` (`None` if the
/// compressor failed: see [`ws_protocol::deflate::compress`]).
pub(crate) fn compressed(message: &Message, window_bits: u8) -> Option<Bytes> {
    let payload = message.payload();
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            // Not reached (compressing calls nothing back); correct without the memory.
            return ws_protocol::deflate::compress(payload, window_bits).map(Bytes::from);
        };
        if let Some(remembered) = last.as_ref()
            && remembered.window_bits == window_bits
            && remembered.payload.as_ptr() == payload.as_ptr()
            && remembered.payload.len() == payload.len()
        {
            return remembered.compressed.clone();
        }
        let compressed = ws_protocol::deflate::compress(payload, window_bits).map(Bytes::from);
        *last = Some(Remembered { payload: payload.clone(), window_bits, compressed: compressed.clone() });
        compressed
    })
}

/// The payload remembered on this thread, for tests.
#[cfg(test)]
pub(crate) fn remembered_payload() -> Option<Bytes> {
    LAST.with(|last| last.borrow().as_ref().map(|remembered| remembered.payload.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_compressed_once_for_every_recipient() {
        let message = Message::text("a broadcast to many members, a broadcast to many members ".repeat(30));
        let first = compressed(&message, 15).unwrap_or_default();
        assert!(first.len() < message.len() / 4);
        let again = compressed(&message.clone(), 15).unwrap_or_default();
        // The same allocation handed out again, not a second compression.
        assert_eq!(first.as_ptr(), again.as_ptr());
        // Another window is compressed anew; equal bytes elsewhere are another message.
        let narrow = compressed(&message, 9).unwrap_or_default();
        assert_ne!(narrow.as_ptr(), first.as_ptr());
        let copy = Message::text(message.as_text().unwrap_or_default().to_owned());
        let copied = compressed(&copy, 9).unwrap_or_default();
        assert_ne!(copied.as_ptr(), narrow.as_ptr());
        assert_eq!(copied, narrow);
        assert_eq!(remembered_payload().map(|payload| payload.as_ptr()), Some(copy.payload().as_ptr()));
    }
}
