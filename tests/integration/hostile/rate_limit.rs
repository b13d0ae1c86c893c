//! Item 8: per-connection rate limits slow a sender (its socket is not read) and close it
//! with 1008 only when it stays over the limit for `close_after`; the defaults slow
//! nothing an interactive client does.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use realtime::ws_server::{RateLimit, ServerConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::*;

/// Sends `count` messages of `size` bytes at once, then reads every echo.
async fn burst_and_echoes(ws: &mut RawClient, count: usize, size: usize) {
    let (mut write, mut read) = ws.split();
    let sending = async {
        for i in 0..count {
            let mut payload = vec![0u8; size.max(4)];
            payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
            write.send(WsMessage::binary(payload)).await.expect("send");
        }
    };
    let receiving = async {
        for i in 0..count {
            loop {
                match read.next().await {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        assert_eq!(&bytes[..4], &(i as u32).to_be_bytes(), "echo {i} out of order");
                        break;
                    }
                    Some(Ok(WsMessage::Close(frame))) => panic!("closed after {i} echoes: {frame:?}"),
                    Some(Ok(_)) => continue,
                    other => panic!("ended after {i} echoes: {other:?}"),
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(sending, receiving) })
        .await
        .expect("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_let_a_few_megabytes_and_a_few_hundred_requests_through() {
    let server = echo_server(ServerConfig::default()).await;
    let mut ws = raw_client(&url(&server)).await;
    // An image into a chat room: 6 MB in six messages.
    burst_and_echoes(&mut ws, 6, 1_000_000).await;
    // Chatty clients: 500 small requests at once.
    burst_and_echoes(&mut ws, 500, 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_over_the_limit_is_slowed_not_closed() {
    let limit = RateLimit::default().messages_per_second(100).message_burst(20).close_after(None);
    let server = echo_server(ServerConfig::default().rate_limit(Some(limit))).await;
    let mut ws = raw_client(&url(&server)).await;
    let started = Instant::now();
    // 20 go at once, the other 200 at 100 per second: about 2 s, never less.
    burst_and_echoes(&mut ws, 220, 16).await;
    assert!(started.elapsed() >= Duration::from_millis(1900), "not slowed: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_limited_too() {
    let limit = RateLimit::default().bytes_per_second(1 << 20).byte_burst(1 << 20).close_after(None);
    let server = echo_server(ServerConfig::default().rate_limit(Some(limit))).await;
    let mut ws = raw_client(&url(&server)).await;
    let started = Instant::now();
    // 3 MiB through a 1 MiB bucket refilling 1 MiB/s: about 2 s.
    burst_and_echoes(&mut ws, 48, 64 * 1024).await;
    assert!(started.elapsed() >= Duration::from_millis(1900), "not slowed: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_kept_over_the_limit_is_closed_with_1008() {
    let limit = RateLimit::default()
        .messages_per_second(20)
        .message_burst(10)
        .close_after(Some(Duration::from_secs(1)));
    let server = echo_server(ServerConfig::default().rate_limit(Some(limit))).await;
    let ws = raw_client(&url(&server)).await;
    let (mut write, mut read) = ws.split();
    let flood = tokio::spawn(async move {
        for _ in 0..10_000 {
            if write.send(WsMessage::text("spam")).await.is_err() {
                break;
            }
        }
    });
    let frame = within(async {
        loop {
            match read.next().await {
                Some(Ok(WsMessage::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "rate limit exceeded");
    flood.abort();
}
