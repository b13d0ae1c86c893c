//! Item 4: unfinished fragmented messages on many connections draw on one server-wide
//! budget; past it a connection is closed with 1013 instead of the server growing by
//! N × max_message_size, and everyone else is still served.

use futures_util::{SinkExt, StreamExt};
use realtime::ws_server::ServerConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::support::*;

/// The first fragment (FIN clear) of a binary message of `len` bytes.
fn first_fragment(len: usize) -> WsMessage {
    WsMessage::Frame(Frame::message(vec![3u8; len], OpCode::Data(Data::Binary), false))
}

#[tokio::test]
async fn partial_messages_past_the_budget_close_with_1013_and_others_are_served() {
    // 2 MiB for everyone; each connection holds an unfinished 600 KB message.
    let server = echo_server(ServerConfig::default().max_total_incoming_size(2 << 20)).await;
    let mut holders = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let mut ws = raw_client(&url(&server)).await;
        let _ = within(ws.send(first_fragment(600_000))).await;
        holders.push(ws);
    }
    // Each holder either still waits for its message to complete or was closed with 1013.
    for ws in &mut holders {
        let probe = tokio::time::timeout(std::time::Duration::from_millis(500), ws.next()).await;
        match probe {
            Err(_) => {} // still open, its fragment held within the budget
            Ok(Some(Ok(WsMessage::Close(Some(frame))))) => {
                assert_eq!(u16::from(frame.code), 1013, "{frame:?}");
                refused += 1;
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    // 2 MiB holds three 600 KB partial messages, not eight.
    assert!((4..=6).contains(&refused), "{refused} of 8 refused");

    // A fresh client is served meanwhile.
    let mut fresh = raw_client(&url(&server)).await;
    send_text(&mut fresh, "still here").await;
    assert_eq!(next_data(&mut fresh).await, WsMessage::text("still here"));
}

#[tokio::test]
async fn completing_a_message_gives_its_share_back() {
    let server = echo_server(ServerConfig::default().max_total_incoming_size(1 << 20)).await;
    let mut ws = raw_client(&url(&server)).await;
    // Five 600 KB messages in a row through a 1 MiB budget: each completes and releases
    // its share before the next.
    for round in 0..5u8 {
        within(ws.send(first_fragment(300_000))).await.unwrap();
        let last = Frame::message(vec![round; 300_000], OpCode::Data(Data::Continue), true);
        within(ws.send(WsMessage::Frame(last))).await.unwrap();
        let WsMessage::Binary(echoed) = next_data(&mut ws).await else { panic!("not binary") };
        assert_eq!(echoed.len(), 600_000, "round {round}");
    }
}
