//! A URL provider is asked before every attempt; its error counts as a failed attempt.
//! Configured headers and query parameters go with every handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{Handshake, Server, ServerWs, ms, wait_event, within};
use network_core::http::{HeaderMap, HeaderValue};
use tokio::sync::mpsc;
use ws_client::{Client, ClientConfig, ClientEvent, ConnectError, UrlSource};

#[tokio::test]
async fn provider_is_called_before_every_attempt() {
    let (handshakes_tx, mut handshakes) = mpsc::channel(8);
    let server = Server::start(true, move |ws: ServerWs, handshake: Handshake| {
        let handshakes = handshakes_tx.clone();
        async move {
            let _ = handshakes.send(handshake).await;
            drop(ws); // every connection drops at once: the client retries
        }
    })
    .await;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let addr = server.addr;
    let source = UrlSource::provider(move || {
        let call = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if call == 1 {
                return Err(io::Error::other("token service down"));
            }
            Ok(format!("ws://{addr}/ws?token=t{call}"))
        }
    });
    let mut headers = HeaderMap::new();
    headers.insert("x-test", HeaderValue::from_static("yes"));
    let config = ClientConfig::default()
        .min_reconnection_delay(ms(10))
        .max_reconnection_delay(ms(10))
        .headers(headers)
        .query_param("v", "1 2");
    let client = Client::connect(source, config).unwrap();
    assert_eq!(client.connection().meta().path, "", "a provider's URL is not known in advance");
    let mut events = client.lifecycle();

    let error = wait_event(&mut events, |e| match e {
        ClientEvent::Failed { attempt: 0, error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(error, ConnectError::Provider(_)), "{error:?}");
    for call in [2, 3] {
        let handshake = within("a handshake", handshakes.recv()).await.unwrap();
        assert_eq!(handshake.uri, format!("/ws?token=t{call}&v=1%202"));
        assert_eq!(handshake.headers.get("x-test").unwrap(), "yes");
    }
}

/// A provider can also be a type of its own.
struct TokenService {
    base: String,
}

impl ws_client::UrlProvider for TokenService {
    type Error = io::Error;

    fn url(&self) -> impl std::future::Future<Output = Result<String, io::Error>> + Send {
        let url = format!("{}?token=fresh", self.base);
        async move { Ok(url) }
    }
}

#[tokio::test]
async fn a_provider_type_works_too() {
    let (handshakes_tx, mut handshakes) = mpsc::channel(8);
    let server = Server::start(true, move |ws: ServerWs, handshake: Handshake| {
        let handshakes = handshakes_tx.clone();
        async move {
            let _ = handshakes.send(handshake).await;
            drop(ws);
        }
    })
    .await;
    let source = UrlSource::provider(TokenService { base: server.url() });
    let _client = Client::connect(source, ClientConfig::default()).unwrap();
    let handshake = within("a handshake", handshakes.recv()).await.unwrap();
    assert_eq!(handshake.uri, "/ws?token=fresh");
}

/// `http::Uri` takes `:99999` and reports no port; the client used to connect to port 80.
#[tokio::test]
async fn a_fixed_url_with_an_invalid_port_is_refused_at_connect() {
    for url in ["ws://127.0.0.1:99999", "ws://127.0.0.1:0/ws"] {
        match Client::connect(url, ClientConfig::default()) {
            Err(ws_client::ConfigError::InvalidUrl { url: refused, reason }) => {
                assert_eq!(refused, url);
                assert!(reason.contains("port"), "{reason}");
            }
            Err(other) => panic!("{url}: {other:?}"),
            Ok(_) => panic!("{url} was accepted"),
        }
    }
}

#[tokio::test]
async fn a_provided_url_with_an_invalid_port_fails_the_attempt() {
    let source = UrlSource::provider(|| async { Ok::<_, io::Error>("ws://127.0.0.1:99999/ws".to_owned()) });
    let config = ClientConfig::default().min_reconnection_delay(ms(10)).max_retries(Some(0));
    let client = Client::connect(source, config).unwrap();
    let mut events = client.lifecycle();
    let error = wait_event(&mut events, |e| match e {
        ClientEvent::Failed { attempt: 0, error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(&error, ConnectError::InvalidUrl { url, reason } if url == "ws://127.0.0.1:99999/ws" && reason.contains("port")),
        "{error:?}"
    );
}
