//! A server that breaks RFC 6455 gets a close frame with the code of its violation before
//! the client drops the socket (RFC 6455 7.1.7), and the client reports the connection
//! closed abnormally (1006), since no close frame came back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use network_core::CloseCode;
use tokio::net::TcpListener;
use ws_client::{Client, ClientConfig, ClientEvent};
use ws_protocol::frame;

use crate::common::raw::{RawServer, Seen};
use crate::common::wait_event;

#[tokio::test]
async fn each_violation_is_answered_with_its_close_code() {
    // (first byte, payload, masked, the close code expected)
    let cases: [(u8, &[u8], bool, u16); 3] = [
        (frame::FIN | frame::TEXT, &[0xC3, 0x28], false, 1007),
        (frame::FIN | frame::BINARY, b"masked", true, 1002),
        (frame::FIN | 0x3, b"reserved opcode", false, 1002),
    ];
    for (first, payload, masked, code) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ClientConfig::default().max_retries(Some(0));
        let client = Client::connect(format!("ws://{addr}/"), config).unwrap();
        let mut lifecycle = client.lifecycle();
        let (mut server, _) = RawServer::accept(&listener, "").await;
        if masked {
            server.send_masked(first, payload, [1, 2, 3, 4]).await;
        } else {
            server.send(first, payload).await;
        }
        assert_eq!(server.next().await, Some(Seen::Close(Some(code))), "{first:#x}");
        assert_eq!(server.next().await, None, "the client drops the socket after its close frame");
        let frame = wait_event(&mut lifecycle, |event| match event {
            ClientEvent::Closed { frame } => Some(frame.clone()),
            _ => None,
        })
        .await;
        assert_eq!(frame.code, CloseCode::ABNORMAL);
    }
}
