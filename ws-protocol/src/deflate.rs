//! permessage-deflate (RFC 7692): negotiation, and one message compressed or inflated.
//!
//! # What is negotiated
//! Whatever the peer offers or answers, both directions run without context takeover:
//! - the server accepts the first valid offer and answers
//!   `permessage-deflate; server_no_context_takeover; client_no_context_takeover`, plus
//!   `server_max_window_bits=N` when the offer asked for a window of `N` bits
//!   ([`accept_offer`]); RFC 7692 7.1.1 lets a server add both `*_no_context_takeover`
//!   parameters even when the offer did not ask for them;
//! - the client offers [`CLIENT_OFFER`] and checks the answer ([`read_response`]).
//!
//! So each message is compressed on its own with an empty window, and inflated on its own:
//! [`compress`] and [`inflate`] use one compressor and one inflater per thread, reset for
//! every message, and nothing per connection. The sender's window may be limited to fewer
//! than 15 bits (`server_max_window_bits` from a client, `client_max_window_bits` from a
//! server): miniz_oxide compresses with a 32 KiB window only, so [`compress`] then resets the
//! window every `2^bits` bytes of input (a full flush), and no match reaches further back
//! than the peer's window.

use std::cell::RefCell;
use std::fmt;

use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION: &str = "permessage-deflate";

/// What a client offers: no context takeover both ways (so that it keeps no inflater state
/// of its own either), and any window the server asks it to compress with.
pub const CLIENT_OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits";

/// The bytes every message's compressed payload ends with before the sender strips them
/// (RFC 7692 7.2.1), and the receiver appends them back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The largest LZ77 window (and the default): 2^15 bytes.
pub const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window RFC 7692 allows: 2^8 bytes.
pub const MIN_WINDOW_BITS: u8 = 8;

/// The compression level of [`compress`]: miniz's fastest (greedy matching, one probe).
/// Realtime payloads are small and compressed on the sender's task; docs/DESIGN.md has
/// the levels measured against each other.
const LEVEL: u8 = 1;

/// The parameters both ends agreed on. Context takeover is off both ways, always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The window (in bits, 8 to 15) the server compresses with.
    pub server_window_bits: u8,
    /// The window (in bits, 8 to 15) the client compresses with.
    pub client_window_bits: u8,
}

impl Agreement {
    /// The server's `Sec-WebSocket-Extensions` answer for this agreement.
    pub fn response(&self) -> String {
        let mut response = format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
        if self.server_window_bits < MAX_WINDOW_BITS {
            response.push_str(&format!("; server_max_window_bits={}", self.server_window_bits));
        }
        response
    }
}

/// The server's side: the first valid permessage-deflate offer among the values of the
/// request's `Sec-WebSocket-Extensions` headers, or `None` when there is none.
///
/// RFC 7692 7 says which offers a server declines, and this one does: an unknown
/// parameter, a duplicate, a value where none belongs or a window outside 8-15. A malformed
/// header is not an error of the upgrade: no offer is accepted from it, and the connection
/// runs uncompressed.
pub fn accept_offer<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Agreement> {
    headers.into_iter().flat_map(extensions).find_map(|extension| {
        let extension = extension.ok()?;
        if !extension.name.eq_ignore_ascii_case(EXTENSION) {
            return None;
        }
        let mut seen = Seen::default();
        let mut server_window_bits = MAX_WINDOW_BITS;
        for param in &extension.params {
            match param.name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if param.value.is_none() => seen.first(0)?,
                "client_no_context_takeover" if param.value.is_none() => seen.first(1)?,
                "server_max_window_bits" => {
                    seen.first(2)?;
                    server_window_bits = window_bits(param.value.as_deref()?)?;
                }
                "client_max_window_bits" => {
                    seen.first(3)?;
                    if let Some(value) = param.value.as_deref() {
                        window_bits(value)?;
                    }
                }
                _ => return None,
            }
        }
        // The client's window does not matter to us: the inflater takes any.
        Some(Agreement { server_window_bits, client_window_bits: MAX_WINDOW_BITS })
    })
}

/// Why a client refuses the server's answer to [`CLIENT_OFFER`] (RFC 7692 5 and 7.1: the
/// client fails the connection).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The answer names an extension the client did not offer, or more than one.
    #[error("the server answered with an extension that was not offered: {0}")]
    NotOffered(String),
    /// The answer has an unknown or repeated parameter, or a value that is not allowed.
    #[error("invalid permessage-deflate parameter in the server's answer: {0}")]
    InvalidParameter(String),
    /// The answer lacks `server_no_context_takeover`, which the offer asked for and a
    /// server accepting it must confirm.
    #[error("the server did not confirm server_no_context_takeover")]
    ContextTakeover,
    /// The header is not a valid extension list.
    #[error("malformed Sec-WebSocket-Extensions header")]
    Malformed,
}

/// The client's side: what the server's `Sec-WebSocket-Extensions` values (the response's)
/// agree to. `Ok(None)` when the server declined (no extension in its answer).
pub fn read_response<'a>(
    headers: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Agreement>, NegotiationError> {
    let mut agreement = None;
    for extension in headers.into_iter().flat_map(extensions) {
        let extension = extension.map_err(|Malformed| NegotiationError::Malformed)?;
        if !extension.name.eq_ignore_ascii_case(EXTENSION) || agreement.is_some() {
            return Err(NegotiationError::NotOffered(extension.name.to_owned()));
        }
        let invalid = |param: &Param| NegotiationError::InvalidParameter(param.to_string());
        let mut seen = Seen::default();
        let mut confirmed = false;
        let mut found =
            Agreement { server_window_bits: MAX_WINDOW_BITS, client_window_bits: MAX_WINDOW_BITS };
        for param in &extension.params {
            let value = param.value.as_deref();
            match param.name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if value.is_none() => {
                    seen.first(0).ok_or_else(|| invalid(param))?;
                    confirmed = true;
                }
                "client_no_context_takeover" if value.is_none() => {
                    seen.first(1).ok_or_else(|| invalid(param))?
                }
                "server_max_window_bits" => {
                    seen.first(2).ok_or_else(|| invalid(param))?;
                    found.server_window_bits = value.and_then(window_bits).ok_or_else(|| invalid(param))?;
                }
                "client_max_window_bits" => {
                    seen.first(3).ok_or_else(|| invalid(param))?;
                    found.client_window_bits = value.and_then(window_bits).ok_or_else(|| invalid(param))?;
                }
                _ => return Err(invalid(param)),
            }
        }
        if !confirmed {
            return Err(NegotiationError::ContextTakeover);
        }
        agreement = Some(found);
    }
    Ok(agreement)
}

/// Which of the four parameters were seen (each may appear once).
#[derive(Default)]
struct Seen([bool; 4]);

impl Seen {
    /// `Some` the first time parameter `index` is seen, `None` after.
    fn first(&mut self, index: usize) -> Option<()> {
        (!std::mem::replace(&mut self.0[index], true)).then_some(())
    }
}

/// A window size in bits: exactly `8` to `15`, no sign, no leading zero (RFC 7692 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(bits))
}

/// One element of an extension list.
struct Extension<'a> {
    name: &'a str,
    params: Vec<Param>,
}

/// One `name[=value]` of an extension, its value unquoted.
struct Param {
    name: String,
    value: Option<String>,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The header is not an extension list (RFC 6455 9.1).
struct Malformed;

/// The extensions of one header value, in order (RFC 6455 9.1:
/// `extension *( "," extension )`, `extension = token *( ";" token [ "=" (token |
/// quoted-string) ] )`). An element that does not parse is an `Err` in its place.
fn extensions(value: &str) -> impl Iterator<Item = Result<Extension<'_>, Malformed>> {
    split_outside_quotes(value, b',').filter(|element| !element.trim().is_empty()).map(|element| {
        let mut parts = split_outside_quotes(element, b';');
        let name = parts.next().map(str::trim).filter(|name| is_token(name)).ok_or(Malformed)?;
        let params = parts.map(param).collect::<Result<_, _>>()?;
        Ok(Extension { name, params })
    })
}

/// One `name[=value]`, the value a token or a quoted string whose content is a token.
fn param(text: &str) -> Result<Param, Malformed> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (text.trim(), None),
    };
    if !is_token(name) {
        return Err(Malformed);
    }
    let value = match value {
        None => None,
        Some(quoted) if quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"') => {
            let mut unquoted = String::new();
            let mut escaped = false;
            for ch in quoted[1..quoted.len() - 1].chars() {
                match (escaped, ch) {
                    (false, '\\') => escaped = true,
                    (false, '"') => return Err(Malformed),
                    _ => {
                        unquoted.push(ch);
                        escaped = false;
                    }
                }
            }
            if escaped || !is_token(&unquoted) {
                return Err(Malformed);
            }
            Some(unquoted)
        }
        Some(token) if is_token(token) => Some(token.to_owned()),
        Some(_) => return Err(Malformed),
    };
    Ok(Param { name: name.to_owned(), value })
}

/// Splits at `separator` where it is not inside a quoted string.
fn split_outside_quotes(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (at, byte) in current.bytes().enumerate() {
            match byte {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if byte == separator && !quoted => {
                    rest = Some(&current[at + 1..]);
                    return Some(&current[..at]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(current)
    })
}

/// An HTTP token (RFC 7230 3.2.6).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

thread_local! {
    /// The compressor of this thread, made at its first message (a few hundred KiB).
    static COMPRESSOR: RefCell<Option<Box<CompressorOxide>>> = const { RefCell::new(None) };
    /// The inflater of this thread, made at its first compressed message (about 43 KiB).
    static INFLATER: RefCell<Option<Box<InflateState>>> = const { RefCell::new(None) };
}

/// Compresses `payload` as one message of permessage-deflate (raw DEFLATE, the final
/// `00 00 ff ff` removed), no match reaching more than `2^window_bits` bytes back.
///
/// Data that does not compress comes out about 0.1 % longer (in DEFLATE's stored blocks);
/// it is still sent compressed, as Node `ws` and Python `websockets`
/// do, since the work is done by then and a peer may expect every message above a size to
/// be compressed. `None` only if the compressor reports an error, which it does not for
/// these parameters (the message then goes uncompressed).
pub fn compress(payload: &[u8], window_bits: u8) -> Option<Vec<u8>> {
    COMPRESSOR.with(|compressor| match compressor.try_borrow_mut() {
        Ok(mut compressor) => {
            let compressor = compressor.get_or_insert_with(new_compressor);
            compressor.reset();
            compress_with(compressor, payload, window_bits)
        }
        // Not reached (compressing never calls back into this); correct anyway.
        Err(_) => compress_with(&mut new_compressor(), payload, window_bits),
    })
}

fn new_compressor() -> Box<CompressorOxide> {
    let mut compressor = Box::<CompressorOxide>::default();
    compressor.set_format_and_level(DataFormat::Raw, LEVEL);
    compressor
}

fn compress_with(compressor: &mut CompressorOxide, payload: &[u8], window_bits: u8) -> Option<Vec<u8>> {
    let window_bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // With a 15-bit window the whole payload is one run; with less, the window is emptied
    // (a full flush) every 2^bits bytes, so no distance exceeds the peer's window.
    let run = if window_bits == MAX_WINDOW_BITS { payload.len().max(1) } else { 1 << window_bits };
    // Room for incompressible data (stored blocks add about 0.1 %): a flush that meets a
    // full output may end without its empty stored block (seen with miniz_oxide 0.9), so
    // the output should not fill up; if it does anyway, one more flush below adds the block.
    let mut out = vec![0u8; payload.len() + payload.len() / 128 + 64];
    let mut written = 0;
    let runs = payload.len().div_ceil(run).max(1);
    for index in 0..runs {
        let mut input = &payload[(index * run).min(payload.len())..((index + 1) * run).min(payload.len())];
        let flush = if index + 1 == runs { MZFlush::Sync } else { MZFlush::Full };
        loop {
            if written == out.len() {
                out.resize(out.len() * 2, 0);
            }
            let room = out.len() - written;
            let result = miniz_oxide::deflate::stream::deflate(compressor, input, &mut out[written..], flush);
            result.status.ok()?;
            if result.bytes_consumed == 0 && result.bytes_written == 0 && !input.is_empty() {
                return None;
            }
            input = &input[result.bytes_consumed..];
            written += result.bytes_written;
            // Done with this run when its input is taken and the flush did not fill the
            // output (a full output may hold back the rest of the flush).
            if input.is_empty() && result.bytes_written < room {
                break;
            }
        }
    }
    // A sync flush ends with an empty stored block, whose last 4 bytes are TAIL.
    if !out[..written].ends_with(&TAIL) {
        if out.len() - written < 64 {
            out.resize(written + 64, 0);
        }
        let result =
            miniz_oxide::deflate::stream::deflate(compressor, &[], &mut out[written..], MZFlush::Sync);
        result.status.ok()?;
        written += result.bytes_written;
        if !out[..written].ends_with(&TAIL) {
            return None;
        }
    }
    out.truncate(written - TAIL.len());
    out.shrink_to_fit();
    Some(out)
}

/// Why a compressed message could not be inflated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// It inflates to more than the maximum: stopped at the first byte over it (a
    /// receiver closes with 1009).
    #[error("compressed message inflates beyond {max} bytes")]
    TooBig {
        /// The maximum given to [`inflate`].
        max: usize,
    },
    /// The bytes are not valid DEFLATE data (a receiver closes with 1007).
    #[error("compressed message is not valid DEFLATE data")]
    Corrupt,
    /// The `charge` callback refused more bytes (the receiver's memory budget).
    #[error("no budget left for the inflated message")]
    Refused,
}

/// Inflates one message's compressed payload (without its final `00 00 ff ff`) into at
/// most `max_size` bytes. `charge` is told of the inflated bytes as they are produced, in
/// steps of at most 64 KiB, and may refuse them: memory is charged before it is used
/// further. A message over `max_size` fails as soon as it exceeds it, not after it is
/// inflated (zip bombs).
pub fn inflate(
    compressed: &[u8],
    max_size: usize,
    charge: impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, InflateError> {
    INFLATER.with(|inflater| match inflater.try_borrow_mut() {
        Ok(mut inflater) => {
            let inflater = inflater.get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
            inflater.reset(DataFormat::Raw);
            inflate_with(inflater, compressed, max_size, charge)
        }
        // Not reached (inflating never calls back into this); correct anyway.
        Err(_) => inflate_with(&mut InflateState::new_boxed(DataFormat::Raw), compressed, max_size, charge),
    })
}

/// The most one step of [`inflate`] adds to its output.
const INFLATE_STEP: usize = 64 * 1024;

fn inflate_with(
    inflater: &mut InflateState,
    compressed: &[u8],
    max_size: usize,
    mut charge: impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, InflateError> {
    // One byte over the maximum tells that the message is too big.
    let limit = max_size.saturating_add(1);
    let mut out = Vec::new();
    let mut filled = 0;
    for mut input in [compressed, &TAIL[..]] {
        loop {
            if filled == out.len() {
                if out.len() >= limit {
                    return Err(InflateError::TooBig { max: max_size });
                }
                let step = out.len().max(compressed.len().saturating_mul(2)).clamp(256, INFLATE_STEP);
                out.resize(out.len().saturating_add(step).min(limit), 0);
            }
            let room = out.len() - filled;
            let result =
                miniz_oxide::inflate::stream::inflate(inflater, input, &mut out[filled..], MZFlush::None);
            input = &input[result.bytes_consumed..];
            filled += result.bytes_written;
            if result.bytes_written > 0 && !charge(result.bytes_written) {
                return Err(InflateError::Refused);
            }
            match result.status {
                // A final block: what follows it is not part of the stream.
                Ok(MZStatus::StreamEnd) => {
                    out.truncate(filled);
                    return check_size(out, max_size);
                }
                Ok(_) | Err(MZError::Buf) => {}
                Err(_) => return Err(InflateError::Corrupt),
            }
            // No progress with room to write: nothing more comes out of this input.
            if result.bytes_consumed == 0 && result.bytes_written == 0 {
                break;
            }
            // This input is done when it is all taken and the output did not fill up (a
            // full output may hold more to come).
            if input.is_empty() && result.bytes_written < room {
                break;
            }
        }
    }
    out.truncate(filled);
    check_size(out, max_size)
}

fn check_size(out: Vec<u8>, max_size: usize) -> Result<Vec<u8>, InflateError> {
    if out.len() > max_size {
        return Err(InflateError::TooBig { max: max_size });
    }
    Ok(out)
}

/// How a sender compresses once permessage-deflate is negotiated: the server's
/// `ServerConfig::compression` and the client's `ClientConfig::compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compression {
    /// Messages of fewer bytes go uncompressed (RSV1 clear); the others are compressed,
    /// even those that do not shrink (about 0.1 % longer then). Compressing costs a fixed
    /// few microseconds per message (resetting the compressor's tables) before any byte
    /// is saved. `0` compresses every message. Default 1 KiB (docs/DESIGN.md,
    /// "permessage-deflate", has the figures).
    pub min_size: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Self { min_size: 1024 }
    }
}

impl Compression {
    /// Sets [`min_size`](Self::min_size).
    pub fn min_size(mut self, min_size: usize) -> Self {
        self.min_size = min_size;
        self
    }
}

#[cfg(test)]
mod tests;
