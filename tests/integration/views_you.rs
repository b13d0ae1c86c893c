//! A views `state` says which member is the receiver (docs/PROTOCOL.md section 6.3, rule
//! 1), over real sockets: `"you"` is `u:USER` for a connection with a user id (the same
//! for each of the user's tabs) and `c:ID` for an anonymous one, always a key of the
//! member list; the Rust client exposes it as `View::you()`, and an anonymous client gets
//! its new key after a reconnect.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use realtime::network_core::Identity;
use realtime::views::ViewsConfig;
use realtime::views::client::{ViewsClient, ViewsClientConfig};
use realtime::ws_client::{Client, ClientConfig};
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// `?user=U` gives identity U; without it the connection is anonymous.
async fn start(addr: SocketAddr) -> Server {
    let hook = HandshakeHook::new(|request| async move {
        Ok(match request.query_param("user") {
            Some(user) => Accept::new().identity(Identity::user(user)),
            None => Accept::new(),
        })
    });
    let server = Server::bind(addr, ServerConfig::default().handshake(hook)).await.unwrap();
    ViewsConfig::default().diff_interval(Duration::from_millis(5)).attach(&server).unwrap();
    server
}

/// Opens `view` and returns the `state`'s body.
async fn open(ws: &mut RawClient, view: &str, id: u64) -> Value {
    send_text(ws, &json!({"$r": "views", "d": {"t": "open", "view": view, "id": id}}).to_string()).await;
    loop {
        let WsMessage::Text(text) = next_data(ws).await else { panic!("expected text") };
        let mut envelope: Value = serde_json::from_str(&text).unwrap();
        let body = envelope["d"].take();
        // Diffs of views opened earlier may come in between.
        if body["t"] == "state" && body["id"] == id {
            return body;
        }
    }
}

fn keys(state: &Value) -> Vec<&str> {
    state["members"].as_array().unwrap().iter().map(|member| member["key"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn the_state_names_the_receivers_own_member() {
    let server = start("127.0.0.1:0".parse().unwrap()).await;
    let base = url(&server);
    let mut ada_tab1 = raw_client(&format!("{base}?user=ada")).await;
    let mut ada_tab2 = raw_client(&format!("{base}?user=ada")).await;
    let mut anonymous = raw_client(&base).await;

    let state = open(&mut ada_tab1, "doc", 1).await;
    assert_eq!(state["you"], "u:ada");
    let state = open(&mut ada_tab2, "doc", 2).await;
    assert_eq!(state["you"], "u:ada", "every tab of a user is the same member");
    let state = open(&mut anonymous, "doc", 3).await;
    let you = state["you"].as_str().unwrap().to_owned();
    assert!(you.starts_with("c:") && you[2..].parse::<u64>().is_ok(), "{you}");
    let mut members = keys(&state);
    members.sort_unstable();
    let mut expected = vec!["u:ada", you.as_str()];
    expected.sort_unstable();
    assert_eq!(members, expected);
    // Re-opening answers a state with `you` again.
    assert_eq!(open(&mut anonymous, "doc", 4).await["you"], you);
}

#[tokio::test]
async fn the_rust_client_knows_its_member_and_an_anonymous_one_gets_a_new_key_after_a_reconnect() {
    let server = start("127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr().unwrap();
    let config = || {
        ClientConfig::default()
            .min_reconnection_delay(Duration::from_millis(20))
            .max_reconnection_delay(Duration::from_millis(100))
    };
    let ada_client = Client::connect(format!("ws://{addr}/?user=ada"), config()).unwrap();
    let ada = ViewsClient::attach(&ada_client, ViewsClientConfig::default()).unwrap();
    let anon_client = Client::connect(format!("ws://{addr}/"), config()).unwrap();
    let anon = ViewsClient::attach(&anon_client, ViewsClientConfig::default()).unwrap();

    let adas_doc = within(ada.open("doc")).await.unwrap();
    assert_eq!(adas_doc.you().as_deref(), Some("u:ada"));
    let anons_doc = within(anon.open("doc")).await.unwrap();
    let first = anons_doc.you().unwrap();
    assert!(first.starts_with("c:"), "{first}");
    assert!(anons_doc.members().iter().any(|member| member.key == first));

    // A new connection, a new id: the re-open's state brings the new key.
    anon_client.reconnect();
    within(async {
        loop {
            if let Some(you) = anons_doc.you()
                && you != first
                && anons_doc.is_synced()
            {
                assert!(you.starts_with("c:"), "{you}");
                assert!(anons_doc.members().iter().any(|member| member.key == you));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(adas_doc.you().as_deref(), Some("u:ada"));
    ada_client.close().await;
    anon_client.close().await;
}
