//! Routers receive only the frames addressed to them, several share one connection, and
//! what no router claims reaches the application. Rooms go through the adapter.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use futures_util::SinkExt;
use realtime::network_core::{
    Adapter, AttachError, ConnectionId, Message, Network, NetworkEvent, Router, Target, envelope,
};
use realtime::ws_server::ServerConfig;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Reports what it sees, tagged with its name, and answers each frame with its name.
struct Recorder {
    name: &'static str,
    seen: mpsc::Sender<(&'static str, String)>,
}

impl<N: Network> Router<N> for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        let note = match &event {
            NetworkEvent::Added(_) => "added".to_owned(),
            NetworkEvent::Message { connection, message } => {
                let body: String = envelope::decode(self.name, message).unwrap();
                connection
                    .send(envelope::json(self.name, &format!("{} got {body}", self.name)).unwrap())
                    .unwrap();
                format!("message {body}")
            }
            NetworkEvent::Removed { .. } => "removed".to_owned(),
            _ => "other".to_owned(),
        };
        self.seen.send((self.name, note)).await.unwrap();
    }
}

#[tokio::test]
async fn frames_go_to_the_router_their_envelope_names() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let (seen_tx, mut seen) = mpsc::channel(64);
    server.attach(Recorder { name: "alpha", seen: seen_tx.clone() }).unwrap();
    server.attach(Recorder { name: "beta", seen: seen_tx.clone() }).unwrap();
    assert!(matches!(
        server.attach(Recorder { name: "alpha", seen: seen_tx.clone() }),
        Err(AttachError::NameTaken(_))
    ));
    assert!(matches!(
        server.attach(Recorder { name: "Not Valid", seen: seen_tx }),
        Err(AttachError::InvalidName(_))
    ));

    let mut ws = raw_client(&url(&server)).await;
    let NetworkEvent::Added(_) = next_event(&mut events).await else { panic!() };
    let mut added = vec![within(seen.recv()).await.unwrap(), within(seen.recv()).await.unwrap()];
    added.sort();
    assert_eq!(added, vec![("alpha", "added".to_owned()), ("beta", "added".to_owned())]);

    // JSON envelope for beta, MessagePack envelope for alpha, and two application frames:
    // a plain one and an envelope naming a router that is not attached.
    ws.send(WsMessage::text(r#"{"$r":"beta","d":"one"}"#)).await.unwrap();
    assert_eq!(within(seen.recv()).await.unwrap(), ("beta", "message one".to_owned()));
    assert_eq!(next_data(&mut ws).await, WsMessage::text(r#"{"$r":"beta","d":"beta got one"}"#));

    let packed = envelope::msgpack("alpha", "two").unwrap();
    ws.send(WsMessage::binary(packed.payload().clone())).await.unwrap();
    assert_eq!(within(seen.recv()).await.unwrap(), ("alpha", "message two".to_owned()));
    let WsMessage::Text(reply) = next_data(&mut ws).await else { panic!() };
    assert_eq!(reply.as_str(), r#"{"$r":"alpha","d":"alpha got two"}"#);

    ws.send(WsMessage::text("plain")).await.unwrap();
    ws.send(WsMessage::text(r#"{"$r":"gamma","d":1}"#)).await.unwrap();
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    assert_eq!(message.as_text(), Some("plain"));
    let NetworkEvent::Message { message, .. } = next_event(&mut events).await else { panic!() };
    assert_eq!(envelope::router_name(&message), Some("gamma"));
    assert!(seen.try_recv().is_err(), "routers must not see application frames");

    ws.close(None).await.unwrap();
    let mut removed = vec![within(seen.recv()).await.unwrap(), within(seen.recv()).await.unwrap()];
    removed.sort();
    assert_eq!(removed, vec![("alpha", "removed".to_owned()), ("beta", "removed".to_owned())]);
}

#[tokio::test]
async fn room_broadcasts_reach_each_member_once_and_skip_the_excepted() {
    let (server, mut events) = server(ServerConfig::default()).await;
    let mut clients = Vec::new();
    let mut ids: Vec<ConnectionId> = Vec::new();
    for _ in 0..3 {
        clients.push(raw_client(&url(&server)).await);
        let NetworkEvent::Added(connection) = next_event(&mut events).await else { panic!() };
        ids.push(connection.id());
    }
    let rooms = server.adapter();
    rooms.join(ids[0], "red".into()).await.unwrap();
    rooms.join(ids[0], "blue".into()).await.unwrap();
    rooms.join(ids[1], "blue".into()).await.unwrap();
    assert_eq!(rooms.members("blue").await.unwrap().len(), 2);

    // Member of both rooms: one copy. Not a member: nothing.
    let sent = rooms.broadcast(&Target::rooms(["red", "blue"]), Message::text("both")).await.unwrap();
    assert_eq!(sent, 2);
    let sent = rooms.broadcast(&Target::room("blue").except(ids[1]), Message::text("not 1")).await.unwrap();
    assert_eq!(sent, 1);
    let sent = rooms.broadcast(&Target::everyone(), Message::text("all")).await.unwrap();
    assert_eq!(sent, 3);

    assert_eq!(next_data(&mut clients[0]).await, WsMessage::text("both"));
    assert_eq!(next_data(&mut clients[0]).await, WsMessage::text("not 1"));
    assert_eq!(next_data(&mut clients[0]).await, WsMessage::text("all"));
    assert_eq!(next_data(&mut clients[1]).await, WsMessage::text("both"));
    assert_eq!(next_data(&mut clients[1]).await, WsMessage::text("all"));
    assert_eq!(next_data(&mut clients[2]).await, WsMessage::text("all"));

    // A closed connection leaves its rooms.
    clients.remove(0).close(None).await.unwrap();
    let NetworkEvent::Removed { .. } = next_event(&mut events).await else { panic!() };
    assert!(rooms.rooms_of(ids[0]).await.unwrap().is_empty());
    assert_eq!(rooms.members("red").await.unwrap(), Vec::<ConnectionId>::new());
    assert_eq!(server.broadcast_local(&Message::text("x")), 2);
}
