//! `bench serve --impl bcast`: the second textbook raw server, the idiom of axum's chat
//! example on plain tokio-tungstenite: one `tokio::sync::broadcast` channel carries every
//! frame of the publisher (path `/pub`), and each other connection subscribes to it on
//! arrival and runs a writer task that receives a frame, coalesces up to [`COALESCE`] more
//! frames already queued (`try_recv`, each fed into the sink) and flushes once.
//!
//! It accepts like `raw` ([`super::accept_raw`]: 4 KiB read buffer, no Nagle) on the same
//! current-thread runtime. Echo is `raw`'s echo (a broadcast channel has nothing to do with
//! sending a frame back to its sender); memory holds each connection the way this server
//! holds a subscriber, a `Receiver` and a waiting writer task per connection.
//!
//! # Capacity and loss
//!
//! The channel holds [`CAPACITY`] frames, 1,024, the same as `raw`'s per-connection queue
//! (`RAW_QUEUE`): a careful user sizes it to the burst a healthy subscriber may fall behind
//! by, and 1,024 frames of 64 bytes is 64 KiB shared by every subscriber, where `raw` pays
//! that per connection. A subscriber more than that behind does not hold the others back:
//! its next `recv` skips to the oldest frame kept and returns `RecvError::Lagged(n)`. This
//! server counts those `n` frames and prints `lagged TOTAL` on stdout when the total changed
//! (at most every [`LAG_REPORT_EVERY`]); the driver shows the last total of a run, and the
//! load counts the broadcasts that never reached every member.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{Sink, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::{self, Receiver, Sender};
use tokio_tungstenite::tungstenite::Message;

use super::{RAW_QUEUE, Scenario, accept_raw, announce, raw};
use crate::BoxError;

/// Frames the broadcast channel keeps for its slowest subscriber (see the module doc).
const CAPACITY: usize = RAW_QUEUE;
/// Frames a writer takes from the channel after the one it waited for, before one flush
/// (axum's chat example flushes each; coalescing is what a user tuning it would add).
const COALESCE: usize = 64;
/// How often the lag total is looked at (and printed when it changed).
const LAG_REPORT_EVERY: Duration = Duration::from_millis(250);

/// Serves `scenario` on `listen` until killed.
pub(super) async fn serve(listen: &str, scenario: Scenario) -> Result<(), BoxError> {
    if scenario == Scenario::Echo {
        return raw(listen, scenario).await;
    }
    let listener = TcpListener::bind(listen).await?;
    announce(listener.local_addr()?)?;
    let (frames, _) = broadcast::channel::<Message>(CAPACITY);
    let lagged = Arc::new(AtomicU64::new(0));
    tokio::spawn(report_lagged(lagged.clone()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(connection(stream, frames.clone(), lagged.clone()));
    }
}

/// One connection: the publisher's frames go into the channel; anyone else subscribes and
/// is written to by its own task while this one reads (and ignores) what it sends.
async fn connection(stream: TcpStream, frames: Sender<Message>, lagged: Arc<AtomicU64>) {
    let Some((ws, is_publisher)) = accept_raw(stream).await else { return };
    let (sink, mut source) = ws.split();
    let writer = (!is_publisher).then(|| tokio::spawn(write_frames(sink, frames.subscribe(), lagged)));
    while let Some(Ok(message)) = source.next().await {
        match message {
            Message::Text(_) | Message::Binary(_) if is_publisher => {
                // An error only says that nobody is subscribed: nothing to deliver.
                let _ = frames.send(message);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    if let Some(writer) = writer {
        // The reader is gone, so is the client: the writer may be parked in `recv`.
        writer.abort();
        let _ = writer.await;
    }
}

/// The subscriber's writer: waits for a frame, feeds it and up to [`COALESCE`] queued ones,
/// flushes once; frames skipped on lag are counted in `lagged`.
async fn write_frames<S>(mut sink: S, mut frames: Receiver<Message>, lagged: Arc<AtomicU64>)
where
    S: Sink<Message> + Unpin,
{
    loop {
        let first = match frames.recv().await {
            Ok(frame) => frame,
            Err(RecvError::Lagged(skipped)) => {
                lagged.fetch_add(skipped, Ordering::Relaxed);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if sink.feed(first).await.is_err() {
            return;
        }
        for _ in 0..COALESCE {
            match frames.try_recv() {
                Ok(frame) => {
                    if sink.feed(frame).await.is_err() {
                        return;
                    }
                }
                Err(TryRecvError::Lagged(skipped)) => {
                    lagged.fetch_add(skipped, Ordering::Relaxed);
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Prints `lagged TOTAL` on stdout whenever the total of frames skipped on lag changed.
async fn report_lagged(lagged: Arc<AtomicU64>) {
    let mut reported = 0;
    let mut every = tokio::time::interval(LAG_REPORT_EVERY);
    loop {
        every.tick().await;
        let total = lagged.load(Ordering::Relaxed);
        if total != reported {
            reported = total;
            // The driver may have stopped reading: not a reason to stop serving.
            let _ = say_lagged(total);
        }
    }
}

fn say_lagged(total: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "lagged {total}")?;
    stdout.flush()
}
