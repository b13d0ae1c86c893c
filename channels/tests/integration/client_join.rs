//! Joining and leaving channels: `join` answered `joined` or refused (`forbidden`,
//! `unknown_channel`), bounded by `join_timeout`, sent once the first connection opens, and
//! `leave`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use channels::RemoteError;
use channels::client::{ChannelsClientConfig, JoinError, LeaveError};
use channels::codes;
use channels::protocol::Frame;

#[tokio::test]
async fn join_is_answered_joined() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    let chat = channels.channel("/chat").unwrap();
    assert!(!chat.is_joined());

    let (joined, ()) = tokio::join!(within(chat.join()), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(frame, Frame::Join { ch: "/chat".into(), id: Some(id) });
        send(&connection, &Frame::Joined { ch: "/chat".into(), id: Some(id) });
    });
    joined.unwrap();
    assert!(chat.is_joined());
    // Joined already: answered at once, nothing sent.
    within(chat.join()).await.unwrap();
    // The root channel needs no join.
    within(channels.root().join()).await.unwrap();
    assert!(server.nothing_seen());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_the_servers_code() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    for code in [codes::FORBIDDEN, codes::UNKNOWN_CHANNEL] {
        let admin = channels.channel("/admin").unwrap();
        let (joined, ()) = tokio::join!(within(admin.join()), async {
            let (connection, frame) = server.frame().await;
            let refusal = RemoteError::new(code, "not for you");
            send(&connection, &Frame::error(refusal, Some(id_of(&frame)), Some("/admin".into())));
        });
        match joined {
            Err(JoinError::Refused(error)) => assert_eq!(error, RemoteError::new(code, "not for you")),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!admin.is_joined());
    }
    // `limit` has a variant of its own: the caller reacts by leaving a channel.
    let admin = channels.channel("/admin").unwrap();
    let (joined, ()) = tokio::join!(within(admin.join()), async {
        let (connection, frame) = server.frame().await;
        let refusal = RemoteError::new(codes::LIMIT, "at most 64 channels per connection");
        send(&connection, &Frame::error(refusal, Some(id_of(&frame)), Some("/admin".into())));
    });
    assert!(matches!(&joined, Err(JoinError::Limit(error)) if error.code == codes::LIMIT), "{joined:?}");
    assert!(!admin.is_joined());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn join_times_out_and_a_late_answer_still_joins() {
    let mut server = FakeServer::start().await;
    let config = ChannelsClientConfig::default().join_timeout(Duration::from_millis(200));
    let (client, channels, _) = connected(&mut server, config).await;
    let slow = channels.channel("/slow").unwrap();

    let (joined, (connection, frame)) = tokio::join!(within(slow.join()), server.frame());
    assert!(matches!(joined, Err(JoinError::Timeout(limit)) if limit == Duration::from_millis(200)));
    // The channel stays wanted: a second join waits for the same request, which the late
    // answer settles.
    let (joined, ()) = tokio::join!(within(slow.join()), async {
        send(&connection, &Frame::Joined { ch: "/slow".into(), id: Some(id_of(&frame)) });
    });
    joined.unwrap();
    assert!(slow.is_joined());
    assert!(server.nothing_seen(), "no second join was sent");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn join_before_the_first_connection_is_sent_when_it_opens() {
    let mut server = FakeServer::start().await;
    // The client does not connect until told to.
    let (client, channels, _) =
        client(&server.url(), client_config().start_closed(true), ChannelsClientConfig::default());
    let chat = channels.channel("/chat").unwrap();
    let early = tokio::spawn({
        let chat = chat.clone();
        async move { chat.join().await }
    });
    // Emits have no connection to be queued on yet.
    assert!(matches!(chat.emit("say", "hi"), Err(channels::EmitError::NoConnection)));
    client.reconnect();
    let (connection, frame) = server.frame().await;
    assert_eq!(frame, Frame::Join { ch: "/chat".into(), id: Some(id_of(&frame)) });
    send(&connection, &Frame::Joined { ch: "/chat".into(), id: Some(id_of(&frame)) });
    within(early).await.unwrap().unwrap();
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn leave_is_answered_left_and_not_joined_counts_as_left() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    let chat = channels.channel("/chat").unwrap();
    let (joined, ()) = tokio::join!(within(chat.join()), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &Frame::Joined { ch: "/chat".into(), id: Some(id_of(&frame)) });
    });
    joined.unwrap();

    let (left, ()) = tokio::join!(within(chat.leave()), async {
        let (connection, frame) = server.frame().await;
        assert_eq!(frame, Frame::Leave { ch: "/chat".into(), id: Some(id_of(&frame)) });
        send(&connection, &Frame::Left { ch: "/chat".into(), id: Some(id_of(&frame)) });
    });
    left.unwrap();
    assert!(!chat.is_joined());

    let (left, ()) = tokio::join!(within(chat.leave()), async {
        let (connection, frame) = server.frame().await;
        let error = RemoteError::new(codes::NOT_JOINED, "not in /chat");
        send(&connection, &Frame::error(error, Some(id_of(&frame)), Some("/chat".into())));
    });
    left.unwrap();

    let (left, ()) = tokio::join!(within(chat.leave()), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &Frame::error(RemoteError::forbidden("stay"), Some(id_of(&frame)), None));
    });
    assert!(matches!(left, Err(LeaveError::Refused(error)) if error.code == codes::FORBIDDEN));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn leave_fails_a_join_in_progress() {
    let mut server = FakeServer::start().await;
    let (client, channels, _) = connected(&mut server, ChannelsClientConfig::default()).await;
    let chat = channels.channel("/chat").unwrap();
    let (joined, left) = tokio::join!(within(chat.join()), async {
        let (connection, _join) = server.frame().await;
        let left = tokio::join!(chat.leave(), async {
            let (_, frame) = server.frame().await;
            send(&connection, &Frame::Left { ch: "/chat".into(), id: Some(id_of(&frame)) });
        });
        left.0
    });
    assert!(matches!(joined, Err(JoinError::Left)));
    left.unwrap();
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn channel_paths_are_checked() {
    let server = FakeServer::start().await;
    let (client, channels, _) =
        client(&server.url(), client_config().start_closed(true), ChannelsClientConfig::default());
    for bad in ["chat", "/a b", "/a#b", ""] {
        assert_eq!(channels.channel(bad).unwrap_err().0, bad);
    }
    assert_eq!(channels.channel("/game/42").unwrap().path(), "/game/42");
    client.close().await;
    server.shutdown().await;
}
