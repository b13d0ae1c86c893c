//! `bench resume serve`: `ws_server::Server` with its default configuration (sessions on)
//! and no rate limit, on a current-thread runtime: every connection joins one room and gets
//! `hello`; the control connection's `burst M` broadcasts M numbered frames to the room.

use std::sync::Arc;

use network_core::{Adapter, Message, Network, NetworkEvent, Room, Target};
use ws_server::{Server, ServerConfig};

use super::{CONTROL_PATH, HELLO, burst_done, burst_frame, say};
use crate::{Args, BoxError};

pub(super) fn main(args: &Args) -> Result<(), BoxError> {
    let listen = args.str_or("listen", "127.0.0.1:0");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The load generator reconnects thousands of clients at once on purpose; the limiter's
    // policy is not what is measured (as in `bench serve`).
    let config = ServerConfig::default().rate_limit(None);
    runtime.block_on(async move {
        let server = Server::bind(listen.as_str(), config).await?;
        say(&format!("listening on ws://{}", server.local_addr().ok_or("no local address")?))?;
        serve(server).await
    })
}

async fn serve(server: Server) -> Result<(), BoxError> {
    let mut events = server.events().ok_or("events already taken")?;
    let room: Room = Arc::from("all");
    let target = Target::room(room.clone());
    while let Some(event) = events.recv().await {
        match event {
            NetworkEvent::Added(connection) if connection.meta().path != CONTROL_PATH => {
                let _ = server.adapter().join(connection.id(), room.clone()).await;
                let _ = connection.send(Message::text(HELLO));
            }
            NetworkEvent::Message { connection, message } if connection.meta().path == CONTROL_PATH => {
                let Some(count) = message.as_text().and_then(|text| text.strip_prefix("burst ")) else {
                    continue;
                };
                let Ok(count) = count.trim().parse::<u64>() else { continue };
                for seq in 1..=count {
                    // One shared payload per frame, however many sessions hold it.
                    let _ = server.adapter().broadcast(&target, Message::text(burst_frame(seq))).await;
                }
                let _ = connection.send(Message::text(burst_done(count)));
            }
            NetworkEvent::Removed { connection, .. } => {
                let _ = server.adapter().leave_all(connection.id()).await;
            }
            _ => {}
        }
    }
    Ok(())
}
