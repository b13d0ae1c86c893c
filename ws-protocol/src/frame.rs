//! RFC 6455 frames: the incremental parser both ends read with, and the frame encoders.
//!
//! [`FrameParser`] takes bytes as they arrive and returns what they complete: a message
//! (gathered from its frames), a control frame, or a compressed message for the caller to
//! inflate with [`deflate::inflate`](crate::deflate::inflate) (the caller owns the memory
//! budget the inflated bytes are charged to). What it keeps between reads is only what is
//! incomplete: a partial header (in place, 14 bytes), the payload of a message still
//! arriving, the payload of a control frame; an idle parser holds no heap memory.
//!
//! Its [`Role`] says which side reads: a server requires masked frames from its client, a
//! client requires unmasked frames from its server (RFC 6455 5.1); anything else is the
//! same on both sides.
//!
//! What the parser refuses, with the close code it asks for (RFC 6455 5.2, 5.4, 5.5, 7.4):
//! - 1002: a frame masked or unmasked against the role, reserved bits set, a reserved
//!   opcode, a control frame fragmented or over 125 bytes, a continuation frame without a
//!   message to continue or a new data frame inside a fragmented message, a 64-bit length
//!   with its top bit set, a close frame whose payload is 1 byte or whose code may not be
//!   sent;
//! - 1009: a message over `max_message_size`, refused from the frame header that takes it
//!   over, before its payload is buffered;
//! - 1007: a text message that is not UTF-8 (checked as fragments arrive, so it fails as
//!   soon as a byte cannot start or continue a character), a close reason that is not.
//!
//! With permessage-deflate negotiated (RFC 7692), RSV1 on the first frame of a data message
//! marks it compressed: its frames are gathered as they come (the compressed size counts
//! against `max_message_size`) and it is returned as [`Parsed::Compressed`] when it
//! completes; its text is checked by whoever inflates it.

use bytes::{Bytes, BytesMut};
use network_core::{CloseCode, CloseFrame};

#[cfg(test)]
mod tests;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// The longest control frame payload (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;
/// The longest close reason (a control frame's 125 bytes less the 2-byte code).
pub const MAX_CLOSE_REASON: usize = 123;

/// The bit permessage-deflate sets on the first frame of a compressed message.
pub const RSV1: u8 = 0x40;
/// The FIN bit of a frame's first byte: the last frame of a message.
pub const FIN: u8 = 0x80;
/// Text opcode.
pub const TEXT: u8 = 0x1;
/// Binary opcode.
pub const BINARY: u8 = 0x2;
/// Close opcode.
pub const CLOSE: u8 = 0x8;
/// Ping opcode.
pub const PING: u8 = 0x9;
/// Pong opcode.
pub const PONG: u8 = 0xA;

/// Which end reads the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A server reading its client: every frame must be masked.
    Server,
    /// A client reading its server: no frame may be masked.
    Client,
}

/// What the peer sent: a complete message or a control frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
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

/// What the parser completed: what the peer sent, or a compressed message to inflate.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A message or control frame, ready.
    Ready(Incoming),
    /// A compressed data message (RSV1 on its first frame), as received.
    Compressed {
        /// Whether it is a text message (its UTF-8 is checked once inflated).
        text: bool,
        /// The compressed payload, without the final `00 00 ff ff`.
        payload: Bytes,
    },
}

/// Why the parser refused the peer's bytes. After one, the parser must not be used again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer broke RFC 6455: close with 1002.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A message over `max_message_size` (`size` counts the message up to the end of the
    /// frame that went over): close with 1009.
    #[error("message of {size} bytes exceeds {max}")]
    TooBig {
        /// The message's size up to the end of the offending frame.
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// Text that is not UTF-8 (a text message or a close reason): close with 1007.
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

impl FrameError {
    /// The close code this error asks for.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Protocol(_) => CloseCode::PROTOCOL,
            Self::TooBig { .. } => CloseCode::TOO_BIG,
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
        }
    }
}

/// Whether a close frame may carry `code` (RFC 6455 7.4.1 and 7.4.2): 1004-1006 and 1015
/// are reserved or never sent, below 1000 and 1016-2999 unassigned, 3000-4999 for
/// libraries and applications.
pub fn close_code_allowed(code: u16) -> bool {
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
    fn from_bits(bits: u8) -> Result<Self, FrameError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            TEXT => Self::Text,
            BINARY => Self::Binary,
            CLOSE => Self::Close,
            PING => Self::Ping,
            PONG => Self::Pong,
            _ => return Err(FrameError::Protocol("reserved opcode")),
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
    /// `None` for an unmasked frame (from a server).
    mask: Option<[u8; 4]>,
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
pub struct FrameParser {
    role: Role,
    max_message_size: usize,
    /// Whether permessage-deflate was negotiated: RSV1 then marks a compressed message.
    deflate: bool,
    /// What is incomplete (a header, a frame, a message), boxed and only while something
    /// is: an idle connection holds this pointer and nothing more, and a read holding
    /// whole messages parses them on the stack.
    progress: Option<Box<Progress>>,
}

impl FrameParser {
    /// A parser for `role` refusing messages over `max_message_size` bytes; with
    /// `deflate` (permessage-deflate negotiated), RSV1 on a message's first frame is
    /// accepted.
    pub fn new(role: Role, max_message_size: usize, deflate: bool) -> Self {
        Self { role, max_message_size, deflate, progress: None }
    }

    /// The largest message accepted, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Whether the parser holds any heap memory (something incomplete).
    pub fn holds_buffer(&self) -> bool {
        self.progress.is_some()
    }

    /// Parses `input` until one message or control frame completes or `input` runs out.
    /// Returns how many bytes were taken and what completed; after `Ok(None)`, all of
    /// `input` was taken. After an error the parser must not be used again.
    pub fn parse(&mut self, input: &[u8]) -> (usize, Result<Option<Parsed>, FrameError>) {
        let mut fresh = Progress::default();
        let progress = self.progress.as_deref_mut().unwrap_or(&mut fresh);
        let limits =
            Limits { role: self.role, max_message_size: self.max_message_size, deflate: self.deflate };
        let parsed = progress.parse(limits, input);
        let idle = progress.is_idle();
        match (idle, self.progress.is_some()) {
            (true, true) => self.progress = None,
            (false, false) => self.progress = Some(Box::new(fresh)),
            _ => {}
        }
        parsed
    }
}

/// What the parser is told once, passed down to each step.
#[derive(Clone, Copy)]
struct Limits {
    role: Role,
    max_message_size: usize,
    deflate: bool,
}

/// The incomplete part of what the peer sent.
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
    fn parse(&mut self, limits: Limits, input: &[u8]) -> (usize, Result<Option<Parsed>, FrameError>) {
        let mut taken = 0;
        loop {
            let rest = &input[taken..];
            let Some(frame) = self.frame.as_mut() else {
                match self.parse_header(limits, rest) {
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
    fn parse_header(&mut self, limits: Limits, input: &[u8]) -> (usize, Result<bool, FrameError>) {
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
                if let Err(error) = self.check_first_bytes(limits) {
                    return (used, Err(error));
                }
            }
        }
        let header = self.header;
        self.header_len = 0;
        (used, self.start_frame(limits.max_message_size, &header).map(|()| true))
    }

    /// The checks of the first two header bytes, in the order the RFC lists them.
    fn check_first_bytes(&self, limits: Limits) -> Result<(), FrameError> {
        let [first, second, ..] = self.header;
        let opcode = Opcode::from_bits(first & 0x0F)?;
        check_reserved_bits(first, limits.deflate && matches!(opcode, Opcode::Text | Opcode::Binary))?;
        match (limits.role, second & 0x80 != 0) {
            (Role::Server, false) => return Err(FrameError::Protocol("unmasked frame from a client")),
            (Role::Client, true) => return Err(FrameError::Protocol("masked frame from a server")),
            _ => {}
        }
        let fin = first & FIN != 0;
        if opcode.is_control() {
            if !fin {
                return Err(FrameError::Protocol("fragmented control frame"));
            }
            if u64::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
                return Err(FrameError::Protocol("control frame over 125 bytes"));
            }
        } else {
            match (opcode, self.message.is_some()) {
                (Opcode::Continuation, false) => {
                    return Err(FrameError::Protocol("continuation frame without a message to continue"));
                }
                (Opcode::Text | Opcode::Binary, true) => {
                    return Err(FrameError::Protocol("new data frame inside a fragmented message"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts the frame of a complete (and first-checked) header: length checks, then the
    /// message it begins or continues.
    fn start_frame(&mut self, max_message_size: usize, header: &[u8; MAX_HEADER]) -> Result<(), FrameError> {
        let opcode = Opcode::from_bits(header[0] & 0x0F)?;
        let fin = header[0] & FIN != 0;
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
            return Err(FrameError::Protocol("frame length with the most significant bit set"));
        }
        let mask = (header[1] & 0x80 != 0).then(|| {
            let mut mask = [0u8; 4];
            mask.copy_from_slice(&header[mask_at..mask_at + 4]);
            mask
        });
        if !opcode.is_control() {
            let before = self.message.as_ref().map_or(0, |message| message.payload.len() as u64);
            let size = before.saturating_add(length);
            if size > max_message_size as u64 {
                return Err(FrameError::TooBig { size, max: max_message_size });
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
    fn end_frame(&mut self) -> Result<Option<Parsed>, FrameError> {
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

/// RFC 6455 5.2: reserved bits must be 0 unless an extension gives them a meaning.
/// permessage-deflate gives RSV1 one on the first frame of a data message
/// (`rsv1_allowed`); on a continuation or control frame it stays a violation (RFC 7692 6).
fn check_reserved_bits(first: u8, rsv1_allowed: bool) -> Result<(), FrameError> {
    let allowed = if rsv1_allowed { RSV1 } else { 0 };
    if first & 0x70 & !allowed != 0 {
        return Err(FrameError::Protocol("reserved bits set"));
    }
    Ok(())
}

/// A header's length, from its second byte: the length's extra bytes and the mask, if any
/// (the role's check of the mask bit comes before the length is needed).
fn header_len(second: u8) -> usize {
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// Unmasks `payload`, whose first byte is byte `offset` of the frame's payload; nothing
/// to do for an unmasked frame.
fn unmask(payload: &mut [u8], mask: Option<[u8; 4]>, offset: u64) {
    if let Some(mut mask) = mask {
        mask.rotate_left((offset % 4) as usize);
        apply_mask(payload, mask);
    }
}

/// XORs `payload` with `mask` repeated, from the mask's first byte (RFC 6455 5.3), eight
/// bytes at a time.
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    // The rest starts at a multiple of 8, so at the mask's first byte again.
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// Checks the text of `message` not validated yet; `complete` when no byte follows (an
/// incomplete character at the end is then an error too).
fn validate_utf8(message: &mut Partial, complete: bool) -> Result<(), FrameError> {
    match std::str::from_utf8(&message.payload[message.validated..]) {
        Ok(_) => message.validated = message.payload.len(),
        Err(error) if error.error_len().is_none() && !complete => message.validated += error.valid_up_to(),
        Err(_) => return Err(FrameError::InvalidUtf8),
    }
    Ok(())
}

/// Decodes a close frame's payload (RFC 6455 5.5.1, 7.4).
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("close frame with a 1-byte payload")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !close_code_allowed(code) {
                return Err(FrameError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok(Some(CloseFrame::new(CloseCode(code), reason)))
        }
    }
}

/// The payload of a close frame carrying `frame`: its code as given (see
/// [`close_code_allowed`] for those that may be sent), and its reason cut to 123 bytes on
/// a character boundary; empty for `None` (no status code).
pub fn close_payload(frame: Option<&CloseFrame>) -> Vec<u8> {
    let Some(frame) = frame else {
        return Vec::new();
    };
    let code = frame.code.0;
    let reason = truncate(&frame.reason, MAX_CLOSE_REASON);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The bytes of a server close frame carrying `frame` (its reason cut to 123 bytes, on a
/// character boundary), or no status code.
pub fn close_frame_bytes(frame: Option<&CloseFrame>) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode(&mut bytes, FIN | CLOSE, &close_payload(frame), None);
    bytes
}

/// The bytes of a server control frame (ping, pong) with `payload` (at most 125 bytes, as
/// the parser guarantees for a ping's).
pub fn control_frame_bytes(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + payload.len());
    encode(&mut bytes, FIN | opcode, payload, None);
    bytes
}

/// Appends one frame to `out`: `first` is its first byte (FIN, RSV1, opcode), `payload`
/// is masked with `mask` when there is one (a client's frames), and the length takes the
/// shortest encoding (RFC 6455 5.2).
pub fn encode(out: &mut Vec<u8>, first: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    out.reserve(MAX_HEADER + len);
    out.push(first);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len();
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
    }
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start + 4..], mask);
    }
}
