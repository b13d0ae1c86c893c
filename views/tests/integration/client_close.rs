//! Closing views: `close` answered by `closed` (or `not_open`, which counts as success),
//! the view forgotten at once (streams end, handles empty, waiting opens cancelled), and
//! nothing sent for a view that is not open.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::client_support::*;
use views::client::{CloseError, OpenError, ViewsClientConfig};
use views::protocol::{Frame, codes};

/// Expects the next frame to be a `close` of `view`; returns its connection and id.
async fn expect_close(server: &mut FakeServer, view: &str) -> (network_core::Connection, u64) {
    let (connection, frame) = server.frame().await;
    match &frame {
        Frame::Close { view: closed, id: Some(id) } if closed == view => (connection, *id),
        other => panic!("expected a close of {view:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn close_is_answered_closed_and_forgets_the_view() {
    let mut server = FakeServer::start().await;
    let (client, views, connection) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = open(&mut server, &views, "doc", vec![user("ada", 1)]).await;
    let mut changes = doc.changes();

    let (closed, ()) = tokio::join!(within(views.close(&doc)), async {
        let (connection, id) = expect_close(&mut server, "doc").await;
        send(&connection, &Frame::Closed { view: "doc".into(), id: Some(id) });
    });
    closed.unwrap();
    assert!(!doc.is_open() && !doc.is_synced());
    assert!(doc.members().is_empty() && doc.member_count() == 0);
    assert!(within(changes.recv()).await.is_none(), "the stream ends");
    assert!(within(doc.changes().recv()).await.is_none(), "a closed view's new stream ends at once");
    // Late frames for it are ignored.
    send(&connection, &diff("doc", vec![user("bob", 1)], &[]));

    // Opening it again asks the server again; the old handle stays closed.
    let reopened = open(&mut server, &views, "doc", vec![user("cy", 1)]).await;
    assert_eq!(reopened.members(), [user("cy", 1)]);
    assert!(doc.members().is_empty());
    // Closing through the old handle does nothing to the new view.
    within(views.close(&doc)).await.unwrap();
    assert!(reopened.is_open());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn not_open_counts_as_closed_and_other_errors_are_refusals() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    open(&mut server, &views, "doc", vec![]).await;
    let (closed, ()) = tokio::join!(within(views.close_name("doc")), async {
        let (connection, id) = expect_close(&mut server, "doc").await;
        send(&connection, &error(codes::NOT_OPEN, "doc is not open", Some(id), Some("doc")));
    });
    closed.unwrap();

    open(&mut server, &views, "doc", vec![]).await;
    let (closed, ()) = tokio::join!(within(views.close_name("doc")), async {
        let (connection, id) = expect_close(&mut server, "doc").await;
        send(&connection, &error("internal", "oops", Some(id), None));
    });
    assert!(matches!(closed, Err(CloseError::Refused(error)) if error.code == "internal"));
    // Forgotten anyway: closing again sends nothing and succeeds.
    within(views.close_name("doc")).await.unwrap();
    within(views.close_name("never-opened")).await.unwrap();
    let (answered, ()) = tokio::join!(within(views.info("probe")), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(frame, Frame::Info { .. }), "nothing but the probe was sent: {frame:?}");
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
    });
    assert_eq!(answered.unwrap(), None);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn close_cancels_an_open_in_flight() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let (opened, ()) = tokio::join!(within(views.open("doc")), async {
        let (connection, open_id) = expect_open(&mut server, "doc").await;
        let (closed, ()) = tokio::join!(within(views.close_name("doc")), async {
            let (_, close_id) = expect_close(&mut server, "doc").await;
            // The server answers both, in order.
            send(&connection, &state("doc", vec![user("ada", 1)], Some(open_id)));
            send(&connection, &Frame::Closed { view: "doc".into(), id: Some(close_id) });
        });
        closed.unwrap();
    });
    assert!(matches!(opened, Err(OpenError::Cancelled)), "{opened:?}");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn close_while_the_link_is_down_sends_nothing() {
    let mut server = FakeServer::start().await;
    let addr = server.addr();
    let (client, views, mut lifecycle) = client(&server.url(), client_config(), ViewsClientConfig::default());
    let doc = open(&mut server, &views, "doc", vec![]).await;
    let _keep = open(&mut server, &views, "keep", vec![]).await;
    server.shutdown().await;
    lifecycle_until(&mut lifecycle, |event| matches!(event, ws_client::ClientEvent::Closed { .. })).await;

    within(views.close(&doc)).await.unwrap();
    // Back: only the view still wanted is re-opened, and no close was queued.
    let mut server = FakeServer::start_at(addr).await;
    let (connection, id) = expect_open(&mut server, "keep").await;
    send(&connection, &state("keep", vec![], Some(id)));
    let (answered, ()) = tokio::join!(within(views.info("probe")), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(frame, Frame::Info { .. }), "{frame:?}");
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
    });
    assert_eq!(answered.unwrap(), None);
    client.close().await;
    server.shutdown().await;
}
