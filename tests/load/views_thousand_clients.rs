//! A thousand clients open one view; every one of them converges to the full member list,
//! through one state and coalesced diffs, within a bounded time.
//!
//! A thousand clients and their server-side sockets need about 2,000 descriptors, more
//! than a default soft limit of 1,024, so the test re-runs itself in a child process under
//! `ulimit -n 4096`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::{run_as_child_with_open_files, test_name};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use realtime::network_core::Identity;
use realtime::views::ViewsConfig;
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const CLIENTS: usize = 1000;
const CHILD_ENV: &str = "VIEWS_THOUSAND_CLIENTS_CHILD";
/// The bound: far above what it takes (see the printed figure), low enough to catch an
/// accidental quadratic blow-up or a lost diff.
const BOUND: Duration = Duration::from_secs(60);

#[test]
fn a_thousand_clients_converge_on_one_view() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let stdout = run_as_child_with_open_files(
        &test_name(module_path!(), "a_thousand_clients_converge_on_one_view"),
        CHILD_ENV,
        4096,
    );
    assert!(stdout.contains("converged"), "{stdout}");
}

fn child() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let hook = HandshakeHook::new(|request| async move {
            let user = request.query_param("user").unwrap_or_default().to_owned();
            Ok(Accept::new().identity(Identity::user(user)))
        });
        let server = Server::bind("127.0.0.1:0", ServerConfig::default().handshake(hook)).await.unwrap();
        let presence = ViewsConfig::default().attach(&server).unwrap();
        let addr = server.local_addr().unwrap();

        let started = Instant::now();
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let url = format!("ws://{addr}/?user=u{i}");
            clients.push(tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                let open = json!({"$r": "views", "d": {"t": "open", "view": "big", "id": 1}});
                ws.send(WsMessage::text(open.to_string())).await.unwrap();
                // Apply the state and the diffs until every member is known.
                let mut members: HashMap<String, Value> = HashMap::new();
                while members.len() < CLIENTS {
                    let text = match ws.next().await {
                        Some(Ok(WsMessage::Text(text))) => text,
                        // The server pings every 25 s; tungstenite answers by itself. On a
                        // loaded machine convergence can take longer than that.
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                        other => panic!("stream ended: {other:?}"),
                    };
                    let mut frame: Value = serde_json::from_str(&text).unwrap();
                    let body = frame["d"].take();
                    match body["t"].as_str() {
                        Some("state") => {
                            members.clear();
                            for member in body["members"].as_array().unwrap() {
                                members.insert(member["key"].as_str().unwrap().to_owned(), member.clone());
                            }
                        }
                        Some("diff") => {
                            for member in body["joins"].as_array().unwrap() {
                                members.insert(member["key"].as_str().unwrap().to_owned(), member.clone());
                            }
                            for key in body["leaves"].as_array().unwrap() {
                                members.remove(key.as_str().unwrap());
                            }
                        }
                        other => panic!("unexpected frame {other:?}"),
                    }
                }
                ws
            }));
        }
        let mut sockets = Vec::new();
        for client in clients {
            sockets
                .push(tokio::time::timeout(BOUND, client).await.expect("did not converge in time").unwrap());
        }
        let elapsed = started.elapsed();
        let info = presence.info("big", false).unwrap();
        assert_eq!((info.clients as usize, info.users.len()), (CLIENTS, CLIENTS));
        println!("{CLIENTS} clients converged on one view in {elapsed:?}");
        drop(sockets);
    });
}
