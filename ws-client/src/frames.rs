//! The client's frames: read with ws-protocol's parser (reading as a client: unmasked
//! frames), written masked (RFC 6455 5.3), compressed with permessage-deflate when it was
//! negotiated (RFC 7692).

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use network_core::{CloseCode, CloseFrame, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use ws_protocol::deflate::{self, Agreement, InflateError};
use ws_protocol::frame::{self, FIN, FrameError, FrameParser, Incoming, Parsed, Role};

use crate::config::Compression;
use crate::socket::Socket;

/// The most one read takes from the socket (and the read buffer's usual size): small,
/// because a client may run on small devices; a message's payload is gathered by the
/// parser, not here.
const READ_SIZE: usize = 8 * 1024;
/// Written bytes above which [`FrameWriter`] releases its buffer after a flush, so that
/// one big message does not keep its size for the connection's life.
const KEEP_WRITE_BUFFER: usize = 64 * 1024;

/// Why reading from the server stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The server broke RFC 6455 (1002), sent text that is not UTF-8 (1007) or a message
    /// over `max_message_size` (1009, also when it inflates beyond it).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A compressed message is not valid DEFLATE data: 1007.
    #[error("invalid compressed data")]
    InvalidCompressed,
    /// The socket failed: nothing can be sent any more.
    #[error("socket read failed: {0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// The close code this error asks the client to send; `None` when the socket failed.
    pub(crate) fn close_code(&self) -> Option<CloseCode> {
        match self {
            Self::Frame(error) => Some(error.close_code()),
            Self::InvalidCompressed => Some(CloseCode::INVALID_PAYLOAD),
            Self::Io(_) => None,
        }
    }
}

/// The read half of a socket and what is incomplete of the server's frames.
pub(crate) struct FrameReader {
    read: ReadHalf<Socket>,
    parser: FrameParser,
    /// Bytes read and not parsed yet (the first are those read past the 101 response).
    unparsed: BytesMut,
    /// An error was returned: the parser's state is not to be trusted any more, and what
    /// the server sends until it closes the connection is discarded.
    failed: bool,
}

impl FrameReader {
    /// Reads `read`, `leftover` first; `deflate` when permessage-deflate was negotiated.
    pub(crate) fn new(
        read: ReadHalf<Socket>,
        leftover: BytesMut,
        max_message_size: usize,
        deflate: bool,
    ) -> Self {
        Self {
            read,
            parser: FrameParser::new(Role::Client, max_message_size, deflate),
            unparsed: leftover,
            failed: false,
        }
    }

    /// The next message or control frame from the server; `None` at the end of the stream.
    /// After an error, what the server sends is discarded until it closes the connection
    /// (the close frame a client sends after a violation is answered that way).
    ///
    /// # Cancel safety
    /// Cancel safe: what was read stays in the parser or in the unparsed bytes.
    pub(crate) async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        let next = self.read_next().await;
        self.failed |= matches!(next, Some(Err(_)));
        next
    }

    async fn read_next(&mut self) -> Option<Result<Incoming, ReadError>> {
        while self.failed {
            self.unparsed.clear();
            self.unparsed.reserve(READ_SIZE);
            match self.read.read_buf(&mut self.unparsed).await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => return Some(Err(ReadError::Io(error))),
            }
        }
        loop {
            if !self.unparsed.is_empty() {
                let (taken, parsed) = self.parser.parse(&self.unparsed);
                self.unparsed.advance(taken);
                match parsed {
                    Ok(None) => {}
                    Ok(Some(Parsed::Ready(incoming))) => return Some(Ok(incoming)),
                    Ok(Some(Parsed::Compressed { text, payload })) => {
                        return Some(self.inflate(text, &payload));
                    }
                    Err(error) => return Some(Err(error.into())),
                }
            }
            self.unparsed.reserve(READ_SIZE);
            match self.read.read_buf(&mut self.unparsed).await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => return Some(Err(ReadError::Io(error))),
            }
        }
    }

    /// Inflates a compressed message within `max_message_size`, stopping at its first
    /// byte over it (zip bombs).
    fn inflate(&self, text: bool, compressed: &[u8]) -> Result<Incoming, ReadError> {
        let inflated =
            deflate::inflate(compressed, self.parser.max_message_size(), |_| true).map_err(|error| {
                match error {
                    InflateError::TooBig { max } => FrameError::TooBig { size: max as u64 + 1, max }.into(),
                    _ => ReadError::InvalidCompressed,
                }
            })?;
        if !text {
            return Ok(Incoming::Binary(Bytes::from(inflated)));
        }
        std::str::from_utf8(&inflated).map_err(|_| FrameError::InvalidUtf8)?;
        Ok(Incoming::Text(Bytes::from(inflated)))
    }
}

/// The write half of a socket and the frames encoded but not written yet.
pub(crate) struct FrameWriter {
    write: WriteHalf<Socket>,
    /// Encoded frames; those before `written` are on the socket.
    buffer: Vec<u8>,
    written: usize,
    /// How messages are compressed, when permessage-deflate was negotiated.
    compress: Option<(Agreement, Compression)>,
}

impl FrameWriter {
    /// Writes to `write`; with `compress`, messages of at least its `min_size` bytes are
    /// compressed for the agreed window.
    pub(crate) fn new(write: WriteHalf<Socket>, compress: Option<(Agreement, Compression)>) -> Self {
        Self { write, buffer: Vec::new(), written: 0, compress }
    }

    /// Bytes encoded and not written yet.
    pub(crate) fn buffered(&self) -> usize {
        self.buffer.len() - self.written
    }

    /// Encodes a data message, compressed (RSV1 set) when compression was negotiated, it
    /// is at least `min_size` bytes (whether or not it shrinks: see
    /// [`deflate::compress`]).
    pub(crate) fn push_message(&mut self, message: &Message) {
        let (opcode, payload) = match message {
            Message::Text(text) => (frame::TEXT, &text.as_bytes()[..]),
            Message::Binary(bytes) => (frame::BINARY, &bytes[..]),
        };
        let compressed = self
            .compress
            .filter(|(_, compression)| payload.len() >= compression.min_size)
            .and_then(|(agreement, _)| deflate::compress(payload, agreement.client_window_bits));
        match compressed {
            Some(compressed) => self.push(FIN | frame::RSV1 | opcode, &compressed),
            None => self.push(FIN | opcode, payload),
        }
    }

    /// Encodes a ping (empty) or a pong (with the ping's payload, at most 125 bytes as the
    /// parser guarantees).
    pub(crate) fn push_control(&mut self, opcode: u8, payload: &[u8]) {
        self.push(FIN | opcode, payload);
    }

    /// Encodes a close frame: `frame`'s code (1000 for one that may not be sent: 1005,
    /// 1006, 1015, ...) and its reason cut to 123 bytes; no status code for `None`.
    pub(crate) fn push_close(&mut self, frame: Option<&CloseFrame>) {
        let frame = frame.map(|frame| match frame::close_code_allowed(frame.code.0) {
            true => frame.clone(),
            false => CloseFrame::new(CloseCode::NORMAL, frame.reason.clone()),
        });
        self.push(FIN | frame::CLOSE, &frame::close_payload(frame.as_ref()));
    }

    /// One frame, masked with a fresh random mask (RFC 6455 5.3).
    fn push(&mut self, first: u8, payload: &[u8]) {
        frame::encode(&mut self.buffer, first, payload, Some(rand::random()));
    }

    /// Writes what is encoded and flushes the socket.
    ///
    /// # Cancel safety
    /// Cancel safe: what was not written yet stays buffered, and the next flush writes it
    /// from where this one stopped (a frame is never cut or written twice).
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        while self.written < self.buffer.len() {
            let wrote = self.write.write(&self.buffer[self.written..]).await?;
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += wrote;
        }
        if self.buffer.capacity() > KEEP_WRITE_BUFFER {
            self.buffer = Vec::new();
        } else {
            self.buffer.clear();
        }
        self.written = 0;
        self.write.flush().await
    }
}
