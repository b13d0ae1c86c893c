//! The views router (presence) as a server runs it, fed a script of frames from four peers
//! (anonymous; user `ada` twice, one with metadata; user `bob`) through the hub into the
//! real router on an in-memory network (see `common/mod.rs` for the input format).
//!
//! Never panics; in addition, every frame the router sends is a JSON envelope for `views`
//! holding a valid views frame, the router never closes a connection, and once every
//! connection has closed no view has a member left (docs/PROTOCOL.md, 6.3 rules 3 and 6).
#![no_main]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Net, Peer};
use libfuzzer_sys::fuzz_target;
use network_core::{Identity, Message, envelope};
use serde_json::json;
use views::ViewsConfig;
use views::protocol::{Frame, ROUTER};

fuzz_target!(|data: &[u8]| common::run(session(data)));

fn check(message: &Message) {
    assert!(message.is_text(), "the server answers in JSON: {message:?}");
    assert_eq!(envelope::router_name(message), Some(ROUTER), "{message:?}");
    if let Err(error) = envelope::decode::<Frame>(ROUTER, message) {
        panic!("the server sent an invalid frame {message:?}: {error}");
    }
}

async fn session(data: &[u8]) {
    let net = Net::new();
    let presence = ViewsConfig::default()
        .authorize(|connection, view| async move {
            if view.starts_with("private") && connection.identity().is_none() {
                Err("log in first".to_owned())
            } else {
                Ok(())
            }
        })
        .diff_interval(Duration::from_millis(25))
        .max_views_per_connection(4)
        .attach(&net)
        .expect("a valid config");
    let check: common::Check = Arc::new(check);
    let identities = [
        None,
        Some(Identity::user("ada").session_id("s1")),
        Some(Identity::user("ada").session_id("s2").data(json!({"name": "Ada"}))),
        Some(Identity::user("bob")),
    ];
    let mut peers: Vec<Peer> =
        identities.into_iter().map(|identity| Peer::new(identity, check.clone())).collect();
    for step in common::steps(data) {
        let peer = &mut peers[step.peer];
        if step.reconnect {
            peer.close(&net).await;
        }
        let connection = peer.open(&net, false).await;
        net.driver().message(&connection, common::frame(ROUTER, &step)).await;
        common::settle(Duration::from_millis(if step.wait { 100 } else { 1 })).await;
    }
    common::settle(Duration::from_millis(100)).await;
    for peer in &mut peers {
        peer.close(&net).await;
    }
    common::settle(Duration::from_millis(100)).await;
    for peer in &peers {
        assert!(!peer.closed_by_router.load(Ordering::Relaxed), "the router closed a connection");
    }
    assert_eq!(presence.views(), Vec::<String>::new(), "views still open after every connection closed");
}
