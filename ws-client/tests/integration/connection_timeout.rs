//! An attempt fails after `connection_timeout` when the server accepts the TCP connection
//! but never answers the HTTP upgrade (paused clock: the elapsed time is exact).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ms, next_event};
use tokio::net::TcpListener;
use tokio::time::Instant;
use ws_client::{Client, ClientConfig, ClientEvent, ConnectError};

#[tokio::test(start_paused = true)]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp); // accepted, never answered
        }
    });
    let config = ClientConfig::default().connection_timeout(ms(2000)).max_retries(Some(0));
    let client = Client::connect(format!("ws://{addr}/ws"), config).unwrap();
    let mut events = client.lifecycle();

    assert!(matches!(next_event(&mut events).await, ClientEvent::Connecting { attempt: 0 }));
    let started = Instant::now();
    match next_event(&mut events).await {
        ClientEvent::Failed { attempt: 0, error: ConnectError::Timeout(limit) } => {
            assert_eq!(limit, ms(2000))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(started.elapsed(), ms(2000));
    assert!(matches!(next_event(&mut events).await, ClientEvent::RetriesExhausted));
}
