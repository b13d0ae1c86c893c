//! JSON, MessagePack and raw binary frames travel both ways and decode into typed values.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{DecodeError, Message, NetworkEvent};
use realtime::ws_server::ServerConfig;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Move {
    piece: String,
    to: (u8, u8),
}

#[tokio::test]
async fn json_msgpack_and_raw_frames_round_trip() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!("expected Added") };

    let mv = Move { piece: "knight".into(), to: (2, 5) };

    // JSON text frame from the client, decoded on the server; answered in MessagePack.
    ws.send(WsMessage::text(serde_json::to_string(&mv).unwrap())).await.unwrap();
    let NetworkEvent::Message { connection, message } = next_event(&mut events).await else { panic!() };
    assert!(message.is_text());
    assert_eq!(message.decode::<Move>().unwrap(), mv);
    connection.send(Message::msgpack(&mv).unwrap()).unwrap();
    let WsMessage::Binary(bytes) = next_data(&mut ws).await else { panic!("expected binary") };
    assert_eq!(rmp_serde::from_slice::<Move>(&bytes).unwrap(), mv);

    // MessagePack from the client, answered in JSON.
    ws.send(WsMessage::binary(rmp_serde::to_vec_named(&mv).unwrap())).await.unwrap();
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    assert!(message.is_binary());
    assert_eq!(message.decode::<Move>().unwrap(), mv);
    connection.send(Message::json(&mv).unwrap()).unwrap();
    let WsMessage::Text(text) = next_data(&mut ws).await else { panic!("expected text") };
    assert_eq!(serde_json::from_str::<Move>(&text).unwrap(), mv);

    // Raw bytes (not MessagePack) arrive untouched; decoding them is a typed error.
    let raw: Vec<u8> = (0..=255u8).rev().collect();
    ws.send(WsMessage::binary(raw.clone())).await.unwrap();
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    assert_eq!(message.payload().as_ref(), &raw[..]);
    assert!(matches!(message.decode::<Move>(), Err(DecodeError::MessagePack(_))));
    connection.send(message).unwrap();
    assert_eq!(next_data(&mut ws).await, WsMessage::binary(raw));
}

#[tokio::test]
async fn large_frames_use_extended_lengths() {
    let server = echo_server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    for len in [0usize, 125, 126, 65_535, 65_536, 700_000] {
        let payload = vec![b'x'; len];
        ws.send(WsMessage::binary(payload.clone())).await.unwrap();
        let WsMessage::Binary(back) = next_data(&mut ws).await else { panic!("expected binary") };
        assert_eq!(back.len(), len);
    }
}
