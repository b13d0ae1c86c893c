//! Item 1: a burst of allowed messages must not drop healthy readers; a reader that takes
//! nothing is dropped by the stall timer (1008 "slow consumer"), and the publisher feeding
//! it is paused meanwhile, so the stuck reader's queue never reaches its hard bound.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime::network_core::{Adapter, Network, NetworkEvent, Target};
use realtime::ws_server::{Server, ServerConfig};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::*;

/// A relay like the example server's: every application frame goes to every other
/// connection through the adapter (the payload is shared, not copied).
async fn relay(config: ServerConfig) -> Server {
    let (server, mut events) = server(config).await;
    let relay = server.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetworkEvent::Message { connection, message } = event {
                let others = Target::everyone().except(connection.id());
                let _ = relay.adapter().broadcast(&others, message).await;
            }
        }
    });
    server
}

/// Waits until the server counts `n` connections.
async fn connections(server: &Server, n: usize) {
    within(async {
        while server.connections().len() < n {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// A client whose socket has a small receive buffer, as a phone's or a busy browser's
/// effectively has: a burst then waits in the server's queue, not in the kernel.
async fn small_buffer_client(url: &str) -> WebSocketStream<TcpStream> {
    let addr = url.trim_start_matches("ws://").trim_end_matches('/').parse().expect("address");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    let stream = within(socket.connect(addr)).await.expect("connect");
    let (ws, _) = within(tokio_tungstenite::client_async(url, stream)).await.expect("upgrade");
    ws
}

/// Healthy readers that read everything at a steady pace (`pace` per frame); each returns
/// how many data frames it got, or what ended it.
fn steady_readers(
    readers: Vec<WebSocketStream<TcpStream>>,
    expected: usize,
    pace: Duration,
) -> JoinSet<Result<usize, String>> {
    let mut set = JoinSet::new();
    for mut reader in readers {
        set.spawn(async move {
            let mut frames = 0;
            while frames < expected {
                match tokio::time::timeout(Duration::from_secs(30), reader.next()).await {
                    Ok(Some(Ok(WsMessage::Binary(_)))) => {
                        frames += 1;
                        tokio::time::sleep(pace).await;
                    }
                    Ok(Some(Ok(WsMessage::Close(frame)))) => return Err(format!("closed: {frame:?}")),
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(error))) => return Err(format!("error: {error}")),
                    Ok(None) => return Err("ended".into()),
                    Err(_) => return Err(format!("timed out after {frames} frames")),
                }
            }
            Ok(frames)
        });
    }
    set
}

async fn burst(count: usize, size: usize) {
    // The defaults, as a new user's server runs them.
    let server = relay(ServerConfig::default()).await;
    let mut readers = Vec::new();
    for _ in 0..10 {
        readers.push(small_buffer_client(&url(&server)).await);
    }
    let mut publisher = raw_client(&url(&server)).await;
    connections(&server, 11).await;
    let mut readers = steady_readers(readers, count, Duration::from_millis(2));
    let payload = vec![7u8; size];
    for _ in 0..count {
        within(publisher.send(WsMessage::binary(payload.clone()))).await.expect("send");
    }
    while let Some(result) = within(readers.join_next()).await {
        assert_eq!(result.expect("reader task"), Ok(count), "a healthy reader lost the burst");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_x_20_kb_reaches_ten_steady_readers() {
    burst(300, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_120_x_50_kb_reaches_ten_steady_readers() {
    burst(120, 50_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_reader_is_dropped_by_the_stall_timer_and_its_publisher_waits() {
    let config = ServerConfig::default()
        .outgoing_queue_size(256 * 1024)
        .max_outgoing_queue_size(4 << 20)
        .slow_consumer_timeout(Duration::from_secs(1));
    let server = relay(config).await;
    let _stuck = raw_client(&url(&server)).await; // never reads
    connections(&server, 1).await;
    let stuck_connection = server.connections().pop().expect("stuck connection");
    let fast = small_buffer_client(&url(&server)).await;
    let mut publisher = raw_client(&url(&server)).await;
    connections(&server, 3).await;

    // 64 MiB: far past the kernel's socket buffers and 16 times the stuck reader's hard
    // bound. Without the pause its queue would hit the bound ("outgoing queue full");
    // with it, the publisher waits until the stall timer drops the stuck reader.
    let count = 1024;
    let mut readers = steady_readers(vec![fast], count, Duration::ZERO);
    let payload = vec![1u8; 64 * 1024];
    let sending = tokio::spawn(async move {
        for _ in 0..count {
            publisher.send(WsMessage::binary(payload.clone())).await.expect("send");
        }
        publisher
    });
    let frame = within(stuck_connection.closed()).await;
    assert_eq!(frame.code.0, 1008, "{frame}");
    assert_eq!(frame.reason, "slow consumer");
    let _publisher =
        tokio::time::timeout(Duration::from_secs(60), sending).await.expect("publisher").unwrap();
    let fast_result =
        tokio::time::timeout(Duration::from_secs(60), readers.join_next()).await.unwrap().unwrap();
    assert_eq!(fast_result.unwrap(), Ok(count));
}

/// The same burst as `say` events of the channels router, fanned out to room `lobby` of
/// channel `/chat` (payloads re-encoded by the router: the per-receiver bounds apply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_into_a_channels_room_reaches_ten_steady_readers() {
    use realtime::channels::{Channel, ChannelsConfig, RemoteError};
    use serde_json::{Value, json};

    let (server, _events) = server(ServerConfig::default()).await;
    let chat = Channel::new()
        .on_join(|ctx| async move {
            ctx.join_room("lobby").await.map_err(|e| RemoteError::internal(e.to_string()))?;
            Ok(())
        })
        .on("say", |ctx, text: String| async move {
            ctx.broadcast_to_room("lobby", "said", &text)
                .await
                .map_err(|e| RemoteError::internal(e.to_string()))?;
            Ok(())
        });
    ChannelsConfig::default().channel("/chat", chat).attach(&server).unwrap();
    let join = |id: u64| json!({"$r": "ch", "d": {"t": "join", "ch": "/chat", "id": id}}).to_string();
    let joined = |frame: &WsMessage| {
        frame
            .to_text()
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .is_some_and(|value| value["d"]["t"] == "joined" && value["d"]["ch"] == "/chat")
    };
    let mut readers = Vec::new();
    for _ in 0..10 {
        let mut reader = small_buffer_client(&url(&server)).await;
        within(reader.send(WsMessage::text(join(1)))).await.unwrap();
        loop {
            let frame = within(reader.next()).await.unwrap().unwrap();
            if joined(&frame) {
                break;
            }
        }
        readers.push(reader);
    }
    let mut publisher = raw_client(&url(&server)).await;
    within(publisher.send(WsMessage::text(join(1)))).await.unwrap();
    while !joined(&next_data(&mut publisher).await) {}

    let count = 200;
    let mut set = JoinSet::new();
    for mut reader in readers {
        set.spawn(async move {
            let mut said = 0;
            while said < count {
                match tokio::time::timeout(Duration::from_secs(30), reader.next()).await {
                    Ok(Some(Ok(WsMessage::Text(text)))) if text.contains(r#""ev":"said""#) => {
                        said += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Ok(Some(Ok(WsMessage::Close(frame)))) => return Err(format!("closed: {frame:?}")),
                    Ok(Some(Ok(_))) => {}
                    other => return Err(format!("after {said}: {other:?}")),
                }
            }
            Ok(said)
        });
    }
    let text = "x".repeat(50_000);
    for _ in 0..count {
        let say =
            json!({"$r": "ch", "d": {"t": "emit", "ch": "/chat", "ev": "say", "data": text}}).to_string();
        within(publisher.send(WsMessage::text(say))).await.unwrap();
    }
    while let Some(result) = within(set.join_next()).await {
        assert_eq!(result.unwrap(), Ok(count), "a healthy reader lost the burst");
    }
}
