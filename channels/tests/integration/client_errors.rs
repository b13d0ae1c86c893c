//! What no caller waits for: `error` frames without a pending request reach `errors()`,
//! and malformed frames from the server are ignored without harming the client.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use channels::RemoteError;
use channels::client::{BackgroundError, ChannelsClientConfig};
use channels::codes;
use channels::protocol::Frame;
use network_core::Message;
use serde_json::json;

#[tokio::test]
async fn unsolicited_errors_reach_every_error_stream() {
    let mut server = FakeServer::start().await;
    let (client, channels, connection) = connected(&mut server, ChannelsClientConfig::default()).await;
    let mut first = channels.errors();
    let mut second = channels.errors();

    // A fire-and-forget emit on a channel not joined.
    channels.channel("/x").unwrap().emit("say", "hi").unwrap();
    let (_, frame) = server.frame().await;
    assert!(matches!(frame, Frame::Emit { id: None, .. }));
    let not_joined = RemoteError::new(codes::NOT_JOINED, "join /x first");
    send(&connection, &Frame::error(not_joined.clone(), None, Some("/x".into())));
    // An `error` naming an id nobody waits for is unsolicited too.
    let unknown_ack = RemoteError::new(codes::UNKNOWN_ACK, "no ack 99 waiting");
    send(&connection, &Frame::error(unknown_ack.clone(), Some(99), None));

    for errors in [&mut first, &mut second] {
        assert_eq!(
            within(errors.recv()).await.unwrap(),
            BackgroundError::Server { error: not_joined.clone(), channel: Some("/x".into()) }
        );
        assert_eq!(
            within(errors.recv()).await.unwrap(),
            BackgroundError::Server { error: unknown_ack.clone(), channel: None }
        );
    }
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_error_stream_loses_the_newest_and_never_blocks() {
    let mut server = FakeServer::start().await;
    let config = ChannelsClientConfig::default().error_queue_capacity(2);
    let (client, channels, connection) = connected(&mut server, config).await;
    let mut errors = channels.errors();
    let mut ticks = channels.root().on::<u32>("tick");
    for i in 0..5 {
        send(&connection, &Frame::error(RemoteError::new("e", i.to_string()), None, None));
    }
    // Delivered after the errors: the router did not wait for the error stream.
    send(&connection, &Frame::Emit { ch: "/".into(), ev: "tick".into(), data: json!(1), id: None });
    assert_eq!(within(ticks.recv()).await.unwrap().unwrap(), 1);
    let messages: Vec<String> = std::iter::from_fn(|| errors.try_recv())
        .map(|error| match error {
            BackgroundError::Server { error, .. } => error.message,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(messages, ["0", "1"]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_from_the_server_are_ignored() {
    let mut server = FakeServer::start().await;
    let (client, channels, connection) = connected(&mut server, ChannelsClientConfig::default()).await;
    let mut errors = channels.errors();
    let mut news = channels.root().on::<String>("news");
    let pending = tokio::spawn({
        let root = channels.root();
        async move { root.emit_with_ack::<u32, _>("add", &[1, 1]).await }
    });
    let (_, request) = server.frame().await;
    let id = id_of(&request);

    for garbage in [
        r#"{"$r":"ch","d":{"t":"bogus"}}"#,
        r#"{"$r":"ch","d":42}"#,
        r#"{"$r":"ch","d":{"t":"emit","ch":"/"}}"#,
        r#"{"$r":"ch","d":{"t":"ack"}}"#,
        r#"{"$r":"ch","d":{"t":"ack","id":-1}}"#,
        r#"{"$r":"ch","d":{"t":"joined","ch":7}}"#,
        r#"{"$r":"ch","d":"#,
        r#"{"$r":"ch"}"#,
    ] {
        send_raw(&connection, Message::text(garbage));
    }
    send_raw(&connection, Message::binary(vec![0x81, 0xa2, b'$', b'r', 0xa2, b'c', b'h', 0xc1]));
    // Frames only a client sends, and answers to nothing.
    send(&connection, &Frame::Join { ch: "/x".into(), id: Some(1) });
    send(&connection, &Frame::Leave { ch: "/x".into(), id: None });
    send(&connection, &Frame::Joined { ch: "/never-asked".into(), id: Some(12345) });
    send(&connection, &Frame::Left { ch: "/never-asked".into(), id: Some(12345) });
    send(&connection, &Frame::ack(777, Ok(json!(1))));

    // Still serving, in order.
    send(&connection, &Frame::Emit { ch: "/".into(), ev: "news".into(), data: json!("fine"), id: None });
    assert_eq!(within(news.recv()).await.unwrap().unwrap(), "fine");
    send(&connection, &Frame::ack(id, Ok(json!(2))));
    assert_eq!(within(pending).await.unwrap().unwrap(), 2);
    assert!(errors.try_recv().is_none(), "garbage is logged, not reported");
    assert!(!channels.channel("/never-asked").unwrap().is_joined());
    client.close().await;
    server.shutdown().await;
}
