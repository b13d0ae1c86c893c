//! Server restart: the client re-opens every view before the frames queued while the link
//! was down, a changed state emits its difference (an equal one nothing), members are kept
//! meanwhile, a refused re-open closes the view on its streams, and a view the server
//! closes on its own is opened again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::client_support::*;
use views::client::{RemoteError, ViewsClientConfig};
use views::protocol::{Frame, codes};
use ws_client::ClientEvent;

/// The next frames up to the first that is not an open: the opens' views and ids, and
/// that frame.
async fn opens_then(server: &mut FakeServer) -> (network_core::Connection, Vec<(String, u64)>, Frame) {
    let mut opens = Vec::new();
    loop {
        match server.next().await {
            Seen::Frame(_, Frame::Open { view, id: Some(id) }) => opens.push((view, id)),
            Seen::Frame(connection, other) => return (connection, opens, other),
            Seen::Added(_) => assert!(opens.is_empty(), "opens come after the connection opens"),
            Seen::Removed => panic!("the connection closed"),
        }
    }
}

#[tokio::test]
async fn restart_reopens_before_the_queue_and_emits_the_difference() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let (client, views, mut lifecycle) = client(&server.url(), client_config(), ViewsClientConfig::default());
    let a = open(&mut server, &views, "a", vec![user("ada", 1), user("bob", 1)]).await;
    let b = open(&mut server, &views, "b", vec![user("cy", 1)]).await;
    let (mut a_changes, mut b_changes) = (a.changes(), b.changes());

    // The server goes away: the members are kept, no longer current.
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    assert!(!a.is_synced() && a.is_open());
    assert_eq!(keys(&a.members()), ["u:ada", "u:bob"]);
    // A request made meanwhile waits in the client's queue.
    let queued = tokio::spawn({
        let views = views.clone();
        async move { views.info("a").await }
    });

    // Back on the same port: every view is opened first, in name order, then the queue.
    let mut server = FakeServer::start_at(addr).await;
    let (connection, opens, queued_frame) = opens_then(&mut server).await;
    let names: Vec<&str> = opens.iter().map(|(view, _)| view.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(matches!(&queued_frame, Frame::Info { view: Some(view), .. } if view == "a"), "{queued_frame:?}");

    // `a` changed while the link was down; `b` did not.
    send(&connection, &state("a", vec![user("bob", 2), user("dee", 1)], Some(opens[0].1)));
    send(&connection, &state("b", vec![user("cy", 1)], Some(opens[1].1)));
    let change = next_change(&mut a_changes).await;
    assert_eq!(
        (change.joined, change.changed, change.left),
        (vec![user("dee", 1)], vec![user("bob", 2)], vec![user("ada", 1)])
    );
    assert_eq!(keys(&a.members()), ["u:bob", "u:dee"]);
    // `b`'s state emitted nothing: its next change is the next diff.
    send(&connection, &diff("b", vec![user("eve", 1)], &[]));
    assert_eq!(next_change(&mut b_changes).await.joined, [user("eve", 1)]);
    assert!(a.is_synced() && b.is_synced());

    send(
        &connection,
        &Frame::Info {
            id: id_of(&queued_frame),
            view: None,
            pattern: None,
            debug: false,
            views: Some(vec![info("a", &[("bob", 2), ("dee", 1)], 0)]),
            truncated: false,
        },
    );
    assert_eq!(within(queued).await.unwrap().unwrap(), Some(info("a", &[("bob", 2), ("dee", 1)], 0)));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_reopen_closes_the_view_on_its_streams() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let (client, views, mut lifecycle) = client(&server.url(), client_config(), ViewsClientConfig::default());
    let secret = open(&mut server, &views, "secret", vec![user("ada", 1)]).await;
    let public = open(&mut server, &views, "public", vec![]).await;
    let mut changes = secret.changes();

    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    let mut server = FakeServer::start_at(addr).await;
    for _ in 0..2 {
        let (connection, frame) = server.frame().await;
        match frame {
            Frame::Open { view, id } if view == "secret" => {
                send(&connection, &error(codes::FORBIDDEN, "revoked", id, Some("secret")));
            }
            Frame::Open { view, id } => send(&connection, &state(&view, vec![], id)),
            other => panic!("expected opens, got {other:?}"),
        }
    }
    let change = next_change(&mut changes).await;
    assert_eq!(change.closed, Some(RemoteError::new(codes::FORBIDDEN, "revoked")));
    assert!(change.joined.is_empty() && change.left.is_empty() && change.changed.is_empty());
    assert!(within(changes.recv()).await.is_none(), "the stream ends after it");
    assert!(!secret.is_open() && secret.members().is_empty());

    // Forgotten: the next restart re-opens `public` only, then sends the probe.
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    let probe = tokio::spawn({
        let views = views.clone();
        async move { views.info("probe").await }
    });
    let mut server = FakeServer::start_at(addr).await;
    let (connection, opens, frame) = opens_then(&mut server).await;
    send(
        &connection,
        &Frame::Info {
            id: id_of(&frame),
            view: None,
            pattern: None,
            debug: false,
            views: None,
            truncated: false,
        },
    );
    let names: Vec<&str> = opens.iter().map(|(view, _)| view.as_str()).collect();
    assert_eq!(names, ["public"]);
    within(probe).await.unwrap().unwrap();
    send(&connection, &state("public", vec![], Some(opens[0].1)));
    assert!(public.is_open());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_view_the_server_closes_is_opened_again() {
    let mut server = FakeServer::start().await;
    let (client, views, connection) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = open(&mut server, &views, "doc", vec![user("ada", 1)]).await;
    let mut changes = doc.changes();

    // A `closed` that answers no close of ours.
    send(&connection, &Frame::Closed { view: "doc".into(), id: None });
    let (connection, id) = expect_open(&mut server, "doc").await;
    send(&connection, &state("doc", vec![user("ada", 1), user("bob", 1)], Some(id)));
    assert_eq!(next_change(&mut changes).await.joined, [user("bob", 1)]);
    assert!(doc.is_synced());
    client.close().await;
    server.shutdown().await;
}
