//! What the router targets share: testkit's in-memory network (`testkit::memory`: the same
//! `Hub` and `LocalAdapter` that `ws-server` and `ws-client` use, minus the sockets) with
//! raw peers whose outgoing frames are checked, not sent; and the format of their inputs,
//! a script of frames.
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
use std::time::Duration;

use network_core::{HubConfig, Message};
use testkit::memory::{MemoryNetwork, OnSend, RawPeer};

/// The network the targets run routers on: small queues, so that backpressure is reached.
pub fn network() -> MemoryNetwork {
    MemoryNetwork::with_hub_config(HubConfig::default().router_queue_capacity(64).event_queue_capacity(64))
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
    net: &MemoryNetwork,
    peer: &mut RawPeer,
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
        peer.open(net, true).await;
        peer.deliver(net, frame(router, &step)).await;
        settle(Duration::from_millis(if step.wait { 100 } else { 1 })).await;
    }
    settle(Duration::from_millis(100)).await;
    peer.close(net).await;
    net.detach_all();
    settle(Duration::from_secs(1)).await;
    for task in &tasks {
        assert!(task.is_finished(), "an application call still waits after the network closed");
    }
}

/// A check for the frames a client sends: JSON envelopes for `router` holding a frame that
/// decodes as `F`, or the heartbeat's answers (a raw step may address `hb`, and a malformed
/// heartbeat frame is answered with an `error`, as docs/PROTOCOL.md says).
pub fn client_check<F: serde::de::DeserializeOwned>(router: &'static str) -> OnSend {
    Arc::new(move |message: &Message| {
        assert!(message.is_text(), "the client sends JSON: {message:?}");
        let heartbeat = network_core::heartbeat::ROUTER;
        let decoded = match network_core::envelope::router_name(message) {
            Some(name) if name == router => network_core::envelope::decode::<F>(router, message).err(),
            Some(name) if name == heartbeat => {
                network_core::envelope::decode::<network_core::heartbeat::Frame>(heartbeat, message).err()
            }
            other => panic!("the client sent a frame for {other:?}: {message:?}"),
        };
        if let Some(error) = decoded {
            panic!("the client sent an invalid frame {message:?}: {error}");
        }
    })
}
