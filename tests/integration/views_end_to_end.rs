//! The Rust views client against the real server: open, see others join and leave, ask
//! info by name and regex, and after a server restart re-open by itself and see the
//! members again.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use realtime::network_core::Identity;
use realtime::views::ViewsConfig;
use realtime::views::client::{View, ViewsClient, ViewsClientConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};

async fn start(addr: SocketAddr) -> Server {
    let hook = HandshakeHook::new(|request| async move {
        Ok(Accept::new().identity(Identity::user(request.query_param("user").unwrap_or("anon"))))
    });
    let server = Server::bind(addr, ServerConfig::default().handshake(hook)).await.unwrap();
    ViewsConfig::default().diff_interval(Duration::from_millis(5)).attach(&server).unwrap();
    server
}

fn client(addr: SocketAddr, user: &str) -> (Client, ViewsClient) {
    let config = ClientConfig::default()
        .min_reconnection_delay(Duration::from_millis(20))
        .max_reconnection_delay(Duration::from_millis(100));
    let client = Client::connect(format!("ws://{addr}/?user={user}"), config).unwrap();
    let views = ViewsClient::attach(&client, ViewsClientConfig::default()).unwrap();
    (client, views)
}

fn users(view: &View) -> Vec<String> {
    view.members().into_iter().filter_map(|member| member.user).collect()
}

/// Waits for changes until the view shows exactly `expected` users.
async fn until_users(view: &View, changes: &mut realtime::views::client::ChangeStream, expected: &[&str]) {
    while users(view) != expected {
        within(changes.recv()).await.expect("change stream ended");
    }
}

#[tokio::test]
async fn open_join_leave_info_and_reopen_after_a_restart() {
    let server = start("127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr().unwrap();
    let (ada_client, ada) = client(addr, "ada");
    let (bob_client, bob) = client(addr, "bob");

    let doc = within(ada.open("doc")).await.unwrap();
    let mut changes = doc.changes();
    assert_eq!(users(&doc), ["ada"]);
    let bobs_doc = within(bob.open("doc")).await.unwrap();
    until_users(&doc, &mut changes, &["ada", "bob"]).await;
    assert_eq!(users(&bobs_doc), ["ada", "bob"]);
    within(bob.open("doc-2")).await.unwrap();

    let info = within(ada.info("doc")).await.unwrap().unwrap();
    assert_eq!((info.clients, info.users.len()), (2, 2));
    let matching = within(ada.info_matching("^doc")).await.unwrap();
    assert_eq!(matching.iter().map(|info| info.view.as_str()).collect::<Vec<_>>(), ["doc", "doc-2"]);

    within(bob.close(&bobs_doc)).await.unwrap();
    until_users(&doc, &mut changes, &["ada"]).await;
    within(bob.open("doc")).await.unwrap();
    until_users(&doc, &mut changes, &["ada", "bob"]).await;

    // Restart: both clients reconnect and re-open "doc" by themselves.
    server.shutdown().await;
    let restarted = start(addr).await;
    // A newcomer sees both come back: its state, then diffs as they re-open.
    let (carol_client, carol) = client(addr, "carol");
    let carols_doc = within(carol.open("doc")).await.unwrap();
    let mut carols_changes = carols_doc.changes();
    until_users(&carols_doc, &mut carols_changes, &["ada", "bob", "carol"]).await;
    let info = within(carol.info("doc")).await.unwrap().unwrap();
    assert_eq!(info.clients, 3);
    until_users(&doc, &mut changes, &["ada", "bob", "carol"]).await;

    // Bob drops for good: ada sees him leave.
    bob_client.close().await;
    until_users(&doc, &mut changes, &["ada", "carol"]).await;
    ada_client.close().await;
    carol_client.close().await;
    restarted.shutdown().await;
}
