//! The channels router, client and server, through testkit's memory network: no sockets,
//! tokio's paused clock, scripted faults (a reply dropped, a reconnect while a request
//! waits, frames of an old connection arriving late, a refused connection). Only the
//! routers' public API is used.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use channels::client::{BackgroundError, ChannelsClient, ChannelsClientConfig, JoinError};
use channels::protocol::ROUTER;
use channels::{AckError, Channel, ChannelsConfig, EmitError, Messenger, RemoteError, codes};
use network_core::{Identity, Network};
use serde_json::{Value, json};
use testkit::{Direction, MemoryClient, MemoryNetwork, Refused, settle, tagged, within};

/// A server with `/` (echo, fail, slow, enter a room), `/chat` (users only) and `/closed`
/// (refuses everyone), and one client with its channels router, not connected yet.
struct Setup {
    messenger: Messenger<MemoryNetwork>,
    client: MemoryClient,
    channels: ChannelsClient,
}

fn setup(config: ChannelsClientConfig) -> Setup {
    let server = MemoryNetwork::new();
    let root = Channel::new()
        .on("echo", |_, value: Value| async move { Ok(value) })
        .on("fail", |_, _: Value| async move { Err::<(), _>(RemoteError::new("nope", "as asked")) })
        .on("slow", |_, value: Value| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(value)
        })
        .on("enter", |ctx, room: String| async move { Ok(ctx.join_room(&room).await?) });
    let chat = Channel::new()
        .on_join(|ctx| async move {
            match ctx.identity() {
                Some(_) => Ok(()),
                None => Err(RemoteError::forbidden("log in first")),
            }
        })
        .on("say", |_, _: String| async move { Ok(()) });
    let closed = Channel::new().on_join(|_| async move { Err(RemoteError::forbidden("closed")) });
    let messenger = ChannelsConfig::default()
        .ack_timeout(Duration::from_secs(2))
        .channel("/", root)
        .channel("/chat", chat)
        .channel("/closed", closed)
        .attach(&server)
        .unwrap();
    let client = MemoryClient::new(&server);
    client.set_identity(Identity::user("ada"));
    let channels = ChannelsClient::attach(client.network(), config).unwrap();
    Setup { messenger, client, channels }
}

fn config() -> ChannelsClientConfig {
    ChannelsClientConfig::default().ack_timeout(Duration::from_secs(1)).join_timeout(Duration::from_secs(1))
}

#[tokio::test(start_paused = true)]
async fn join_emit_ack_answer_and_leave() {
    let Setup { messenger, client, channels } = setup(config());
    let server_id = client.connect().await.unwrap();
    let root = channels.root();
    let chat = channels.channel("/chat").unwrap();
    within(chat.join()).await.unwrap();
    assert!(chat.is_joined() && root.is_joined());

    let echoed: Value = within(root.emit_with_ack("echo", &json!({"n": 1}))).await.unwrap();
    assert_eq!(echoed, json!({"n": 1}));

    // The server emits, and asks the client, which answers through its handler.
    let mut news = chat.on::<String>("news");
    messenger.channel("/chat").emit_to(server_id, "news", "hello").unwrap();
    assert_eq!(within(news.recv()).await.unwrap().unwrap(), "hello");
    chat.handle("double", |n: u64| async move { Ok::<_, RemoteError>(n * 2) });
    let doubled: u64 =
        within(messenger.channel("/chat").emit_with_ack(server_id, "double", &21)).await.unwrap();
    assert_eq!(doubled, 42);

    within(chat.leave()).await.unwrap();
    assert!(!chat.is_joined());
    let refused = within(chat.emit_with_ack::<Value, _>("echo", &1)).await;
    assert!(matches!(refused, Err(AckError::Remote(error)) if error.code == codes::NOT_JOINED));
}

#[tokio::test(start_paused = true)]
async fn refusals_and_remote_errors_reach_the_right_caller() {
    let Setup { messenger, client, channels } = setup(config());
    let server_id = client.connect().await.unwrap();
    let mut errors = channels.errors();
    let unknown = within(channels.channel("/nowhere").unwrap().join()).await;
    assert!(matches!(unknown, Err(JoinError::Refused(error)) if error.code == codes::UNKNOWN_CHANNEL));
    let closed = within(channels.channel("/closed").unwrap().join()).await;
    assert!(matches!(closed, Err(JoinError::Refused(error)) if error.code == codes::FORBIDDEN));

    let root = channels.root();
    let failed = within(root.emit_with_ack::<(), _>("fail", &())).await;
    assert!(matches!(failed, Err(AckError::Remote(error)) if error == RemoteError::new("nope", "as asked")));
    let missing = within(root.emit_with_ack::<(), _>("missing", &())).await;
    assert!(matches!(missing, Err(AckError::Remote(error)) if error.code == codes::NO_HANDLER));

    // Without an ack, the server's error has no caller: it goes to errors().
    channels.channel("/chat").unwrap().emit("say", "hi").unwrap();
    let background = within(errors.recv()).await.unwrap();
    assert!(
        matches!(&background, BackgroundError::Server { error, channel } if error.code == codes::NOT_JOINED && channel.as_deref() == Some("/chat")),
        "{background:?}"
    );

    // The client has no handler for what the server asks.
    let unanswered = within(messenger.emit_with_ack::<Value, _>(server_id, "question", &1)).await;
    assert!(matches!(unanswered, Err(AckError::Remote(error)) if error.code == codes::NO_HANDLER));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_ack_times_out_on_either_side() {
    let Setup { messenger, client, channels } = setup(config());
    let server_id = client.connect().await.unwrap();
    client.drop_next(Direction::ToClient, tagged(ROUTER, "ack"));
    let lost = within(channels.root().emit_with_ack::<Value, _>("echo", &1)).await;
    assert!(matches!(lost, Err(AckError::Timeout(limit)) if limit == Duration::from_secs(1)), "{lost:?}");
    assert_eq!(client.pending_drops(), 0);
    // The next request is answered: nothing was left behind.
    let echoed: Value = within(channels.root().emit_with_ack("echo", &2)).await.unwrap();
    assert_eq!(echoed, json!(2));

    channels.root().handle("question", |n: u64| async move { Ok::<_, RemoteError>(n) });
    client.drop_next(Direction::ToServer, tagged(ROUTER, "ack"));
    let lost = within(messenger.emit_with_ack::<u64, _>(server_id, "question", &1)).await;
    assert!(matches!(lost, Err(AckError::Timeout(_))), "{lost:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_joined_times_out_and_the_channel_is_joined_on_the_next_connection() {
    let Setup { client, channels, .. } = setup(config());
    client.connect().await.unwrap();
    let chat = channels.channel("/chat").unwrap();
    client.drop_next(Direction::ToClient, tagged(ROUTER, "joined"));
    let lost = within(chat.join()).await;
    assert!(matches!(lost, Err(JoinError::Timeout(_))), "{lost:?}");
    assert!(!chat.is_joined());
    // Still wanted: the restore of the next connection joins it.
    client.reconnect().await.unwrap();
    assert!(chat.is_joined());
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_fails_waiting_acks_and_rejoins_before_the_queue() {
    let Setup { messenger, client, channels } = setup(config().ack_timeout(Duration::from_secs(60)));
    client.connect().await.unwrap();
    let chat = channels.channel("/chat").unwrap();
    within(chat.join()).await.unwrap();
    let slow = tokio::spawn({
        let root = channels.root();
        async move { root.emit_with_ack::<Value, _>("slow", &1).await }
    });
    settle().await;
    assert!(!slow.is_finished());

    client.disconnect().await;
    assert!(matches!(within(slow).await.unwrap(), Err(AckError::Closed)));
    assert!(!chat.is_joined());
    // Queued while offline; the server handles it only once `/chat` is joined again.
    chat.emit("say", "queued").unwrap();
    let mut errors = channels.errors();
    let server_id = client.connect().await.unwrap();
    assert!(chat.is_joined());
    assert_eq!(within(messenger.room_members("lobby")).await.unwrap(), []);
    let members = within(messenger.channel("/chat").room_members("user.ada")).await.unwrap();
    assert_eq!(members, [server_id]);
    settle().await;
    let error = errors.try_recv();
    assert!(error.is_none(), "the queued emit reached /chat before its rejoin: {error:?}");
}

#[tokio::test(start_paused = true)]
async fn a_join_waits_through_a_refused_connection_for_the_next_one() {
    let Setup { client, channels, .. } = setup(config().join_timeout(Duration::from_secs(30)));
    client.connect().await.unwrap();
    client.disconnect().await;
    let chat = channels.channel("/chat").unwrap();
    let join = tokio::spawn({
        let chat = chat.clone();
        async move { chat.join().await }
    });
    client.refuse_next(1);
    assert_eq!(client.connect().await, Err(Refused));
    settle().await;
    assert!(!join.is_finished());
    client.connect().await.unwrap();
    within(join).await.unwrap().unwrap();
    assert!(chat.is_joined());
}

#[tokio::test(start_paused = true)]
async fn the_server_forgets_a_connection_whose_late_frames_arrive_after_the_next_one_opened() {
    let Setup { messenger, client, channels } = setup(config());
    let old = client.connect().await.unwrap();
    // The old connection's frames and its end reach the server only after the new
    // connection opened (a half-open socket).
    client.hold(Direction::ToServer);
    channels.root().emit("echo", "late").unwrap();
    client.disconnect().await;
    let new = client.connect().await.unwrap();
    assert!(messenger.network().connection(old).is_some(), "the server has not seen the old end yet");
    client.release().await;
    settle().await;
    assert!(messenger.network().connection(old).is_none());
    let gone = messenger.emit_with_ack::<Value, _>(old, "question", &1).await;
    assert!(matches!(gone, Err(AckError::Emit(EmitError::NoConnection))), "{gone:?}");
    // The new connection works, and is the only one in `/`.
    within(channels.root().emit_with_ack::<(), _>("enter", "lobby")).await.unwrap();
    assert_eq!(within(messenger.room_members("lobby")).await.unwrap(), [new]);
    assert_eq!(messenger.network().connections().len(), 1);
}

/// A handler that puts its connection in a room after the connection closed must not leave
/// a dead member there: the transport ends a connection with `leave_all` before the router
/// has run the handlers of its last frames, so `Messenger::join_room` undoes a join of a
/// closed connection (as the channel join does). Over sockets this happens when a client
/// sends `enter` and its socket drops at once; it failed before the fix.
#[tokio::test(start_paused = true)]
async fn a_room_joined_by_a_handler_after_its_connection_closed_is_left() {
    let Setup { messenger, client, channels } = setup(config());
    client.connect().await.unwrap();
    channels.root().emit("enter", "lobby").unwrap();
    client.disconnect().await;
    settle().await;
    assert_eq!(within(messenger.room_members("lobby")).await.unwrap(), []);
}

#[tokio::test(start_paused = true)]
async fn an_ack_of_an_old_connection_arriving_late_settles_nothing() {
    let Setup { client, channels, .. } = setup(config().ack_timeout(Duration::from_secs(60)));
    client.connect().await.unwrap();
    let mut errors = channels.errors();
    client.hold(Direction::ToClient);
    let old = tokio::spawn({
        let root = channels.root();
        async move { root.emit_with_ack::<Value, _>("echo", &"old").await }
    });
    settle().await;
    client.disconnect().await;
    assert!(matches!(within(old).await.unwrap(), Err(AckError::Closed)));
    client.connect().await.unwrap();
    let new = tokio::spawn({
        let root = channels.root();
        async move { root.emit_with_ack::<Value, _>("slow", &"new").await }
    });
    settle().await;
    // The old connection's ack arrives now; the new request is not fooled by it.
    client.release().await;
    settle().await;
    assert!(!new.is_finished());
    assert_eq!(within(new).await.unwrap().unwrap(), json!("new"));
    assert!(errors.try_recv().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_server_ask_fails_when_the_connection_ends_and_a_closed_client_ends_every_call() {
    let Setup { messenger, client, channels } = setup(config());
    let server_id = client.connect().await.unwrap();
    channels.root().handle("question", |n: u64| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, RemoteError>(n)
    });
    let ask = tokio::spawn({
        let messenger = messenger.clone();
        async move { messenger.emit_with_ack::<u64, _>(server_id, "question", &1).await }
    });
    settle().await;
    client.disconnect().await;
    assert!(matches!(within(ask).await.unwrap(), Err(AckError::Closed)));

    // Closed for good: a join waiting for the link ends.
    let join = tokio::spawn({
        let chat = channels.channel("/chat").unwrap();
        async move { chat.join().await }
    });
    settle().await;
    client.close().await;
    assert!(matches!(within(join).await.unwrap(), Err(JoinError::Closed)));
    assert!(!within(channels.ready()).await);
}
