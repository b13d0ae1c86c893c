//! The Rust client's channels against the real server, authenticated with one-time
//! tokens fetched before every connection attempt: join, refusal, acknowledgements both
//! ways, user-targeted emits, and after a server restart a fresh token, the channels
//! rejoined and the user's rooms restored from the same identity.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::*;
use realtime::channels::client::{ChannelsClient, ChannelsClientConfig, JoinError};
use realtime::channels::{Channel, ChannelsConfig, Messenger, RemoteError, codes};
use realtime::network_core::{Identity, Network};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use realtime::ws_server::{Server, ServerConfig, TokenConfig, TokenStore};

async fn start(addr: SocketAddr, tokens: &TokenStore) -> (Server, Messenger<Server>) {
    let server =
        Server::bind(addr, ServerConfig::default().handshake(tokens.handshake_hook())).await.unwrap();
    let chat = Channel::new()
        .on_join(|ctx| async move {
            ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string()))
        })
        .on("add", |_ctx, (a, b): (i64, i64)| async move { Ok(a + b) })
        .on("whoami", |ctx, (): ()| async move {
            Ok(ctx.identity().and_then(|identity| identity.user_id.clone()).unwrap_or_default())
        });
    let private =
        Channel::new().on_join(|_ctx| async move { Err(RemoteError::forbidden("invitation only")) });
    let messenger = ChannelsConfig::default()
        .channel("/chat", chat)
        .channel("/private", private)
        .attach(&server)
        .unwrap();
    (server, messenger)
}

#[tokio::test]
async fn channels_survive_a_server_restart_with_fresh_tokens() {
    let tokens = TokenStore::new(TokenConfig::default()).unwrap();
    let (server, messenger) = start("127.0.0.1:0".parse().unwrap(), &tokens).await;
    let addr = server.local_addr().unwrap();

    // A fresh single-use token before every attempt, as a browser would fetch one from
    // `/user/sockettoken`.
    let fetched = Arc::new(AtomicUsize::new(0));
    let provider = {
        let (tokens, fetched) = (tokens.clone(), fetched.clone());
        move || {
            let (tokens, fetched) = (tokens.clone(), fetched.clone());
            async move {
                fetched.fetch_add(1, Ordering::SeqCst);
                let token = tokens.issue(Identity::user("ada").session_id("laptop")).unwrap();
                Ok::<_, Infallible>(format!("ws://{addr}/?token={token}"))
            }
        }
    };
    let config = ClientConfig::default()
        .min_reconnection_delay(Duration::from_millis(50))
        .max_reconnection_delay(Duration::from_millis(200));
    let client = Client::connect(realtime::ws_client::UrlSource::provider(provider), config).unwrap();
    let mut lifecycle = client.lifecycle();
    let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default()).unwrap();
    let chat = channels.channel("/chat").unwrap();
    let mut notes = chat.on::<String>("note");

    within(chat.join()).await.unwrap();
    assert_eq!(within(chat.emit_with_ack::<i64, _>("add", &(2, 40))).await.unwrap(), 42);
    assert_eq!(within(chat.emit_with_ack::<String, _>("whoami", &())).await.unwrap(), "ada");
    match within(channels.channel("/private").unwrap().join()).await {
        Err(JoinError::Refused(error)) => assert_eq!(error.code, codes::FORBIDDEN),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The server reaches the user on /chat through the user room of that channel.
    assert_eq!(messenger.channel("/chat").emit_to_user("ada", "note", "first").await.unwrap(), 1);
    assert_eq!(within(notes.recv()).await.unwrap().unwrap(), "first");

    // The server asks the client, which answers through its handler.
    chat.handle(
        "confirm",
        |question: String| async move { Ok::<_, RemoteError>(format!("yes to {question}")) },
    );
    let id = messenger.network().connections()[0].id();
    let answer: String = messenger.channel("/chat").emit_with_ack(id, "confirm", "delete").await.unwrap();
    assert_eq!(answer, "yes to delete");

    // Restart: the client comes back with a new token, rejoins /chat by itself, and the
    // user room of /chat is restored from the token's identity.
    server.shutdown().await;
    let (restarted, messenger) = start(addr, &tokens).await;
    let mut saw_close = false;
    loop {
        match within(lifecycle.recv()).await.unwrap() {
            ClientEvent::Closed { .. } => saw_close = true,
            ClientEvent::Open if saw_close => break,
            _ => {}
        }
    }
    assert!(fetched.load(Ordering::SeqCst) >= 2, "a token per attempt");
    // The rejoin is handled in order before this ack, so the rooms exist once it returns.
    assert_eq!(within(chat.emit_with_ack::<i64, _>("add", &(1, 1))).await.unwrap(), 2);
    assert_eq!(messenger.channel("/chat").emit_to_user("ada", "note", "after restart").await.unwrap(), 1);
    assert_eq!(within(notes.recv()).await.unwrap().unwrap(), "after restart");
    assert_eq!(messenger.channel("/chat").room_members("lobby").await.unwrap().len(), 1);

    client.close().await;
    restarted.shutdown().await;
}
