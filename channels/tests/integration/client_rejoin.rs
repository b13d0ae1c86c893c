//! Server restart: the client re-joins every wanted channel before the frames queued while
//! the link was down, a join started while it was down completes on the new connection, a
//! refused rejoin is reported on `errors()` and the channel forgotten, and a left channel
//! is not re-joined.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use channels::RemoteError;
use channels::client::{BackgroundError, ChannelsClientConfig};
use channels::protocol::Frame;
use network_core::Connection;
use serde_json::json;
use ws_client::ClientEvent;

/// Answers the next `join` frame with `joined`; returns its channel.
async fn accept_join(server: &mut FakeServer) -> String {
    let (connection, frame) = server.frame().await;
    let Frame::Join { ch, id } = frame else { panic!("expected a join, got {frame:?}") };
    send(&connection, &Frame::Joined { ch: ch.clone(), id });
    ch
}

/// The next frames up to the first that is not a join: the joins' channels and ids, and
/// that frame.
async fn joins_then(server: &mut FakeServer) -> (Connection, Vec<(String, u64)>, Frame) {
    let mut joins = Vec::new();
    loop {
        match server.next().await {
            Seen::Frame(_, Frame::Join { ch, id: Some(id) }) => joins.push((ch, id)),
            Seen::Frame(connection, other) => return (connection, joins, other),
            Seen::Added(_) => assert!(joins.is_empty(), "joins come after the connection opens"),
            Seen::Removed => panic!("the connection closed"),
        }
    }
}

#[tokio::test]
async fn restart_rejoins_before_the_queue_and_reports_refusals() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let (client, channels, mut lifecycle) =
        client(&server.url(), client_config(), ChannelsClientConfig::default());
    let mut errors = channels.errors();
    let [a, b, c] = ["/a", "/b", "/c"].map(|path| channels.channel(path).unwrap());
    for channel in [&a, &b, &c] {
        let (joined, _) = tokio::join!(within(channel.join()), accept_join(&mut server));
        joined.unwrap();
    }

    // The server goes away; frames sent meanwhile are queued by the client.
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    assert!(!a.is_joined());
    a.emit("queued", &1).unwrap();
    channels.root().emit("queued", &2).unwrap();
    // A join while the link is down waits for the next connection.
    let d = channels.channel("/d").unwrap();
    let late_join = tokio::spawn({
        let d = d.clone();
        async move { d.join().await }
    });

    // Back on the same port: every wanted channel is joined first, in path order (the
    // joins of `/d` and of the others are the same restore), then the queue, in order.
    let mut server = FakeServer::start_at(addr).await;
    let (connection, joins, first_queued) = joins_then(&mut server).await;
    let paths: Vec<&str> = joins.iter().map(|(ch, _)| ch.as_str()).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/d"]);
    assert_eq!(first_queued, Frame::Emit { ch: "/a".into(), ev: "queued".into(), data: json!(1), id: None });
    let (_, second_queued) = server.frame().await;
    assert_eq!(second_queued, Frame::Emit { ch: "/".into(), ev: "queued".into(), data: json!(2), id: None });

    // `/c` is no longer allowed.
    for (ch, id) in joins {
        if ch == "/c" {
            send(&connection, &Frame::error(RemoteError::forbidden("banned"), Some(id), Some(ch)));
        } else {
            send(&connection, &Frame::Joined { ch, id: Some(id) });
        }
    }
    within(late_join).await.unwrap().unwrap();
    let refused = within(errors.recv()).await.unwrap();
    assert_eq!(
        refused,
        BackgroundError::RejoinRefused { channel: "/c".into(), error: RemoteError::forbidden("banned") }
    );
    assert!(a.is_joined() && b.is_joined() && d.is_joined() && !c.is_joined());

    // Forgotten: the next restart re-joins `/a`, `/b` and `/d` only; a left channel neither.
    let (left, ()) = tokio::join!(within(b.leave()), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(&frame, Frame::Leave { ch, .. } if ch == "/b"));
        send(&connection, &Frame::Left { ch: "/b".into(), id: Some(id_of(&frame)) });
    });
    left.unwrap();
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    a.emit("after", &3).unwrap();
    let mut server = FakeServer::start_at(addr).await;
    let (_, joins, first_queued) = joins_then(&mut server).await;
    let paths: Vec<&str> = joins.iter().map(|(ch, _)| ch.as_str()).collect();
    assert_eq!(paths, ["/a", "/d"]);
    assert!(matches!(first_queued, Frame::Emit { ev, .. } if ev == "after"));
    client.close().await;
    server.shutdown().await;
}
