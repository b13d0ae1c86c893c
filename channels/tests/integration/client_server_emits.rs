//! Events the server emits: without `id` they reach every `on()` stream of the event
//! (undecodable payloads reported, full streams waited for, dropped streams removed); with
//! an `id` the client's handler answers (data, its error, `bad_request`, `internal` for a
//! panic) or the client answers `no_handler`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use channels::RemoteError;
use channels::client::ChannelsClientConfig;
use channels::codes;
use channels::protocol::Frame;
use futures_util::StreamExt;
use serde_json::{Value, json};

fn emit(ch: &str, ev: &str, data: Value, id: Option<u64>) -> Frame {
    Frame::Emit { ch: ch.into(), ev: ev.into(), data, id }
}

#[tokio::test]
async fn events_reach_every_stream_of_their_name() {
    let mut server = FakeServer::start().await;
    let (client, channels, connection) = connected(&mut server, ChannelsClientConfig::default()).await;
    let root = channels.root();
    let mut first = root.on::<String>("news");
    let mut second = root.on::<String>("news");
    let mut other = channels.channel("/other").unwrap().on::<String>("news");

    send(&connection, &emit("/", "news", json!("a"), None));
    assert_eq!(within(first.recv()).await.unwrap().unwrap(), "a");
    assert_eq!(within(second.next()).await.unwrap().unwrap(), "a");

    // A dropped stream is unsubscribed; the others go on.
    drop(first);
    send(&connection, &emit("/", "news", json!(42), None));
    send(&connection, &emit("/", "news", json!("b"), None));
    assert!(within(second.recv()).await.unwrap().is_err(), "an undecodable payload is reported");
    assert_eq!(within(second.recv()).await.unwrap().unwrap(), "b");

    // Events are per channel.
    send(&connection, &emit("/other", "news", json!("c"), None));
    assert_eq!(within(other.recv()).await.unwrap().unwrap(), "c");
    assert!(second.try_recv().is_none());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_stream_holds_the_client_back_and_loses_nothing() {
    let mut server = FakeServer::start().await;
    let config = ChannelsClientConfig::default().event_queue_capacity(2);
    let (client, channels, connection) = connected(&mut server, config).await;
    let mut ticks = channels.root().on::<u32>("tick");
    for i in 0..50 {
        send(&connection, &emit("/", "tick", json!(i), None));
    }
    for i in 0..50 {
        assert_eq!(within(ticks.recv()).await.unwrap().unwrap(), i);
    }
    client.close().await;
    server.shutdown().await;
}

/// Sends a request to the client and returns its answer.
async fn ask(
    server: &mut FakeServer,
    connection: &network_core::Connection,
    ev: &str,
    data: Value,
    id: u64,
) -> Frame {
    send(connection, &emit("/", ev, data, Some(id)));
    let (_, answer) = server.frame().await;
    answer
}

#[tokio::test]
async fn handlers_answer_the_servers_requests() {
    let mut server = FakeServer::start().await;
    let (client, channels, connection) = connected(&mut server, ChannelsClientConfig::default()).await;
    let root = channels.root();
    root.handle("add", |numbers: Vec<u32>| async move { Ok::<_, RemoteError>(numbers.iter().sum::<u32>()) });
    root.handle("refuse", |_: Value| async move { Err::<(), _>(RemoteError::new("nope", "not today")) });
    root.handle("crash", |_: Value| async move {
        if true {
            panic!("handler bug");
        }
        Ok::<(), RemoteError>(())
    });
    // A stream of the same name does not answer requests.
    let _stream = root.on::<Value>("unhandled");

    assert_eq!(ask(&mut server, &connection, "add", json!([1, 2]), 5).await, Frame::ack(5, Ok(json!(3))));
    assert_eq!(
        ask(&mut server, &connection, "refuse", json!(null), 6).await,
        Frame::ack(6, Err(RemoteError::new("nope", "not today")))
    );
    let Frame::Ack { id: 7, err: Some(error), .. } =
        ask(&mut server, &connection, "add", json!("x"), 7).await
    else {
        panic!("expected an error ack");
    };
    assert_eq!(error.code, codes::BAD_REQUEST);
    let Frame::Ack { id: 8, err: Some(error), .. } =
        ask(&mut server, &connection, "crash", json!(null), 8).await
    else {
        panic!("expected an error ack");
    };
    assert_eq!(error.code, codes::INTERNAL);
    let Frame::Ack { id: 9, err: Some(error), .. } =
        ask(&mut server, &connection, "unhandled", json!(1), 9).await
    else {
        panic!("expected an error ack");
    };
    assert_eq!(error.code, codes::NO_HANDLER);

    // Still alive after the panic; a removed handler is no handler.
    assert_eq!(ask(&mut server, &connection, "add", json!([4]), 10).await, Frame::ack(10, Ok(json!(4))));
    assert!(root.remove_handler("add"));
    let Frame::Ack { id: 11, err: Some(error), .. } =
        ask(&mut server, &connection, "add", json!([4]), 11).await
    else {
        panic!("expected an error ack");
    };
    assert_eq!(error.code, codes::NO_HANDLER);
    client.close().await;
    server.shutdown().await;
}

/// Handler `first` waits up to 1 s for handler `second` to start, and says whether it
/// did: with one slot it cannot, since `second` needs the slot `first` holds.
async fn overlap(max_concurrent_handlers: usize) -> (Frame, Frame) {
    let mut server = FakeServer::start().await;
    let config = ChannelsClientConfig::default().max_concurrent_handlers(max_concurrent_handlers);
    let (client, channels, connection) = connected(&mut server, config).await;
    let root = channels.root();
    let second_started = std::sync::Arc::new(tokio::sync::Notify::new());
    root.handle("first", {
        let second_started = second_started.clone();
        move |_: Value| {
            let second_started = second_started.clone();
            async move {
                let waited =
                    tokio::time::timeout(std::time::Duration::from_secs(1), second_started.notified());
                Ok::<_, RemoteError>(if waited.await.is_ok() { "together" } else { "alone" })
            }
        }
    });
    root.handle("second", move |_: Value| {
        let second_started = second_started.clone();
        async move {
            second_started.notify_one();
            Ok::<_, RemoteError>("second")
        }
    });
    send(&connection, &emit("/", "first", json!(null), Some(1)));
    send(&connection, &emit("/", "second", json!(null), Some(2)));
    let (_, a) = server.frame().await;
    let (_, b) = server.frame().await;
    client.close().await;
    server.shutdown().await;
    // In answer order: the second finishes first when both run at once.
    if id_of_ack(&a) == 1 { (a, b) } else { (b, a) }
}

fn id_of_ack(frame: &Frame) -> u64 {
    match frame {
        Frame::Ack { id, .. } => *id,
        other => panic!("expected an ack, got {other:?}"),
    }
}

#[tokio::test]
async fn handlers_run_at_most_max_concurrent_handlers_at_once() {
    assert_eq!(overlap(1).await, (Frame::ack(1, Ok(json!("alone"))), Frame::ack(2, Ok(json!("second")))));
    // The same script with room for both shows that the first would have seen the second.
    let (a, _) = overlap(2).await;
    assert_eq!(a, Frame::ack(1, Ok(json!("together"))));
}
