//! A TCP proxy on 127.0.0.1:0 that can freeze or cut the connections it carries.
//!
//! Freezing a connection stops forwarding in both directions without closing either
//! socket: to both ends it looks like a peer that vanished without a FIN (a laptop lid
//! closed, a cable pulled, a NAT entry dropped). Killing it closes both sockets.
//!
//! A test binary includes it with `#[path = "../support/proxy.rs"] mod proxy;` in its `main.rs`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Flowing,
    Frozen,
    Killed,
}

/// The pairs by the proxy's local address on the upstream side, which is the address the
/// server reports as the connection's `remote_addr`.
type Pairs = Arc<Mutex<HashMap<SocketAddr, watch::Sender<State>>>>;

/// The proxy; dropping it cuts every connection and stops accepting.
pub struct Proxy {
    addr: SocketAddr,
    pairs: Pairs,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards every connection made to [`addr`](Self::addr) to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy address");
        let pairs = Pairs::default();
        let accept = tokio::spawn(accept_loop(listener, target, pairs.clone()));
        Self { addr, pairs, accept }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Freezes every connection open now; later connections flow normally.
    pub fn freeze_all(&self) -> usize {
        self.set_all(State::Frozen)
    }

    /// Cuts every connection open now.
    pub fn kill_all(&self) -> usize {
        self.set_all(State::Killed)
    }

    /// Freezes the connection the server sees as coming from `upstream`; false if unknown.
    pub fn freeze(&self, upstream: SocketAddr) -> bool {
        self.set(upstream, State::Frozen)
    }

    /// Cuts the connection the server sees as coming from `upstream`; false if unknown.
    pub fn kill(&self, upstream: SocketAddr) -> bool {
        self.set(upstream, State::Killed)
    }

    /// Connections not killed (frozen ones included).
    pub fn len(&self) -> usize {
        let mut pairs = self.pairs.lock().unwrap();
        pairs.retain(|_, state| !state.is_closed());
        pairs.len()
    }

    fn set(&self, upstream: SocketAddr, state: State) -> bool {
        let mut pairs = self.pairs.lock().unwrap();
        let Some(sender) = pairs.get(&upstream) else { return false };
        sender.send_replace(state);
        if state == State::Killed {
            pairs.remove(&upstream);
        }
        true
    }

    fn set_all(&self, state: State) -> usize {
        let mut pairs = self.pairs.lock().unwrap();
        for sender in pairs.values() {
            sender.send_replace(state);
        }
        let count = pairs.len();
        if state == State::Killed {
            pairs.clear();
        }
        count
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.kill_all();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, pairs: Pairs) {
    loop {
        let Ok((downstream, _)) = listener.accept().await else { continue };
        // Connected in a task of its own, so that one slow connect does not hold up the
        // next accept.
        tokio::spawn(forward(downstream, target, pairs.clone()));
    }
}

async fn forward(downstream: TcpStream, target: SocketAddr, pairs: Pairs) {
    let Ok(upstream) = TcpStream::connect(target).await else { return };
    let _ = downstream.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let Ok(key) = upstream.local_addr() else { return };
    let (state, watch) = watch::channel(State::Flowing);
    {
        let mut pairs = pairs.lock().unwrap();
        // Forget pairs whose pumps have both ended.
        pairs.retain(|_, state| !state.is_closed());
        pairs.insert(key, state);
    }
    let (down_read, down_write) = downstream.into_split();
    let (up_read, up_write) = upstream.into_split();
    tokio::spawn(pump(down_read, up_write, watch.clone()));
    tokio::spawn(pump(up_read, down_write, watch));
}

/// Copies `from` to `to` while the pair flows; holds both sockets without touching them
/// while it is frozen; drops them (closing the sockets) when it is killed or the proxy is
/// dropped. An end of stream is passed on as a FIN.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut state: watch::Receiver<State>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !flowing(&mut state).await {
            return;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    // Pass the FIN on (unless frozen meanwhile). Each socket closes once
                    // both of its halves, held by the two pumps, are dropped.
                    if flowing(&mut state).await {
                        let _ = to.shutdown().await;
                    }
                    return;
                }
                Ok(n) => n,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        if !flowing(&mut state).await {
            return;
        }
        tokio::select! {
            written = to.write_all(&buf[..n]) => {
                if written.is_err() {
                    return;
                }
            }
            _ = state.wait_for(|s| *s == State::Killed) => return,
        }
    }
}

/// Waits while the pair is frozen: true once it flows, false when it is killed.
async fn flowing(state: &mut watch::Receiver<State>) -> bool {
    loop {
        match *state.borrow_and_update() {
            State::Flowing => return true,
            State::Killed => return false,
            State::Frozen => {}
        }
        if state.changed().await.is_err() {
            return false;
        }
    }
}
