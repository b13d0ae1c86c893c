//! Malformed upgrades get 400 before any upgrade (RFC 6455 section 4.2.1): an HTTP/1.0
//! request, a missing or repeated `Host`, a `Sec-WebSocket-Key` that is not the base64 of
//! 16 bytes or comes twice. And a frame whose 64-bit length has its top bit set (RFC 6455
//! section 5.2 forbids it) is a protocol error, closed with 1002, not a too-big message.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::endpoints::*;
use crate::support::*;
use realtime::ws_server::ServerConfig;

#[tokio::test]
async fn malformed_upgrades_get_400_on_both_mounts() {
    for mount in MOUNTS {
        let endpoint = start(mount, ServerConfig::default()).await;
        let (addr, path) = (endpoint.addr, endpoint.path);

        // The same request, well formed, is upgraded: the refusals below are the defect's.
        let (good, _ws) = exchange(addr, &request(path, "HTTP/1.1", &upgrade_headers(&[]))).await;
        assert_eq!(good.status, 101, "{mount:?}: {good:?}");

        let headers = upgrade_headers(&[]);
        let without = |name: &str| -> Vec<(&str, &str)> {
            headers.iter().copied().filter(|(header, _)| !header.eq_ignore_ascii_case(name)).collect()
        };
        let with_key = |key: &'static str| -> Vec<(&str, &str)> {
            let mut headers = without("Sec-WebSocket-Key");
            headers.push(("Sec-WebSocket-Key", key));
            headers
        };
        let cases: Vec<(&str, String)> = vec![
            ("HTTP/1.0", request(path, "HTTP/1.0", &headers)),
            ("no Host", request(path, "HTTP/1.1", &without("Host"))),
            ("two Host headers", request(path, "HTTP/1.1", &upgrade_headers(&[("Host", "y")]))),
            ("a key that is not base64", request(path, "HTTP/1.1", &with_key("not base64 at all!!!!!!="))),
            ("a key without padding", request(path, "HTTP/1.1", &with_key("dGhlIHNhbXBsZSBub25jZQ"))),
            ("a key of 15 bytes", request(path, "HTTP/1.1", &with_key("AAAAAAAAAAAAAAAAAAAA"))),
            ("a key of 17 bytes", request(path, "HTTP/1.1", &with_key("AAAAAAAAAAAAAAAAAAAAAAA="))),
            ("a key with a space inside", request(path, "HTTP/1.1", &with_key("dGhlIHNhbXBs ZSBub25jZQ=="))),
            (
                "two keys",
                request(
                    path,
                    "HTTP/1.1",
                    &upgrade_headers(&[("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]),
                ),
            ),
            (
                "two keys in one header",
                request(path, "HTTP/1.1", &with_key("dGhlIHNhbXBsZSBub25jZQ==, AAAAAAAAAAAAAAAAAAAAAA==")),
            ),
        ];
        for (case, raw) in cases {
            let (response, _stream) = exchange(addr, &raw).await;
            assert_eq!(response.status, 400, "{mount:?}, {case}: {response:?}");
            assert!(!response.body.is_empty(), "{mount:?}, {case}: a refusal says why");
        }

        // Nothing was upgraded but the well-formed request.
        let (again, _ws) = exchange(addr, &request(path, "HTTP/1.1", &upgrade_headers(&[]))).await;
        assert_eq!(again.status, 101, "{mount:?}: {again:?}");
    }
}

/// Reads frames from the server until its close frame and returns the close code.
async fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    loop {
        // Server frames are unmasked and this test expects only short ones.
        if buf.len() >= 2 {
            let len = usize::from(buf[1] & 0x7f);
            assert!(len < 126, "unexpected long frame from the server");
            if buf.len() >= 2 + len {
                let frame: Vec<u8> = buf.drain(..2 + len).collect();
                if frame[0] & 0x0f == 0x8 {
                    return (len >= 2).then(|| u16::from_be_bytes([frame[2], frame[3]]));
                }
                continue;
            }
        }
        let mut chunk = [0u8; 256];
        let read = stream.read(&mut chunk).await.expect("read");
        if read == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn a_frame_length_with_the_top_bit_set_closes_with_1002() {
    for mount in MOUNTS {
        let endpoint = start(mount, ServerConfig::default()).await;
        let (response, mut stream) =
            exchange(endpoint.addr, &request(endpoint.path, "HTTP/1.1", &upgrade_headers(&[]))).await;
        assert_eq!(response.status, 101, "{mount:?}: {response:?}");

        // FIN + binary; masked, 64-bit extended length 2^63 (only the forbidden top bit
        // set); then the mask. No payload follows: the header alone is the violation.
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        within(stream.write_all(&frame)).await.expect("write");

        let code = within(close_code(&mut stream)).await;
        assert_eq!(
            code,
            Some(1002),
            "{mount:?}: a forbidden length is a protocol error, not a too-big message"
        );
    }
}
