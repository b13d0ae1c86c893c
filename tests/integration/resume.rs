//! Session resume (PROTOCOL.md section 9) over real sockets, with a `testkit::FaultProxy`
//! between the client and the server: frames flow both ways while the proxy resets the
//! connection, and each side must see every frame of the other exactly once and in order;
//! the refusals on the wire, one by one; presence grace in a view.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use realtime::network_core::Events;
use realtime::network_core::resume::{Refusal, SessionFrame};
use realtime::network_core::{Adapter, CloseCode, ConnectionId, Message, Network, NetworkEvent};
use realtime::views::ViewsConfig;
use realtime::views::client::{ViewsClient, ViewsClientConfig};
use realtime::ws_client::{Client, ClientConfig, ClientEvent, UrlSource};
use realtime::ws_server::{Server, ServerConfig};
use testkit::{Admission, FaultProxy};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const MESSAGES: u64 = 1000;

fn resuming_client_config() -> ClientConfig {
    ClientConfig::default()
        .resume(true)
        .min_reconnection_delay(Duration::from_millis(10))
        .max_reconnection_delay(Duration::from_millis(50))
        .connection_timeout(Duration::from_secs(2))
}

/// Waits for the lifecycle event `pick` accepts, skipping the others.
async fn until_event<T>(
    lifecycle: &mut broadcast::Receiver<ClientEvent>,
    pick: impl Fn(&ClientEvent) -> Option<T>,
) -> T {
    within(async {
        loop {
            if let Ok(event) = lifecycle.recv().await
                && let Some(found) = pick(&event)
            {
                return found;
            }
        }
    })
    .await
}

fn numbers(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.as_text().unwrap().parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_frames_each_way_arrive_once_and_in_order_across_three_resets() {
    let (server, events) = server(ServerConfig::default()).await;
    let proxy = FaultProxy::start(server.local_addr().unwrap()).await;
    exchange_across_resets(events, vec![proxy]).await;
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_when_the_client_resumes_on_the_other_node_of_a_cluster() {
    let Some(redis) = testkit::RedisServer::start() else { return };
    let nodes = redis_nodes(&redis.url(), 2).await;
    let owner_events = nodes[0].events().unwrap();
    let mut proxies = Vec::new();
    for node in &nodes {
        proxies.push(FaultProxy::start(node.local_addr().unwrap()).await);
    }
    // The client connects first to the first node (which owns the session), then after
    // each reset to the other one in turn: resumed through the second node, then on the
    // first again, then through the second.
    exchange_across_resets(owner_events, proxies).await;
}

/// 1,000 numbered frames each way between a resumable client and the server whose events
/// are `owner_events`, while every proxy in `proxies` is reset three times; the client's
/// attempts go to the proxies in turn. Each side must receive 1 to 1,000 once, in order,
/// on one connection that is never removed.
async fn exchange_across_resets(mut owner_events: Events, proxies: Vec<FaultProxy>) {
    let urls: Vec<String> = proxies.iter().map(FaultProxy::url).collect();
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = UrlSource::provider(move || {
        let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = urls[attempt % urls.len()].clone();
        async move { Ok::<_, std::io::Error>(url) }
    });
    let client = Client::connect(source, resuming_client_config()).unwrap();
    let mut lifecycle = client.lifecycle();
    let mut client_events = client.events().unwrap();

    // The server's side: records what the client sent, and sends its own numbered frames
    // once the connection is there. It must see one `Added` and no `Removed`.
    let (received_tx, mut received_by_server) = watch::channel(Vec::<Message>::new());
    let connection_ids = Arc::new(Mutex::new(Vec::<ConnectionId>::new()));
    let removed = Arc::new(Mutex::new(0usize));
    let (ids, removals) = (connection_ids.clone(), removed.clone());
    tokio::spawn(async move {
        while let Some(event) = owner_events.recv().await {
            match event {
                NetworkEvent::Added(connection) => {
                    ids.lock().unwrap().push(connection.id());
                    tokio::spawn(async move {
                        for n in 1..=MESSAGES {
                            connection.send(Message::text(n.to_string())).unwrap();
                            if n % 20 == 0 {
                                // Pacing, so that the resets fall in the middle of the stream.
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        }
                    });
                }
                NetworkEvent::Message { message, .. } => received_tx.send_modify(|seen| seen.push(message)),
                NetworkEvent::Removed { .. } => *removals.lock().unwrap() += 1,
                _ => {}
            }
        }
    });

    // The client's side: sends its numbered frames, paced the same way.
    let sender = client.clone();
    tokio::spawn(async move {
        for n in 1..=MESSAGES {
            let mut message = Message::text(n.to_string());
            // The queue (frames not acknowledged included) is bounded: wait for room.
            while let Err(error) = sender.send(message) {
                message = error.into_message();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if n % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });

    // Three resets at a quarter, a half and three quarters of the server's stream.
    let mut received_by_client = Vec::new();
    let mut resets = 0;
    within(async {
        while received_by_client.len() < MESSAGES as usize {
            match client_events.recv().await {
                Some(NetworkEvent::Message { message, .. }) => received_by_client.push(message),
                Some(_) => continue,
                None => panic!("client events ended"),
            }
            if resets < 3 && received_by_client.len() == (resets + 1) * MESSAGES as usize / 4 {
                let reset: usize = proxies.iter().map(FaultProxy::reset_all).sum();
                assert_eq!(reset, 1, "one live connection to reset");
                resets += 1;
            }
        }
    })
    .await;
    within(received_by_server.wait_for(|seen| seen.len() >= MESSAGES as usize)).await.unwrap();

    assert_eq!(numbers(&received_by_client), (1..=MESSAGES).collect::<Vec<_>>());
    assert_eq!(numbers(&received_by_server.borrow()), (1..=MESSAGES).collect::<Vec<_>>());
    // One connection all along: resumed three times, never removed, never reset.
    assert_eq!(connection_ids.lock().unwrap().len(), 1);
    assert_eq!(*removed.lock().unwrap(), 0);
    for _ in 0..3 {
        until_event(&mut lifecycle, |event| match event {
            ClientEvent::Resumed => Some(()),
            ClientEvent::Reset { reason, .. } => panic!("resume refused: {reason}"),
            _ => None,
        })
        .await;
    }
    let accepted: Vec<u64> = proxies.iter().map(|proxy| proxy.stats().accepted).collect();
    assert!(accepted.iter().sum::<u64>() >= 4, "{accepted:?} connections");
    // With two nodes, the second carried at least one resume (through its relay).
    assert!(accepted.iter().all(|&count| count >= 1), "{accepted:?} connections");
    client.close().await;
}

/// Opens a raw socket at `query` and reads its first session frame.
async fn first_frame<A: Adapter>(server: &Server<A>, query: &str) -> (RawClient, SessionFrame) {
    let mut ws = raw_client(&format!("ws://{}/?{query}", server.local_addr().unwrap())).await;
    let frame = session_frame(&mut ws).await;
    (ws, frame)
}

async fn session_frame(ws: &mut RawClient) -> SessionFrame {
    match next_data(ws).await {
        WsMessage::Text(text) => {
            SessionFrame::decode(&Message::text(text.as_str().to_owned())).expect("a session frame").unwrap()
        }
        other => panic!("not a session frame: {other:?}"),
    }
}

fn token(frame: &SessionFrame) -> String {
    match frame {
        SessionFrame::Welcome { token, window } => {
            assert_eq!(*window, 120_000);
            token.clone()
        }
        other => panic!("expected a welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_say_why_and_start_a_new_session() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let (mut first, welcome) = first_frame(&server, "session=new").await;
    let token = token(&welcome);
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };
    connection.send(Message::text("one")).unwrap();
    assert_eq!(next_data(&mut first).await, WsMessage::text("one"));

    let (id, secret) = token.split_once('.').unwrap();
    let wrong_secret = format!("{id}.{}", "0".repeat(secret.len()));
    let unknown = format!("{}.{secret}", id.parse::<u64>().unwrap() + 1_000_000);
    for (query, reason) in [
        (format!("session={wrong_secret}&seen=0"), Refusal::Token),
        (format!("session={unknown}&seen=0"), Refusal::Unknown),
        // The server sent one frame: the client cannot have seen two.
        (format!("session={token}&seen=2"), Refusal::Ahead),
    ] {
        let (mut ws, frame) = first_frame(&server, &query).await;
        assert_eq!(frame, SessionFrame::Refused { reason }, "{query}");
        // A new session follows, with a token of its own.
        assert_ne!(self::token(&session_frame(&mut ws).await), token);
    }
    // Any other value of `session` is the application's: a plain connection.
    let mut ws = raw_client(&format!("{}?session=tab-1", url(&server))).await;
    send_text(&mut ws, r#"{"$r":"hb","d":{"t":"ping","id":1}}"#).await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text(r#"{"$r":"hb","d":{"t":"pong","id":1}}"#));
    // A resume without `seen` is not a WebSocket request the server can answer.
    let request = format!("{}?session={token}", url(&server));
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(refused.to_string().contains("400"), "{refused}");

    // The first socket is still the session's: an `ack` beyond what was sent breaks it.
    first.send(WsMessage::text(SessionFrame::Ack { n: 5 }.encode().as_text().unwrap())).await.unwrap();
    let close = close_frame(&mut first).await.unwrap();
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1008, "session: ack beyond the frames sent"));

    // After the session ended, its resume says so.
    let (_, frame) = first_frame(&server, &format!("session={token}&seen=1")).await;
    assert_eq!(frame, SessionFrame::Refused { reason: Refusal::Closed });

    // A server without sessions says so, once, and the connection is a plain one.
    let (plain, _events) = self::server(ServerConfig::default().resume_window(None)).await;
    let (mut ws, frame) = first_frame(&plain, "session=new").await;
    assert_eq!(frame, SessionFrame::Refused { reason: Refusal::Disabled });
    send_text(&mut ws, r#"{"$r":"hb","d":{"t":"ping","id":1}}"#).await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text(r#"{"$r":"hb","d":{"t":"pong","id":1}}"#));
}

#[tokio::test]
async fn a_resume_replaces_a_socket_the_server_still_thinks_open_and_replays_what_it_missed() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let (mut old, welcome) = first_frame(&server, "session=new").await;
    let token = token(&welcome);
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };
    connection.send(Message::text("seen")).unwrap();
    assert_eq!(next_data(&mut old).await, WsMessage::text("seen"));
    send_text(&mut old, "from the client").await;
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    assert_eq!(message, Message::text("from the client"));

    // The old socket stays open; frames sent now are in flight when the client "moves".
    connection.send(Message::text("missed 1")).unwrap();
    connection.send(Message::text("missed 2")).unwrap();
    let (mut new, frame) = first_frame(&server, &format!("session={token}&seen=1")).await;
    assert_eq!(frame, SessionFrame::Resumed { seen: 1 });
    assert_eq!(next_data(&mut new).await, WsMessage::text("missed 1"));
    assert_eq!(next_data(&mut new).await, WsMessage::text("missed 2"));
    connection.send(Message::text("live")).unwrap();
    assert_eq!(next_data(&mut new).await, WsMessage::text("live"));
    // The old socket was dropped (no close frame: the client has moved on).
    within(async {
        while let Some(Ok(frame)) = old.next().await {
            assert!(!matches!(frame, WsMessage::Close(_)), "the old socket got a close frame");
        }
    })
    .await;
    // Same connection: no `Removed`, and frames from the new socket carry on.
    send_text(&mut new, "after").await;
    match next_event(&mut events).await {
        NetworkEvent::Message { connection: from, message } => {
            assert_eq!((from.id(), message), (connection.id(), Message::text("after")));
        }
        other => panic!("expected the frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_shows_no_leave_for_a_member_that_resumes_and_one_leave_past_the_window() {
    let window = Duration::from_millis(600);
    let config = ServerConfig::default().resume_window(Some(window));
    let (server, _events) = server(config).await;
    let presence = ViewsConfig::default().diff_interval(Duration::from_millis(5)).attach(&server).unwrap();
    let proxy = FaultProxy::start(server.local_addr().unwrap()).await;

    // An observer connected directly, and a member behind the proxy.
    let observer = Client::connect(url(&server), ClientConfig::default()).unwrap();
    let observer_views = ViewsClient::attach(&observer, ViewsClientConfig::default()).unwrap();
    let watched = within(observer_views.open("doc")).await.unwrap();
    let mut changes = watched.changes();
    let member = Client::connect(proxy.url(), resuming_client_config()).unwrap();
    let mut lifecycle = member.lifecycle();
    let member_views = ViewsClient::attach(&member, ViewsClientConfig::default()).unwrap();
    let _view = within(member_views.open("doc")).await.unwrap();
    within(async {
        while watched.members().len() < 2 {
            changes.recv().await.unwrap();
        }
    })
    .await;
    // A round trip through the observer's connection: every change the server sent
    // before its answer is in `changes` by then; forget them.
    let _ = within(observer_views.open("other")).await.unwrap();
    while changes.try_recv().is_some() {}

    // A drop within the window: resumed, and the view never changed.
    assert_eq!(proxy.reset_all(), 1);
    until_event(&mut lifecycle, |event| matches!(event, ClientEvent::Resumed).then_some(())).await;
    // A round trip through the observer's view after the resume: any leave or join the
    // server sent would be in `changes` before its answer.
    let _ = within(observer_views.open("another")).await.unwrap();
    assert!(changes.try_recv().is_none(), "the view changed during a resumed drop");
    assert_eq!(watched.members().len(), 2);
    assert_eq!(presence.members("doc").len(), 2);

    // A drop that outlasts the window: one leave, then the member comes back as new.
    proxy.set_admission(Admission::Refuse);
    assert_eq!(proxy.reset_all(), 1);
    within(async {
        while watched.members().len() != 1 {
            changes.recv().await.unwrap();
        }
    })
    .await;
    proxy.set_admission(Admission::Forward);
    let reason = until_event(&mut lifecycle, |event| match event {
        ClientEvent::Reset { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, Refusal::Expired);
    within(async {
        while watched.members().len() != 2 {
            changes.recv().await.unwrap();
        }
    })
    .await;
    member.close().await;
    observer.close().await;
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn through_another_node_a_resume_is_refused_or_relayed_and_closes_with_the_owners_frame() {
    let Some(redis) = testkit::RedisServer::start() else { return };
    let nodes = redis_nodes(&redis.url(), 2).await;
    let (owner, relay) = (&nodes[0], &nodes[1]);
    let mut events = owner.events().unwrap();
    let (mut first, welcome) = first_frame(owner, "session=new").await;
    let token = token(&welcome);
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };

    // Refusals come from the owner, and the relay opens a session of its own.
    let (id, secret) = token.split_once('.').unwrap();
    let wrong_secret = format!("{id}.{}", "0".repeat(secret.len()));
    let (mut ws, frame) = first_frame(relay, &format!("session={wrong_secret}&seen=0")).await;
    assert_eq!(frame, SessionFrame::Refused { reason: Refusal::Token });
    let relay_token = self::token(&session_frame(&mut ws).await);
    assert_ne!(relay_token.split_once('.').unwrap().0, id, "a session of the relay's own node");

    // A resume through the relay while the owner still has the first socket: the owner
    // drops it, and everything flows through the relay.
    connection.send(Message::text("missed")).unwrap();
    let (mut moved, frame) = first_frame(relay, &format!("session={token}&seen=0")).await;
    assert_eq!(frame, SessionFrame::Resumed { seen: 0 });
    assert_eq!(next_data(&mut moved).await, WsMessage::text("missed"));
    within(async {
        while let Some(Ok(frame)) = first.next().await {
            assert!(!matches!(frame, WsMessage::Close(_)), "the old socket got a close frame");
        }
    })
    .await;
    send_text(&mut moved, "through the relay").await;
    match next_event(&mut events).await {
        NetworkEvent::Message { connection: from, message } => {
            assert_eq!((from.id(), message), (connection.id(), Message::text("through the relay")));
        }
        other => panic!("expected the frame, got {other:?}"),
    }
    // The owner's application closes: the relay closes the client's socket with its frame.
    connection.close(CloseCode(4001), "done");
    let close = close_frame(&mut moved).await.unwrap();
    assert_eq!((u16::from(close.code), close.reason.as_str()), (4001, "done"));
    match next_event(&mut events).await {
        NetworkEvent::Removed { connection: gone, frame } => {
            assert_eq!((gone.id(), frame.code), (connection.id(), CloseCode(4001)));
        }
        other => panic!("expected Removed, got {other:?}"),
    }
    let (_, frame) = first_frame(relay, &format!("session={token}&seen=1")).await;
    assert_eq!(frame, SessionFrame::Refused { reason: Refusal::Closed });
}

/// The README's main job as separate processes: the example server, the example client
/// behind a proxy that resets it, and a peer. The client resumes by default and prints
/// each application frame on its own line, once, frames sent during the drop included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_client_resumes_on_the_example_server_and_prints_every_frame_once() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    // `cargo test` builds the examples beside the test binaries.
    let examples = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples");
    let mut server = tokio::process::Command::new(examples.join("server"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut server_out = BufReader::new(server.stdout.take().unwrap()).lines();
    // `listening on ws://ADDR`, then the page's `http://` line.
    let line = within(server_out.next_line()).await.unwrap().unwrap();
    let url = line.strip_prefix("listening on ").unwrap().trim_end_matches('/').to_owned();
    let addr: std::net::SocketAddr = url.strip_prefix("ws://").unwrap().parse().unwrap();
    let proxy = FaultProxy::start(addr).await;
    let mut peer = raw_client(&url).await;

    let mut client = tokio::process::Command::new(examples.join("client"))
        .args([proxy.url().as_str(), "--min-delay", "20", "--max-delay", "100"])
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut printed = BufReader::new(client.stdout.take().unwrap()).lines();
    let stderr = client.stderr.take().unwrap();
    // The server relays each application frame to every other connection.
    stdin.write_all(b"hello from the client\n").await.unwrap();
    let mut relayed = String::new();
    while relayed != "hello from the client" {
        relayed = match next_data(&mut peer).await {
            WsMessage::Text(text) => text.as_str().to_owned(),
            _ => continue,
        };
    }
    send_text(&mut peer, "one").await;
    assert_eq!(within(printed.next_line()).await.unwrap().unwrap(), "one");
    assert_eq!(proxy.reset_all(), 1);
    send_text(&mut peer, "two").await;
    send_text(&mut peer, "three").await;
    assert_eq!(within(printed.next_line()).await.unwrap().unwrap(), "two");
    assert_eq!(within(printed.next_line()).await.unwrap().unwrap(), "three");
    drop(stdin);
    let status = within(client.wait()).await.unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(within(printed.next_line()).await.unwrap(), None, "nothing printed twice");
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut BufReader::new(stderr), &mut log).await.unwrap();
    assert!(log.contains("resumed the session"), "{log}");
    assert!(proxy.stats().accepted >= 2, "{:?}", proxy.stats());
}

#[tokio::test]
async fn a_detached_session_lets_its_lost_socket_go() {
    // Found by `bench resume`: 5,000 detached sessions held 5,000 dead sockets (their
    // descriptors and buffers) for the whole window.
    let config = ServerConfig::default().ping_interval(None).idle_timeout(Some(Duration::from_millis(200)));
    let (server, mut events) = server(config).await;
    let (mut old, welcome) = first_frame(&server, "session=new").await;
    let token = token(&welcome);
    let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };

    // Silent past the idle timeout: the session detaches, and its socket is dropped (no
    // close frame: a lost socket) rather than kept until the window ends.
    within(async {
        while let Some(Ok(frame)) = old.next().await {
            assert!(!matches!(frame, WsMessage::Close(_)), "a lost socket got a close frame");
        }
    })
    .await;
    // The session itself lives on: what is sent meanwhile is replayed on resume.
    connection.send(Message::text("while away")).unwrap();
    let (mut new, frame) = first_frame(&server, &format!("session={token}&seen=0")).await;
    assert_eq!(frame, SessionFrame::Resumed { seen: 0 });
    assert_eq!(next_data(&mut new).await, WsMessage::text("while away"));
}
