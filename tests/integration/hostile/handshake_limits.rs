//! Items 2 and 3: silent, trickling and oversized upgrade requests on both mounts, and the
//! cap on connections still in their handshake (the oldest pending one is closed).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realtime::ws_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A server on its own listener, or mounted in axum on `Server::axum_listener`; returns
/// the WebSocket URL.
async fn start(axum_mount: bool, config: ServerConfig) -> (SocketAddr, String) {
    if axum_mount {
        let server = Server::detached(config).expect("detached");
        let app = axum::Router::new()
            .route("/health", axum::routing::get(|| async { "ok" }))
            .route("/ws", server.axum_route());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let listener = server.axum_listener(listener);
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<realtime::ws_server::RemoteAddr>(),
            )
            .await;
        });
        (addr, format!("ws://{addr}/ws"))
    } else {
        let server = echo_server(config).await;
        let addr = server.local_addr().expect("address");
        (addr, format!("ws://{addr}/"))
    }
}

/// Reads until the server closes the socket; returns what it sent. Fails after `limit`.
async fn read_until_closed(socket: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(read) => received.extend_from_slice(&buf[..read]),
            }
        }
    })
    .await
    .expect("the server kept the socket open");
    received
}

fn short_timeout() -> ServerConfig {
    ServerConfig::default().handshake_timeout(Duration::from_secs(1))
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_handshake_timeout_on_both_mounts() {
    for axum_mount in [false, true] {
        let (addr, _) = start(axum_mount, short_timeout()).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        read_until_closed(&mut silent, Duration::from_secs(5)).await;
        assert!(started.elapsed() >= Duration::from_millis(900), "axum: {axum_mount}");
    }
}

#[tokio::test]
async fn a_head_trickling_in_is_cut_at_the_deadline_for_the_whole_head() {
    for axum_mount in [false, true] {
        let (addr, _) = start(axum_mount, short_timeout()).await;
        let mut trickle = TcpStream::connect(addr).await.unwrap();
        let head = b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let started = Instant::now();
        let mut closed_at = None;
        for byte in head {
            // One byte every 100 ms: each read is far within any per-read timeout.
            if trickle.write_all(&[*byte]).await.is_err() {
                closed_at = Some(started.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut probe = [0u8; 64];
            if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), trickle.read(&mut probe)).await
            {
                closed_at = Some(started.elapsed());
                break;
            }
        }
        let closed_at = closed_at.expect("the trickling head was never cut");
        assert!(closed_at < Duration::from_secs(4), "axum: {axum_mount}, closed after {closed_at:?}");
    }
}

#[tokio::test]
async fn an_oversized_head_gets_431_text_plain_and_connection_close_on_both_mounts() {
    for axum_mount in [false, true] {
        let (addr, _) = start(axum_mount, ServerConfig::default().max_handshake_size(1024)).await;
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let filler = "a".repeat(4000);
        let head = format!("GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: {filler}\r\n\r\n");
        let _ = socket.write_all(head.as_bytes()).await;
        let response = String::from_utf8_lossy(&read_until_closed(&mut socket, WAIT).await).to_lowercase();
        assert!(response.starts_with("http/1.1 431"), "axum: {axum_mount}: {response}");
        assert!(response.contains("content-type: text/plain"), "{response}");
        assert!(response.contains("connection: close"), "{response}");
    }
}

#[tokio::test]
async fn refusals_on_the_axum_route_have_the_shape_of_the_bound_server() {
    let (addr, _) = start(true, ServerConfig::default()).await;
    let mut socket = TcpStream::connect(addr).await.unwrap();
    // Not an upgrade: refused by the route with 400.
    socket.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let response = String::from_utf8_lossy(&read_until_closed(&mut socket, WAIT).await).to_lowercase();
    assert!(response.starts_with("http/1.1 400"), "{response}");
    assert!(response.contains("content-type: text/plain"), "{response}");
    assert!(response.contains("connection: close"), "{response}");
}

#[tokio::test]
async fn past_the_pending_cap_the_oldest_silent_socket_goes_and_a_real_client_gets_in() {
    for axum_mount in [false, true] {
        // The handshake timeout is the default 10 s: what closes the silent sockets here
        // within a second is the cap.
        let (addr, url) = start(axum_mount, ServerConfig::default().max_pending_handshakes(20)).await;
        let mut silent = Vec::new();
        for _ in 0..100 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        // The first 80 were evicted by the 20 after them.
        read_until_closed(&mut silent[0], Duration::from_secs(2)).await;
        read_until_closed(&mut silent[79], Duration::from_secs(2)).await;
        // A real client completes its handshake although silent sockets keep coming.
        let flood = tokio::spawn(async move {
            let mut more = Vec::new();
            for _ in 0..200 {
                if let Ok(socket) = TcpStream::connect(addr).await {
                    more.push(socket);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            more
        });
        let client = within(tokio_tungstenite::connect_async(url.as_str())).await;
        assert!(client.is_ok(), "axum: {axum_mount}: {:?}", client.err());
        let _ = flood.await;
    }
}

#[tokio::test]
async fn pending_handshakes_count_against_max_connections() {
    let (addr, url) = start(false, ServerConfig::default().max_connections(Some(5))).await;
    let (_first, _) = within(tokio_tungstenite::connect_async(url.as_str())).await.unwrap();
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // One open plus four pending fill the five; a fifth pending socket evicts the oldest.
    let _newest = TcpStream::connect(addr).await.unwrap();
    read_until_closed(&mut silent[0], Duration::from_secs(2)).await;
}
