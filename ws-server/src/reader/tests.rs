use std::sync::Arc;

use super::*;
use crate::pressure::{INCOMING_UNIT, Pressure};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;

/// A client frame: `first` byte as given, `payload` masked, the shortest length encoding.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![first];
    let len = payload.len();
    if len < 126 {
        bytes.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        bytes.push(0x80 | 126);
        bytes.extend_from_slice(&short.to_be_bytes());
    } else {
        bytes.push(0x80 | 127);
        bytes.extend_from_slice(&(len as u64).to_be_bytes());
    }
    bytes.extend_from_slice(&MASK);
    bytes.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ MASK[i % 4]));
    bytes
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// Everything the parser makes of `input` fed at once, up to its first error.
fn parse_all(parser: &mut FrameParser, input: &[u8]) -> Result<Vec<Incoming>, ReadError> {
    let mut events = Vec::new();
    let mut rest = input;
    loop {
        let (taken, parsed) = parser.parse(rest);
        rest = &rest[taken..];
        match parsed? {
            Some(Parsed::Ready(event)) => events.push(event),
            Some(compressed @ Parsed::Compressed { .. }) => {
                panic!("compressed without deflate: {compressed:?}")
            }
            None => {
                assert!(rest.is_empty(), "Ok(None) takes all of its input");
                return Ok(events);
            }
        }
    }
}

/// The close code `input` ends with, once parsed.
fn refusal(input: &[u8]) -> u16 {
    let mut parser = FrameParser::new(1024, false);
    match parse_all(&mut parser, input) {
        Err(error) => error.close_frame().map_or(0, |frame| frame.code.0),
        Ok(events) => panic!("accepted: {events:?}"),
    }
}

#[test]
fn every_violation_gives_its_close_code() {
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", vec![FIN | TEXT, 1, b'a'], 1002),
        ("rsv1", frame(FIN | 0x40 | TEXT, b"a"), 1002),
        ("rsv2", frame(FIN | 0x20 | BINARY, b"a"), 1002),
        ("rsv3", frame(FIN | 0x10 | BINARY, b"a"), 1002),
        ("reserved data opcode", frame(FIN | 0x3, b"a"), 1002),
        ("reserved control opcode", frame(FIN | 0xB, b""), 1002),
        ("fragmented ping", frame(0x9, b"a"), 1002),
        ("ping over 125 bytes", frame(FIN | 0x9, &[0; 126]), 1002),
        ("continuation without a start", frame(FIN, b"a"), 1002),
        ("new message inside a fragmented one", [frame(TEXT, b"a"), frame(FIN | TEXT, b"b")].concat(), 1002),
        (
            "top bit of the 64-bit length",
            vec![FIN | BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
            1002,
        ),
        ("message over the limit", frame(FIN | BINARY, &[0; 1025]), 1009),
        ("fragments over the limit", [frame(BINARY, &[0; 1000]), frame(FIN, &[0; 25])].concat(), 1009),
        ("invalid UTF-8", frame(FIN | TEXT, b"a\xffb"), 1007),
        ("truncated UTF-8", frame(FIN | TEXT, b"\xe2\x82"), 1007),
        ("invalid UTF-8 in a fragment", [frame(TEXT, b"ok"), frame(FIN, b"\xc0\x80")].concat(), 1007),
        ("close with 1 byte", frame(FIN | CLOSE, &[3]), 1002),
        ("close reason invalid UTF-8", frame(FIN | CLOSE, &close_payload(1000, b"\xff")), 1007),
    ];
    for (name, input, code) in cases {
        assert_eq!(refusal(&input), code, "{name}");
    }
}

#[test]
fn close_codes_follow_rfc_6455_section_7_4() {
    for code in 0..=5000u16 {
        let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
        let input = frame(FIN | CLOSE, &close_payload(code, b"bye"));
        let mut parser = FrameParser::new(1024, false);
        match parse_all(&mut parser, &input) {
            Ok(events) => {
                assert!(allowed, "{code} accepted");
                assert_eq!(events, [Incoming::Close(Some(CloseFrame::new(CloseCode(code), "bye")))]);
            }
            Err(error) => {
                assert!(!allowed, "{code} refused");
                assert_eq!(error.close_frame().map(|frame| frame.code), Some(CloseCode::PROTOCOL));
            }
        }
    }
    assert_eq!(
        parse_all(&mut FrameParser::new(0, false), &frame(FIN | CLOSE, b"")).ok(),
        Some(vec![Incoming::Close(None)])
    );
}

/// A stream of every kind of frame, with the events it must give.
fn mixed_stream() -> (Vec<u8>, Vec<Incoming>) {
    let long: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let text = "héllo wörld €𝄞".as_bytes();
    let stream = [
        frame(FIN | TEXT, b"hello"),
        frame(FIN | BINARY, &long),
        // A text message in three fragments that split characters, a ping between them.
        frame(TEXT, &text[..2]),
        frame(FIN | 0x9, b"are you there"),
        frame(0x0, &text[2..13]),
        frame(FIN, &text[13..]),
        frame(FIN | 0xA, b""),
        frame(FIN | BINARY, b""),
        frame(FIN | BINARY, &[7; 300]),
        frame(FIN | CLOSE, &close_payload(1000, b"done")),
    ]
    .concat();
    let events = vec![
        Incoming::Text(Bytes::from_static(b"hello")),
        Incoming::Binary(Bytes::from(long)),
        Incoming::Ping(Bytes::from_static(b"are you there")),
        Incoming::Text(Bytes::copy_from_slice(text)),
        Incoming::Pong,
        Incoming::Binary(Bytes::new()),
        Incoming::Binary(Bytes::from(vec![7; 300])),
        Incoming::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done"))),
    ];
    (stream, events)
}

#[test]
fn frames_split_at_every_byte_boundary_give_the_same_messages() {
    let (stream, expected) = mixed_stream();
    let mut parser = FrameParser::new(1 << 20, false);
    assert_eq!(parse_all(&mut parser, &stream).unwrap(), expected);
    // Cut in two at every boundary of the frames around the long one (a quadratic check
    // over all of it would be slow), then fed one byte at a time.
    let cuts = (0..200).chain(70_000..stream.len());
    for cut in cuts {
        let mut parser = FrameParser::new(1 << 20, false);
        let mut events = parse_all(&mut parser, &stream[..cut]).unwrap();
        events.extend(parse_all(&mut parser, &stream[cut..]).unwrap());
        assert_eq!(events, expected, "cut at {cut}");
    }
    let mut parser = FrameParser::new(1 << 20, false);
    let mut events = Vec::new();
    for byte in stream.chunks(1) {
        events.extend(parse_all(&mut parser, byte).unwrap());
    }
    assert_eq!(events, expected);
}

#[test]
fn a_message_over_the_limit_is_refused_before_its_payload_is_buffered() {
    // The header alone: no payload byte has arrived.
    let mut parser = FrameParser::new(1024, false);
    let header = &frame(FIN | BINARY, &[0; 1025])[..8];
    assert!(matches!(
        parser.parse(header).1,
        Err(ReadError::Frame(FrameError::TooBig { size: 1025, max: 1024 }))
    ));
    assert!(!parser.holds_buffer());
    // A 64-bit length far beyond the limit (and beyond memory).
    let mut parser = FrameParser::new(1024, false);
    let huge = [FIN | BINARY, 0x80 | 127, 0, 0, 0x10, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert!(matches!(parser.parse(&huge).1, Err(ReadError::Frame(FrameError::TooBig { .. }))));
    // The fragment that goes over, from its header.
    let mut parser = FrameParser::new(1024, false);
    assert!(matches!(parser.parse(&frame(BINARY, &[0; 1000])), (_, Ok(None))));
    assert!(matches!(
        parser.parse(&frame(0x0, &[0; 25])[..6]).1,
        Err(ReadError::Frame(FrameError::TooBig { size: 1025, .. }))
    ));
}

#[test]
fn text_is_refused_at_the_first_invalid_byte() {
    let mut parser = FrameParser::new(1024, false);
    let input = frame(TEXT, b"ok \xff and more to come");
    // The first byte of the payload after the invalid one is not needed.
    assert!(matches!(parser.parse(&input[..6 + 4]).1, Err(ReadError::Frame(FrameError::InvalidUtf8))));
}

fn reader(input: &[u8], budget: usize) -> Reader<&[u8]> {
    let pressure = Arc::new(Pressure::new(usize::MAX, budget));
    Reader::new(input, IncomingShare::new(pressure, 16), 1 << 20, 64, Vec::new(), false)
}

#[tokio::test]
async fn an_idle_connection_holds_no_buffer_after_a_complete_message() {
    let (stream, expected) = mixed_stream();
    let mut reader = reader(&stream, usize::MAX);
    for event in expected {
        let mid_message = matches!(event, Incoming::Ping(_));
        assert_eq!(reader.next().await.unwrap().unwrap(), event);
        // After each message (the ping comes between fragments of a message): nothing
        // partial is held.
        assert_eq!(reader.parser.holds_buffer(), mid_message);
    }
    assert!(reader.next().await.is_none());
    assert_eq!(reader.unparsed.capacity(), 0);
}

#[tokio::test]
async fn messages_read_together_come_one_at_a_time_then_the_buffer_goes() {
    // Four messages in one 64-byte read, the handshake's leftover parsed first.
    let leftover = frame(FIN | TEXT, b"first");
    let pipelined = [frame(FIN | TEXT, b"a"), frame(FIN | TEXT, b"b"), frame(FIN | TEXT, b"c")].concat();
    let pressure = Arc::new(Pressure::new(usize::MAX, usize::MAX));
    let mut reader = Reader::new(&pipelined[..], IncomingShare::new(pressure, 16), 1024, 64, leftover, false);
    for text in ["first", "a", "b", "c"] {
        assert_eq!(reader.next().await.unwrap().unwrap(), Incoming::Text(Bytes::from(text)));
    }
    assert_eq!(reader.unparsed.capacity(), 0);
    assert!(reader.next().await.is_none());
}

#[tokio::test]
async fn a_partial_message_beyond_the_incoming_budget_is_refused_with_1013() {
    let input = frame(FIN | BINARY, &vec![0; 3 * INCOMING_UNIT]);
    let mut reader = reader(&input, INCOMING_UNIT);
    let error = reader.next().await.unwrap().unwrap_err();
    assert_eq!(error.close_frame().map(|frame| frame.code), Some(CloseCode::TRY_AGAIN_LATER));
}

#[tokio::test]
async fn a_partial_frame_at_the_end_of_the_stream_ends_it() {
    let input = frame(FIN | TEXT, b"cut short");
    let mut reader = reader(&input[..input.len() - 1], usize::MAX);
    assert!(reader.next().await.is_none());
}

#[test]
fn server_frames_are_encoded_as_the_rfc_says() {
    assert_eq!(close_frame_bytes(None), [0x88, 0]);
    assert_eq!(
        close_frame_bytes(Some(&CloseFrame::new(CloseCode::NORMAL, "ok"))),
        [0x88, 4, 0x03, 0xe8, b'o', b'k']
    );
    // The reason is cut to 123 bytes on a character boundary.
    let long = CloseFrame::new(CloseCode::POLICY, "é".repeat(100));
    let bytes = close_frame_bytes(Some(&long));
    assert_eq!(usize::from(bytes[1]), bytes.len() - 2);
    assert!(bytes.len() - 4 <= 123 && std::str::from_utf8(&bytes[4..]).is_ok());
    assert_eq!(control_frame_bytes(PONG, b"hi"), [0x8A, 2, b'h', b'i']);
}

const RSV1_BIT: u8 = 0x40;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

/// A reader of `input` with permessage-deflate negotiated.
fn deflate_reader(input: &[u8], max_message_size: usize, budget: usize) -> Reader<&[u8]> {
    let pressure = Arc::new(Pressure::new(usize::MAX, budget));
    Reader::new(input, IncomingShare::new(pressure, 16), max_message_size, 64, Vec::new(), true)
}

fn compressed(payload: &[u8]) -> Vec<u8> {
    ws_protocol::deflate::compress(payload, 15).unwrap_or_default()
}

async fn read_all(mut reader: Reader<&[u8]>) -> Result<Vec<Incoming>, ReadError> {
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        events.push(event?);
        reader.message_done();
    }
    Ok(events)
}

#[tokio::test]
async fn compressed_messages_are_inflated_fragmented_or_not() {
    let text = "hello hello hello hello hello hello hello hello".repeat(20);
    let deflated = compressed(text.as_bytes());
    let (first, second) = deflated.split_at(deflated.len() / 2);
    let input = [
        frame(FIN | RSV1_BIT | TEXT, &deflated),
        // Fragmented: RSV1 on the first frame only.
        frame(RSV1_BIT | BINARY, first),
        frame(FIN | PING, b"p"),
        frame(FIN | CONTINUATION, second),
        // Uncompressed messages still pass on a compressing connection.
        frame(FIN | TEXT, b"plain"),
    ]
    .concat();
    let events = read_all(deflate_reader(&input, 1 << 20, 1 << 20)).await.map_err(|e| e.to_string());
    assert_eq!(
        events,
        Ok(vec![
            Incoming::Text(Bytes::from(text.clone())),
            Incoming::Ping(Bytes::from_static(b"p")),
            Incoming::Binary(Bytes::from(text)),
            Incoming::Text(Bytes::from_static(b"plain")),
        ])
    );
}

#[tokio::test]
async fn rsv1_is_a_violation_where_permessage_deflate_gives_it_no_meaning() {
    let deflated = compressed(&[b'a'; 400]);
    let code = |input: Vec<u8>, deflate: bool| async move {
        let pressure = Arc::new(Pressure::new(usize::MAX, 1 << 20));
        let reader =
            Reader::new(&input[..], IncomingShare::new(pressure, 16), 1 << 20, 64, Vec::new(), deflate);
        match read_all(reader).await {
            Err(error) => error.close_frame().map_or(0, |frame| frame.code.0),
            Ok(events) => panic!("accepted: {events:?}"),
        }
    };
    // Not negotiated.
    assert_eq!(code(frame(FIN | RSV1_BIT | TEXT, &deflated), false).await, 1002);
    // On a continuation frame, a control frame, and RSV2/RSV3 always.
    assert_eq!(
        code([frame(BINARY, b"ab"), frame(FIN | RSV1_BIT | CONTINUATION, b"c")].concat(), true).await,
        1002
    );
    assert_eq!(code(frame(FIN | RSV1_BIT | PING, b""), true).await, 1002);
    assert_eq!(code(frame(FIN | 0x20 | TEXT, b"a"), true).await, 1002);
    // Not DEFLATE data, and text that inflates to invalid UTF-8.
    assert_eq!(code(frame(FIN | RSV1_BIT | BINARY, &[0x07, 0x00]), true).await, 1007);
    assert_eq!(code(frame(FIN | RSV1_BIT | TEXT, &compressed(&[0xff; 400])), true).await, 1007);
}

#[tokio::test]
async fn a_compressed_message_over_the_limit_is_refused_with_1009() {
    // 4 MiB of zeros compress to a few kilobytes: under the limit on the wire, over it
    // inflated.
    let bomb = compressed(&vec![0u8; 4 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let input = frame(FIN | RSV1_BIT | BINARY, &bomb);
    match read_all(deflate_reader(&input, 1 << 20, usize::MAX)).await {
        Err(error @ ReadError::Frame(FrameError::TooBig { .. })) => {
            assert_eq!(error.close_frame().map(|f| f.code.0), Some(1009))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn inflated_bytes_count_against_the_incoming_budget() {
    // 512 KiB inflated against a budget of 256 KiB: refused with 1013 while inflating.
    let payload: Vec<u8> = (0..512 * 1024u32).map(|n| (n % 251) as u8).collect();
    let input = frame(FIN | RSV1_BIT | BINARY, &compressed(&payload));
    match read_all(deflate_reader(&input, 1 << 20, 256 * 1024)).await {
        Err(error @ ReadError::BudgetExhausted) => {
            assert_eq!(error.close_frame().map(|f| f.code.0), Some(1013));
        }
        other => panic!("{other:?}"),
    }
    // The same message within budget is read whole.
    let events = read_all(deflate_reader(&input, 1 << 20, 1 << 20)).await.map_err(|e| e.to_string());
    assert_eq!(events, Ok(vec![Incoming::Binary(Bytes::from(payload))]));
}
