//! A peer that vanishes without a FIN is noticed by heartbeats alone: a proxy between
//! client and server stops forwarding in both directions and keeps both sockets open, so
//! neither side ever reads an end of stream.
//!
//! - The server pings every `ping_interval` and drops a connection from which nothing
//!   arrived for `idle_timeout`: the frozen client is removed (1006 "idle timeout") with
//!   its rooms and views, no later than `ping_interval + idle_timeout` after the freeze.
//! - The client pings a silent server after its `ping_interval` and declares it dead after
//!   its `idle_timeout`: behind a frozen proxy it reconnects, and its channels room and
//!   view are restored on the new connection.
//!
//! Before each freeze, a healthy but silent link is held for several idle timeouts, to show
//! that the heartbeats (and not data) keep it alive.
//!
//! The bounds are checked on real time with real sockets (tokio's paused clock would
//! advance while the kernel carries bytes). Both sides count `idle_timeout` from the last
//! frame received, and a pong comes back within one `ping_interval` of the previous one,
//! so the peer must be dropped between `idle_timeout - ping_interval` (minus a round trip)
//! and `idle_timeout` after the freeze; the test asserts the lower bound and the issue's
//! upper bound, `ping_interval + idle_timeout`, plus a margin for a loaded machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use crate::support::*;
use realtime::channels::client::{ChannelsClient, ChannelsClientConfig};
use realtime::channels::{Channel, ChannelsConfig, RemoteError};
use realtime::network_core::{Adapter, CloseCode, ConnectionId, Network, NetworkEvent};
use realtime::views::client::{ViewsClient, ViewsClientConfig};
use realtime::views::{Presence, ViewsConfig};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use realtime::ws_server::{Server, ServerConfig};
use testkit::{FaultProxy, Flow};
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout};

const ROOM: &str = "/chat#lobby";
const VIEW: &str = "doc";
/// Slack for a debug build on a busy machine, added to the upper bounds.
const MARGIN: Duration = Duration::from_millis(600);
/// Taken from the lower bounds: a ping sent just before the freeze whose pong was cut
/// off makes the previous pong the last frame, up to one round trip more than
/// `ping_interval` before the freeze.
const SLACK: Duration = Duration::from_millis(50);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A server with the channels router (`/chat` puts every joiner in room `lobby`) and the
/// views router.
async fn start(config: ServerConfig) -> (Server, Presence<Server>) {
    let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
    let chat = Channel::new().on_join(|ctx| async move {
        ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string()))
    });
    ChannelsConfig::default().channel("/chat", chat).attach(&server).unwrap();
    let presence = ViewsConfig::default().diff_interval(ms(5)).attach(&server).unwrap();
    (server, presence)
}

/// A client through `proxy` that joins `/chat` and opens [`VIEW`].
async fn client(proxy: &FaultProxy, config: ClientConfig) -> (Client, ChannelsClient, ViewsClient) {
    let client = Client::connect(proxy.url(), config).unwrap();
    let channels = ChannelsClient::attach(&client, ChannelsClientConfig::default()).unwrap();
    let views = ViewsClient::attach(&client, ViewsClientConfig::default()).unwrap();
    within(channels.channel("/chat").unwrap().join()).await.unwrap();
    within(views.open(VIEW)).await.unwrap();
    (client, channels, views)
}

/// The connections the server has in [`ROOM`] and in [`VIEW`] (as view member keys).
async fn membership(server: &Server, presence: &Presence<Server>) -> (Vec<ConnectionId>, Vec<String>) {
    let mut room = server.adapter().members(ROOM).await.unwrap();
    room.sort();
    let view = presence.members(VIEW).into_iter().map(|member| member.key).collect();
    (room, view)
}

/// Polls until the room and the view hold exactly `expected`, failing after [`WAIT`].
async fn until_members(server: &Server, presence: &Presence<Server>, expected: &[ConnectionId]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let keys: Vec<String> = expected.iter().map(|id| format!("c:{}", id.as_u64())).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let (room, view) = membership(server, presence).await;
        if room == expected && view == keys {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "room {room:?} and view {view:?} never became {expected:?} / {keys:?}"
        );
        tokio::time::sleep(ms(10)).await;
    }
}

/// The next lifecycle event `pick` accepts, within [`WAIT`].
async fn lifecycle<T>(
    events: &mut broadcast::Receiver<ClientEvent>,
    pick: impl Fn(&ClientEvent) -> Option<T>,
) -> T {
    within(async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("lifecycle ended"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn server_removes_a_peer_that_vanished_without_fin() {
    let (ping, idle) = (ms(300), ms(900));
    let (server, presence) =
        start(ServerConfig::default().ping_interval(Some(ping)).idle_timeout(Some(idle))).await;
    let mut events = server.events().unwrap();
    let proxy = FaultProxy::start(server.local_addr().unwrap()).await;
    // The client never pings and waits a minute before suspecting the server: only the
    // server's heartbeat is at work (the client still answers the server's pings).
    let config = ClientConfig::default().ping_interval(None).idle_timeout(Duration::from_secs(60));
    let (client, _channels, _views) = client(&proxy, config).await;
    let NetworkEvent::Added(added) = next_event(&mut events).await else { panic!("expected Added") };
    until_members(&server, &presence, &[added.id()]).await;

    // Silent but alive: no data in either direction for three idle timeouts, only pings
    // and pongs, and the connection stays.
    let quiet = timeout(idle * 3, events.recv()).await;
    assert!(quiet.is_err(), "a healthy silent peer was dropped: {quiet:?}");
    assert_eq!(server.connections().len(), 1);

    let frozen_at = Instant::now();
    assert_eq!(proxy.freeze_all(Flow::Both), 1);
    let NetworkEvent::Removed { connection, frame } = next_event(&mut events).await else {
        panic!("expected Removed")
    };
    let after = frozen_at.elapsed();
    assert_eq!(connection.id(), added.id());
    assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::ABNORMAL, "idle timeout"));
    assert!(
        after >= idle - ping - SLACK,
        "removed {after:?} after the freeze, before idle_timeout - ping_interval"
    );
    assert!(
        after <= ping + idle + MARGIN,
        "removed {after:?} after the freeze, later than ping + idle + margin"
    );
    println!("removed {after:?} after the freeze (ping {ping:?}, idle {idle:?})");

    // Its rooms were left before `Removed`; the views router drops it from the view.
    assert!(server.connections().is_empty());
    assert!(server.adapter().rooms_of(added.id()).await.unwrap().is_empty());
    until_members(&server, &presence, &[]).await;
    assert!(presence.views().is_empty());
    // The client saw nothing: no FIN reached it, and it does not ping.
    assert!(client.is_open());
}

#[tokio::test]
async fn client_reconnects_away_from_a_frozen_server() {
    // The server neither pings nor times out during the test: only the client's
    // heartbeat is at work (the server still answers the client's pings).
    let (server, presence) = start(ServerConfig::default().ping_interval(None).idle_timeout(None)).await;
    let mut events = server.events().unwrap();
    let proxy = FaultProxy::start(server.local_addr().unwrap()).await;
    let (ping, idle) = (ms(300), ms(900));
    let config = ClientConfig::default()
        .ping_interval(Some(ping))
        .idle_timeout(idle)
        .min_reconnection_delay(ms(20))
        .max_reconnection_delay(ms(100));
    let (client, _channels, _views) = client(&proxy, config).await;
    let mut lifecycle_events = client.lifecycle();
    let NetworkEvent::Added(first) = next_event(&mut events).await else { panic!("expected Added") };
    until_members(&server, &presence, &[first.id()]).await;

    // Silent but alive for three idle timeouts: the client's pings are answered.
    let quiet = timeout(
        idle * 3,
        lifecycle(&mut lifecycle_events, |event| {
            matches!(event, ClientEvent::Closed { .. }).then(|| event.clone())
        }),
    )
    .await;
    assert!(quiet.is_err(), "the client left a healthy silent server: {quiet:?}");
    assert!(client.is_open());

    let frozen_at = Instant::now();
    assert_eq!(proxy.freeze_all(Flow::Both), 1);
    let frame = lifecycle(&mut lifecycle_events, |event| match event {
        ClientEvent::Closed { frame } => Some(frame.clone()),
        _ => None,
    })
    .await;
    let after = frozen_at.elapsed();
    assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::ABNORMAL, "idle timeout"));
    assert!(
        after >= idle - ping - SLACK,
        "closed {after:?} after the freeze, before idle_timeout - ping_interval"
    );
    assert!(
        after <= ping + idle + MARGIN,
        "closed {after:?} after the freeze, later than ping + idle + margin"
    );
    println!("client gave up {after:?} after the freeze (ping {ping:?}, idle {idle:?})");

    // It reconnects through the proxy (new connections flow) and restores its channel
    // room and view on the new connection.
    lifecycle(&mut lifecycle_events, |event| matches!(event, ClientEvent::Open).then_some(())).await;
    let NetworkEvent::Added(second) = next_event(&mut events).await else { panic!("expected Added") };
    assert_ne!(second.id(), first.id());
    // The server has no heartbeat here, so the frozen connection is still there (the
    // first test shows the server's side); the new one has joined the room and view.
    until_members(&server, &presence, &[first.id(), second.id()]).await;
    // Cutting the frozen connection (a FIN at last) removes it.
    assert_eq!(proxy.close_all(), 2);
    // The client comes back once more (its `Added` may come before the second `Removed`).
    let (mut removed, mut third) = (Vec::new(), None);
    while removed.len() < 2 || third.is_none() {
        match next_event(&mut events).await {
            NetworkEvent::Removed { connection, .. } => removed.push(connection.id()),
            NetworkEvent::Added(connection) => third = Some(connection),
            _ => {}
        }
    }
    removed.sort();
    assert_eq!(removed, [first.id(), second.id()]);
    let third = third.unwrap();
    until_members(&server, &presence, &[third.id()]).await;
    client.close().await;
}
