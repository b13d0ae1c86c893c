//! `wss://` works without a process-wide rustls provider: against a peer that does not
//! speak TLS the attempt fails with an error (it would panic without the explicit ring
//! provider).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ms, wait_event};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use ws_client::{Client, ClientConfig, ClientEvent, ConnectError};

#[tokio::test]
async fn tls_failure_is_an_error_not_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let config = ClientConfig::default().max_retries(Some(0)).connection_timeout(ms(5000));
    let client = Client::connect(format!("wss://{addr}/ws"), config).unwrap();
    let mut events = client.lifecycle();
    let error = wait_event(&mut events, |e| match e {
        ClientEvent::Failed { error, .. } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(error, ConnectError::Tls(_) | ConnectError::Io(_)), "{error:?}");
}
