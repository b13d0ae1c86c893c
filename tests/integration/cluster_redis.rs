//! Several server nodes sharing rooms through a real Redis (`redis_adapter`): broadcasts
//! to rooms and to everyone reach every node's members exactly once, questions about
//! members and rooms span nodes, a node that leaves or crashes is dropped, and a Redis
//! restart is survived with the failures in between reported to the emitter.
//!
//! Each test starts its own `redis-server` on a free loopback port (ignored, with the
//! reason, when it is not on `PATH`, unless `CI` is set: see `build.rs`). Exactly once is checked by
//! order: every node delivers one publisher's broadcasts in the order they were made,
//! so a sentinel broadcast after the one under test arrives right after it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::{RawClient, next_data, raw_client, test_name, within};
use realtime::network_core::{Adapter, AdapterError, ConnectionId, Message, Network, NetworkEvent, Target};
use realtime::ws_server::{Server, ServerConfig};
use redis_adapter::{ClusterEvent, RedisAdapter, RedisCluster, RedisConfig};
use testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Fast beats so that node loss is seen within a second.
fn cluster_config(redis: &RedisServer) -> RedisConfig {
    RedisConfig::new(redis.url())
        .heartbeat_interval(Duration::from_millis(100))
        .heartbeat_timeout(Duration::from_millis(400))
        .request_timeout(Duration::from_secs(2))
        .command_timeout(Duration::from_millis(500))
}

async fn node(redis: &RedisServer) -> Server<RedisAdapter> {
    let cluster = within(RedisCluster::connect(cluster_config(redis))).await.unwrap();
    Server::bind_with("127.0.0.1:0", ServerConfig::default(), cluster).await.unwrap()
}

/// Waits until `server` sees `count` live nodes, itself included.
async fn until_nodes(server: &Server<RedisAdapter>, count: usize) {
    let mut events = server.adapter().events();
    within(async {
        while server.adapter().nodes().len() != count {
            let _ = events.recv().await;
        }
    })
    .await;
}

/// A raw client of `server`, and its connection id there.
async fn client(
    server: &Server<RedisAdapter>,
    events: &mut realtime::network_core::Events,
) -> (RawClient, ConnectionId) {
    let ws = raw_client(&format!("ws://{}/", server.local_addr().unwrap())).await;
    loop {
        if let NetworkEvent::Added(connection) = within(events.recv()).await.unwrap() {
            return (ws, connection.id());
        }
    }
}

async fn text(ws: &mut RawClient) -> String {
    match next_data(ws).await {
        WsMessage::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The next text frame that is not a views frame (diffs may come in between).
async fn app_text(ws: &mut RawClient) -> String {
    loop {
        let text = text(ws).await;
        if !text.starts_with(r#"{"$r":"views""#) {
            return text;
        }
    }
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn room_and_everyone_broadcasts_reach_every_node_once() {
    let Some(redis) = RedisServer::start() else { return };
    let nodes = [node(&redis).await, node(&redis).await, node(&redis).await];
    for server in &nodes {
        until_nodes(server, 3).await;
    }
    let ids: Vec<u16> = nodes.iter().map(|server| server.adapter().node().as_u16()).collect();
    assert!(
        ids.iter().all(|&id| id != 0) && ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );

    // Two clients per node; the first of each joins room "r", one of them through
    // another node (its owner carries the join out).
    let mut clients = Vec::new();
    for server in &nodes {
        let mut events = server.events().unwrap();
        for _ in 0..2 {
            clients.push(client(server, &mut events).await);
        }
    }
    for (index, (_, id)) in clients.iter().enumerate() {
        assert_eq!(id.node(), nodes[index / 2].adapter().node(), "ids carry their node");
    }
    nodes[0].adapter().join(clients[0].1, "r".into()).await.unwrap();
    nodes[1].adapter().join(clients[2].1, "r".into()).await.unwrap();
    nodes[0].adapter().join(clients[4].1, "r".into()).await.unwrap(); // lives on node 2

    let mut members = within(nodes[1].adapter().members("r")).await.unwrap();
    members.sort_unstable();
    let mut expected = vec![clients[0].1, clients[2].1, clients[4].1];
    expected.sort_unstable();
    assert_eq!(members, expected);
    assert_eq!(
        within(nodes[0].adapter().rooms_of(clients[4].1)).await.unwrap(),
        vec![realtime::network_core::Room::from("r")]
    );

    // To the room, from node 1, leaving out a member on node 0; then to everyone.
    let target = Target::room("r").except(clients[0].1);
    assert_eq!(within(nodes[1].adapter().broadcast(&target, Message::from("room"))).await.unwrap(), 1);
    within(nodes[1].adapter().broadcast(&Target::everyone(), Message::from("all"))).await.unwrap();
    for (index, (ws, _)) in clients.iter_mut().enumerate() {
        if index == 2 || index == 4 {
            assert_eq!(text(ws).await, "room", "client {index}");
        }
        assert_eq!(text(ws).await, "all", "client {index}: nothing else before the sentinel");
    }

    // A room push to several paths reaches each member once (sync's `push_to`).
    nodes[2].adapter().join(clients[5].1, "s".into()).await.unwrap();
    nodes[2].adapter().join(clients[4].1, "s".into()).await.unwrap();
    let second = Target::room("s").except_room("r");
    within(nodes[0].adapter().broadcast(&second, Message::from("s only"))).await.unwrap();
    within(nodes[0].adapter().broadcast(&Target::everyone(), Message::from("end"))).await.unwrap();
    for (index, (ws, _)) in clients.iter_mut().enumerate() {
        if index == 5 {
            assert_eq!(text(ws).await, "s only");
        }
        assert_eq!(text(ws).await, "end", "client {index}");
    }

    // A client that closes leaves its rooms on every node's answer.
    let (mut ws, gone) = clients.remove(4);
    ws.close(None).await.unwrap();
    within(async {
        while nodes[0].adapter().members("r").await.unwrap().contains(&gone) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // The raw clients read nothing more: drop them so that shutdown need not wait for
    // their close replies.
    drop(clients);
    for server in &nodes {
        server.shutdown().await;
    }
}

/// A child process killed when the test ends, even by a panic (no orphans on the machine).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Set to a Redis URL, [`node_process`] runs a node until it is killed.
const NODE_PROCESS: &str = "REALTIME_TEST_NODE_PROCESS";

/// A cluster node in a process of its own (this test binary, started again by the crash
/// test); does nothing in a normal run.
#[tokio::test]
async fn node_process() {
    let Ok(url) = std::env::var(NODE_PROCESS) else { return };
    let config = RedisConfig::new(url)
        .heartbeat_interval(Duration::from_millis(100))
        .heartbeat_timeout(Duration::from_millis(400));
    let cluster = RedisCluster::connect(config).await.unwrap();
    let _server = Server::bind_with("127.0.0.1:0", ServerConfig::default(), cluster).await.unwrap();
    std::future::pending::<()>().await;
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn a_node_that_leaves_or_crashes_is_dropped_by_the_others() {
    let Some(redis) = RedisServer::start() else { return };
    let a = node(&redis).await;
    let b = node(&redis).await;
    until_nodes(&a, 2).await;
    let mut events = a.adapter().events();

    // Clean shutdown: a goodbye, seen at once.
    let b_node = b.adapter().node();
    b.shutdown().await;
    within(async {
        loop {
            if events.recv().await.unwrap() == ClusterEvent::NodeDown(b_node) {
                return;
            }
        }
    })
    .await;
    assert_eq!(a.adapter().nodes(), vec![a.adapter().node()]);

    // A crash (a separate process killed with SIGKILL): no goodbye, so its silence past
    // the heartbeat timeout decides. Its questions would now time out, not hang.
    let mut child = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test_name(module_path!(), "node_process"), "--nocapture"])
            .env(NODE_PROCESS, redis.url())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    let crashed = within(async {
        loop {
            if let ClusterEvent::NodeUp(node) = events.recv().await.unwrap() {
                return node;
            }
        }
    })
    .await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let killed = std::time::Instant::now();
    within(async {
        loop {
            if events.recv().await.unwrap() == ClusterEvent::NodeDown(crashed) {
                return;
            }
        }
    })
    .await;
    // Within heartbeat timeout + one check interval (plus scheduling slack).
    let noticed = killed.elapsed();
    assert!(noticed < Duration::from_millis(1500), "crash noticed after {noticed:?} (started {started:?})");
    let Err(AdapterError::Timeout { missing }) =
        a.adapter().rooms_of(ConnectionId::from_u64(u64::from(crashed.as_u16()) << 37 | 1)).await
    else {
        panic!("a question to a dead node must fail");
    };
    assert_eq!(missing, vec![crashed]);
    a.shutdown().await;
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn a_redis_restart_is_reported_then_survived() {
    let Some(mut redis) = RedisServer::start() else { return };
    let a = node(&redis).await;
    let b = node(&redis).await;
    until_nodes(&a, 2).await;
    until_nodes(&b, 2).await;
    let mut b_events = b.events().unwrap();
    let (mut on_b, id_b) = client(&b, &mut b_events).await;
    let mut a_events = a.events().unwrap();
    let (mut on_a, a_id) = client(&a, &mut a_events).await;
    let mut a_cluster = a.adapter().events();
    let mut b_cluster = b.adapter().events();

    realtime::views::ViewsConfig::default().attach(&a).unwrap();
    realtime::views::ViewsConfig::default().attach(&b).unwrap();

    redis.stop();
    within(async { while a_cluster.recv().await.unwrap() != ClusterEvent::Disconnected {} }).await;
    // B's client opens a view while the nodes cannot talk: A learns of it by the resync.
    let key_b = format!("c:{}", id_b.as_u64());
    futures_util::SinkExt::send(&mut on_b, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    let mut seen_by_b = Default::default();
    until_members(&mut on_b, &mut seen_by_b, std::slice::from_ref(&key_b)).await;
    // Not published: the error says so, and this node's members still got it.
    match within(a.adapter().broadcast(&Target::everyone(), Message::from("lost"))).await {
        Err(AdapterError::NotPublished { delivered_locally: 1, .. }) => {}
        other => panic!("expected NotPublished, got {other:?}"),
    }
    assert_eq!(text(&mut on_a).await, "lost");

    redis.restart();
    for cluster in [&mut a_cluster, &mut b_cluster] {
        within(async { while cluster.recv().await.unwrap() != ClusterEvent::Connected {} }).await;
    }
    // Both resubscribed: a broadcast from A reaches B's client, once, and the lost one
    // is not replayed.
    within(a.adapter().broadcast(&Target::everyone(), Message::from("back"))).await.unwrap();
    assert_eq!(app_text(&mut on_b).await, "back");
    assert_eq!(text(&mut on_a).await, "back");
    // Presence converged: A's client sees B's, and B's client sees A's.
    futures_util::SinkExt::send(&mut on_a, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    let mut seen_by_a = Default::default();
    let both = [key_b.clone(), format!("c:{}", a_id.as_u64())];
    until_members(&mut on_a, &mut seen_by_a, &both).await;
    until_members(&mut on_b, &mut seen_by_b, &both).await;
    within(b.adapter().broadcast(&Target::everyone().except(id_b), Message::from("from b"))).await.unwrap();
    assert_eq!(app_text(&mut on_a).await, "from b");
    drop((on_a, on_b));
    a.shutdown().await;
    b.shutdown().await;
}

/// The example server as separate processes: `--redis` joins them into one cluster, a
/// frame relayed on one reaches a client of the other, and a SIGKILLed one is dropped.
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn example_servers_form_a_cluster() {
    let Some(redis) = RedisServer::start() else { return };
    // `cargo test` builds the examples beside the test binaries.
    let example =
        std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/server");
    assert!(example.exists(), "{} is missing: run the tests with cargo test", example.display());
    let observer = node(&redis).await;
    realtime::views::ViewsConfig::default().attach(&observer).unwrap();
    let mut cluster_events = observer.adapter().events();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let mut child = KillOnDrop(
            std::process::Command::new(&example)
                .args(["--listen", "127.0.0.1:0", "--redis", &redis.url()])
                .env("RUST_LOG", "error")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        // The example prints `listening on ws://ADDR` once it accepts connections.
        let line = within(tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
            line
        }))
        .await
        .unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap().to_owned();
        servers.push((child, url));
    }
    let mut first = raw_client(&servers[0].1).await;
    let mut second = raw_client(&servers[1].1).await;
    // The handshake's answer can reach the client before its server has registered the
    // connection; a heartbeat answered proves `second` is registered, so a relay now
    // reaches it (a relay published earlier would miss it, and this test did, under load).
    let ping = r#"{"$r":"hb","d":{"t":"ping","id":1}}"#;
    futures_util::SinkExt::send(&mut second, WsMessage::text(ping)).await.unwrap();
    assert_eq!(text(&mut second).await, r#"{"$r":"hb","d":{"t":"pong","id":1}}"#);
    // Relays go to everyone else, on every node; the observer node has no clients.
    futures_util::SinkExt::send(&mut first, WsMessage::text("hello, other node")).await.unwrap();
    assert_eq!(text(&mut second).await, "hello, other node");

    within(async {
        while observer.adapter().nodes().len() != 3 {
            let _ = cluster_events.recv().await;
        }
    })
    .await;
    // Presence: a viewer on the observer sees a viewer on the second example server...
    let mut observer_events = observer.events().unwrap();
    let (mut viewer, viewer_id) = client(&observer, &mut observer_events).await;
    let viewer_key = format!("c:{}", viewer_id.as_u64());
    futures_util::SinkExt::send(&mut second, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    let frame: serde_json::Value = serde_json::from_str(&text(&mut second).await).unwrap();
    assert_eq!(frame["d"]["t"], "state");
    let second_key = frame["d"]["members"][0]["key"].as_str().unwrap().to_owned();
    futures_util::SinkExt::send(&mut viewer, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    let mut seen = Default::default();
    until_members(&mut viewer, &mut seen, &[viewer_key.clone(), second_key]).await;

    let before = observer.adapter().nodes();
    let (mut killed, _) = servers.remove(1);
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    // The example runs with the default beats (2 s, dead after 6 s), which it announces.
    let down = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let ClusterEvent::NodeDown(node) = cluster_events.recv().await.unwrap() {
                return node;
            }
        }
    });
    down.await.expect("the killed node was not dropped within 20 s");
    assert_eq!(observer.adapter().nodes().len(), 2, "{before:?}");
    // ... and sees it leave when its node is dropped.
    until_members(&mut viewer, &mut seen, std::slice::from_ref(&viewer_key)).await;
    drop(viewer);
    drop((first, second, servers));
    observer.shutdown().await;
}

/// A views frame as a raw client sends it.
fn views_frame(body: serde_json::Value) -> WsMessage {
    WsMessage::text(serde_json::json!({"$r": "views", "d": body}).to_string())
}

/// Reads views frames until the member keys of `view` (from `state` and `diff` frames)
/// equal `expected`.
async fn until_members(
    ws: &mut RawClient,
    members: &mut std::collections::BTreeSet<String>,
    expected: &[String],
) {
    let expected: std::collections::BTreeSet<String> = expected.iter().cloned().collect();
    while *members != expected {
        let frame: serde_json::Value = serde_json::from_str(&text(ws).await).unwrap();
        let body = &frame["d"];
        match body["t"].as_str() {
            Some("state") => {
                *members = body["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["key"].as_str().unwrap().to_owned())
                    .collect();
            }
            Some("diff") => {
                for join in body["joins"].as_array().unwrap() {
                    members.insert(join["key"].as_str().unwrap().to_owned());
                }
                for leave in body["leaves"].as_array().unwrap() {
                    members.remove(leave.as_str().unwrap());
                }
            }
            other => panic!("unexpected views frame {other:?}: {frame}"),
        }
    }
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn presence_spans_nodes() {
    let Some(redis) = RedisServer::start() else { return };
    let (a, b) = (node(&redis).await, node(&redis).await);
    until_nodes(&a, 2).await;
    until_nodes(&b, 2).await;
    let presence_a = realtime::views::ViewsConfig::default().attach(&a).unwrap();
    let presence_b = realtime::views::ViewsConfig::default().attach(&b).unwrap();
    let (mut a_events, mut b_events) = (a.events().unwrap(), b.events().unwrap());
    let (mut on_a, id_a) = client(&a, &mut a_events).await;
    let (mut on_b, id_b) = client(&b, &mut b_events).await;
    let (key_a, key_b) = (format!("c:{}", id_a.as_u64()), format!("c:{}", id_b.as_u64()));

    let (mut seen_by_a, mut seen_by_b) = Default::default();
    futures_util::SinkExt::send(&mut on_a, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    until_members(&mut on_a, &mut seen_by_a, std::slice::from_ref(&key_a)).await;
    futures_util::SinkExt::send(&mut on_b, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    // Each sees the other, whichever node it is on.
    let both = [key_a.clone(), key_b.clone()];
    until_members(&mut on_b, &mut seen_by_b, &both).await;
    until_members(&mut on_a, &mut seen_by_a, &both).await;
    let (info_a, info_b) = (presence_a.info("doc", true).unwrap(), presence_b.info("doc", true).unwrap());
    assert_eq!((info_a.clients, info_a.anonymous), (2, 2));
    assert_eq!(serde_json::to_value(&info_a).unwrap(), serde_json::to_value(&info_b).unwrap());

    // A client that leaves is a leave on the other node too.
    drop(on_b);
    until_members(&mut on_a, &mut seen_by_a, std::slice::from_ref(&key_a)).await;

    // A node that comes later learns the existing members by snapshot.
    let c = node(&redis).await;
    until_nodes(&c, 3).await;
    let presence_c = realtime::views::ViewsConfig::default().attach(&c).unwrap();
    let mut c_events = c.events().unwrap();
    let (mut on_c, id_c) = client(&c, &mut c_events).await;
    let mut seen_by_c = Default::default();
    futures_util::SinkExt::send(&mut on_c, views_frame(serde_json::json!({"t": "open", "view": "doc"})))
        .await
        .unwrap();
    let both = [key_a.clone(), format!("c:{}", id_c.as_u64())];
    until_members(&mut on_c, &mut seen_by_c, &both).await;
    until_members(&mut on_a, &mut seen_by_a, &both).await;
    assert_eq!(presence_c.info("doc", false).unwrap().clients, 2);
    drop((on_a, on_c));
    for server in [a, b, c] {
        server.shutdown().await;
    }
}

/// A node with the channels router (`/chat`: members join room `lobby`; `?user=NAME` is
/// the identity) and the sync router (`/book/:id`).
async fn router_node(
    redis: &RedisServer,
) -> (
    Server<RedisAdapter>,
    realtime::channels::Messenger<Server<RedisAdapter>>,
    realtime::sync::SyncHandle<Server<RedisAdapter>>,
) {
    use realtime::network_core::Identity;
    use realtime::ws_server::{Accept, HandshakeHook};
    let cluster = within(RedisCluster::connect(cluster_config(redis))).await.unwrap();
    let hook = HandshakeHook::new(|request| async move {
        Ok(match request.query_param("user") {
            Some(user) => Accept::new().identity(Identity::user(user)),
            None => Accept::new(),
        })
    });
    let server =
        Server::bind_with("127.0.0.1:0", ServerConfig::default().handshake(hook), cluster).await.unwrap();
    let chat = realtime::channels::Channel::new().on_join(|ctx| async move {
        ctx.join_room("lobby").await.map_err(|e| realtime::channels::RemoteError::internal(e.to_string()))
    });
    let messenger = realtime::channels::ChannelsConfig::default()
        .channel("/chat", chat)
        .ack_timeout(Duration::from_millis(500))
        .attach(&server)
        .unwrap();
    let sync = realtime::sync::SyncConfig::default()
        .route("/book/:id", realtime::sync::Route::new())
        .attach(&server)
        .unwrap();
    (server, messenger, sync)
}

#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn routers_reach_every_node_acked_room_emits_included() {
    use realtime::channels::client::{ChannelsClient, ChannelsClientConfig};
    use realtime::channels::{AckError, RemoteError};
    use realtime::ws_client::{Client, ClientConfig};

    let Some(redis) = RedisServer::start() else { return };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(router_node(&redis).await);
    }
    for (server, ..) in &nodes {
        until_nodes(server, 3).await;
    }
    // One channels client per node, each in /chat (room lobby): the first two answer
    // "confirm", the third never does.
    let mut clients = Vec::new();
    for (index, (server, ..)) in nodes.iter().enumerate() {
        let url = format!("ws://{}/?user=u{index}", server.local_addr().unwrap());
        let client = Client::connect(url, ClientConfig::default()).unwrap();
        let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default()).unwrap();
        let chat = channels.channel("/chat").unwrap();
        within(chat.join()).await.unwrap();
        match index {
            2 => chat.handle("confirm", |_: String| std::future::pending::<Result<String, RemoteError>>()),
            _ => chat.handle("confirm", move |question: String| async move {
                Ok::<_, RemoteError>(format!("{question} from u{index}"))
            }),
        }
        let notes = chat.on::<String>("note");
        clients.push((client, channels, chat, notes));
    }

    // User emit from node 0 to the user on node 2, and a room emit to all three.
    let messenger = nodes[0].1.channel("/chat");
    within(messenger.emit_to_user("u2", "note", "for u2")).await.unwrap();
    assert_eq!(within(clients[2].3.recv()).await.unwrap().unwrap(), "for u2");
    within(messenger.emit_to_room("lobby", "note", "for all")).await.unwrap();
    within(messenger.emit_to_room("lobby", "note", "end")).await.unwrap();
    for (index, client) in clients.iter_mut().enumerate() {
        assert_eq!(within(client.3.recv()).await.unwrap().unwrap(), "for all", "client {index}");
        // In order from one publisher: a duplicate would come before the sentinel.
        assert_eq!(within(client.3.recv()).await.unwrap().unwrap(), "end", "client {index}");
    }

    // Acknowledged room emit from node 1: every member on every node answers, or times out.
    let acks =
        within(nodes[1].1.channel("/chat").emit_with_ack_to_room::<String, _>("lobby", "confirm", "ok?"))
            .await
            .unwrap();
    assert!(acks.unreachable.is_empty(), "{:?}", acks.unreachable);
    let mut answers: Vec<(u16, Result<String, String>)> = acks
        .replies
        .into_iter()
        .map(|(id, answer)| {
            let answer = answer.map_err(|error| match error {
                AckError::Timeout(_) => "timeout".to_owned(),
                other => other.to_string(),
            });
            (id.node().as_u16(), answer)
        })
        .collect();
    answers.sort();
    let mut expected: Vec<(u16, Result<String, String>)> = vec![
        (nodes[0].0.adapter().node().as_u16(), Ok("ok? from u0".to_owned())),
        (nodes[1].0.adapter().node().as_u16(), Ok("ok? from u1".to_owned())),
        (nodes[2].0.adapter().node().as_u16(), Err("timeout".to_owned())),
    ];
    expected.sort();
    assert_eq!(answers, expected);

    // A sync push on node 2 reaches a subscriber on node 0.
    let mut subscriber = raw_client(&format!("ws://{}/", nodes[0].0.local_addr().unwrap())).await;
    let subscribe = serde_json::json!({"$r": "sync", "d": {"t": "sub", "path": "/book/7", "id": 1}});
    futures_util::SinkExt::send(&mut subscriber, WsMessage::text(subscribe.to_string())).await.unwrap();
    let answer: serde_json::Value = serde_json::from_str(&text(&mut subscriber).await).unwrap();
    assert_eq!(answer["d"]["t"], "subscribed", "{answer}");
    let pushed =
        within(nodes[2].2.push("/book/7", realtime::sync::Op::Change, &serde_json::json!({"id": 7})))
            .await
            .unwrap();
    assert_eq!(pushed, 0, "nobody on node 2 subscribed");
    let data: serde_json::Value = serde_json::from_str(&text(&mut subscriber).await).unwrap();
    assert_eq!(
        data["d"],
        serde_json::json!({"t": "data", "path": "/book/7", "op": "change", "data": {"id": 7}})
    );

    drop((clients, subscriber));
    for (server, ..) in nodes {
        server.shutdown().await;
    }
}

/// With every packet on one channel, answers still reach only the node that asked.
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn the_single_channel_layout_works_the_same() {
    let Some(redis) = RedisServer::start() else { return };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let config = cluster_config(&redis).layout(redis_adapter::ChannelLayout::Single);
        let cluster = within(RedisCluster::connect(config)).await.unwrap();
        nodes.push(Server::bind_with("127.0.0.1:0", ServerConfig::default(), cluster).await.unwrap());
    }
    for server in &nodes {
        until_nodes(server, 3).await;
    }
    let mut events = nodes[1].events().unwrap();
    let (mut ws, id) = client(&nodes[1], &mut events).await;
    nodes[0].adapter().join(id, "r".into()).await.unwrap();
    assert_eq!(within(nodes[2].adapter().members("r")).await.unwrap(), vec![id]);
    assert_eq!(
        within(nodes[2].adapter().rooms_of(id)).await.unwrap(),
        vec![realtime::network_core::Room::from("r")]
    );
    within(nodes[2].adapter().broadcast(&Target::room("r"), Message::from("one channel"))).await.unwrap();
    within(nodes[2].adapter().broadcast(&Target::everyone(), Message::from("end"))).await.unwrap();
    assert_eq!(text(&mut ws).await, "one channel");
    assert_eq!(text(&mut ws).await, "end");
    drop(ws);
    for server in nodes {
        server.shutdown().await;
    }
}

/// A node that joined but never got a server (its bind failed, say) leaves when dropped.
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn an_unused_cluster_handle_leaves_when_dropped() {
    let Some(redis) = RedisServer::start() else { return };
    let a = node(&redis).await;
    let mut events = a.adapter().events();
    let unused = within(RedisCluster::connect(cluster_config(&redis))).await.unwrap();
    let gone = unused.node();
    until_nodes(&a, 2).await;
    drop(unused);
    within(async { while events.recv().await.unwrap() != ClusterEvent::NodeDown(gone) {} }).await;
    a.shutdown().await;
}

/// A link to Redis that goes silent without closing (a half-open TCP connection, which
/// no read or write would ever report): the node notices by its own heartbeats not
/// coming back, reconnects, and the cluster carries on.
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
#[tokio::test]
async fn a_half_open_link_to_redis_is_noticed_and_replaced() {
    let Some(redis) = RedisServer::start() else { return };
    let redis_addr: std::net::SocketAddr = redis.url().trim_start_matches("redis://").parse().unwrap();
    let link = testkit::FaultProxy::start(redis_addr).await;
    let through_proxy = RedisConfig::new(format!("redis://{}", link.addr()))
        .heartbeat_interval(Duration::from_millis(100))
        .heartbeat_timeout(Duration::from_millis(400))
        .command_timeout(Duration::from_millis(300));
    let cluster = within(RedisCluster::connect(through_proxy)).await.unwrap();
    let a = Server::bind_with("127.0.0.1:0", ServerConfig::default(), cluster).await.unwrap();
    let b = node(&redis).await;
    until_nodes(&a, 2).await;
    until_nodes(&b, 2).await;
    let mut b_events = b.events().unwrap();
    let (mut on_b, _) = client(&b, &mut b_events).await;
    let mut a_cluster = a.adapter().events();

    assert!(link.freeze_all(testkit::Flow::Both) >= 2, "A's command and subscription connections");
    let mut seen = Vec::new();
    within(async {
        loop {
            let event = a_cluster.recv().await.unwrap();
            seen.push(event.clone());
            if event == ClusterEvent::Connected && seen.contains(&ClusterEvent::Disconnected) {
                return;
            }
        }
    })
    .await;
    // Back: a broadcast from A reaches B's client.
    within(async {
        loop {
            match a.adapter().broadcast(&Target::everyone(), Message::from("after the freeze")).await {
                Ok(_) => return,
                // The command connection may still be being replaced.
                Err(AdapterError::NotPublished { .. }) => tokio::task::yield_now().await,
                Err(other) => panic!("{other}"),
            }
        }
    })
    .await;
    assert_eq!(text(&mut on_b).await, "after the freeze");
    drop(on_b);
    a.shutdown().await;
    b.shutdown().await;
}

/// With Redis down, joining said "did not answer within the command timeout": the
/// connection manager retries a refused connection until the timeout hides the cause.
/// Needs no redis-server: nothing listens on the port.
#[tokio::test]
async fn joining_with_nothing_listening_says_redis_is_unreachable() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = RedisConfig::new(format!("redis://127.0.0.1:{closed_port}"))
        .command_timeout(Duration::from_millis(300));
    let Err(error) = within(RedisCluster::connect(config.clone())).await else {
        panic!("joined a cluster with no redis");
    };
    assert!(matches!(error, redis_adapter::RedisAdapterError::Unreachable(_)), "{error:?}");
    assert_eq!(error.to_string(), "cannot connect to redis");
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.to_lowercase().contains("refused"), "{source}");

    let Err(error) = within(redis_adapter::RedisTokenStore::connect(&config, Default::default())).await
    else {
        panic!("a token store with no redis");
    };
    assert!(matches!(error, redis_adapter::RedisTokenError::Unreachable(_)), "{error:?}");
    assert!(error.is_unavailable());
}
