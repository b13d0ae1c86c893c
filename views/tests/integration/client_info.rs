//! Info requests: one view and a pattern, with and without debug, answered by id; a
//! truncated answer; `bad_request` refusals; local checks; the cap, the timeout, the wait
//! for the first connection, and failure with `Closed` when the link drops.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::client_support::*;
use views::UserCount;
use views::client::{InfoError, RemoteError, ViewsClientConfig};
use views::protocol::{Frame, codes};
use ws_client::ClientEvent;

/// The answer to info request `id`.
fn answer(id: u64, views: Vec<views::ViewInfo>) -> Frame {
    Frame::Info { id, view: None, pattern: None, debug: false, views: Some(views), truncated: false }
}

#[tokio::test]
async fn info_of_one_view() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = info("doc-7", &[("ada", 2), ("bob", 1)], 1);

    let (answered, ()) = tokio::join!(within(views.info("doc-7")), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(
            frame,
            Frame::Info {
                id,
                view: Some("doc-7".into()),
                pattern: None,
                debug: false,
                views: None,
                truncated: false
            }
        );
        send(&connection, &answer(id, vec![doc.clone()]));
    });
    assert_eq!(answered.unwrap(), Some(doc));

    // Nobody has it open: the server lists nothing.
    let (answered, ()) = tokio::join!(within(views.info("empty")), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &answer(id_of(&frame), vec![]));
    });
    assert_eq!(answered.unwrap(), None);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn info_matching_a_pattern_and_debug_answers() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let found = vec![info("doc-1", &[("ada", 1)], 0), info("doc-2", &[], 2)];

    let (answered, ()) = tokio::join!(within(views.info_matching("^doc-")), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(
            frame,
            Frame::Info {
                id,
                view: None,
                pattern: Some("^doc-".into()),
                debug: false,
                views: None,
                truncated: false
            }
        );
        send(&connection, &answer(id, found.clone()));
    });
    let answered = answered.unwrap();
    assert_eq!((answered.views(), answered.is_truncated()), (&found[..], false));

    // The server cut the list short: the client says so.
    let (answered, ()) = tokio::join!(within(views.info_matching(".")), async {
        let (connection, frame) = server.frame().await;
        let Frame::Info { id, .. } = frame else { panic!("expected an info, got {frame:?}") };
        let cut = Frame::Info {
            id,
            view: None,
            pattern: None,
            debug: false,
            views: Some(found.clone()),
            truncated: true,
        };
        send(&connection, &cut);
    });
    let answered = answered.unwrap();
    assert_eq!((answered.views(), answered.is_truncated()), (&found[..], true));

    let mut debug = info("doc-1", &[("ada", 2)], 0);
    debug.users = vec![UserCount { user: "ada".into(), clients: 2, connections: Some(vec![4, 9]) }];
    let (one, all, ()) =
        tokio::join!(within(views.info_debug("doc-1")), within(views.info_matching_debug(".")), async {
            for _ in 0..2 {
                let (connection, frame) = server.frame().await;
                let Frame::Info { id, debug: true, .. } = frame else {
                    panic!("expected a debug info, got {frame:?}")
                };
                send(&connection, &answer(id, vec![debug.clone()]));
            }
        });
    assert_eq!(one.unwrap(), Some(debug.clone()));
    assert_eq!(all.unwrap().into_views(), [debug]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let (answered, ()) = tokio::join!(within(views.info_matching("(")), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &error(codes::BAD_REQUEST, "unclosed group", Some(id_of(&frame)), None));
    });
    match answered {
        Err(InfoError::Refused(refusal)) => {
            assert_eq!(refusal, RemoteError::new(codes::BAD_REQUEST, "unclosed group"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Checked locally, nothing sent.
    assert!(matches!(views.info("").await, Err(InfoError::InvalidName(_))));
    assert!(matches!(views.info_matching(&"a".repeat(257)).await, Err(InfoError::PatternTooLong)));
    let longest = "a".repeat(256);
    let (answered, ()) = tokio::join!(within(views.info_matching(&longest)), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(&frame, Frame::Info { pattern: Some(pattern), .. } if pattern.len() == 256));
        send(&connection, &answer(id_of(&frame), vec![]));
    });
    assert!(answered.unwrap().is_empty());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn info_times_out_and_pending_requests_are_capped() {
    let mut server = FakeServer::start().await;
    let config =
        ViewsClientConfig::default().request_timeout(Duration::from_millis(200)).max_pending_requests(1);
    let (client, views, _) = connected(&mut server, config).await;
    let (first, (second, first_id)) = tokio::join!(within(views.info("doc")), async {
        // The first request is pending once the server sees it.
        let (_, frame) = server.frame().await;
        (views.info("doc").await, id_of(&frame))
    });
    assert!(matches!(first, Err(InfoError::Timeout(limit)) if limit == Duration::from_millis(200)));
    assert!(matches!(second, Err(InfoError::TooManyPending)), "{second:?}");

    // The timed-out request is forgotten: a new one is accepted, and a late answer to the
    // old one is ignored.
    let (answered, ()) = tokio::join!(within(views.info("doc")), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &answer(first_id, vec![info("doc", &[], 7)]));
        send(&connection, &answer(id_of(&frame), vec![info("doc", &[], 1)]));
    });
    assert_eq!(answered.unwrap(), Some(info("doc", &[], 1)));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn info_before_the_first_connection_waits_for_it() {
    let mut server = FakeServer::start().await;
    let (client, views, _) =
        client(&server.url(), client_config().start_closed(true), ViewsClientConfig::default());
    let early = tokio::spawn({
        let views = views.clone();
        async move { views.info("doc").await }
    });
    client.reconnect();
    let (connection, frame) = server.frame().await;
    send(&connection, &answer(id_of(&frame), vec![info("doc", &[("ada", 1)], 0)]));
    assert_eq!(within(early).await.unwrap().unwrap(), Some(info("doc", &[("ada", 1)], 0)));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn pending_info_fails_when_the_link_drops() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let mut lifecycle = client.lifecycle();
    let (answered, ()) = tokio::join!(within(views.info("doc")), async {
        server.frame().await;
        server.shutdown().await;
    });
    assert!(matches!(answered, Err(InfoError::Closed)), "{answered:?}");
    lifecycle_until(&mut lifecycle, |event| matches!(event, ClientEvent::Closed { .. })).await;
    client.close().await;
    // A closed client fails at once (`Send` while the router is still being detached).
    let late = views.info("doc").await;
    assert!(matches!(late, Err(InfoError::Closed | InfoError::Send(_))), "{late:?}");
}
