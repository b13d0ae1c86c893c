//! The client's request ids and the server's emit ids are separate (docs/PROTOCOL.md
//! sections 2.3 and 5.3, rule 6): an `unknown_ack` about a late acknowledgement names the
//! server's id in `ack`, so the Rust client does not fail its own pending request that
//! happens to have the same number; it reports the refused acknowledgement on `errors()`.
//!
//! Before the `ack` field, the server sent `{"t":"error","code":"unknown_ack","id":N}` and
//! the client failed its request N with `unknown_ack`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use realtime::channels::client::{BackgroundError, ChannelsClient, ChannelsClientConfig};
use realtime::channels::{AckError, Channel, ChannelsConfig, RemoteError, codes};
use realtime::network_core::Network;
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Server, ServerConfig};
use tokio::sync::{Notify, Semaphore};

const REQUESTS: u32 = 8;

#[tokio::test]
async fn a_late_ack_refused_by_the_server_does_not_fail_the_clients_request_with_the_same_id() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await.unwrap();
    // The client's requests wait on the server until the test lets them go.
    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(Notify::new());
    let root = Channel::new().on("slow", {
        let (gate, started) = (gate.clone(), started.clone());
        move |_ctx, n: u32| {
            let (gate, started) = (gate.clone(), started.clone());
            async move {
                started.notify_one();
                gate.acquire().await.unwrap().forget();
                Ok(n * 10)
            }
        }
    });
    let messenger = ChannelsConfig::default()
        .channel("/", root)
        .ack_timeout(Duration::from_millis(100))
        .attach(&server)
        .unwrap();

    let client = Client::connect(url(&server), ClientConfig::default()).unwrap();
    let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default()).unwrap();
    let mut errors = channels.errors();
    // Answers the server's questions, but after the server's 100 ms acknowledgement timeout.
    channels.root().handle("confirm", |(): ()| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, RemoteError>("too late")
    });
    within(channels.ready()).await;

    // The client's requests 1..=8 (its first ids), all sent in one poll, all pending.
    let requests = tokio::spawn({
        let root = channels.root();
        async move {
            let asks = (1..=REQUESTS).map(|n| {
                let root = root.clone();
                async move { root.emit_with_ack_timeout::<u32, _>("slow", &n, Duration::from_secs(10)).await }
            });
            futures_util::future::join_all(asks).await
        }
    });
    within(started.notified()).await;

    // The server's questions 1..=8 to the same connection, each timing out, each answered
    // late: the server refuses every late ack with `unknown_ack`.
    let id = within(async {
        loop {
            if let Some(connection) = messenger.network().connections().first() {
                return connection.id();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let questions = (0..REQUESTS).map(|_| messenger.emit_with_ack::<String, _>(id, "confirm", &()));
    for answer in futures_util::future::join_all(questions).await {
        assert!(matches!(answer, Err(AckError::Timeout(_))), "{answer:?}");
    }
    let mut refused = BTreeSet::new();
    while refused.len() < REQUESTS as usize {
        match within(errors.recv()).await.unwrap() {
            BackgroundError::Ack { ack, error } => {
                assert_eq!(error.code, codes::UNKNOWN_ACK);
                refused.insert(ack);
            }
            other => panic!("expected a refused ack, got {other:?}"),
        }
    }
    assert_eq!(refused, (1..=u64::from(REQUESTS)).collect());

    // Every request of the client is still pending and gets its own answer.
    gate.add_permits(REQUESTS as usize);
    let answers = within(requests).await.unwrap();
    let answers: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, (1..=REQUESTS).map(|n| n * 10).collect::<Vec<_>>());
    client.close().await;
}
