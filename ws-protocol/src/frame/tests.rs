//! The role-specific parts of the parser and the encoders. The parser's checks common to
//! both roles are tested from the server's side, in ws-server's reader tests.
#![allow(clippy::unwrap_used)]

use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Everything `parser` makes of `input` fed one byte at a time, up to its first error.
fn parse_bytewise(parser: &mut FrameParser, input: &[u8]) -> Result<Vec<Parsed>, FrameError> {
    let mut out = Vec::new();
    for byte in input.chunks(1) {
        let mut rest = byte;
        loop {
            let (taken, parsed) = parser.parse(rest);
            rest = &rest[taken..];
            match parsed? {
                Some(parsed) => out.push(parsed),
                None => break,
            }
        }
    }
    Ok(out)
}

#[test]
fn a_client_reads_unmasked_frames_and_refuses_masked_ones() {
    let mut unmasked = Vec::new();
    encode(&mut unmasked, FIN | TEXT, "héllo".as_bytes(), None);
    encode(&mut unmasked, FIN | PING, b"p", None);
    let mut parser = FrameParser::new(Role::Client, 1024, false);
    assert_eq!(
        parse_bytewise(&mut parser, &unmasked).unwrap(),
        [
            Parsed::Ready(Incoming::Text(Bytes::from("héllo"))),
            Parsed::Ready(Incoming::Ping(Bytes::from_static(b"p")))
        ]
    );
    assert!(!parser.holds_buffer());

    let mut masked = Vec::new();
    encode(&mut masked, FIN | BINARY, b"x", Some(MASK));
    let mut parser = FrameParser::new(Role::Client, 1024, false);
    let error = parse_bytewise(&mut parser, &masked).unwrap_err();
    assert_eq!(error, FrameError::Protocol("masked frame from a server"));
    assert_eq!(error.close_code(), CloseCode::PROTOCOL);
}

#[test]
fn a_server_reads_what_a_client_encodes() {
    for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut bytes = Vec::new();
        encode(&mut bytes, FIN | BINARY, &payload, Some(MASK));
        let mut parser = FrameParser::new(Role::Server, 1 << 20, false);
        let (taken, parsed) = parser.parse(&bytes);
        assert_eq!(taken, bytes.len());
        assert_eq!(parsed.unwrap(), Some(Parsed::Ready(Incoming::Binary(Bytes::from(payload)))), "{len}");
    }
}

#[test]
fn rsv1_marks_a_compressed_message_for_a_client_with_deflate() {
    let mut bytes = Vec::new();
    encode(&mut bytes, RSV1 | TEXT, b"ab", None);
    encode(&mut bytes, FIN, b"c", None);
    let mut parser = FrameParser::new(Role::Client, 1024, true);
    assert_eq!(
        parse_bytewise(&mut parser, &bytes).unwrap(),
        [Parsed::Compressed { text: true, payload: Bytes::from_static(b"abc") }]
    );
    let mut parser = FrameParser::new(Role::Client, 1024, false);
    assert_eq!(parse_bytewise(&mut parser, &bytes), Err(FrameError::Protocol("reserved bits set")));
}

#[test]
fn close_payloads_carry_the_code_and_a_cut_reason() {
    assert!(close_payload(None).is_empty());
    assert_eq!(close_payload(Some(&CloseFrame::new(CloseCode::NORMAL, "ok"))), [0x03, 0xe8, b'o', b'k']);
    let long = close_payload(Some(&CloseFrame::new(CloseCode::POLICY, "é".repeat(100))));
    assert_eq!(long.len(), 2 + 122);
    assert_eq!(truncate("short", 123), "short");
}

#[test]
fn masking_is_the_byte_by_byte_xor_at_every_length_and_offset() {
    let payload: Vec<u8> = (0..40).map(|i| (i * 37 + 11) as u8).collect();
    for len in 0..payload.len() {
        let mut masked = payload[..len].to_vec();
        apply_mask(&mut masked, MASK);
        let expected: Vec<u8> =
            payload[..len].iter().enumerate().map(|(i, byte)| byte ^ MASK[i % 4]).collect();
        assert_eq!(masked, expected, "{len}");
    }
    // A payload unmasked in pieces (as it arrives) gives the same bytes.
    let mut whole = payload.clone();
    apply_mask(&mut whole, MASK);
    let mut pieces = whole.clone();
    let mut offset = 0;
    for piece in [3, 1, 9, 4, 23] {
        unmask(&mut pieces[offset..offset + piece], Some(MASK), offset as u64);
        offset += piece;
    }
    assert_eq!(pieces, payload);
}
