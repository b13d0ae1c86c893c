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
//! The frames are parsed by [`ws_protocol::frame::FrameParser`], reading as a server
//! (every frame masked), which ws-client shares reading as a client; its docs list what it
//! refuses and with which close code (1002, 1007, 1009). This module adds what is the
//! server's: the scratch buffer, the incoming budget (1013 once spent), and the inflating.
//!
//! With permessage-deflate negotiated (RFC 7692), RSV1 on the first frame of a data message
//! marks it compressed: the parser gathers its frames as they come (the compressed size
//! counts against `max_message_size`) and the message is inflated here when it completes,
//! by the thread's inflater, stopping at the first byte over `max_message_size` (1009),
//! charging the inflated bytes to the server's incoming budget as they are produced, and
//! refusing data that is not valid DEFLATE, or text that is not UTF-8 once inflated (1007).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use network_core::{CloseCode, CloseFrame};
use tokio::io::{AsyncRead, ReadBuf};

use ws_protocol::deflate::InflateError;
use ws_protocol::frame::{FrameError, Role};

use crate::pressure::IncomingShare;

#[cfg(test)]
mod tests;

thread_local! {
    /// The buffer every read of this thread's connections goes into. It grows to the
    /// largest `read_buffer_size` of the servers that read on this thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// What a client sent: a complete message or a control frame.
pub(crate) use ws_protocol::frame::Incoming;
/// What the parser completed (a message, or a compressed one to inflate).
pub(crate) use ws_protocol::frame::Parsed;
pub(crate) use ws_protocol::frame::{PING, PONG, close_frame_bytes, control_frame_bytes};

/// Why reading from a client stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client broke RFC 6455 (1002), sent text that is not UTF-8 (1007) or a message
    /// over `max_message_size` (1009, also when it inflates beyond it): closed with the
    /// error's code.
    #[error(transparent)]
    Frame(#[from] FrameError),
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
            Self::Frame(error) => error.close_code(),
            Self::InvalidCompressed => CloseCode::INVALID_PAYLOAD,
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

/// The frame parser of a connection: ws-protocol's, reading as a server (masked frames),
/// its errors as [`ReadError`]s.
#[derive(Debug)]
pub(crate) struct FrameParser(ws_protocol::frame::FrameParser);

impl FrameParser {
    /// A parser refusing messages over `max_message_size` bytes; with `deflate`
    /// (permessage-deflate negotiated), RSV1 on a message's first frame is accepted.
    pub(crate) fn new(max_message_size: usize, deflate: bool) -> Self {
        Self(ws_protocol::frame::FrameParser::new(Role::Server, max_message_size, deflate))
    }

    /// Whether the parser holds any heap memory (something incomplete).
    #[cfg(test)]
    pub(crate) fn holds_buffer(&self) -> bool {
        self.0.holds_buffer()
    }

    /// [`ws_protocol::frame::FrameParser::parse`].
    pub(crate) fn parse(&mut self, input: &[u8]) -> (usize, Result<Option<Parsed>, ReadError>) {
        let (taken, parsed) = self.0.parse(input);
        (taken, parsed.map_err(ReadError::from))
    }
}

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
        let max = self.parser.0.max_message_size();
        let incoming = &mut self.incoming;
        let inflated = ws_protocol::deflate::inflate(compressed, max, |bytes| incoming.read(bytes).is_ok())
            .map_err(|error| match error {
            InflateError::TooBig { max } => FrameError::TooBig { size: max as u64 + 1, max }.into(),
            InflateError::Refused => ReadError::BudgetExhausted,
            _ => ReadError::InvalidCompressed,
        })?;
        if text {
            std::str::from_utf8(&inflated).map_err(|_| FrameError::InvalidUtf8)?;
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
