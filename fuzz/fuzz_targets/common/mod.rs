//! What the router targets share: an in-memory [`Network`] built from network-core's public
//! pieces (the same `HubDriver` and `LocalAdapter` that `ws-server` and `ws-client` use, minus
//! the sockets), and the format of their inputs, a script of frames.
//!
//! # Input format
//! The input is a list of steps separated by a blank line (`\n\n`). The first byte of a
//! step is a control byte; the rest is the frame:
//!
//! | bit | meaning |
//! |---|---|
//! | `0x01` | binary frame (MessagePack), else text (JSON) |
//! | `0x02` | raw: the rest is the whole frame; else it is the router's body (`d`), wrapped in its envelope |
//! | `0x0c` | server targets: which of the four peers sends it (`>> 2`) |
//! | `0x20` | afterwards, let 100 ms of (virtual) time pass: acknowledgement timeouts, coalesced diffs |
//! | `0x40` | before the frame, the peer's connection ends and opens again (a reconnect) |
//!
//! The ASCII digits are the usual controls: `0` is a JSON body from peer 0, `1` a
//! MessagePack body from peer 0, `4`/`5` from peer 1, `8`/`9` from peer 2, `<`/`=` from
//! peer 3, `2` a raw text frame; each then lets 100 ms pass.
//!
//! The clock is tokio's paused clock: timers fire as soon as every task is idle, so a run
//! is deterministic and takes no wall-clock time waiting.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use network_core::{
    CloseCode, CloseFrame, ClosedSignal, Connection, ConnectionId, ConnectionMeta, Hub, HubConfig, HubDriver,
    Identity, Link, LocalAdapter, Message, Network, SendError, UntakenEvents,
};

/// A network of in-memory connections whose outgoing frames are checked, not sent.
#[derive(Clone)]
pub struct Net {
    driver: HubDriver,
    adapter: LocalAdapter,
}

impl Net {
    pub fn new() -> Self {
        let config = HubConfig::default().router_queue_capacity(64).event_queue_capacity(64);
        let driver = HubDriver::new(config, UntakenEvents::Discard);
        let adapter = LocalAdapter::new(driver.hub().registry().clone());
        Self { driver, adapter }
    }

    /// The transport's side of the hub: what the targets report frames through.
    pub fn driver(&self) -> &HubDriver {
        &self.driver
    }
}

impl Network for Net {
    type Adapter = LocalAdapter;

    fn hub(&self) -> &Hub {
        self.driver.hub()
    }

    fn adapter(&self) -> &LocalAdapter {
        &self.adapter
    }
}

/// Checks each frame a router sends to a peer (panics on a bad one).
pub type Check = Arc<dyn Fn(&Message) + Send + Sync>;

struct Outbox {
    check: Check,
    closed: Arc<AtomicBool>,
}

impl Link for Outbox {
    fn send(&self, message: Message) -> Result<(), SendError> {
        (self.check)(&message);
        Ok(())
    }

    fn close(&self, _frame: CloseFrame) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// One peer: its connection while open, and how to open it again.
pub struct Peer {
    identity: Option<Identity>,
    check: Check,
    open: Option<(Connection, ClosedSignal)>,
    /// Set when a router asked to close the connection.
    pub closed_by_router: Arc<AtomicBool>,
}

impl Peer {
    pub fn new(identity: Option<Identity>, check: Check) -> Self {
        Self { identity, check, open: None, closed_by_router: Arc::new(AtomicBool::new(false)) }
    }

    /// Opens the connection (reports `Added`) unless it is open.
    pub async fn open(&mut self, net: &Net, restoring: bool) -> Connection {
        if let Some((connection, _)) = &self.open {
            return connection.clone();
        }
        let link = Outbox { check: self.check.clone(), closed: self.closed_by_router.clone() };
        let (connection, signal) = Connection::new(ConnectionId::next(), ConnectionMeta::new("/"), Arc::new(link));
        if let Some(identity) = &self.identity {
            connection.set_identity(identity.clone());
        }
        net.driver.connection_added(&connection, restoring).await;
        self.open = Some((connection.clone(), signal));
        connection
    }

    /// Closes the connection as a transport does: the closed signal, the rooms, `Removed`.
    pub async fn close(&mut self, net: &Net) {
        if let Some((connection, signal)) = self.open.take() {
            let frame = CloseFrame::new(CloseCode::ABNORMAL, "");
            signal.fire(frame.clone());
            net.adapter.leave_all_now(connection.id());
            net.driver.connection_removed(&connection, frame).await;
        }
    }
}

/// One step of the input.
pub struct Step<'a> {
    pub binary: bool,
    pub raw: bool,
    pub peer: usize,
    pub wait: bool,
    pub reconnect: bool,
    pub frame: &'a [u8],
}

/// Splits the input into steps (see the module docs).
pub fn steps(data: &[u8]) -> impl Iterator<Item = Step<'_>> {
    split(data).filter_map(|step| {
        let (&control, frame) = step.split_first()?;
        Some(Step {
            binary: control & 0x01 != 0,
            raw: control & 0x02 != 0,
            peer: usize::from((control >> 2) & 0x03),
            wait: control & 0x20 != 0,
            reconnect: control & 0x40 != 0,
            frame,
        })
    })
}

fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let data = rest?;
        match data.windows(2).position(|pair| pair == b"\n\n") {
            Some(at) => {
                rest = Some(&data[at + 2..]);
                Some(&data[..at])
            }
            None => {
                rest = None;
                Some(data)
            }
        }
    })
}

/// The frame of `step` for `router`: the bytes as they are when raw, else the body wrapped
/// in the router's JSON or MessagePack envelope.
pub fn frame(router: &str, step: &Step<'_>) -> Message {
    let mut bytes = Vec::with_capacity(step.frame.len() + 48);
    if !step.raw {
        if step.binary {
            // fixmap(2), "$r", fixstr(router), "d"
            bytes.extend_from_slice(&[0x82, 0xa2, b'$', b'r', 0xa0 | router.len() as u8]);
            bytes.extend_from_slice(router.as_bytes());
            bytes.extend_from_slice(&[0xa1, b'd']);
        } else {
            bytes.extend_from_slice(br#"{"$r":""#);
            bytes.extend_from_slice(router.as_bytes());
            bytes.extend_from_slice(br#"","d":"#);
        }
    }
    bytes.extend_from_slice(step.frame);
    if !step.raw && !step.binary {
        bytes.push(b'}');
    }
    if step.binary {
        return Message::binary(bytes);
    }
    // Invalid UTF-8 cannot be a text frame (the transports refuse it): send it as binary.
    match String::from_utf8(bytes) {
        Ok(text) => Message::text(text),
        Err(error) => Message::binary(error.into_bytes()),
    }
}

/// Lets every task run until idle, then `duration` of virtual time pass.
pub async fn settle(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// A current-thread runtime on the paused clock.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a runtime")
}

/// Far past any timer of the routers as configured by the targets.
pub const DEADLINE: Duration = Duration::from_secs(600);

/// Runs `session` on a fresh paused runtime; fails as a hang when it does not end within
/// [`DEADLINE`] of virtual time.
pub fn run<F: std::future::Future<Output = ()>>(session: F) {
    runtime().block_on(async {
        let finished = tokio::time::timeout(DEADLINE, session).await;
        assert!(finished.is_ok(), "the session did not end within {DEADLINE:?}");
    });
}

/// Drives a client-side router: one connection (the link to the server) opened as a client
/// opens it (`restoring`), the script's frames as the server's, a reconnect where a step
/// asks for one; at the end the link closes and the network closes for good (its routers
/// are detached). `tasks` are the application's calls, spawned before the script; each
/// must have ended once the network has closed.
pub async fn drive_client(
    net: &Net,
    peer: &mut Peer,
    router: &str,
    data: &[u8],
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    settle(Duration::from_millis(1)).await;
    for step in steps(data) {
        if step.reconnect {
            peer.close(net).await;
            settle(Duration::from_millis(1)).await;
        }
        let connection = peer.open(net, true).await;
        net.driver().message(&connection, frame(router, &step)).await;
        settle(Duration::from_millis(if step.wait { 100 } else { 1 })).await;
    }
    settle(Duration::from_millis(100)).await;
    peer.close(net).await;
    net.driver().detach_all();
    settle(Duration::from_secs(1)).await;
    for task in &tasks {
        assert!(task.is_finished(), "an application call still waits after the network closed");
    }
}

/// A check for the frames a client sends: JSON envelopes for `router` holding a frame that
/// decodes as `F`.
pub fn client_check<F: serde::de::DeserializeOwned>(router: &'static str) -> Check {
    Arc::new(move |message: &Message| {
        assert!(message.is_text(), "the client sends JSON: {message:?}");
        assert_eq!(network_core::envelope::router_name(message), Some(router), "{message:?}");
        if let Err(error) = network_core::envelope::decode::<F>(router, message) {
            panic!("the client sent an invalid frame {message:?}: {error}");
        }
    })
}
