//! Frames from the server that are not sync frames are logged and ignored (the client
//! goes on); `error` frames that answer no request go to `errors()`, whose full streams
//! lose the newest errors instead of holding the client back.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use network_core::{Message, envelope};
use serde_json::json;
use sync::client::{BackgroundError, SyncClientConfig};
use sync::protocol::{Frame, ROUTER};
use sync::{Op, RemoteError};

#[tokio::test]
async fn malformed_frames_are_ignored() {
    let mut server = FakeServer::start().await;
    let (client, sync, connection) = connected(&mut server, SyncClientConfig::default()).await;
    let book = sync.sync("/api/book/1").unwrap();
    let mut messages = book.messages();
    let mut errors = sync.errors();
    let (subscribed, _) = tokio::join!(within(book.connect()), server.accept_sub());
    subscribed.unwrap();

    for body in [
        json!({"t": "bogus"}),
        json!(42),
        json!({"t": "data", "path": "/api/book/1"}),
        json!({"t": "data", "path": "/api/book/1", "op": "explode", "data": 1}),
        json!({"t": "reply"}),
        json!({"t": "subscribed", "path": 7}),
    ] {
        send_raw(&connection, envelope::json(ROUTER, &body).unwrap());
    }
    send_raw(&connection, Message::text(r#"{"$r":"sync","d":{"t":"data""#));
    send_raw(&connection, Message::binary(vec![0x81, 0xa2, b'$', b'r', 0xa4, b's', b'y', b'n', b'c', 0xc1]));
    // Frames only clients send, and answers nobody waits for.
    send(&connection, &Frame::Sub { path: "/api/book/1".into(), id: Some(1), snapshot: false });
    send(
        &connection,
        &Frame::Request { method: sync::Method::Read, path: "/x".into(), data: json!(null), id: 9 },
    );
    send(&connection, &reply(12345, Ok(json!(1))));
    send(&connection, &Frame::Subscribed { path: "/never/asked".into(), id: Some(777), v: None, data: None });
    send(&connection, &Frame::Unsubscribed { path: "/api/book/1".into(), id: Some(778) });

    // The client went on: the next valid push is the first message.
    send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1, "title": "still here"})));
    let message = within(messages.recv()).await.unwrap();
    assert_eq!(message.data, json!({"id": 1, "title": "still here"}));
    assert!(errors.try_recv().is_none(), "malformed frames are logged, not reported");
    // An `unsubscribed` the client did not ask for: the server stopped the subscription.
    assert!(!book.is_subscribed());

    // Requests still work.
    let (answer, ()) = tokio::join!(within(sync.read::<u32>("/n")), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &reply(id_of(&frame), Ok(json!(5))));
    });
    assert_eq!(answer.unwrap(), 5);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn unclaimed_errors_go_to_errors_and_a_full_stream_drops_the_newest() {
    let mut server = FakeServer::start().await;
    let config = SyncClientConfig::default().error_queue_capacity(2);
    let (client, sync, connection) = connected(&mut server, config).await;
    let mut small = sync.errors();
    let mut reader = sync.errors();

    send(&connection, &error(RemoteError::new("malformed", "what was that?"), None, None));
    send(&connection, &error(RemoteError::new("unexpected", "clients do not send that"), Some(4242), None));
    send(&connection, &error(RemoteError::new("not_subscribed", "/x"), None, Some("/x")));
    // A marker after them: once it is through, so are they.
    let book = sync.sync("/api/book/1").unwrap();
    let mut messages = book.messages();
    send(&connection, &push("/api/book/1", Op::Change, json!({"id": 1})));
    within(messages.recv()).await.unwrap();

    let expected = [
        BackgroundError::Server { error: RemoteError::new("malformed", "what was that?"), path: None },
        BackgroundError::Server {
            error: RemoteError::new("unexpected", "clients do not send that"),
            path: None,
        },
        BackgroundError::Server { error: RemoteError::new("not_subscribed", "/x"), path: Some("/x".into()) },
    ];
    // The stream that was read in time holds the first two; the third was dropped for it.
    assert_eq!(small.try_recv().unwrap(), expected[0]);
    assert_eq!(small.try_recv().unwrap(), expected[1]);
    assert!(small.try_recv().is_none());
    // Every stream has its own queue: the other one lost the third as well, but no more.
    assert_eq!(within(reader.recv()).await.unwrap(), expected[0]);
    assert_eq!(within(reader.recv()).await.unwrap(), expected[1]);
    assert!(reader.try_recv().is_none());
    client.close().await;
    server.shutdown().await;
}
