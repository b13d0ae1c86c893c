//! Two `realtime serve` nodes on one Redis: a token issued by one opens a socket on the
//! other (no sticky sessions), frames are relayed across them, and both the admin view and
//! the metrics see the other node.

use testkit::RedisServer;

use crate::support::*;

const SECRET: &str = "cluster-secret-0123456789";
const ADMIN: &str = "cluster-admin-0123456789";

async fn node(redis: &RedisServer) -> Running {
    let mut command = realtime(&["serve", "--listen", "127.0.0.1:0", "--redis", &redis.url()]);
    command.env("REALTIME_TOKENS__SECRET", SECRET).env("REALTIME_ADMIN__TOKEN", ADMIN);
    start(command).await
}

async fn token(node: &Running, user: &str) -> String {
    let bearer = format!("Authorization: Bearer {SECRET}");
    let issued = http(node.addr, "POST", &format!("/tokens?user={user}"), &[&bearer]).await;
    assert_eq!(issued.status, 200, "{}", issued.head);
    serde_json::from_str::<serde_json::Value>(&issued.body).unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
async fn tokens_and_relays_cross_nodes() {
    let redis = RedisServer::start().expect("redis-server did not start");
    let (a, b) = (node(&redis).await, node(&redis).await);

    // Each node sees the other before any client connects.
    let bearer = format!("Authorization: Bearer {ADMIN}");
    within(async {
        loop {
            let view = http(a.addr, "GET", "/admin", &[&bearer]).await;
            let view: serde_json::Value = serde_json::from_str(&view.body).unwrap();
            if view["cluster"]["peers"].as_array().is_some_and(|peers| peers.len() == 1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;

    // A token from node a opens a socket on node b, and one from b on a.
    let ada_url = format!("ws://{}/?token={}", b.addr, token(&a, "ada").await);
    let grace_url = format!("ws://{}/?token={}", a.addr, token(&b, "grace").await);
    let (mut ada, _) = within(tokio_tungstenite::connect_async(ada_url.as_str())).await.unwrap();
    let (mut grace, _) = within(tokio_tungstenite::connect_async(grace_url.as_str())).await.unwrap();
    relay_until_received(&mut ada, &mut grace, "across nodes").await;

    let metrics = http(a.addr, "GET", "/metrics", &[]).await.body;
    assert!(metrics.lines().any(|line| line == "realtime_cluster_nodes 2"), "{metrics}");
}
