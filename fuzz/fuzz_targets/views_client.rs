//! The views router (presence) as a client runs it, fed a script of frames as the
//! server's: the real client router (`views::client::ViewsClient`) on an in-memory network
//! with one connection, while the application opens views, reads their members and change
//! streams, asks for counts and closes a view (see `common/mod.rs` for the input format;
//! the peer bits are ignored).
//!
//! Never panics; in addition, every frame the client sends is a JSON envelope for `views`
//! holding a valid views frame, and once the network closes every application call has
//! returned and every stream has ended.
#![no_main]

mod common;

use std::time::Duration;

use testkit::memory::RawPeer;
use libfuzzer_sys::fuzz_target;
use views::client::{ViewsClient, ViewsClientConfig};
use views::protocol::{Frame, ROUTER};

fuzz_target!(|data: &[u8]| common::run(session(data)));

async fn session(data: &[u8]) {
    let net = common::network();
    let config = ViewsClientConfig::default()
        .request_timeout(Duration::from_millis(200))
        .change_queue_capacity(2)
        .max_pending_requests(4);
    let client = ViewsClient::attach(&net, config).expect("attached");
    let mut peer = RawPeer::new(None, common::client_check::<Frame>(ROUTER));
    peer.open(&net, true).await;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn({
        let client = client.clone();
        async move {
            if let Ok(view) = client.open("doc-7").await {
                let mut changes = view.changes();
                while changes.recv().await.is_some() {
                    let members = view.members();
                    assert_eq!(members.len(), view.member_count());
                    let _ =
                        (view.user_count(), view.anonymous_count(), view.client_count(), view.is_synced());
                }
            }
        }
    }));
    tasks.push(tokio::spawn({
        let client = client.clone();
        async move {
            if let Ok(view) = client.open("doc-8").await {
                let _ = view.members();
                let _ = client.close(&view).await;
            }
        }
    }));
    tasks.push(tokio::spawn({
        let client = client.clone();
        async move {
            let _ = client.info("doc-7").await;
            let _ = client.info_matching_debug("^doc-").await;
        }
    }));

    common::drive_client(&net, &mut peer, ROUTER, data, tasks).await;
}
