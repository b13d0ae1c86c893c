//! Malformed and unexpected frames from the server are ignored without harming the
//! client: garbage, frames only a client sends, answers to nothing, frames for views that
//! are not open, errors without a request.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::client_support::*;
use network_core::Message;
use views::client::ViewsClientConfig;
use views::protocol::Frame;

#[tokio::test]
async fn malformed_frames_from_the_server_are_ignored() {
    let mut server = FakeServer::start().await;
    let (client, views, connection) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = open(&mut server, &views, "doc", vec![user("ada", 1)]).await;
    let mut changes = doc.changes();
    let pending = tokio::spawn({
        let views = views.clone();
        async move { views.info("doc").await }
    });
    let (_, request) = server.frame().await;

    for garbage in [
        r#"{"$r":"views","d":{"t":"bogus"}}"#,
        r#"{"$r":"views","d":42}"#,
        r#"{"$r":"views","d":{"t":"state","view":"doc"}}"#,
        r#"{"$r":"views","d":{"t":"state","view":"doc","members":[{"key":"u:x"}]}}"#,
        r#"{"$r":"views","d":{"t":"diff"}}"#,
        r#"{"$r":"views","d":{"t":"diff","view":"doc","joins":[{"key":"u:x","clients":-1}]}}"#,
        r#"{"$r":"views","d":{"t":"info","id":-1}}"#,
        r#"{"$r":"views","d":{"t":"error","code":7}}"#,
        r#"{"$r":"views","d":"#,
        r#"{"$r":"views"}"#,
    ] {
        send_raw(&connection, Message::text(garbage));
    }
    send_raw(
        &connection,
        Message::binary(vec![0x81, 0xa2, b'$', b'r', 0xa5, b'v', b'i', b'e', b'w', b's', 0xc1]),
    );
    // Frames only a client sends.
    send(&connection, &Frame::Open { view: "doc".into(), id: Some(1) });
    send(&connection, &Frame::Close { view: "doc".into(), id: None });
    // Answers to nothing, and frames of views that are not open.
    send(&connection, &state("other", vec![user("x", 1)], Some(12345)));
    send(&connection, &diff("other", vec![user("x", 1)], &[]));
    send(&connection, &Frame::Closed { view: "other".into(), id: Some(999) });
    send(
        &connection,
        &Frame::Info {
            id: 777,
            view: None,
            pattern: None,
            debug: false,
            views: Some(vec![]),
            truncated: false,
        },
    );
    send(&connection, &error("malformed", "what was that", None, None));
    send(&connection, &error("forbidden", "late", Some(4242), Some("doc")));
    // A state answering an id nobody waits for still carries the view's members: equal
    // here, so nothing changes.
    send(&connection, &state("doc", vec![user("ada", 1)], Some(999)));

    // Still serving, in order: the view took no damage, answers still arrive.
    send(&connection, &diff("doc", vec![user("bob", 1)], &[]));
    let change = next_change(&mut changes).await;
    assert_eq!((change.joined, change.left), (vec![user("bob", 1)], vec![]));
    assert_eq!(doc.members(), [user("ada", 1), user("bob", 1)]);
    assert!(doc.is_open() && doc.is_synced());
    let answer = Frame::Info {
        id: id_of(&request),
        view: None,
        pattern: None,
        debug: false,
        views: Some(vec![info("doc", &[("ada", 1), ("bob", 1)], 0)]),
        truncated: false,
    };
    send(&connection, &answer);
    assert_eq!(within(pending).await.unwrap().unwrap(), Some(info("doc", &[("ada", 1), ("bob", 1)], 0)));
    client.close().await;
    server.shutdown().await;
}
