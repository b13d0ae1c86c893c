//! The router: answers each peer's `open`, `close` and `info` frames, and closes a
//! connection's views when it goes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use network_core::{Adapter, Connection, Network, NetworkEvent, Router, envelope};

use super::config::BoxFuture;
use super::flusher::view_room;
use super::presence::{PatternError, compile};
use super::state::{ViewState, ViewsState};
use crate::protocol::{Frame, ROUTER, codes, valid_view};

pub(super) struct ViewsRouter {
    pub(super) shared: Arc<ViewsState>,
}

impl Drop for ViewsRouter {
    fn drop(&mut self) {
        // Lets the flusher notice that the router is gone.
        self.shared.dirty.notify_one();
    }
}

impl<N: Network> Router<N> for ViewsRouter {
    fn name(&self) -> &str {
        ROUTER
    }

    async fn on_event(&mut self, network: &N, event: NetworkEvent) {
        match event {
            NetworkEvent::Message { connection, message } => {
                match envelope::decode::<Frame>(ROUTER, &message) {
                    Ok(frame) => {
                        // Debug level: the default pays a disabled span's check.
                        let id = connection.id();
                        let span = match &frame {
                            Frame::Open { view, .. } => {
                                tracing::debug_span!("views", op = "open", connection = %id, view)
                            }
                            Frame::Close { view, .. } => {
                                tracing::debug_span!("views", op = "close", connection = %id, view)
                            }
                            _ => tracing::debug_span!("views", op = "other", connection = %id),
                        };
                        tracing::Instrument::instrument(self.frame(network, &connection, frame), span).await
                    }
                    Err(error) => {
                        // The id is echoed when it can be read, so the client's waiting
                        // request fails now rather than at its timeout (PROTOCOL.md 2.3).
                        let id = envelope::peek(ROUTER, &message).id;
                        reply(
                            &connection,
                            &error_frame(codes::MALFORMED, format!("not a views frame: {error}"), id, None),
                        );
                    }
                }
            }
            NetworkEvent::Removed { connection, .. } => {
                let mut state = self.shared.lock();
                let names: Vec<Arc<str>> = state
                    .open
                    .get(&connection.id())
                    .map(|open| open.iter().map(|(name, _)| name.clone()).collect())
                    .unwrap_or_default();
                for name in names {
                    state.remove_local(connection.id(), &name);
                }
                drop(state);
                self.shared.dirty.notify_one();
            }
            _ => {}
        }
    }
}

impl ViewsRouter {
    async fn frame<N: Network>(&self, network: &N, connection: &Connection, frame: Frame) {
        match frame {
            Frame::Open { view, id } => self.open(network, connection, view, id).await,
            Frame::Close { view, id } => {
                let removed = self.shared.lock().remove_local(connection.id(), &view);
                if removed {
                    let _ = network.adapter().leave(connection.id(), &view_room(&view)).await;
                    self.shared.dirty.notify_one();
                    reply(connection, &Frame::Closed { view, id });
                } else {
                    reply(
                        connection,
                        &error_frame(codes::NOT_OPEN, format!("view {view:?} is not open"), id, Some(view)),
                    );
                }
            }
            Frame::Info { id, view, pattern, debug, views: None, .. } => {
                let answer = self.info(connection, id, view, pattern, debug).await;
                reply(connection, &answer);
            }
            Frame::Info { id, .. } => reply(connection, &unexpected(Some(id))),
            Frame::State { id, .. } | Frame::Closed { id, .. } | Frame::Error { id, .. } => {
                reply(connection, &unexpected(id))
            }
            Frame::Diff { .. } => reply(connection, &unexpected(None)),
        }
    }

    async fn open<N: Network>(&self, network: &N, connection: &Connection, view: String, id: Option<u64>) {
        if !valid_view(&view) {
            let message = "view names are 1 to 128 bytes without control characters".into();
            return reply(connection, &error_frame(codes::BAD_REQUEST, message, id, None));
        }
        let (already_open, count) = {
            let state = self.shared.lock();
            let open = state.open.get(&connection.id());
            (open.is_some_and(|open| open.iter().any(|(name, _)| **name == *view)), open.map_or(0, Vec::len))
        };
        if !already_open {
            if count >= self.shared.config.max_views_per_connection {
                let message =
                    format!("at most {} views per connection", self.shared.config.max_views_per_connection);
                return reply(connection, &error_frame(codes::LIMIT, message, id, Some(view)));
            }
            if let Some(authorize) = &self.shared.config.authorize
                && let Err(reason) = guarded(authorize(connection.clone(), view.clone())).await
            {
                return reply(connection, &error_frame(codes::FORBIDDEN, reason, id, Some(view)));
            }
        }
        // Under the gate: the state sent here is never followed by an older diff.
        let _gate = self.shared.flush_gate.lock().await;
        if connection.is_closed() {
            return;
        }
        if let Err(error) = network.adapter().join(connection.id(), view_room(&view)).await {
            tracing::warn!(%error, "joining a view's room failed");
        }
        let members = {
            let mut state = self.shared.lock();
            if !already_open {
                state.add_local(connection, &view);
            }
            state.views.get_mut(view.as_str()).map(ViewState::state).unwrap_or_default()
        };
        self.shared.dirty.notify_one();
        let user = connection.identity().and_then(|identity| identity.user_id.clone());
        let you = Some(crate::protocol::member_key(user.as_deref(), connection.id().as_u64()));
        reply(connection, &Frame::State { view, members, you, id });
    }
}

impl ViewsRouter {
    /// Answers a peer's `info`: only what its hooks let it see, at most `max_info_views`
    /// views.
    async fn info(
        &self,
        connection: &Connection,
        id: u64,
        view: Option<String>,
        pattern: Option<String>,
        debug: bool,
    ) -> Frame {
        let config = &self.shared.config;
        // Checked before any view is looked at: a refused request costs no view hook call.
        if debug {
            let allowed = match &config.authorize_debug {
                Some(hook) => guarded(hook(connection.clone())).await,
                None => Err("debug answers are not enabled".to_owned()),
            };
            if let Err(reason) = allowed {
                return error_frame(codes::FORBIDDEN, reason, Some(id), view);
            }
        }
        let (names, truncated) = match (view, pattern) {
            (Some(view), None) => {
                if !valid_view(&view) {
                    let message = "view names are 1 to 128 bytes without control characters".into();
                    return error_frame(codes::BAD_REQUEST, message, Some(id), None);
                }
                if let Err(reason) = self.may_see(connection, &view).await {
                    return error_frame(codes::FORBIDDEN, reason, Some(id), Some(view));
                }
                (vec![Arc::from(view)], false)
            }
            (None, Some(pattern)) => {
                let pattern = match compile(&pattern) {
                    Ok(pattern) => pattern,
                    Err(error) => return error_frame(codes::BAD_REQUEST, error_text(&error), Some(id), None),
                };
                let (names, truncated) = self.shared.names_matching(&pattern, config.max_info_views);
                // At most `max_info_views` hook calls, run together: one slow check does not
                // add up.
                let checks = names.iter().map(|name| self.may_see(connection, name));
                let verdicts = futures_util::future::join_all(checks).await;
                let visible = names.into_iter().zip(verdicts).filter(|(_, verdict)| verdict.is_ok());
                (visible.map(|(name, _)| name).collect(), truncated)
            }
            _ => {
                let message = "give exactly one of view and pattern".into();
                return error_frame(codes::BAD_REQUEST, message, Some(id), None);
            }
        };
        let views = self.shared.infos(&names, debug);
        Frame::Info { id, view: None, pattern: None, debug: false, views: Some(views), truncated }
    }

    /// Whether `connection` may learn about view `name` through `info`.
    async fn may_see(&self, connection: &Connection, name: &str) -> Result<(), String> {
        let config = &self.shared.config;
        match config.authorize_info.as_ref().or(config.authorize.as_ref()) {
            Some(hook) => guarded(hook(connection.clone(), name.to_owned())).await,
            None => Ok(()),
        }
    }
}

/// Runs an application hook; a panic refuses instead of ending the router task, which
/// runs every views request.
async fn guarded(hook: BoxFuture<Result<(), String>>) -> Result<(), String> {
    match AssertUnwindSafe(hook).catch_unwind().await {
        Ok(verdict) => verdict,
        Err(_) => {
            tracing::error!("a views authorization hook panicked");
            Err("the authorization failed".to_owned())
        }
    }
}

fn error_text(error: &PatternError) -> String {
    match error {
        PatternError::Invalid(source) => format!("invalid pattern: {source}"),
        other => other.to_string(),
    }
}

/// The answer to a frame only the server sends, echoing its `id`.
fn unexpected(id: Option<u64>) -> Frame {
    error_frame(codes::UNEXPECTED, "a frame only the server sends".into(), id, None)
}

fn error_frame(code: &str, message: String, id: Option<u64>, view: Option<String>) -> Frame {
    Frame::Error { code: code.to_owned(), message, id, view }
}

fn reply(connection: &Connection, frame: &Frame) {
    match envelope::json(ROUTER, frame) {
        Ok(message) => {
            if let Err(error) = connection.send(message) {
                tracing::debug!(connection = %connection.id(), %error, "views reply not sent");
            }
        }
        Err(error) => tracing::error!(%error, "cannot encode a views frame"),
    }
}
