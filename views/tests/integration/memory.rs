//! The views router, client and server, through testkit's memory network: no sockets,
//! tokio's paused clock, scripted faults (a reply dropped, a reconnect while a request
//! waits, frames of an old connection arriving late, a refused connection). Only the
//! routers' public API is used.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use network_core::{Identity, Network};
use testkit::{Direction, MemoryClient, MemoryNetwork, Refused, settle, tagged, within};
use views::client::{ChangeStream, InfoError, OpenError, ViewChange, ViewsClient, ViewsClientConfig};
use views::protocol::{ROUTER, codes};
use views::{Presence, ViewsConfig};

/// A views server that refuses the view `secret`, with two clients (users `ada` and `bob`)
/// not connected yet.
struct Setup {
    presence: Presence<MemoryNetwork>,
    ada: (MemoryClient, ViewsClient),
    bob: (MemoryClient, ViewsClient),
}

fn setup() -> Setup {
    let server = MemoryNetwork::new();
    let presence = ViewsConfig::default()
        .diff_interval(Duration::from_millis(25))
        .authorize(|_, view| async move { if view == "secret" { Err("no".to_owned()) } else { Ok(()) } })
        .attach(&server)
        .unwrap();
    let user = |name: &str| {
        let client = MemoryClient::new(&server);
        client.set_identity(Identity::user(name));
        let config = ViewsClientConfig::default().request_timeout(Duration::from_secs(1));
        let views = ViewsClient::attach(client.network(), config).unwrap();
        (client, views)
    };
    Setup { presence, ada: user("ada"), bob: user("bob") }
}

fn keys(members: &[views::Member]) -> Vec<&str> {
    members.iter().map(|member| member.key.as_str()).collect()
}

/// The next change that is not empty.
async fn change(changes: &mut ChangeStream) -> ViewChange {
    within(changes.recv()).await.expect("the stream ended")
}

#[tokio::test(start_paused = true)]
async fn open_follow_diffs_ask_info_and_close() {
    let Setup { presence, ada: (ada, ada_views), bob: (bob, bob_views) } = setup();
    ada.connect().await.unwrap();
    bob.connect().await.unwrap();
    let doc = within(ada_views.open("doc")).await.unwrap();
    assert_eq!(keys(&doc.members()), ["u:ada"]);
    assert_eq!(doc.you().as_deref(), Some("u:ada"));
    assert!(doc.is_open() && doc.is_synced());
    let mut changes = doc.changes();

    let bobs = within(bob_views.open("doc")).await.unwrap();
    assert_eq!(keys(&bobs.members()), ["u:ada", "u:bob"]);
    assert_eq!(keys(&change(&mut changes).await.joined), ["u:bob"]);
    assert_eq!(doc.user_count(), 2);
    assert_eq!(keys(&presence.members("doc")), ["u:ada", "u:bob"]);

    let info = within(ada_views.info("doc")).await.unwrap().unwrap();
    assert_eq!((info.clients, info.users.len(), info.anonymous), (2, 2, 0));
    assert!(within(ada_views.info("nobody-here")).await.unwrap().is_none());
    let matching = within(ada_views.info_matching("^do")).await.unwrap();
    assert_eq!(matching.views().len(), 1);

    within(bob_views.close(&bobs)).await.unwrap();
    assert!(!bobs.is_open());
    assert_eq!(keys(&change(&mut changes).await.left), ["u:bob"]);
    assert_eq!(keys(&presence.members("doc")), ["u:ada"]);
}

#[tokio::test(start_paused = true)]
async fn refusals_reach_the_caller() {
    let Setup { ada: (ada, views), .. } = setup();
    ada.connect().await.unwrap();
    let refused = within(views.open("secret")).await;
    assert!(
        matches!(&refused, Err(OpenError::Refused(error)) if error.code == codes::FORBIDDEN),
        "{refused:?}"
    );
    let hidden = within(views.info("secret")).await;
    assert!(
        matches!(&hidden, Err(InfoError::Refused(error)) if error.code == codes::FORBIDDEN),
        "{hidden:?}"
    );
    let bad = within(views.info_matching("(")).await;
    assert!(matches!(&bad, Err(InfoError::Refused(error)) if error.code == codes::BAD_REQUEST), "{bad:?}");
    let debug = within(views.info_debug("doc")).await;
    assert!(matches!(&debug, Err(InfoError::Refused(error)) if error.code == codes::FORBIDDEN), "{debug:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_state_times_out_and_the_view_opens_on_the_next_connection() {
    let Setup { presence, ada: (ada, views), .. } = setup();
    ada.connect().await.unwrap();
    ada.drop_next(Direction::ToClient, tagged(ROUTER, "state"));
    let lost = within(views.open("doc")).await;
    assert!(matches!(lost, Err(OpenError::Timeout(_))), "{lost:?}");
    assert_eq!(ada.pending_drops(), 0);
    // The server did open it; the view stays wanted and is re-opened after a reconnect.
    assert_eq!(keys(&presence.members("doc")), ["u:ada"]);
    ada.reconnect().await.unwrap();
    let doc = within(views.open("doc")).await.unwrap();
    assert!(doc.is_synced());
    assert_eq!(keys(&doc.members()), ["u:ada"]);
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_reopens_every_view_and_fails_waiting_info_requests() {
    let Setup { presence, ada: (ada, ada_views), bob: (bob, bob_views) } = setup();
    ada.connect().await.unwrap();
    bob.connect().await.unwrap();
    let doc = within(ada_views.open("doc")).await.unwrap();
    let mut ada_changes = doc.changes();
    let bobs = within(bob_views.open("doc")).await.unwrap();
    let mut bob_changes = bobs.changes();
    assert_eq!(keys(&change(&mut ada_changes).await.joined), ["u:bob"]);

    // An info request waits when the link drops: it fails, the view does not. Its answer
    // arrives after the end of its connection, and changes nothing.
    ada.hold(Direction::ToClient);
    let info = tokio::spawn({
        let views = ada_views.clone();
        async move { views.info("doc").await }
    });
    settle().await;
    ada.disconnect().await;
    ada.release().await;
    let info = within(info).await.unwrap();
    assert!(matches!(info, Err(InfoError::Closed)), "{info:?}");
    assert!(doc.is_open() && !doc.is_synced());
    assert_eq!(keys(&doc.members()), ["u:ada", "u:bob"], "the last known members stay");
    assert_eq!(keys(&change(&mut bob_changes).await.left), ["u:ada"]);
    assert_eq!(keys(&presence.members("doc")), ["u:bob"]);

    ada.connect().await.unwrap();
    assert!(doc.is_synced());
    assert_eq!(keys(&presence.members("doc")), ["u:ada", "u:bob"]);
    assert_eq!(keys(&change(&mut bob_changes).await.joined), ["u:ada"]);
}

#[tokio::test(start_paused = true)]
async fn an_open_waits_through_a_refused_connection() {
    let Setup { ada: (ada, views), .. } = setup();
    ada.refuse_next(2);
    let open = tokio::spawn({
        let views = views.clone();
        async move { views.open("doc").await.map(|view| view.is_synced()) }
    });
    assert_eq!(ada.connect().await, Err(Refused));
    assert_eq!(ada.connect().await, Err(Refused));
    settle().await;
    assert!(!open.is_finished());
    ada.connect().await.unwrap();
    assert!(within(open).await.unwrap().unwrap());
}

#[tokio::test(start_paused = true)]
async fn late_frames_of_an_old_connection_leave_no_member_behind() {
    let Setup { presence, ada: (ada, ada_views), bob: (bob, bob_views) } = setup();
    ada.connect().await.unwrap();
    bob.connect().await.unwrap();
    let bobs = within(bob_views.open("doc")).await.unwrap();
    let mut bob_changes = bobs.changes();
    // Ada's open and her old connection's end reach the server after her new connection
    // opened; she closes the view meanwhile, so the new connection has nothing open.
    ada.hold(Direction::ToServer);
    let open = tokio::spawn({
        let views = ada_views.clone();
        async move { views.open("doc").await }
    });
    settle().await;
    ada.disconnect().await;
    within(ada_views.close_name("doc")).await.unwrap();
    ada.connect().await.unwrap();
    assert!(matches!(within(open).await.unwrap(), Err(OpenError::Cancelled)));
    ada.release().await;
    settle().await;
    assert_eq!(keys(&presence.members("doc")), ["u:bob"]);
    assert_eq!(presence.network().connections().len(), 2);
    // Bob saw Ada come (on her old connection) and go, or nothing at all.
    let mut net = 0i32;
    while let Some(change) = bob_changes.try_recv() {
        net += change.joined.len() as i32 - change.left.len() as i32;
    }
    assert_eq!(net, 0);
    assert_eq!(keys(&bobs.members()), ["u:bob"]);
}

#[tokio::test(start_paused = true)]
async fn a_state_of_an_old_connection_arriving_late_is_harmless() {
    let Setup { ada: (ada, views), .. } = setup();
    ada.connect().await.unwrap();
    ada.hold(Direction::ToClient);
    let open = tokio::spawn({
        let views = views.clone();
        async move { views.open("doc").await.map(|view| view.members().len()) }
    });
    settle().await;
    ada.disconnect().await;
    ada.connect().await.unwrap();
    // The re-open's state is held too; both arrive now, the old one first.
    ada.release().await;
    assert_eq!(within(open).await.unwrap().unwrap(), 1);
    let doc = within(views.open("doc")).await.unwrap();
    assert!(doc.is_synced());
    assert_eq!(keys(&doc.members()), ["u:ada"]);
}

#[tokio::test(start_paused = true)]
async fn closing_the_client_ends_calls_and_streams() {
    let Setup { ada: (ada, views), .. } = setup();
    ada.connect().await.unwrap();
    let doc = within(views.open("doc")).await.unwrap();
    let mut changes = doc.changes();
    ada.close().await;
    assert!(within(changes.recv()).await.is_none());
    assert!(matches!(within(views.open("other")).await, Err(OpenError::Closed)));
}
