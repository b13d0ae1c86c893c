//! A fan-out member that reads the server's frames itself: the upgrade by hand, then one
//! large `read` per wake-up and a header check per frame, where tungstenite costs a codec
//! call, a buffer split and a waker registration per frame.
//!
//! The load generator must be cheaper per delivery than the servers it measures, or the
//! rate it reports is its own: with tungstenite members, a server doing a 1,000-member
//! fan-out used a quarter of its core while the load generator used all of its own. Server
//! frames are unmasked, so reading one is a length and an opcode. Pings are answered (with
//! a masked pong, as RFC 6455 requires of a client); a close, a fragmented data frame or
//! an error ends the member (it then counts as a lost connection, as before).
//!
//! With `deflate`, a member offers permessage-deflate as a browser does
//! (`permessage-deflate; client_max_window_bits`) and inflates the compressed frames it
//! gets, keeping the server's LZ77 window between messages unless the server agreed to
//! `server_no_context_takeover` (Node `ws` keeps its context by default; ours never does).

use std::sync::atomic::{AtomicU64, Ordering};

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::BoxError;

/// What a member's reads go into: large enough for a burst of many small frames.
const READ_BUFFER: usize = 16 * 1024;
/// The longest upgrade response accepted.
const MAX_RESPONSE: usize = 8 * 1024;

/// An upgraded connection and the bytes read past the upgrade response.
pub(super) struct Member {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Bytes of `buffer` that hold unread data.
    filled: usize,
    /// permessage-deflate, when the server agreed to it.
    inflater: Option<Inflater>,
}

/// A member's inflater: its state, and whether the server resets its window per message.
struct Inflater {
    state: Box<InflateState>,
    reset_each_message: bool,
    /// The last message inflated.
    out: Vec<u8>,
}

impl Inflater {
    /// Inflates one message's payload (RFC 7692 7.2.2: with `00 00 ff ff` appended) into
    /// `self.out`; `false` if it is not valid DEFLATE data.
    fn inflate(&mut self, compressed: &[u8]) -> bool {
        if self.reset_each_message {
            self.state.reset(DataFormat::Raw);
        }
        self.out.clear();
        let mut filled = 0;
        for mut input in [compressed, &[0x00, 0x00, 0xff, 0xff][..]] {
            loop {
                if filled == self.out.len() {
                    self.out.resize((self.out.len() * 2).max(4096), 0);
                }
                let room = self.out.len() - filled;
                let result = inflate(&mut self.state, input, &mut self.out[filled..], MZFlush::Sync);
                if result.status.is_err()
                    && result.bytes_consumed == 0
                    && result.bytes_written == 0
                    && !input.is_empty()
                {
                    return false;
                }
                input = &input[result.bytes_consumed..];
                filled += result.bytes_written;
                if input.is_empty() && result.bytes_written < room {
                    break;
                }
            }
        }
        self.out.truncate(filled);
        true
    }
}

/// Opens `url` (`ws://HOST:PORT/PATH`) and upgrades it, offering permessage-deflate with
/// `deflate`.
pub(super) async fn connect(url: &str, deflate: bool) -> Result<Member, BoxError> {
    let uri: Uri = url.parse()?;
    let authority = uri.authority().ok_or_else(|| format!("{url}: no host"))?.as_str().to_owned();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut stream = TcpStream::connect(&authority).await?;
    stream.set_nodelay(true)?;
    let offer =
        if deflate { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = vec![0; READ_BUFFER];
    let mut filled = 0;
    let head_end = loop {
        if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if filled >= MAX_RESPONSE {
            return Err(format!("{url}: upgrade response too long").into());
        }
        let read = stream.read(&mut buffer[filled..MAX_RESPONSE]).await?;
        if read == 0 {
            return Err(format!("{url}: closed during the upgrade").into());
        }
        filled += read;
    };
    if !buffer.starts_with(b"HTTP/1.1 101") {
        let status = String::from_utf8_lossy(&buffer[..head_end.min(64)]).into_owned();
        return Err(format!("{url}: upgrade refused: {status}").into());
    }
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let agreed = head.lines().find(|line| line.starts_with("sec-websocket-extensions:"));
    let inflater = agreed.filter(|line| line.contains("permessage-deflate")).map(|line| Inflater {
        state: InflateState::new_boxed(DataFormat::Raw),
        reset_each_message: line.contains("server_no_context_takeover"),
        out: Vec::new(),
    });
    buffer.copy_within(head_end..filled, 0);
    Ok(Member { stream, buffer, filled: filled - head_end, inflater })
}

impl Member {
    /// Reads frames until the connection ends, handing each binary frame's payload
    /// (inflated, when compressed) to `binary`, and counting the bytes read in `wire`.
    pub(super) async fn run(mut self, wire: &AtomicU64, mut binary: impl FnMut(&[u8])) {
        loop {
            let mut start = 0;
            while let Some((header, len, opcode, fin)) = frame_at(&self.buffer[start..self.filled]) {
                let payload = &self.buffer[start + header..start + header + len];
                let compressed = self.buffer[start] & 0x40 != 0;
                match (opcode, fin) {
                    (0x2, true) if compressed => {
                        let Some(inflater) = self.inflater.as_mut() else { return };
                        if !inflater.inflate(payload) {
                            return;
                        }
                        binary(&inflater.out);
                    }
                    (0x2, true) => binary(payload),
                    (0x1, true) => {}
                    (0x9, _) => {
                        let pong = pong(payload);
                        if self.stream.write_all(&pong).await.is_err() {
                            return;
                        }
                    }
                    (0xA, _) => {}
                    _ => return,
                }
                start += header + len;
            }
            self.buffer.copy_within(start..self.filled, 0);
            self.filled -= start;
            if self.filled == self.buffer.len() {
                // One frame larger than the buffer: grow to hold it.
                self.buffer.resize(self.buffer.len() * 2, 0);
            }
            match self.stream.read(&mut self.buffer[self.filled..]).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    wire.fetch_add(read as u64, Ordering::Relaxed);
                    self.filled += read;
                }
            }
        }
    }
}

/// The frame at the start of `bytes` when it is complete: header length, payload length,
/// opcode and FIN. Server frames are unmasked.
fn frame_at(bytes: &[u8]) -> Option<(usize, usize, u8, bool)> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (header, len): (usize, usize) = match second & 0x7F {
        126 => (4, usize::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?))),
        127 => (10, usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).ok()?),
        short => (2, usize::from(short)),
    };
    (bytes.len() >= header.checked_add(len)?).then_some((header, len, first & 0x0F, first & 0x80 != 0))
}

/// A client's pong for a ping with `payload` (at most 125 bytes), masked with a zero key.
fn pong(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(6 + payload.len());
    frame.push(0x8A);
    frame.push(0x80 | u8::try_from(payload.len().min(125)).unwrap_or(125));
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&payload[..payload.len().min(125)]);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_whole_or_not_at_all() {
        let mut frame = vec![0x82, 126, 0x01, 0x00];
        frame.extend(std::iter::repeat_n(7, 256));
        for cut in 0..frame.len() {
            assert_eq!(frame_at(&frame[..cut]), None, "cut at {cut}");
        }
        assert_eq!(frame_at(&frame), Some((4, 256, 2, true)));
        assert_eq!(frame_at(&[0x89, 0]), Some((2, 0, 9, true)));
        assert_eq!(frame_at(&[0x02, 1, 5]), Some((2, 1, 2, false)));
    }

    #[test]
    fn a_pong_is_masked_and_carries_the_payload() {
        assert_eq!(pong(b"hi"), vec![0x8A, 0x82, 0, 0, 0, 0, b'h', b'i']);
    }
}
