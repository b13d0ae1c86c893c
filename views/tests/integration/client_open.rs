//! Opening views: `open` answered by `state` (members, counts), refused (`forbidden`,
//! `bad_request`), sent once the first connection opens, bounded by `request_timeout`
//! with the view still wanted, and shared by concurrent and repeated opens; the `state`'s
//! `you` is the client's own member key.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::client_support::*;
use views::client::{OpenError, RemoteError, ViewsClientConfig};
use views::protocol::{Frame, codes};

/// Proves that nothing was sent since the last frame seen: an info request is the next
/// frame the server sees.
async fn nothing_sent_before_info(server: &mut FakeServer, views: &views::client::ViewsClient) {
    let (answered, ()) = tokio::join!(within(views.info("probe")), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(&frame, Frame::Info { view: Some(view), .. } if view == "probe"), "{frame:?}");
        send(
            &connection,
            &Frame::Info {
                id: id_of(&frame),
                view: None,
                pattern: None,
                debug: false,
                views: Some(vec![]),
                truncated: false,
            },
        );
    });
    assert_eq!(answered.unwrap(), None);
}

#[tokio::test]
async fn open_is_answered_by_the_state() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;

    let (opened, ()) = tokio::join!(within(views.open("doc-7")), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(frame, Frame::Open { view: "doc-7".into(), id: Some(id) });
        send(&connection, &state("doc-7", vec![user("bob", 1), anonymous(17), user("ada", 2)], Some(id)));
    });
    let doc = opened.unwrap();
    assert_eq!(doc.name(), "doc-7");
    assert!(doc.is_open() && doc.is_synced());
    assert_eq!(doc.members(), [anonymous(17), user("ada", 2), user("bob", 1)]);
    assert_eq!(
        (doc.member_count(), doc.user_count(), doc.anonymous_count(), doc.client_count()),
        (3, 2, 1, 4)
    );

    // Open already: the same view at once, nothing sent.
    let again = within(views.open("doc-7")).await.unwrap();
    assert_eq!(again.members(), doc.members());
    nothing_sent_before_info(&mut server, &views).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_state_says_which_member_is_this_client() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;

    let (opened, connection) = tokio::join!(within(views.open("doc")), async {
        let (connection, id) = expect_open(&mut server, "doc").await;
        send(&connection, &state_for("doc", vec![anonymous(17), user("ada", 1)], "c:17", Some(id)));
        connection
    });
    let doc = opened.unwrap();
    assert_eq!(doc.you().as_deref(), Some("c:17"));
    assert!(doc.members().iter().any(|member| Some(&member.key) == doc.you().as_ref()));

    // A later state (a re-open after a reconnect gives an anonymous client a new id) says
    // who it is now; a state without the field (an older server) forgets it.
    send(&connection, &state_for("doc", vec![anonymous(18)], "c:18", None));
    within(async {
        while doc.you().as_deref() != Some("c:18") {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    send(&connection, &state("doc", vec![anonymous(18)], None));
    within(async {
        while doc.you().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;

    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_every_handle_keeps_the_view_open() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = open(&mut server, &views, "doc", vec![user("ada", 1)]).await;
    let changes = doc.changes();
    drop((doc, changes));

    let doc = within(views.open("doc")).await.unwrap();
    assert_eq!(doc.members(), [user("ada", 1)]);
    nothing_sent_before_info(&mut server, &views).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_the_servers_code_and_forget_the_view() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    for code in [codes::FORBIDDEN, codes::BAD_REQUEST] {
        let (opened, ()) = tokio::join!(within(views.open("secret")), async {
            let (connection, id) = expect_open(&mut server, "secret").await;
            send(&connection, &error(code, "no peeking", Some(id), Some("secret")));
        });
        match opened {
            Err(OpenError::Refused(refusal)) => assert_eq!(refusal, RemoteError::new(code, "no peeking")),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // `limit` has a variant of its own: the caller reacts by closing a view.
    let (opened, ()) = tokio::join!(within(views.open("secret")), async {
        let (connection, id) = expect_open(&mut server, "secret").await;
        send(&connection, &error(codes::LIMIT, "at most 256 views per connection", Some(id), Some("secret")));
    });
    assert!(matches!(&opened, Err(OpenError::Limit(refusal)) if refusal.code == codes::LIMIT), "{opened:?}");
    // Forgotten: a new open asks again.
    let (opened, ()) = tokio::join!(within(views.open("secret")), async {
        let (connection, id) = expect_open(&mut server, "secret").await;
        send(&connection, &error(codes::FORBIDDEN, "still no", Some(id), None));
    });
    assert!(matches!(opened, Err(OpenError::Refused(refusal)) if refusal.is_forbidden()));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_names_are_refused_without_a_frame() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let long = "x".repeat(129);
    for bad in ["", "a\nb", "tab\there", long.as_str()] {
        assert!(matches!(views.open(bad).await, Err(OpenError::InvalidName(name)) if name == bad));
    }
    nothing_sent_before_info(&mut server, &views).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn open_before_the_first_connection_is_sent_when_it_opens() {
    let mut server = FakeServer::start().await;
    // The client does not connect until told to.
    let (client, views, _) =
        client(&server.url(), client_config().start_closed(true), ViewsClientConfig::default());
    let early = tokio::spawn({
        let views = views.clone();
        async move { views.open("lobby").await }
    });
    client.reconnect();
    let (connection, id) = expect_open(&mut server, "lobby").await;
    send(&connection, &state("lobby", vec![user("ada", 1)], Some(id)));
    let lobby = within(early).await.unwrap().unwrap();
    assert_eq!(lobby.members(), [user("ada", 1)]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn open_times_out_and_a_late_state_still_opens() {
    let mut server = FakeServer::start().await;
    let config = ViewsClientConfig::default().request_timeout(Duration::from_millis(200));
    let (client, views, _) = connected(&mut server, config).await;

    let (opened, (connection, id)) =
        tokio::join!(within(views.open("slow")), expect_open(&mut server, "slow"));
    assert!(matches!(opened, Err(OpenError::Timeout(limit)) if limit == Duration::from_millis(200)));
    // The view stays wanted: a second open waits for the same request, which the late
    // state settles.
    let (opened, ()) = tokio::join!(within(views.open("slow")), async {
        send(&connection, &state("slow", vec![user("ada", 1)], Some(id)));
    });
    assert_eq!(opened.unwrap().members(), [user("ada", 1)]);
    nothing_sent_before_info(&mut server, &views).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_opens_share_one_request() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let (first, second, ()) = tokio::join!(within(views.open("doc")), within(views.open("doc")), async {
        let (connection, id) = expect_open(&mut server, "doc").await;
        send(&connection, &state("doc", vec![user("ada", 1)], Some(id)));
    });
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.members(), second.members());
    nothing_sent_before_info(&mut server, &views).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn closing_the_client_fails_waiting_opens() {
    let mut server = FakeServer::start().await;
    let (client, views, _) = connected(&mut server, ViewsClientConfig::default()).await;
    let (opened, ()) = tokio::join!(within(views.open("doc")), async {
        expect_open(&mut server, "doc").await;
        client.close().await;
    });
    assert!(matches!(opened, Err(OpenError::Closed)), "{opened:?}");
    assert!(matches!(views.open("doc").await, Err(OpenError::Closed)));
    server.shutdown().await;
}
