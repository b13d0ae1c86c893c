//! The server's read side: RFC 6455 frames from a client, parsed by us.
//!
//! An idle connection owns no read buffer. Each read goes into a scratch buffer shared by
//! the connections of a thread ([`SCRATCH`]), used only inside one synchronous
//! [`Reader::poll_next`] and never across an `.await`; the parser takes what it needs from
//! it and only what is incomplete when the read ends is kept by the connection: a partial
//! header (in place, 14 bytes), the payload of a message still arriving (its own buffer,
//! freed when the message completes) and, when one read held more than one message, the
//! bytes after the first (freed once parsed). tungstenite kept a buffer of
//! `read_buffer_size` per connection for the connection's life (see docs/DESIGN.md,
//! "Memory per connection").
//!
//! What the parser refuses, with the close code it asks for (RFC 6455 5.2, 5.4, 5.5, 7.4):
//! - 1002: an unmasked frame, reserved bits set, a reserved opcode, a control frame
//!   fragmented or over 125 bytes, a continuation frame without a message to continue or
//!   a new data frame inside a fragmented message, a 64-bit length with its top bit set, a
//!   close frame whose payload is 1 byte or whose code may not be sent;
//! - 1009: a message over `max_message_size`, refused from the frame header that takes it
//!   over, before its payload is buffered;
//! - 1007: a text message that is not UTF-8 (checked as fragments arrive, so it fails as
//!   soon as a byte cannot start or continue a character; a compressed one once inflated),
//!   a close reason that is not, a compressed message that is not valid DEFLATE data.
//!
//! With permessage-deflate negotiated (RFC 7692), RSV1 on the first frame of a data message
//! marks it compressed: its frames are gathered as they come (the compressed size counts
//! against `max_message_size`) and the message is inflated when it completes, by the
//! thread's inflater, stopping at the first byte over `max_message_size` (1009) and
//! charging the inflated bytes to the server's incoming budget as they are produced.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use network_core::{CloseCode, CloseFrame};
use tokio::io::{AsyncRead, ReadBuf};

use ws_protocol::deflate::InflateError;

use crate::pressure::IncomingShare;

#[cfg(test)]
mod tests;

thread_local! {
    /// The buffer every read of this thread's connections goes into. It grows to the
    /// largest `read_buffer_size` of the servers that read on this thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The longest frame header a client sends: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// The longest control frame payload (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// What a client sent: a complete message or a control frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A text message, valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping, with its payload (answered with a pong carrying it).
    Ping(Bytes),
    /// A pong (nothing to do: it shows the peer is alive).
    Pong,
    /// A close frame: `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

/// What the parser completed: what a client sent, or a compressed message for
/// [`Reader::next`] to inflate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A message or control frame, ready.
    Ready(Incoming),
    /// A compressed data message, as received.
    Compressed {
        /// Whether it is a text message.
        text: bool,
        /// The compressed payload, without the final `00 00 ff ff`.
        payload: Bytes,
    },
}

/// Why reading from a client stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client broke RFC 6455: closed with 1002.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A message over `max_message_size` (`size` counts the message up to the end of the
    /// frame that went over): closed with 1009.
    #[error("message of {size} bytes exceeds {max}")]
    TooBig {
        /// The message's size up to the end of the offending frame.
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// Text that is not UTF-8 (a text message or a close reason): closed with 1007.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// A compressed message that is not valid DEFLATE data: closed with 1007.
    #[error("invalid compressed data")]
    InvalidCompressed,
    /// The server's budget for incoming partial messages is spent: closed with 1013.
    #[error("the server's budget for incoming messages is exhausted")]
    BudgetExhausted,
    /// The socket failed: the connection is lost, no close frame is sent.
    #[error("socket read failed")]
    Io(#[source] io::Error),
}

impl ReadError {
    /// The close frame this error asks for; `None` when the socket itself failed.
    pub(crate) fn close_frame(&self) -> Option<CloseFrame> {
        let code = match self {
            Self::Protocol(_) => CloseCode::PROTOCOL,
            Self::TooBig { .. } => CloseCode::TOO_BIG,
            Self::InvalidUtf8 | Self::InvalidCompressed => CloseCode::INVALID_PAYLOAD,
            Self::BudgetExhausted => {
                return Some(CloseFrame::new(
                    CloseCode::TRY_AGAIN_LATER,
                    "server busy: incoming budget exhausted",
                ));
            }
            Self::Io(_) => return None,
        };
        Some(CloseFrame::new(code, self.to_string()))
    }
}

/// Whether a close frame may carry `code` (RFC 6455 7.4.1 and 7.4.2): 1004-1006 and 1015
/// are reserved or never sent, below 1000 and 1016-2999 unassigned, 3000-4999 for
/// libraries and applications.
pub(crate) fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A frame opcode (RFC 6455 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Result<Self, ReadError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return Err(ReadError::Protocol("reserved opcode")),
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The frame whose payload is arriving.
#[derive(Clone, Copy, Debug)]
struct Frame {
    opcode: Opcode,
    fin: bool,
    /// Payload bytes still to come.
    remaining: u64,
    mask: [u8; 4],
    /// Payload bytes already unmasked (their count modulo 4 picks the mask byte).
    unmasked: u64,
}

/// A data message whose frames are arriving.
#[derive(Debug)]
struct Partial {
    text: bool,
    /// RSV1 was set on its first frame (permessage-deflate): the payload is inflated when
    /// the message completes, and its text checked then.
    compressed: bool,
    payload: BytesMut,
    /// For text: the payload's prefix known to be valid UTF-8 (what follows is at most an
    /// incomplete character).
    validated: usize,
}

/// The frame parser: what a connection keeps between reads.
#[derive(Debug)]
pub(crate) struct FrameParser {
    max_message_size: usize,
    /// Whether permessage-deflate was negotiated: RSV1 then marks a compressed message.
    deflate: bool,
    /// What is incomplete (a header, a frame, a message), boxed and only while something
    /// is: an idle connection holds this pointer and nothing more, and a read holding
    /// whole messages parses them on the stack.
    progress: Option<Box<Progress>>,
}

impl FrameParser {
    /// A parser refusing messages over `max_message_size` bytes; with `deflate`
    /// (permessage-deflate negotiated), RSV1 on a message's first frame is accepted.
    pub(crate) fn new(max_message_size: usize, deflate: bool) -> Self {
        Self { max_message_size, deflate, progress: None }
    }

    /// Whether the parser holds any heap memory (something incomplete).
    #[cfg(test)]
    pub(crate) fn holds_buffer(&self) -> bool {
        self.progress.is_some()
    }

    /// Parses `input` until one message or control frame completes or `input` runs out.
    /// Returns how many bytes were taken and what completed; after `Ok(None)`, all of
    /// `input` was taken. After an error the parser must not be used again.
    pub(crate) fn parse(&mut self, input: &[u8]) -> (usize, Result<Option<Parsed>, ReadError>) {
        let mut fresh = Progress::default();
        let progress = self.progress.as_deref_mut().unwrap_or(&mut fresh);
        let parsed = progress.parse(self.max_message_size, self.deflate, input);
        let idle = progress.is_idle();
        match (idle, self.progress.is_some()) {
            (true, true) => self.progress = None,
            (false, false) => self.progress = Some(Box::new(fresh)),
            _ => {}
        }
        parsed
    }
}

/// The incomplete part of what a client sent.
#[derive(Debug, Default)]
struct Progress {
    header: [u8; MAX_HEADER],
    header_len: u8,
    frame: Option<Frame>,
    message: Option<Partial>,
    /// The payload of a control frame arriving (empty, without allocation, otherwise).
    control: Vec<u8>,
}

impl Progress {
    /// Whether nothing is incomplete.
    fn is_idle(&self) -> bool {
        self.header_len == 0 && self.frame.is_none() && self.message.is_none() && self.control.capacity() == 0
    }

    /// [`FrameParser::parse`].
    fn parse(
        &mut self,
        max_message_size: usize,
        deflate: bool,
        input: &[u8],
    ) -> (usize, Result<Option<Parsed>, ReadError>) {
        let mut taken = 0;
        loop {
            let rest = &input[taken..];
            let Some(frame) = self.frame.as_mut() else {
                match self.parse_header(max_message_size, deflate, rest) {
                    (used, Ok(true)) => taken += used,
                    (used, Ok(false)) => return (taken + used, Ok(None)),
                    (used, Err(error)) => return (taken + used, Err(error)),
                }
                // A frame without payload ends with its header.
                if self.frame.is_some_and(|frame| frame.remaining == 0) {
                    match self.end_frame() {
                        Ok(None) => continue,
                        done => return (taken, done),
                    }
                }
                continue;
            };
            if rest.is_empty() {
                return (taken, Ok(None));
            }
            let len =
                usize::try_from(frame.remaining).map_or(rest.len(), |remaining| remaining.min(rest.len()));
            let (mask, offset, control) = (frame.mask, frame.unmasked, frame.opcode.is_control());
            frame.remaining -= len as u64;
            frame.unmasked += len as u64;
            let done = frame.remaining == 0;
            let chunk = &rest[..len];
            taken += len;
            if control {
                let start = self.control.len();
                self.control.extend_from_slice(chunk);
                unmask(&mut self.control[start..], mask, offset);
            } else if let Some(message) = self.message.as_mut() {
                let start = message.payload.len();
                message.payload.extend_from_slice(chunk);
                unmask(&mut message.payload[start..], mask, offset);
                if message.text
                    && !message.compressed
                    && let Err(error) = validate_utf8(message, false)
                {
                    return (taken, Err(error));
                }
            }
            if done {
                match self.end_frame() {
                    Ok(None) => {}
                    done => return (taken, done),
                }
            }
        }
    }

    /// Takes header bytes from `input`: `Ok(true)` once the header is complete (and
    /// checked; `self.frame` is set), `Ok(false)` when `input` ran out first.
    fn parse_header(
        &mut self,
        max_message_size: usize,
        deflate: bool,
        input: &[u8],
    ) -> (usize, Result<bool, ReadError>) {
        let mut used = 0;
        loop {
            let have = usize::from(self.header_len);
            let needed = if have < 2 { 2 } else { header_len(self.header[1]) };
            if have == needed {
                break;
            }
            let take = (needed - have).min(input.len() - used);
            if take == 0 {
                return (used, Ok(false));
            }
            self.header[have..have + take].copy_from_slice(&input[used..used + take]);
            self.header_len += take as u8;
            used += take;
            if have < 2 && usize::from(self.header_len) == 2 {
                // Everything but the length is known from the first two bytes: fail fast.
                if let Err(error) = self.check_first_bytes(deflate) {
                    return (used, Err(error));
                }
            }
        }
        let header = self.header;
        self.header_len = 0;
        (used, self.start_frame(max_message_size, &header).map(|()| true))
    }

    /// The checks of the first two header bytes, in the order the RFC lists them.
    fn check_first_bytes(&self, deflate: bool) -> Result<(), ReadError> {
        let [first, second, ..] = self.header;
        let opcode = Opcode::from_bits(first & 0x0F)?;
        check_reserved_bits(first, deflate && matches!(opcode, Opcode::Text | Opcode::Binary))?;
        if second & 0x80 == 0 {
            return Err(ReadError::Protocol("unmasked frame from a client"));
        }
        let fin = first & 0x80 != 0;
        if opcode.is_control() {
            if !fin {
                return Err(ReadError::Protocol("fragmented control frame"));
            }
            if u64::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
                return Err(ReadError::Protocol("control frame over 125 bytes"));
            }
        } else {
            match (opcode, self.message.is_some()) {
                (Opcode::Continuation, false) => {
                    return Err(ReadError::Protocol("continuation frame without a message to continue"));
                }
                (Opcode::Text | Opcode::Binary, true) => {
                    return Err(ReadError::Protocol("new data frame inside a fragmented message"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts the frame of a complete (and first-checked) header: length checks, then the
    /// message it begins or continues.
    fn start_frame(&mut self, max_message_size: usize, header: &[u8; MAX_HEADER]) -> Result<(), ReadError> {
        let opcode = Opcode::from_bits(header[0] & 0x0F)?;
        let fin = header[0] & 0x80 != 0;
        let (length, mask_at) = match header[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([header[2], header[3]])), 4),
            127 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&header[2..10]);
                (u64::from_be_bytes(bytes), 10)
            }
            short => (u64::from(short), 2),
        };
        // RFC 6455 5.2: the most significant bit of a 64-bit length must be 0.
        if length >> 63 != 0 {
            return Err(ReadError::Protocol("frame length with the most significant bit set"));
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&header[mask_at..mask_at + 4]);
        if !opcode.is_control() {
            let before = self.message.as_ref().map_or(0, |message| message.payload.len() as u64);
            let size = before.saturating_add(length);
            if size > max_message_size as u64 {
                return Err(ReadError::TooBig { size, max: max_message_size });
            }
            if opcode != Opcode::Continuation {
                self.message = Some(Partial {
                    text: opcode == Opcode::Text,
                    compressed: header[0] & RSV1 != 0,
                    payload: BytesMut::new(),
                    validated: 0,
                });
            }
        }
        self.frame = Some(Frame { opcode, fin, remaining: length, mask, unmasked: 0 });
        Ok(())
    }

    /// The current frame's payload is complete: what it completes, if anything.
    fn end_frame(&mut self) -> Result<Option<Parsed>, ReadError> {
        let Some(frame) = self.frame.take() else {
            return Ok(None);
        };
        match frame.opcode {
            Opcode::Close => {
                let payload = std::mem::take(&mut self.control);
                close_frame(&payload).map(|close| Some(Parsed::Ready(Incoming::Close(close))))
            }
            Opcode::Ping => {
                Ok(Some(Parsed::Ready(Incoming::Ping(Bytes::from(std::mem::take(&mut self.control))))))
            }
            Opcode::Pong => {
                self.control = Vec::new();
                Ok(Some(Parsed::Ready(Incoming::Pong)))
            }
            Opcode::Continuation | Opcode::Text | Opcode::Binary if frame.fin => {
                let Some(mut message) = self.message.take() else {
                    return Ok(None);
                };
                if message.text && !message.compressed {
                    validate_utf8(&mut message, true)?;
                }
                let payload = message.payload.freeze();
                Ok(Some(if message.compressed {
                    Parsed::Compressed { text: message.text, payload }
                } else if message.text {
                    Parsed::Ready(Incoming::Text(payload))
                } else {
                    Parsed::Ready(Incoming::Binary(payload))
                }))
            }
            Opcode::Continuation | Opcode::Text | Opcode::Binary => Ok(None),
        }
    }
}

/// The bit permessage-deflate sets on the first frame of a compressed message.
const RSV1: u8 = 0x40;

/// RFC 6455 5.2: reserved bits must be 0 unless an extension gives them a meaning.
/// permessage-deflate gives RSV1 one on the first frame of a data message
/// (`rsv1_allowed`); on a continuation or control frame it stays a violation (RFC 7692 6).
fn check_reserved_bits(first: u8, rsv1_allowed: bool) -> Result<(), ReadError> {
    let allowed = if rsv1_allowed { RSV1 } else { 0 };
    if first & 0x70 & !allowed != 0 {
        return Err(ReadError::Protocol("reserved bits set"));
    }
    Ok(())
}

/// A client header's length, from its second byte: the length's extra bytes and the mask.
fn header_len(second: u8) -> usize {
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + extended + 4
}

/// Unmasks `payload`, whose first byte is byte `offset` of the frame's payload.
fn unmask(payload: &mut [u8], mask: [u8; 4], offset: u64) {
    let mut mask = mask;
    mask.rotate_left((offset % 4) as usize);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        for (byte, key) in chunk.iter_mut().zip(mask) {
            *byte ^= key;
        }
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Checks the text of `message` not validated yet; `complete` when no byte follows (an
/// incomplete character at the end is then an error too).
fn validate_utf8(message: &mut Partial, complete: bool) -> Result<(), ReadError> {
    match std::str::from_utf8(&message.payload[message.validated..]) {
        Ok(_) => message.validated = message.payload.len(),
        Err(error) if error.error_len().is_none() && !complete => message.validated += error.valid_up_to(),
        Err(_) => return Err(ReadError::InvalidUtf8),
    }
    Ok(())
}

/// Decodes a close frame's payload (RFC 6455 5.5.1, 7.4).
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, ReadError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ReadError::Protocol("close frame with a 1-byte payload")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !close_code_allowed(code) {
                return Err(ReadError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ReadError::InvalidUtf8)?;
            Ok(Some(CloseFrame::new(CloseCode(code), reason)))
        }
    }
}

/// The bytes of a server close frame carrying `frame` (its reason cut to 123 bytes, on a
/// character boundary), or no status code.
pub(crate) fn close_frame_bytes(frame: Option<&CloseFrame>) -> Vec<u8> {
    let Some(frame) = frame else {
        return vec![0x88, 0];
    };
    let mut end = frame.reason.len().min(123);
    while !frame.reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &frame.reason.as_bytes()[..end];
    let mut bytes = Vec::with_capacity(4 + reason.len());
    bytes.extend_from_slice(&[0x88, (2 + reason.len()) as u8]);
    bytes.extend_from_slice(&frame.code.0.to_be_bytes());
    bytes.extend_from_slice(reason);
    bytes
}

/// The bytes of a server control frame (ping, pong) with `payload` (at most 125 bytes, as
/// the parser guarantees for a ping's).
pub(crate) fn control_frame_bytes(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + payload.len());
    bytes.extend_from_slice(&[0x80 | opcode, payload.len() as u8]);
    bytes.extend_from_slice(payload);
    bytes
}

/// Ping opcode, for [`control_frame_bytes`].
pub(crate) const PING: u8 = 0x9;
/// Pong opcode, for [`control_frame_bytes`].
pub(crate) const PONG: u8 = 0xA;

/// One connection's reads: the socket, its share of the incoming budget and the parser.
pub(crate) struct Reader<R> {
    read: R,
    incoming: IncomingShare,
    parser: FrameParser,
    /// Bytes read after a complete message and not parsed yet (the handshake's leftover,
    /// or a read holding more than one message); empty, without allocation, otherwise.
    unparsed: BytesMut,
    /// The most one read takes from the socket.
    read_size: usize,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads `read` in reads of at most `read_size` bytes, `leftover` (bytes already read
    /// past the upgrade request) first; `deflate` when permessage-deflate was negotiated.
    pub(crate) fn new(
        read: R,
        incoming: IncomingShare,
        max_message_size: usize,
        read_size: usize,
        leftover: Vec<u8>,
        deflate: bool,
    ) -> Self {
        Self {
            read,
            incoming,
            parser: FrameParser::new(max_message_size, deflate),
            unparsed: BytesMut::from(&leftover[..]),
            read_size: read_size.max(1),
        }
    }

    /// The socket's read half (to discard what a peer sends after a violation).
    pub(crate) fn socket(&mut self) -> &mut R {
        &mut self.read
    }

    /// The next message or control frame; `None` at the end of the stream (with or
    /// without a partial frame: either way the peer left without a close frame).
    ///
    /// # Cancel safety
    /// Cancel safe: what was read stays in the parser's state or in `unparsed`.
    pub(crate) async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        Some(match std::future::poll_fn(|cx| self.poll_next(cx)).await? {
            Ok(Parsed::Ready(incoming)) => Ok(incoming),
            Ok(Parsed::Compressed { text, payload }) => self.inflate(text, &payload),
            Err(error) => Err(error),
        })
    }

    /// Inflates a compressed message, charging what it inflates to the incoming budget.
    fn inflate(&mut self, text: bool, compressed: &[u8]) -> Result<Incoming, ReadError> {
        let max = self.parser.max_message_size;
        let incoming = &mut self.incoming;
        let inflated = ws_protocol::deflate::inflate(compressed, max, |bytes| incoming.read(bytes).is_ok())
            .map_err(|error| match error {
            InflateError::TooBig { max } => ReadError::TooBig { size: max as u64 + 1, max },
            InflateError::Refused => ReadError::BudgetExhausted,
            _ => ReadError::InvalidCompressed,
        })?;
        if text {
            std::str::from_utf8(&inflated).map_err(|_| ReadError::InvalidUtf8)?;
            Ok(Incoming::Text(Bytes::from(inflated)))
        } else {
            Ok(Incoming::Binary(Bytes::from(inflated)))
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Parsed, ReadError>>> {
        loop {
            if !self.unparsed.is_empty() {
                let (taken, parsed) = self.parser.parse(&self.unparsed);
                self.unparsed.advance(taken);
                if self.unparsed.is_empty() {
                    self.unparsed = BytesMut::new();
                }
                match parsed {
                    Ok(None) => {}
                    done => return Poll::Ready(done.transpose()),
                }
            }
            let read = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut scratch) => self.read_and_parse(cx, &mut scratch),
                // Not reached (nothing reads a connection inside another's read); a buffer
                // of its own keeps it correct anyway.
                Err(_) => self.read_and_parse(cx, &mut Vec::new()),
            });
            match ready!(read) {
                Some(Ok(None)) => {}
                Some(Ok(Some(incoming))) => return Poll::Ready(Some(Ok(incoming))),
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => return Poll::Ready(None),
            }
        }
    }

    /// One read into `scratch`, parsed: `Some(Ok(None))` when it completed nothing.
    #[allow(clippy::type_complexity)]
    fn read_and_parse(
        &mut self,
        cx: &mut Context<'_>,
        scratch: &mut Vec<u8>,
    ) -> Poll<Option<Result<Option<Parsed>, ReadError>>> {
        if scratch.len() < self.read_size {
            scratch.resize(self.read_size, 0);
        }
        let mut buf = ReadBuf::new(&mut scratch[..self.read_size]);
        if let Err(error) = ready!(Pin::new(&mut self.read).poll_read(cx, &mut buf)) {
            return Poll::Ready(Some(Err(ReadError::Io(error))));
        }
        let read = buf.filled().len();
        if read == 0 {
            return Poll::Ready(None);
        }
        crate::metrics::handles().socket_bytes_in.increment(read as u64);
        if self.incoming.read(read).is_err() {
            return Poll::Ready(Some(Err(ReadError::BudgetExhausted)));
        }
        let (taken, parsed) = self.parser.parse(&scratch[..read]);
        if matches!(parsed, Ok(Some(_))) && taken < read {
            self.unparsed.extend_from_slice(&scratch[taken..read]);
        }
        Poll::Ready(Some(parsed))
    }

    /// A data message is complete: what its partial parts reserved goes back to the budget.
    pub(crate) fn message_done(&mut self) {
        self.incoming.message_done();
    }
}
