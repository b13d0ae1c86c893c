//! ws-server's frame reader against a model of RFC 6455: the input is a script of frames
//! (mostly well formed, some breaking one rule), written to a server whose application
//! echoes every message; what the server answers must be what the model says.
//!
//! Each frame of the script takes three control bytes, then its payload:
//! - byte 0: bits 0-2 the opcode (continuation, text, binary, close, ping, pong, reserved
//!   data 0x3, reserved control 0xB), bit 3 FIN, bits 4-5 both set: RSV1, bits 6-7 both
//!   set: not masked;
//! - byte 1: the payload length (0-255; the payload is the next bytes of the input, cut
//!   short at its end);
//! - byte 2: bits 0-1 the length encoding (shortest, 16-bit, 64-bit, 64-bit with the top
//!   bit set), bit 2 declares 4,097 more bytes than follow (over the server's 4,096-byte
//!   limit), bits 3-7 the first byte of the mask key.
//!
//! The first byte of the input chooses the size of the writes (as in `server_stream`), so
//! that frames arrive split across reads at every boundary.
//!
//! Oracles: the server's pongs are exactly the pings' payloads, in order; its heartbeat
//! answers are exactly those of the `hb` frames; its close frame is the model's (the
//! peer's code and reason echoed, or the code of the first violation, or none when the
//! stream ends without one); the messages it echoes are a prefix of the model's (the
//! application echoes after the reader has moved on, so a close may come first).
#![no_main]

mod server_io;

use server_io::UPGRADE;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use network_core::{Message, envelope, heartbeat};
use tokio::io::AsyncReadExt;
use ws_server::{Server, ServerConfig};

const MAX_MESSAGE: u64 = 4096;
const OPCODES: [u8; 8] = [0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB];
/// Far past the sum of the server's own timeouts below.
const DEADLINE: Duration = Duration::from_secs(60);

fuzz_target!(|data: &[u8]| {
    let Some((&control, script)) = data.split_first() else { return };
    let frames = frames(script);
    let expected = model(&frames);
    let stream: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let answer = runtime.block_on(async {
        let chunk = usize::from(control);
        tokio::time::timeout(DEADLINE, session(&stream, chunk)).await.expect("the server finished in time")
    });
    let answer = Answer::parse(&answer);
    assert_eq!(answer.pongs, expected.pongs, "pongs");
    assert_eq!(answer.heartbeats, expected.heartbeats, "heartbeat answers");
    let close_matches = match (&expected.close, &answer.close) {
        (Close::None, None) => true,
        // A violation's reason is the server's own.
        (Close::Code(code), Some(Some((sent, _)))) => code == sent,
        (Close::Echo(peer), Some(sent)) => peer == sent,
        _ => false,
    };
    assert!(close_matches, "close frame {:?}, expected {:?}", answer.close, expected.close);
    assert!(
        expected.echoes.starts_with(&answer.echoes),
        "echoes {:?} are not a prefix of {:?}",
        answer.echoes,
        expected.echoes
    );
});

/// One frame of the script.
struct Frame {
    first: u8,
    masked: bool,
    /// 0 shortest, 1 16-bit, 2 64-bit.
    form: u8,
    declared: u64,
    mask: [u8; 4],
    /// What follows the header (shorter than `declared` when the input ran out, or when
    /// the length was inflated on purpose).
    payload: Vec<u8>,
}

impl Frame {
    fn opcode(&self) -> u8 {
        self.first & 0x0F
    }

    fn length_field(&self) -> u8 {
        match self.form {
            0 if self.declared < 126 => self.declared as u8,
            0 if self.declared < 65_536 => 126,
            1 => 126,
            _ => 127,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let field = self.length_field();
        let mut bytes = vec![self.first, field | if self.masked { 0x80 } else { 0 }];
        match field {
            126 => bytes.extend_from_slice(&(self.declared as u16).to_be_bytes()),
            127 => bytes.extend_from_slice(&self.declared.to_be_bytes()),
            _ => {}
        }
        if self.masked {
            bytes.extend_from_slice(&self.mask);
            bytes.extend(self.payload.iter().enumerate().map(|(i, byte)| byte ^ self.mask[i % 4]));
        } else {
            bytes.extend_from_slice(&self.payload);
        }
        bytes
    }

    /// The length the server reads: 16-bit fields hold only 16 bits.
    fn length(&self) -> u64 {
        if self.length_field() == 126 { self.declared & 0xFFFF } else { self.declared }
    }
}

fn frames(mut script: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let [flags, len, extra, rest @ ..] = script {
        let take = usize::from(*len).min(rest.len());
        let payload = rest[..take].to_vec();
        script = &rest[take..];
        let mut declared = payload.len() as u64;
        let form = extra & 0x3;
        if extra & 0x4 != 0 {
            declared += MAX_MESSAGE + 1;
        }
        if form == 3 {
            declared |= 1 << 63;
        }
        let mut first = OPCODES[usize::from(flags & 0x7)];
        if flags & 0x8 != 0 {
            first |= 0x80;
        }
        if flags & 0x30 == 0x30 {
            first |= 0x40;
        }
        frames.push(Frame {
            first,
            masked: flags & 0xC0 != 0xC0,
            form: form.min(2),
            declared,
            mask: [extra >> 3, 0x5a, 0xa5, *len],
            payload,
        });
        if extra & 0x4 != 0 || payload_short(frames.last()) {
            // Nothing can follow a frame whose payload is not all there.
            break;
        }
    }
    frames
}

fn payload_short(frame: Option<&Frame>) -> bool {
    frame.is_some_and(|frame| (frame.payload.len() as u64) < frame.length())
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    echoes: Vec<(bool, Vec<u8>)>,
    pongs: Vec<Vec<u8>>,
    heartbeats: Vec<Vec<u8>>,
    close: Close,
}

#[derive(Debug, Default, PartialEq)]
enum Close {
    /// The stream ended without a close frame: the server sends none.
    #[default]
    None,
    /// A violation: a close frame with this code (the reason is the server's).
    Code(u16),
    /// The peer's close frame echoed (`None`: without a status code).
    Echo(Option<(u16, Vec<u8>)>),
}

/// What a server that follows RFC 6455 does with `frames`, checked in the order the
/// reader checks them (the first two header bytes, then the length, then the payload).
fn model(frames: &[Frame]) -> Expected {
    let mut expected = Expected::default();
    let mut message: Option<(bool, Vec<u8>)> = None;
    let fail = |mut expected: Expected, code| {
        expected.close = Close::Code(code);
        expected
    };
    for frame in frames {
        let opcode = frame.opcode();
        let control = opcode >= 0x8;
        let fin = frame.first & 0x80 != 0;
        if frame.first & 0x70 != 0
            || !matches!(opcode, 0x0..=0x2 | 0x8..=0xA)
            || !frame.masked
            || (control && (!fin || frame.length_field() > 125))
            || (opcode == 0x0 && message.is_none())
            || (matches!(opcode, 0x1 | 0x2) && message.is_some())
            || frame.length() >> 63 != 0
        {
            return fail(expected, 1002);
        }
        if !control {
            let before = message.as_ref().map_or(0, |(_, payload)| payload.len() as u64);
            if before + frame.length() > MAX_MESSAGE {
                return fail(expected, 1009);
            }
            if opcode != 0x0 {
                message = Some((opcode == 0x1, Vec::new()));
            }
            if let Some((text, payload)) = message.as_mut() {
                payload.extend_from_slice(&frame.payload);
                if *text && std::str::from_utf8(payload).is_err_and(|error| error.error_len().is_some()) {
                    return fail(expected, 1007);
                }
            }
        }
        if (frame.payload.len() as u64) < frame.length() {
            // The stream ends inside the frame: the peer left without a close frame.
            return expected;
        }
        match opcode {
            0x8 => {
                expected.close = match frame.payload.as_slice() {
                    [] => Close::Echo(None),
                    [_] => Close::Code(1002),
                    [high, low, reason @ ..] => {
                        let code = u16::from_be_bytes([*high, *low]);
                        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                            Close::Code(1002)
                        } else if std::str::from_utf8(reason).is_err() {
                            Close::Code(1007)
                        } else {
                            Close::Echo(Some((code, reason.to_vec())))
                        }
                    }
                };
                return expected;
            }
            0x9 => expected.pongs.push(frame.payload.clone()),
            0xA => {}
            _ if fin => {
                let Some((text, payload)) = message.take() else { continue };
                if text && std::str::from_utf8(&payload).is_err() {
                    return fail(expected, 1007);
                }
                let delivered = if text {
                    Message::text(String::from_utf8(payload.clone()).unwrap_or_default())
                } else {
                    Message::binary(payload.clone())
                };
                match envelope::router_name(&delivered) {
                    Some(heartbeat::ROUTER) => {
                        if let Some(answer) = heartbeat::answer(&delivered) {
                            expected.heartbeats.push(answer.payload().to_vec());
                        }
                    }
                    Some(network_core::resume::ROUTER) => {}
                    _ => expected.echoes.push((text, payload)),
                }
            }
            _ => {}
        }
    }
    expected
}

/// The server's frames, sorted by kind.
#[derive(Debug, Default)]
struct Answer {
    echoes: Vec<(bool, Vec<u8>)>,
    pongs: Vec<Vec<u8>>,
    heartbeats: Vec<Vec<u8>>,
    /// The close frame, if one came (`Some(None)`: without a status code).
    close: Option<Option<(u16, Vec<u8>)>>,
}

impl Answer {
    /// Parses the server's side of the stream (past its 101 response): unmasked, final
    /// frames.
    fn parse(bytes: &[u8]) -> Self {
        let start = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a 101 response") + 4;
        assert!(bytes.starts_with(b"HTTP/1.1 101"), "upgraded");
        let mut rest = &bytes[start..];
        let mut answer = Answer::default();
        while !rest.is_empty() {
            assert!(rest.len() >= 2, "a whole header");
            let (opcode, field) = (rest[0] & 0x0F, rest[1] & 0x7F);
            assert_eq!(rest[0] & 0xF0, 0x80, "final, no reserved bits");
            assert_eq!(rest[1] & 0x80, 0, "not masked");
            let (len, header) = match field {
                126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
                127 => (u64::from_be_bytes(rest[2..10].try_into().expect("8 bytes")) as usize, 10),
                short => (usize::from(short), 2),
            };
            let payload = rest[header..header + len].to_vec();
            rest = &rest[header + len..];
            assert!(answer.close.is_none(), "nothing after the close frame");
            match opcode {
                0x8 => {
                    answer.close = Some(match payload.as_slice() {
                        [] => None,
                        [high, low, reason @ ..] => {
                            Some((u16::from_be_bytes([*high, *low]), reason.to_vec()))
                        }
                        [_] => panic!("a 1-byte close payload"),
                    })
                }
                0xA => answer.pongs.push(payload),
                0x1 | 0x2 => {
                    let message = if opcode == 0x1 {
                        Message::text(String::from_utf8(payload.clone()).expect("UTF-8"))
                    } else {
                        Message::binary(payload.clone())
                    };
                    if envelope::router_name(&message) == Some(heartbeat::ROUTER) {
                        answer.heartbeats.push(payload);
                    } else {
                        answer.echoes.push((opcode == 0x1, payload));
                    }
                }
                other => panic!("unexpected opcode {other:#x} from the server"),
            }
        }
        answer
    }
}

/// Serves one connection that writes `stream` (after the upgrade) in writes of `chunk`
/// bytes (0: at once); returns what the server wrote.
async fn session(stream: &[u8], chunk: usize) -> Vec<u8> {
    let config = ServerConfig::default()
        .handshake_timeout(Duration::from_millis(50))
        .close_timeout(Duration::from_millis(50))
        .ping_interval(None)
        .idle_timeout(None)
        .rate_limit(None)
        .max_message_size(MAX_MESSAGE as usize)
        .read_buffer_size(256);
    let server = Server::detached(config).expect("a valid config");
    let application = server_io::spawn_echo(&server);
    let (client, server_end) = tokio::io::duplex(64 * 1024);
    let (mut reader, mut writer) = tokio::io::split(client);
    let write = async {
        server_io::write_in_pieces(&mut writer, &[UPGRADE, stream].concat(), chunk).await;
    };
    let read = async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        answer
    };
    let ((), (), answer) = tokio::join!(server.serve_stream(server_end, None), write, read);
    server.shutdown().await;
    application.abort();
    answer
}
