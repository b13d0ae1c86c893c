//! The proxy's own contract, over real sockets on 127.0.0.1 with a plain TCP echo behind it.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use super::{Admission, FaultProxy, Flow, MAX_QUEUED_CHUNKS};
use crate::within;

/// Long enough for loopback to deliver anything that is going to arrive.
const QUIET: Duration = Duration::from_millis(200);

/// An echo server: writes back everything it reads, and ends each connection when its
/// peer does.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

async fn start() -> (FaultProxy, TcpStream) {
    let proxy = FaultProxy::start(echo().await).await;
    let client = within(TcpStream::connect(proxy.addr())).await.unwrap();
    (proxy, client)
}

async fn read_exactly(client: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    within(client.read_exact(&mut buf)).await.unwrap();
    buf
}

/// Nothing arrives within [`QUIET`].
async fn silent(client: &mut TcpStream) {
    let read = timeout(QUIET, client.read(&mut [0; 64])).await;
    assert!(read.is_err(), "expected silence, read {read:?}");
}

/// The next read fails with a reset (reads what was delivered before it first).
async fn read_reset(client: &mut TcpStream) {
    let mut rest = Vec::new();
    let error = within(client.read_to_end(&mut rest)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset, "after {rest:?}");
    assert!(rest.is_empty(), "read {rest:?} before the reset");
}

/// A connection to `addr` is reset: at connect, or at its first read.
async fn connect_is_reset(addr: SocketAddr) {
    match within(TcpStream::connect(addr)).await {
        Ok(mut client) => read_reset(&mut client).await,
        Err(error) => assert_eq!(error.kind(), ErrorKind::ConnectionReset),
    }
}

#[tokio::test]
async fn forwards_both_ways_counts_bytes_and_passes_the_fin() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    assert_eq!(link.number(), 1);
    assert_eq!(link.client_addr(), client.local_addr().unwrap());
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let (mut read, mut write) = client.split();
    let (echoed, ()) = tokio::join!(
        async {
            let mut echoed = vec![0; payload.len()];
            within(read.read_exact(&mut echoed)).await.unwrap();
            echoed
        },
        async { within(write.write_all(&payload)).await.unwrap() },
    );
    assert!(echoed == payload, "the bytes came back changed");
    assert_eq!((link.bytes_to_server(), link.bytes_to_client()), (100_000, 100_000));
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.forwarded, stats.open), (1, 1, 1));
    assert_eq!((stats.bytes_to_server, stats.bytes_to_client), (100_000, 100_000));

    // The client's FIN reaches the echo, whose FIN comes back: the connection ends.
    client.shutdown().await.unwrap();
    assert_eq!(within(client.read(&mut [0; 1])).await.unwrap(), 0);
    within(link.closed()).await;
    assert!(link.is_closed());
    proxy.until(|stats| stats.open == 0).await;
    assert!(proxy.connections().is_empty());
}

#[tokio::test]
async fn latency_delays_each_direction_without_reordering() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    let latency = Duration::from_millis(150);
    link.set_latency(Flow::ToServer, latency);
    let sent = Instant::now();
    within(client.write_all(b"first")).await.unwrap();
    proxy.until(|stats| stats.queued_to_server == 5).await;
    // Lowered: the next chunk is due at once, but waits for the first.
    link.set_latency(Flow::ToServer, Duration::ZERO);
    within(client.write_all(b"second")).await.unwrap();
    assert_eq!(read_exactly(&mut client, 11).await, b"firstsecond");
    let took = sent.elapsed();
    assert!(took >= latency, "echoed after {took:?}, before the latency of {latency:?}");
    assert_eq!(proxy.stats().queued_to_server, 0);

    // Proxy-wide, for the open connection and later ones, towards the client this time.
    proxy.set_latency(Flow::ToClient, latency);
    let sent = Instant::now();
    within(client.write_all(b"x")).await.unwrap();
    assert_eq!(read_exactly(&mut client, 1).await, b"x");
    assert!(sent.elapsed() >= latency);
    let mut second = within(TcpStream::connect(proxy.addr())).await.unwrap();
    let sent = Instant::now();
    within(second.write_all(b"y")).await.unwrap();
    assert_eq!(read_exactly(&mut second, 1).await, b"y");
    assert!(sent.elapsed() >= latency);
}

#[tokio::test]
async fn a_long_latency_queue_is_bounded_and_holds_the_sender_back() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    link.set_latency(Flow::ToServer, Duration::from_secs(60));
    // Far more than the queue plus every kernel buffer on the way: the write blocks.
    let payload = vec![7u8; 64 * 1024 * 1024];
    let write = timeout(Duration::from_millis(500), client.write_all(&payload)).await;
    assert!(write.is_err(), "64 MiB went into a proxy that holds at most {MAX_QUEUED_CHUNKS} chunks");
    assert_eq!(link.bytes_to_server(), 0);
}

#[tokio::test]
async fn reset_sends_a_rst_to_both_peers() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    within(client.write_all(b"ping")).await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"ping");
    assert!(link.reset());
    within(link.closed()).await;
    read_reset(&mut client).await;
    assert!(!link.reset(), "already closed");
    proxy.until(|stats| stats.open == 0).await;
}

#[tokio::test]
async fn reset_after_cuts_inside_the_next_bytes() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    // 5 more bytes reach the client, then the reset, with the rest of the echo in hand.
    link.reset_after(Flow::ToClient, 5);
    within(client.write_all(&[1u8; 100])).await.unwrap();
    assert_eq!(read_exactly(&mut client, 5).await, [1u8; 5]);
    read_reset(&mut client).await;
    within(link.closed()).await;
    assert_eq!((link.bytes_to_server(), link.bytes_to_client()), (100, 5));

    // Towards the server: the echo hears 3 bytes of the next 10, the client a reset.
    let mut second = within(TcpStream::connect(proxy.addr())).await.unwrap();
    let link = proxy.connection_after(link.number()).await;
    link.reset_after(Flow::ToServer, 3);
    within(second.write_all(&[2u8; 10])).await.unwrap();
    within(link.closed()).await;
    assert_eq!(link.bytes_to_server(), 3);
    // The echo sent its 3 bytes back; they may or may not have crossed before the reset.
    let mut rest = Vec::new();
    let error = within(second.read_to_end(&mut rest)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    assert!(rest.len() <= 3);
}

#[tokio::test]
async fn close_sends_a_fin() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    assert_eq!(proxy.close_all(), 1);
    within(link.closed()).await;
    assert_eq!(within(client.read(&mut [0; 1])).await.unwrap(), 0, "an end of stream");
}

#[tokio::test]
async fn freeze_holds_bytes_without_closing_and_thaw_delivers_them_in_order() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    within(client.write_all(b"a")).await.unwrap();
    assert_eq!(read_exactly(&mut client, 1).await, b"a");

    // Towards the client only: the echo gets the bytes, the client hears nothing.
    assert!(link.freeze(Flow::ToClient));
    within(client.write_all(b"bc")).await.unwrap();
    proxy.until(|stats| stats.bytes_to_server == 3).await;
    silent(&mut client).await;
    assert_eq!(link.bytes_to_client(), 1);
    // Both ways: not even the server hears.
    assert_eq!(proxy.freeze_all(Flow::Both), 1);
    within(client.write_all(b"de")).await.unwrap();
    silent(&mut client).await;
    assert_eq!(link.bytes_to_server(), 3);
    assert!(!link.is_closed());

    assert_eq!(proxy.thaw_all(Flow::Both), 1);
    assert_eq!(read_exactly(&mut client, 4).await, b"bcde");
    assert_eq!((link.bytes_to_server(), link.bytes_to_client()), (5, 5));
}

#[tokio::test]
async fn a_frozen_connection_is_closed_when_the_proxy_is_dropped() {
    let (proxy, mut client) = start().await;
    let link = proxy.connection().await;
    proxy.freeze_all(Flow::Both);
    drop(proxy);
    within(link.closed()).await;
    assert_eq!(within(client.read(&mut [0; 1])).await.unwrap(), 0);
}

#[tokio::test]
async fn blackhole_accepts_and_forwards_nothing_until_admission_returns() {
    let (proxy, mut client) = start().await;
    let first = proxy.connection().await;
    proxy.set_admission(Admission::Blackhole);
    // The open connection still flows: admission is for new ones.
    within(client.write_all(b"1")).await.unwrap();
    assert_eq!(read_exactly(&mut client, 1).await, b"1");

    let mut holed = within(TcpStream::connect(proxy.addr())).await.unwrap();
    within(holed.write_all(b"anyone?")).await.unwrap();
    silent(&mut holed).await;
    let stats = proxy.until(|stats| stats.blackholed == 1).await;
    assert_eq!((stats.accepted, stats.forwarded, stats.open), (2, 1, 1));

    proxy.set_admission(Admission::Forward);
    let mut back = within(TcpStream::connect(proxy.addr())).await.unwrap();
    let third = proxy.connection_after(first.number()).await;
    assert_eq!(third.number(), 3);
    within(back.write_all(b"2")).await.unwrap();
    assert_eq!(read_exactly(&mut back, 1).await, b"2");
    // The blackholed one stays silent, and ends with the proxy.
    silent(&mut holed).await;
    drop(proxy);
    assert_eq!(within(holed.read(&mut [0; 1])).await.unwrap(), 0);
}

#[tokio::test]
async fn refuse_resets_new_connections() {
    let (proxy, _client) = start().await;
    // Accepted before the admission changes (a connect completes before the accept).
    proxy.connection().await;
    proxy.set_admission(Admission::Refuse);
    connect_is_reset(proxy.addr()).await;
    let stats = proxy.until(|stats| stats.refused == 1).await;
    assert_eq!((stats.accepted, stats.forwarded), (2, 1));
}

#[tokio::test]
async fn a_target_that_is_down_is_a_refusal() {
    // A port that was free a moment ago: nobody listens on it.
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let proxy = FaultProxy::start(target).await;
    connect_is_reset(proxy.addr()).await;
    assert_eq!(proxy.until(|stats| stats.refused == 1).await.forwarded, 0);
}

#[tokio::test]
async fn a_connection_is_found_by_the_address_the_target_sees() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = FaultProxy::start(listener.local_addr().unwrap()).await;
    let _client = within(TcpStream::connect(proxy.addr())).await.unwrap();
    let (_accepted, seen_as) = within(listener.accept()).await.unwrap();
    proxy.connection().await;
    let link = proxy.connection_seen_as(seen_as).expect("found");
    assert_eq!(link.upstream_addr(), seen_as);
    assert!(proxy.connection_seen_as(proxy.addr()).is_none());
}
