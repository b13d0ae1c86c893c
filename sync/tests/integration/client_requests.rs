//! Create, read, update and delete: the frames on the wire, the server's value, its error
//! (error-first), no answer (timeout, and the late reply ignored), a reply of the wrong
//! type, the cap on pending requests, and the link dropping before the reply.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use network_core::CloseCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sync::RemoteError;
use sync::client::{RequestError, SyncClientConfig};
use sync::protocol::{Frame, Method};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Book {
    id: u64,
    title: String,
}

#[tokio::test]
async fn crud_requests_carry_their_method_and_get_the_servers_value() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;

    let emma = json!({"title": "Emma"});
    let (created, ()) = tokio::join!(within(sync.create::<_, Book>("/api/books", &emma)), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(
            frame,
            Frame::Request {
                method: Method::Create,
                path: "/api/books".into(),
                data: json!({"title": "Emma"}),
                id
            }
        );
        send(&connection, &reply(id, Ok(json!({"id": 2, "title": "Emma"}))));
    });
    assert_eq!(created.unwrap(), Book { id: 2, title: "Emma".into() });

    let (read, ()) = tokio::join!(within(sync.read::<Book>("/api/book/2")), async {
        let (connection, frame) = server.frame().await;
        let id = id_of(&frame);
        assert_eq!(
            frame,
            Frame::Request { method: Method::Read, path: "/api/book/2".into(), data: Value::Null, id }
        );
        send(&connection, &reply(id, Ok(json!({"id": 2, "title": "Emma"}))));
    });
    assert_eq!(read.unwrap().title, "Emma");

    let rename = Book { id: 2, title: "Persuasion".into() };
    let (updated, ()) = tokio::join!(within(sync.update::<_, Book>("/api/book/2", &rename)), async {
        let (connection, frame) = server.frame().await;
        let Frame::Request { method: Method::Update, data, id, .. } = frame else { panic!("{frame:?}") };
        assert_eq!(data, json!({"id": 2, "title": "Persuasion"}));
        send(&connection, &reply(id, Ok(data)));
    });
    assert_eq!(updated.unwrap(), rename);

    let (deleted, ()) = tokio::join!(within(sync.delete::<()>("/api/book/2")), async {
        let (connection, frame) = server.frame().await;
        assert!(
            matches!(&frame, Frame::Request { method: Method::Delete, data: Value::Null, .. }),
            "{frame:?}"
        );
        send(&connection, &reply(id_of(&frame), Ok(Value::Null)));
    });
    deleted.unwrap();
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn errors_come_back_error_first_and_wrong_types_are_reported() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;

    let empty = json!({});
    let (refused, ()) = tokio::join!(within(sync.update::<_, Book>("/api/book/9", &empty)), async {
        let (connection, frame) = server.frame().await;
        // Error-first: `err` wins even next to data.
        send(
            &connection,
            &Frame::Reply {
                id: id_of(&frame),
                data: Some(json!({"id": 9})),
                err: Some(RemoteError::not_found("no book 9")),
            },
        );
    });
    assert!(
        matches!(refused, Err(RequestError::Remote(error)) if error == RemoteError::not_found("no book 9"))
    );

    // An `error` frame that names the request fails it too.
    let (bad, ()) = tokio::join!(within(sync.read::<Book>("/nowhere")), async {
        let (connection, frame) = server.frame().await;
        send(
            &connection,
            &error(RemoteError::new("no_route", "no pattern"), Some(id_of(&frame)), Some("/nowhere")),
        );
    });
    assert!(matches!(bad, Err(RequestError::Remote(error)) if error.code == "no_route"));

    let (wrong, ()) = tokio::join!(within(sync.read::<Book>("/api/book/1")), async {
        let (connection, frame) = server.frame().await;
        send(&connection, &reply(id_of(&frame), Ok(json!("not a book"))));
    });
    assert!(matches!(wrong, Err(RequestError::Decode(_))));

    assert!(
        matches!(sync.read::<Book>("no-slash").await, Err(RequestError::InvalidPath(path)) if path == "no-slash")
    );
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn timeout_removes_the_request_and_the_late_reply_is_ignored() {
    let mut server = FakeServer::start().await;
    let config =
        SyncClientConfig::default().request_timeout(Duration::from_millis(200)).max_pending_requests(1);
    let (client, sync, _) = connected(&mut server, config).await;
    let mut errors = sync.errors();

    let (late, (connection, frame)) = tokio::join!(within(sync.read::<u32>("/slow")), server.frame());
    assert!(matches!(late, Err(RequestError::Timeout(limit)) if limit == Duration::from_millis(200)));
    // Too late: nobody waits for it any more.
    send(&connection, &reply(id_of(&frame), Ok(json!(1))));

    // The only slot is free again, and the next reply goes to the next request.
    let (next, ()) = tokio::join!(within(sync.read::<u32>("/fast")), async {
        let (connection, frame) = server.frame().await;
        assert!(matches!(&frame, Frame::Request { path, .. } if path == "/fast"));
        send(&connection, &reply(id_of(&frame), Ok(json!(2))));
    });
    assert_eq!(next.unwrap(), 2);

    // An explicit timeout overrides the configured one.
    let (short, _) = tokio::join!(
        within(sync.request_with_timeout::<_, u32>(Method::Read, "/slow", &(), Duration::from_millis(50))),
        server.frame()
    );
    assert!(matches!(short, Err(RequestError::Timeout(limit)) if limit == Duration::from_millis(50)));
    // The late reply was ignored quietly: nothing reached errors().
    assert!(errors.try_recv().is_none());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn pending_requests_are_capped() {
    let mut server = FakeServer::start().await;
    let config = SyncClientConfig::default().max_pending_requests(2);
    let (client, sync, _) = connected(&mut server, config).await;

    let waiting: Vec<_> = (0..2u32)
        .map(|n| {
            let sync = sync.clone();
            tokio::spawn(async move { sync.create::<_, u32>("/numbers", &n).await })
        })
        .collect();
    let mut requests = Vec::new();
    for _ in 0..2 {
        requests.push(server.frame().await);
    }
    assert!(matches!(sync.read::<u32>("/numbers").await, Err(RequestError::TooManyPending)));
    for (connection, frame) in &requests {
        let Frame::Request { data, id, .. } = frame else { panic!("{frame:?}") };
        send(connection, &reply(*id, Ok(data.clone())));
    }
    let mut answers = Vec::new();
    for task in waiting {
        answers.push(within(task).await.unwrap().unwrap());
    }
    answers.sort_unstable();
    assert_eq!(answers, vec![0, 1]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_link_fails_pending_requests_with_closed() {
    let mut server = FakeServer::start().await;
    let (client, sync, _) = connected(&mut server, SyncClientConfig::default()).await;

    let empty = json!({});
    let (closed, ()) = tokio::join!(within(sync.update::<_, Book>("/api/book/1", &empty)), async {
        let (connection, _) = server.frame().await;
        // The server drops the link instead of answering.
        connection.close(CloseCode::GOING_AWAY, "restart");
    });
    assert!(matches!(closed, Err(RequestError::Closed)));

    // The client reconnects; requests work again on the new connection.
    let connection = server.connection().await;
    let (answer, ()) = tokio::join!(within(sync.read::<u32>("/again")), async {
        let (_, frame) = server.frame().await;
        send(&connection, &reply(id_of(&frame), Ok(json!(3))));
    });
    assert_eq!(answer.unwrap(), 3);
    client.close().await;
    server.shutdown().await;
}
