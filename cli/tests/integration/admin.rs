//! `GET /admin` answers the configured bearer token only, with what the node holds.

use crate::support::*;

const TOKEN: &str = "admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_view_wants_its_token_and_lists_the_connections() {
    let mut command = realtime(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("REALTIME_ADMIN__TOKEN", TOKEN);
    let running = start(command).await;
    let addr = running.addr;

    let without = http(addr, "GET", "/admin", &[]).await;
    assert_eq!(without.status, 401, "{}", without.head);
    let wrong = http(addr, "GET", "/admin", &["Authorization: Bearer admin-token-0123456780"]).await;
    assert_eq!(wrong.status, 401, "{}", wrong.head);
    assert!(!wrong.body.contains("connections"), "{}", wrong.body);

    let (_socket, _) =
        within(tokio_tungstenite::connect_async(format!("ws://{addr}/?user=ada"))).await.unwrap();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let view = within(async {
        loop {
            let answer = http(addr, "GET", "/admin", &[&bearer]).await;
            assert_eq!(answer.status, 200, "{}", answer.head);
            let view: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            // `open` counts the connection from its handshake on; the list, once registered.
            if view["connections"]["list"].as_array().is_some_and(|list| list.len() == 1) {
                break view;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(view["connections"]["open"], 1, "{view}");
    assert_eq!(view["connections"]["list"][0]["user"], "ada", "{view}");
    assert!(
        view["rooms"].is_array() && view["views"].is_array() && view["subscriptions"].is_array(),
        "{view}"
    );
    assert!(view["cluster"]["node"].is_string(), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_there_is_no_admin_view() {
    let running = serve(&[]).await;
    let answer = http(running.addr, "GET", "/admin", &["Authorization: Bearer anything-at-all-here"]).await;
    assert_ne!(answer.status, 200, "{}", answer.head);
}
