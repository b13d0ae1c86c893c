//! Subscribing and unsubscribing: `sub` and `unsub` carry ids and are answered by id, a
//! refusal forgets the path and ends its streams, `not_subscribed` counts as success, and a
//! subscription made before the first connection goes out when it opens.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use sync::client::{InvalidPath, SubscribeError, SyncClientConfig};
use sync::protocol::{Frame, RemoteError, codes};

#[tokio::test]
async fn connect_and_close_are_answered_by_id() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;
    let book = sync.sync("/api/book/1").unwrap();
    let mut messages = book.messages();
    assert!(!book.is_subscribed());

    let (subscribed, (connection, frame)) = tokio::join!(within(book.connect()), async {
        let (connection, frame) = server.frame().await;
        let Frame::Sub { path, id: Some(id), .. } = &frame else { panic!("{frame:?}") };
        assert_eq!(path, "/api/book/1");
        send(&connection, &Frame::Subscribed { path: path.clone(), id: Some(*id), v: None, data: None });
        (connection, frame)
    });
    subscribed.unwrap();
    assert!(book.is_subscribed());
    // Subscribed already: nothing is sent.
    within(book.connect()).await.unwrap();

    let (closed, ()) = tokio::join!(within(book.close()), async {
        let (connection, unsub) = server.frame().await;
        let Frame::Unsub { path, id: Some(id) } = &unsub else { panic!("expected an unsub, got {unsub:?}") };
        assert_eq!(path, "/api/book/1");
        assert!(*id > id_of(&frame), "ids are not reused");
        send(&connection, &Frame::Unsubscribed { path: path.clone(), id: Some(*id) });
    });
    closed.unwrap();
    assert!(!book.is_subscribed());
    // The stream ended with the subscription.
    assert!(within(messages.recv()).await.is_none());
    // A push after the close reaches nobody and harms nothing.
    send(&connection, &push("/api/book/1", sync::Op::Change, serde_json::json!({"id": 1})));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_refusal_forgets_the_path_and_ends_its_streams() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;
    let secret = sync.sync("/api/secret").unwrap();
    let mut messages = secret.messages();

    let (refused, ()) = tokio::join!(within(secret.connect()), async {
        let (connection, frame) = server.frame().await;
        send(
            &connection,
            &error(RemoteError::forbidden("admins only"), Some(id_of(&frame)), Some("/api/secret")),
        );
    });
    assert!(
        matches!(refused, Err(SubscribeError::Refused(error)) if error == RemoteError::forbidden("admins only"))
    );
    assert!(within(messages.recv()).await.is_none());
    assert!(!secret.is_subscribed());
    // `limit` has a variant of its own: the caller reacts by closing a subscription.
    let full = sync.sync("/api/full").unwrap();
    let (refused, ()) = tokio::join!(within(full.connect()), async {
        let (connection, frame) = server.frame().await;
        let refusal = RemoteError::new(codes::LIMIT, "at most 256 subscriptions per connection");
        send(&connection, &error(refusal, Some(id_of(&frame)), Some("/api/full")));
    });
    assert!(
        matches!(&refused, Err(SubscribeError::Limit(error)) if error.code == codes::LIMIT),
        "{refused:?}"
    );
    assert!(!full.is_subscribed());
    // Forgotten: closing it sends nothing.
    within(secret.close()).await.unwrap();

    // `not_subscribed` answers a close as success.
    let other = sync.sync("/api/other").unwrap();
    let (subscribed, _) = tokio::join!(within(other.connect()), server.accept_sub());
    subscribed.unwrap();
    let (closed, ()) = tokio::join!(within(other.close()), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(frame, Frame::Unsub { .. }), "{frame:?}");
        let gone = RemoteError::new(codes::NOT_SUBSCRIBED, "not subscribed");
        send(&connection, &error(gone, Some(id_of(&frame)), Some("/api/other")));
    });
    closed.unwrap();
    assert!(server.nothing_seen());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn paths_are_validated() {
    let server = FakeServer::start().await;
    let (client, sync, _) = client(&server.url(), SyncClientConfig::default());
    for bad in ["api/book", "/a?b", "/a#b", "/a\nb", ""] {
        assert_eq!(sync.sync(bad).unwrap_err(), InvalidPath(bad.to_owned()));
    }
    assert!(sync.collection::<serde_json::Value>(&format!("/{}", "x".repeat(256))).is_err());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_subscription_before_the_first_connection_goes_out_when_it_opens() {
    // A client whose server is not there yet: the port is taken only afterwards.
    let probe = FakeServer::start().await;
    let addr = probe.addr();
    probe.shutdown().await;
    drop(probe);
    let (client, sync, _) = client(&format!("ws://{addr}/"), SyncClientConfig::default());
    let book = sync.sync("/api/book/2").unwrap();
    let waiting = tokio::spawn({
        let book = book.clone();
        async move { book.connect().await }
    });

    let mut server = FakeServer::start_at(addr).await;
    let path = server.accept_sub().await;
    assert_eq!(path, "/api/book/2");
    within(waiting).await.unwrap().unwrap();
    assert!(book.is_subscribed());
    // Never subscribed before this connection: there is nothing to read again, so the next
    // frame is the application's own.
    let (marker, ()) = tokio::join!(within(sync.read::<u32>("/marker")), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(&frame, Frame::Request { path, .. } if path == "/marker"), "{frame:?}");
        send(&connection, &reply(id_of(&frame), Ok(serde_json::json!(7))));
    });
    assert_eq!(marker.unwrap(), 7);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_unanswered_subscription_times_out_and_stays_wanted() {
    let mut server = FakeServer::start().await;
    let config = SyncClientConfig::default().request_timeout(Duration::from_millis(200));
    let (client, sync, _) = connected(&mut server, config).await;
    let book = sync.sync("/api/book/3").unwrap();
    let mut messages = book.messages();
    let (late, (connection, frame)) = tokio::join!(within(book.connect()), server.frame());
    assert!(matches!(late, Err(SubscribeError::Timeout(limit)) if limit == Duration::from_millis(200)));
    // A late answer still subscribes it.
    let Frame::Sub { path, id, .. } = frame else { panic!("{frame:?}") };
    send(&connection, &Frame::Subscribed { path, id, v: None, data: None });
    // Frames are handled in order: once a push that follows has arrived, so has the answer.
    send(&connection, &push("/api/book/3", sync::Op::Change, serde_json::json!({"id": 3})));
    assert!(within(messages.recv()).await.is_some());
    assert!(book.is_subscribed());
    // Subscribed: `connect` returns at once and sends nothing.
    within(book.connect()).await.unwrap();
    assert!(server.nothing_seen());
    client.close().await;
    server.shutdown().await;
}
