//! The write paths of the outbox against a socket that takes what a script says: short
//! writes mid-slice, frames gathered and vectored across several writes, a write of zero,
//! errors, and the soft and hard bounds of the queue.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use network_core::{CloseCode, CloseFrame, Link, Message, SendError};
use tokio::io::AsyncWrite;

use super::{BUDGET_UNIT, GATHER_BYTES, Outbox, QueueLimits};
use crate::flusher::Flusher;
use crate::frame::Header;
use crate::pressure::Pressure;

/// What the socket does with the next write.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Takes at most this many bytes.
    Take(usize),
    /// Would block (the waker is not called: the test wakes the writer itself).
    Block,
    /// Reports that it wrote nothing.
    Zero,
    /// Fails.
    Fail,
}

/// A socket following a script of steps, then taking everything once the script is done.
#[derive(Clone, Default)]
struct Socket {
    script: Arc<Mutex<VecDeque<Step>>>,
    written: Arc<Mutex<Vec<u8>>>,
    /// How many write calls it saw.
    writes: Arc<Mutex<usize>>,
}

impl Socket {
    fn script(&self, steps: &[Step]) {
        self.script.lock().unwrap().extend(steps.iter().copied());
    }

    fn written(&self) -> Vec<u8> {
        self.written.lock().unwrap().clone()
    }

    fn write(&self, slices: &[&[u8]]) -> Poll<io::Result<usize>> {
        *self.writes.lock().unwrap() += 1;
        let limit = match self.script.lock().unwrap().pop_front() {
            None => usize::MAX,
            Some(Step::Take(limit)) => limit,
            Some(Step::Block) => return Poll::Pending,
            Some(Step::Zero) => return Poll::Ready(Ok(0)),
            Some(Step::Fail) => return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
        };
        let mut written = self.written.lock().unwrap();
        let mut taken = 0;
        for slice in slices {
            let take = slice.len().min(limit - taken);
            written.extend_from_slice(&slice[..take]);
            taken += take;
        }
        Poll::Ready(Ok(taken))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write(&[buf])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let slices: Vec<&[u8]> = bufs.iter().map(|slice| &**slice).collect();
        self.write(&slices)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const LIMITS: QueueLimits =
    QueueLimits { soft: 1 << 20, hard: 4 << 20, stall_timeout: Duration::from_secs(5) };

fn new_outbox(socket: &Socket, limits: QueueLimits) -> (Arc<Outbox<Socket>>, Arc<Pressure>, Flusher) {
    let pressure = Arc::new(Pressure::new(usize::MAX, usize::MAX));
    let flusher = Flusher::new();
    let shard = flusher.shard(0);
    let outbox =
        Arc::new_cyclic(|me| Outbox::new(socket.clone(), limits, None, pressure.clone(), shard, me.clone()));
    (outbox, pressure, flusher)
}

/// The bytes of `message` on the wire.
fn wire(message: &Message) -> Vec<u8> {
    [Header::for_message(message).as_slice(), &message.payload()[..]].concat()
}

fn text(size: usize, fill: u8) -> Message {
    Message::text(String::from_utf8(vec![fill; size]).unwrap())
}

/// Lets the writer run until the queue is written (bounded: the test clock is paused).
async fn drained(outbox: &Outbox<Socket>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            outbox.wake_writer.notify_one();
            if outbox.lock().queue.is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the queue was not written");
}

#[tokio::test(start_paused = true)]
async fn a_short_direct_write_mid_slice_is_finished_by_the_writer() {
    let socket = Socket::default();
    let (outbox, pressure, _flusher) = new_outbox(&socket, LIMITS);
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_writer().await }
    });
    let hello = text(11, b'h');
    // Three bytes: the header and one byte of the payload; then the socket blocks.
    socket.script(&[Step::Take(3), Step::Block]);
    outbox.send(hello.clone()).unwrap();
    assert_eq!(outbox.lock().queue.front_written, 3);
    assert_eq!(outbox.lock().queued_bytes, wire(&hello).len());
    let after = text(5, b'a');
    outbox.send(after.clone()).unwrap();
    drained(&outbox).await;
    assert_eq!(socket.written(), [wire(&hello), wire(&after)].concat());
    assert_eq!(outbox.lock().queued_bytes, 0);
    assert!(!pressure.congested());
    outbox.finish();
    tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_frames_are_written_in_order_across_many_short_writes() {
    let socket = Socket::default();
    let (outbox, _pressure, _flusher) = new_outbox(&socket, LIMITS);
    // The first frame finds the socket blocked; the rest queue behind it.
    socket.script(&[Step::Block]);
    let frames: Vec<Message> = (0..40u8).map(|n| text(1 + usize::from(n) * 7, b'a' + n % 26)).collect();
    for frame in &frames {
        outbox.send(frame.clone()).unwrap();
    }
    let big = Message::binary(vec![7u8; GATHER_BYTES * 3]);
    outbox.send(big.clone()).unwrap();
    // Short writes that stop inside headers, inside payloads and on their edges.
    socket.script(&[
        Step::Take(1),
        Step::Take(2),
        Step::Take(5),
        Step::Take(100),
        Step::Block,
        Step::Take(4097),
    ]);
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_writer().await }
    });
    drained(&outbox).await;
    let expected: Vec<u8> = frames.iter().chain([&big]).flat_map(wire).collect();
    assert_eq!(socket.written(), expected);
    outbox.finish();
    tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn broadcasts_are_gathered_into_one_write() {
    let socket = Socket::default();
    let (outbox, _pressure, _flusher) = new_outbox(&socket, LIMITS);
    let frames: Vec<Message> = (0..10).map(|n| text(10 + n, b'x')).collect();
    for frame in &frames {
        outbox.send_batched(frame).unwrap();
    }
    assert_eq!(*socket.writes.lock().unwrap(), 0, "a broadcast waits for the flusher");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !outbox.lock().queue.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(socket.written(), frames.iter().flat_map(wire).collect::<Vec<u8>>());
    assert_eq!(*socket.writes.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_write_of_zero_aborts_the_connection() {
    let socket = Socket::default();
    let (outbox, pressure, _flusher) = new_outbox(&socket, LIMITS);
    socket.script(&[Step::Block, Step::Take(2), Step::Zero]);
    outbox.send(text(50, b'z')).unwrap();
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_writer().await }
    });
    tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    let aborted = outbox.lock().aborted.clone().unwrap();
    assert_eq!((aborted.code, aborted.reason.as_str()), (CloseCode::ABNORMAL, "write failed"));
    assert!(matches!(outbox.send(text(1, b'a')), Err(SendError::Closed(_))));
    assert_eq!(outbox.lock().queued_bytes, 0, "an aborted outbox drops its queue");
    assert!(!pressure.outgoing_over_budget());
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_aborts_the_connection_on_either_path() {
    // The direct path.
    let socket = Socket::default();
    let (outbox, _pressure, _flusher) = new_outbox(&socket, LIMITS);
    socket.script(&[Step::Fail]);
    assert!(matches!(outbox.send(text(3, b'a')), Err(SendError::Closed(_))));
    assert!(outbox.lock().aborted.is_some());

    // The writer's path, after a short direct write.
    let socket = Socket::default();
    let (outbox, _pressure, _flusher) = new_outbox(&socket, LIMITS);
    socket.script(&[Step::Take(1), Step::Block, Step::Fail]);
    outbox.send(text(3, b'a')).unwrap();
    tokio::time::timeout(Duration::from_secs(10), outbox.run_writer()).await.unwrap();
    assert!(outbox.lock().aborted.is_some());
    assert!(matches!(outbox.send(text(3, b'a')), Err(SendError::Closed(_))));
}

#[tokio::test(start_paused = true)]
async fn past_the_hard_bound_the_send_fails_and_the_connection_is_aborted() {
    let socket = Socket::default();
    let limits = QueueLimits { soft: 100, hard: 300, stall_timeout: Duration::from_secs(5) };
    let (outbox, pressure, _flusher) = new_outbox(&socket, limits);
    socket.script(&[Step::Block]);
    // One frame is always queued, whatever its size.
    outbox.send(text(500, b'a')).unwrap();
    assert!(pressure.congested(), "over the soft bound");
    assert!(matches!(outbox.send(text(1, b'b')), Err(SendError::Full(_))));
    let aborted = outbox.lock().aborted.clone().unwrap();
    assert_eq!((aborted.code, aborted.reason.as_str()), (CloseCode::POLICY, "outgoing queue full"));
    assert!(!pressure.congested(), "an aborted outbox leaves the pressure");
}

#[tokio::test(start_paused = true)]
async fn a_congested_socket_that_takes_nothing_is_dropped_and_one_that_takes_is_not() {
    let socket = Socket::default();
    let limits = QueueLimits { soft: 100, hard: 10_000, stall_timeout: Duration::from_secs(5) };
    let (outbox, pressure, _flusher) = new_outbox(&socket, limits);
    socket.script(&[Step::Block]);
    for _ in 0..3 {
        outbox.send(text(60, b'c')).unwrap();
    }
    assert!(pressure.congested());
    // Progress (a few bytes) within the timeout keeps the connection. (The socket never
    // wakes the writer: only the stall timer does.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    socket.script(&[Step::Take(10)]);
    socket.script(&[Step::Block; 64]);
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_writer().await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(outbox.lock().aborted.is_none(), "aborted although the socket took bytes");
    // Nothing more for the stall timeout: aborted as a slow consumer.
    tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    let aborted = outbox.lock().aborted.clone().unwrap();
    assert_eq!((aborted.code, aborted.reason.as_str()), (CloseCode::POLICY, "slow consumer"));
    assert!(!pressure.congested());
}

#[tokio::test(start_paused = true)]
async fn small_and_large_frames_keep_their_order_whatever_the_writes_cut() {
    // Small frames are copied into the tail, large ones queued as chunks; a large frame
    // after small ones seals the tail. Every cut size must give the same bytes in order.
    for cut in [1, 2, 3, 7, 64, 513, 600, 1500] {
        let socket = Socket::default();
        let (outbox, pressure, _flusher) = new_outbox(&socket, LIMITS);
        socket.script(&[Step::Block]);
        let frames = [
            text(10, b'a'),
            text(super::SMALL_FRAME, b'b'),
            text(super::SMALL_FRAME + 1, b'c'),
            text(3, b'd'),
            text(1000, b'e'),
            text(1000, b'f'),
            text(20, b'g'),
        ];
        for frame in &frames {
            outbox.send_batched(frame).unwrap();
        }
        assert_eq!(outbox.lock().queued_bytes, frames.iter().map(|f| wire(f).len()).sum::<usize>());
        socket.script(&[Step::Take(cut); 64]);
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.run_writer().await }
        });
        drained(&outbox).await;
        assert_eq!(socket.written(), frames.iter().flat_map(wire).collect::<Vec<u8>>(), "cut {cut}");
        assert_eq!(outbox.lock().queued_bytes, 0, "cut {cut}");
        assert!(!pressure.congested());
        outbox.finish();
        tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_outgoing_budget_covers_the_queue_and_is_given_back_when_it_drains() {
    let socket = Socket::default();
    let (outbox, pressure, _flusher) = new_outbox(&socket, LIMITS);
    // Small frames draw one unit between them; a large one draws what it needs.
    for n in 0..20 {
        outbox.send_batched(&text(40 + n, b's')).unwrap();
    }
    assert!(outbox.lock().queued_bytes < BUDGET_UNIT);
    assert_eq!(pressure.outgoing_bytes(), BUDGET_UNIT);
    outbox.send_batched(&Message::binary(vec![1u8; 3 * BUDGET_UNIT])).unwrap();
    let covered = |outbox: &Outbox<Socket>| {
        let queued = outbox.lock().queued_bytes;
        queued <= pressure.outgoing_bytes() && pressure.outgoing_bytes() <= queued + BUDGET_UNIT
    };
    assert!(covered(&outbox));
    // The flusher's partial write gives back what exceeds a unit of slack.
    socket.script(&[Step::Take(2 * BUDGET_UNIT), Step::Block]);
    tokio::time::timeout(Duration::from_secs(10), async {
        while socket.written().len() < 2 * BUDGET_UNIT {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(outbox.lock().queued_bytes > 0);
    assert!(covered(&outbox));
    // The drain gives back everything.
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_writer().await }
    });
    drained(&outbox).await;
    assert_eq!(pressure.outgoing_bytes(), 0);
    // An aborted queue gives its budget back at once.
    outbox.send_batched(&text(10, b'a')).unwrap();
    assert_eq!(pressure.outgoing_bytes(), BUDGET_UNIT);
    outbox.abort(CloseFrame::new(CloseCode::POLICY, "test"));
    assert_eq!(pressure.outgoing_bytes(), 0);
    tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap().unwrap();
}
