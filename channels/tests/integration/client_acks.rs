//! Acknowledged emits: the server's data, its error (error-first), no answer (timeout,
//! and the late answer ignored), the cap on pending acknowledgements, an answer of the
//! wrong type, and the link dropping before the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use channels::client::ChannelsClientConfig;
use channels::protocol::Frame;
use channels::{AckError, RemoteError};
use network_core::CloseCode;
use serde_json::json;

#[tokio::test]
async fn data_and_errors_come_back_error_first() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    let root = channels.root();

    let (sum, ()) = tokio::join!(within(root.emit_with_ack::<u32, _>("add", &[1, 2])), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(
            frame,
            Frame::Emit { ch: "/".into(), ev: "add".into(), data: json!([1, 2]), id: Some(id) }
        );
        send(&connection, &Frame::ack(id, Ok(json!(3))));
    });
    assert_eq!(sum.unwrap(), 3);

    let (refused, ()) = tokio::join!(within(root.emit_with_ack::<u32, _>("add", &"x")), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &Frame::ack(id_of(&frame), Err(RemoteError::bad_request("numbers only"))));
    });
    assert!(
        matches!(refused, Err(AckError::Remote(error)) if error == RemoteError::bad_request("numbers only"))
    );

    // An answer without data is `()`.
    let (unit, ()) = tokio::join!(within(root.emit_with_ack::<(), _>("touch", &())), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &Frame::ack(id_of(&frame), Ok(serde_json::Value::Null)));
    });
    unit.unwrap();

    let (wrong, ()) = tokio::join!(within(root.emit_with_ack::<u32, _>("add", &[1])), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &Frame::ack(id_of(&frame), Ok(json!("three"))));
    });
    assert!(matches!(wrong, Err(AckError::Decode(_))));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn timeout_frees_the_slot_and_the_late_answer_is_ignored() {
    let mut server = FakeServer::start().await;
    let config = ChannelsClientConfig::default().ack_timeout(Duration::from_millis(200)).max_pending_acks(1);
    let (client, channels, _) = connected(&mut server, config).await;
    let root = channels.root();

    let (late, (connection, frame)) =
        tokio::join!(within(root.emit_with_ack::<u32, _>("slow", &())), server.frame());
    assert!(matches!(late, Err(AckError::Timeout(limit)) if limit == Duration::from_millis(200)));
    // Too late: nobody waits for it any more.
    send(&connection, &Frame::ack(id_of(&frame), Ok(json!(1))));

    // The only slot is free again, and the next answer goes to the next request.
    let (next, ()) = tokio::join!(within(root.emit_with_ack::<u32, _>("fast", &())), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(&frame, Frame::Emit { ev, .. } if ev == "fast"));
        send(&connection, &Frame::ack(id_of(&frame), Ok(json!(2))));
    });
    assert_eq!(next.unwrap(), 2);

    // An explicit timeout overrides the configured one.
    let (short, _) = tokio::join!(
        within(root.emit_with_ack_timeout::<u32, _>("slow", &(), Duration::from_millis(50))),
        server.frame()
    );
    assert!(matches!(short, Err(AckError::Timeout(limit)) if limit == Duration::from_millis(50)));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn pending_acknowledgements_are_capped() {
    let mut server = FakeServer::start().await;
    let config = ChannelsClientConfig::default().max_pending_acks(2);
    let (client, channels, _) = connected(&mut server, config).await;
    let root = channels.root();

    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let root = root.clone();
            tokio::spawn(async move { root.emit_with_ack::<u32, _>("wait", &i).await })
        })
        .collect();
    let mut requests = Vec::new();
    for _ in 0..2 {
        requests.push(server.frame().await);
    }
    assert!(matches!(root.emit_with_ack::<u32, _>("more", &()).await, Err(AckError::TooManyPending)));
    for (connection, frame) in &requests {
        let Frame::Emit { data, .. } = frame else { panic!("{frame:?}") };
        send(connection, &Frame::ack(id_of(frame), Ok(data.clone())));
    }
    let mut answers = Vec::new();
    for task in waiting {
        answers.push(within(task).await.unwrap().unwrap());
    }
    assert_eq!(answers, vec![0, 1]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_link_fails_pending_acknowledgements() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    let root = channels.root();

    let (closed, ()) = tokio::join!(within(root.emit_with_ack::<u32, _>("never", &())), async {
        let (connection, _) = server.frame().await;
        connection.close(CloseCode::NORMAL, "bye");
    });
    assert!(matches!(closed, Err(AckError::Closed)), "{closed:?}");

    // The client reconnects, and acknowledgements work on the new connection.
    let (sum, ()) = tokio::join!(within(root.emit_with_ack::<u32, _>("add", &[2, 2])), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &Frame::ack(id_of(&frame), Ok(json!(4))));
    });
    assert_eq!(sum.unwrap(), 4);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn closing_the_client_fails_what_waits() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    let root = channels.root();
    let chat = channels.channel("/chat").unwrap();
    let mut news = root.on::<String>("news");
    let mut errors = channels.errors();

    let ack = tokio::spawn({
        let root = root.clone();
        async move { root.emit_with_ack::<u32, _>("never", &()).await }
    });
    let join = tokio::spawn({
        let chat = chat.clone();
        async move { chat.join().await }
    });
    server.frame().await;
    server.frame().await;
    client.close().await;
    assert!(matches!(within(ack).await.unwrap(), Err(AckError::Closed)));
    assert!(matches!(within(join).await.unwrap(), Err(channels::client::JoinError::Closed)));
    assert!(within(news.recv()).await.is_none(), "event streams end");
    assert!(within(errors.recv()).await.is_none(), "error streams end");
    assert!(!within(channels.ready()).await);
    assert!(matches!(root.emit_with_ack::<u32, _>("late", &()).await, Err(AckError::Closed)));
    assert!(matches!(root.emit("late", &()), Err(channels::EmitError::Send(_))));
    server.shutdown().await;
}
