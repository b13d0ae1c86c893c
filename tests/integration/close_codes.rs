//! Protocol violations close only the offending connection, with the right close code,
//! while the server keeps serving everyone else.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{CloseCode, NetworkEvent};
use realtime::ws_server::ServerConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode as WsCloseCode, Data, OpCode};

#[tokio::test]
async fn a_message_over_the_limit_closes_with_1009() {
    let (server, mut events) = server(ServerConfig::default().max_message_size(1024)).await;
    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    ws.send(WsMessage::binary(vec![0u8; 1025])).await.unwrap();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, WsCloseCode::Size);
    let NetworkEvent::Removed { frame, .. } = next_event(&mut events).await else { panic!() };
    assert_eq!(frame.code, CloseCode::TOO_BIG);
}

#[tokio::test]
async fn a_message_at_the_limit_is_accepted() {
    let server = echo_server(ServerConfig::default().max_message_size(1024)).await;
    let mut ws = raw_client(&url(&server)).await;
    ws.send(WsMessage::binary(vec![7u8; 1024])).await.unwrap();
    assert_eq!(next_data(&mut ws).await, WsMessage::binary(vec![7u8; 1024]));
}

#[tokio::test]
async fn invalid_utf8_closes_that_connection_with_1007_and_spares_the_others() {
    let server = echo_server(ServerConfig::default()).await;
    let mut good = raw_client(&url(&server)).await;
    let mut bad = raw_client(&url(&server)).await;

    let invalid = Frame::message(vec![b'o', b'k', 0xff, 0xfe], OpCode::Data(Data::Text), true);
    bad.send(WsMessage::Frame(invalid)).await.unwrap();
    let frame = close_frame(&mut bad).await.expect("a close frame");
    assert_eq!(frame.code, WsCloseCode::Invalid);

    send_text(&mut good, "still here").await;
    assert_eq!(next_data(&mut good).await, WsMessage::text("still here"));
}

#[tokio::test]
async fn a_reserved_opcode_closes_with_1002() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    let reserved = Frame::message(vec![1, 2, 3], OpCode::Data(Data::Reserved(3)), true);
    ws.send(WsMessage::Frame(reserved)).await.unwrap();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, WsCloseCode::Protocol);
    let NetworkEvent::Removed { frame, .. } = next_event(&mut events).await else { panic!() };
    assert_eq!(frame.code, CloseCode::PROTOCOL);
}

#[tokio::test]
async fn messages_sent_before_a_close_are_delivered_first() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };
    for i in 0..100 {
        connection.send(format!("m{i}").into()).unwrap();
    }
    connection.close(CloseCode::NORMAL, "done");
    assert!(connection.send("late".into()).is_err(), "no data after the close frame");
    for i in 0..100 {
        assert_eq!(next_data(&mut ws).await, WsMessage::text(format!("m{i}")));
    }
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, WsCloseCode::Normal);
    assert_eq!(frame.reason.as_str(), "done");
    // Reading on lets the client send its close reply, which completes the handshake.
    assert!(within(futures_util::StreamExt::next(&mut ws)).await.is_none());
    let closed = within(connection.closed()).await;
    assert_eq!(closed.code, CloseCode::NORMAL);
}
