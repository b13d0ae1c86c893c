//! The stream of a view's changes.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;

use super::View;
use super::change::ViewChange;

/// The [`ViewChange`]s of one view, in the order the server's frames made them; made by
/// [`View::changes`]. Also a [`Stream`].
///
/// A stream receives the changes made after it was created. To never miss one, create it
/// before reading [`View::members`]; a change may then repeat what the snapshot showed.
/// Several streams of one view each get every change; dropping a stream unsubscribes it.
///
/// The stream ends (`None`) when the view is closed ([`ViewsClient::close`]), after a
/// last change with [`closed`](ViewChange::closed) when the server refuses to re-open it
/// after a reconnect, and when the network closes for good. A disconnect does not end it:
/// the view is re-opened and the difference between the old and the new members arrives
/// as one change.
///
/// # Backpressure
/// The stream's queue holds
/// [`change_queue_capacity`](super::ViewsClientConfig::change_queue_capacity) changes.
/// When it is full the router waits for the reader, and the client meanwhile reads nothing
/// more from its socket: nothing is dropped, but a stream that nobody reads stalls every
/// incoming frame of the client (other views, answers, other routers). Read it, or drop it.
///
/// [`ViewsClient::close`]: super::ViewsClient::close
pub struct ChangeStream {
    receiver: mpsc::Receiver<ViewChange>,
    view: View,
    id: u64,
}

impl fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeStream")
            .field("view", &self.view.name())
            .field("queued", &self.receiver.len())
            .finish()
    }
}

impl ChangeStream {
    pub(super) fn new(view: View) -> Self {
        let (id, receiver) = view.core.subscribe(&view.name, view.generation);
        Self { receiver, view, id }
    }

    /// The next change; `None` once the view is closed or the network closed for good.
    ///
    /// # Cancel safety
    /// Cancel safe: a change is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<ViewChange> {
        self.receiver.recv().await
    }

    /// The next change if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<ViewChange> {
        self.receiver.try_recv().ok()
    }

    /// The view, for its current [`members`](View::members) (to redraw after a change).
    pub fn view(&self) -> &View {
        &self.view
    }
}

impl Drop for ChangeStream {
    fn drop(&mut self) {
        self.view.core.unsubscribe(&self.view.name, self.view.generation, self.id);
    }
}

impl Stream for ChangeStream {
    type Item = ViewChange;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ViewChange>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}
