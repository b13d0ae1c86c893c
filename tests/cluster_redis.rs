//! Several server nodes sharing rooms through a real Redis (`redis_adapter`): broadcasts
//! to rooms and to everyone reach every node's members exactly once, questions about
//! members and rooms span nodes, a node that leaves or crashes is dropped, and a Redis
//! restart is survived with the failures in between reported to the emitter.
//!
//! Each test starts its own `redis-server` on a free loopback port (skipped with a
//! message when it is not installed, unless `CI` is set). Exactly once is checked by
//! order: every node delivers one publisher's broadcasts in the order they were made,
//! so a sentinel broadcast after the one under test arrives right after it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use realtime::network_core::{Adapter, AdapterError, ConnectionId, Message, Network, NetworkEvent, Target};
use realtime::ws_server::{Server, ServerConfig};
use redis_adapter::{ClusterEvent, RedisAdapter, RedisCluster, RedisConfig};
use support::{RawClient, next_data, raw_client, within};
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
            .args(["--exact", "node_process", "--nocapture"])
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
    let (mut on_a, _) = client(&a, &mut a_events).await;
    let mut a_cluster = a.adapter().events();
    let mut b_cluster = b.adapter().events();

    redis.stop();
    within(async { while a_cluster.recv().await.unwrap() != ClusterEvent::Disconnected {} }).await;
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
    assert_eq!(text(&mut on_b).await, "back");
    assert_eq!(text(&mut on_a).await, "back");
    within(b.adapter().broadcast(&Target::everyone().except(id_b), Message::from("from b"))).await.unwrap();
    assert_eq!(text(&mut on_a).await, "from b");
    drop((on_a, on_b));
    a.shutdown().await;
    b.shutdown().await;
}

/// The example server as separate processes: `--redis` joins them into one cluster, a
/// frame relayed on one reaches a client of the other, and a SIGKILLed one is dropped.
#[tokio::test]
async fn example_servers_form_a_cluster() {
    let Some(redis) = RedisServer::start() else { return };
    // `cargo test` builds the examples beside the test binaries.
    let example =
        std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/server");
    assert!(example.exists(), "{} is missing: run the tests with cargo test", example.display());
    let observer = node(&redis).await;
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
    // Relays go to everyone else, on every node; the observer node has no clients.
    futures_util::SinkExt::send(&mut first, WsMessage::text("hello, other node")).await.unwrap();
    assert_eq!(text(&mut second).await, "hello, other node");

    within(async {
        while observer.adapter().nodes().len() != 3 {
            let _ = cluster_events.recv().await;
        }
    })
    .await;
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
    drop((first, second, servers));
    observer.shutdown().await;
}
