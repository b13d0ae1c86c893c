//! The presence state: who has which view open (members counted per user), the diffs not
//! yet sent, and the queries over it that the router and [`Presence`](super::Presence)
//! answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use network_core::{Connection, ConnectionId};
use regex::Regex;
use serde_json::Value;
use tokio::sync::Notify;

use super::cluster;
use super::config::ViewsConfig;
use crate::protocol::{Frame, Member, UserCount, ViewInfo};

#[derive(Default)]
pub(super) struct MemberState {
    pub(super) user: Option<String>,
    pub(super) data: Value,
    /// A handful at most (one per tab): a vector is a tenth of a B-tree node's size.
    pub(super) connections: Vec<ConnectionId>,
}

impl MemberState {
    pub(super) fn to_member(&self, key: &str, debug: bool) -> Member {
        Member {
            key: key.to_owned(),
            user: self.user.clone(),
            clients: u32::try_from(self.connections.len()).unwrap_or(u32::MAX),
            data: self.data.clone(),
            connections: debug.then(|| self.connection_ids()),
        }
    }

    pub(super) fn connection_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.connections.iter().map(|id| id.as_u64()).collect();
        ids.sort_unstable();
        ids
    }
}

#[derive(Default)]
pub(super) struct ViewState {
    /// By member key. A hash map, not a B-tree: a B-tree node holds room for 11 entries
    /// (over 1 KB here) even for a view of one; outputs are sorted when built.
    pub(super) members: HashMap<String, MemberState>,
    /// Each member's entry as the last diff (or none yet) announced it.
    pub(super) announced: HashMap<String, Member>,
    /// Keys changed since the last diff.
    pub(super) dirty: HashSet<String>,
    /// Keys that a state sent since the last diff showed otherwise than `announced` (a
    /// member that joined or changed since): the next diff states them even if they are
    /// back to their announced entry, or gone without ever having been announced, so that
    /// the openers who saw them are corrected too. Always a subset of `dirty`.
    pub(super) shown: HashSet<String>,
}

impl ViewState {
    pub(super) fn members(&self, debug: bool) -> Vec<Member> {
        let mut members: Vec<Member> =
            self.members.iter().map(|(key, member)| member.to_member(key, debug)).collect();
        members.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        members
    }

    pub(super) fn info(&self, name: &str, debug: bool) -> ViewInfo {
        let mut info = ViewInfo { view: name.to_owned(), clients: 0, users: Vec::new(), anonymous: 0 };
        for member in self.members.values() {
            let clients = u32::try_from(member.connections.len()).unwrap_or(u32::MAX);
            info.clients = info.clients.saturating_add(clients);
            match &member.user {
                Some(user) => info.users.push(UserCount {
                    user: user.clone(),
                    clients,
                    connections: debug.then(|| member.connection_ids()),
                }),
                None => info.anonymous = info.anonymous.saturating_add(clients),
            }
        }
        info.users.sort_by(|a, b| a.user.cmp(&b.user));
        info
    }

    /// The full state for an opener; remembers the entries it shows that the next diff
    /// must restate (see `shown`).
    pub(super) fn state(&mut self) -> Vec<Member> {
        let members = self.members(false);
        for member in &members {
            if self.announced.get(&member.key) != Some(member) {
                self.shown.insert(member.key.clone());
            }
        }
        members
    }

    /// The diff since the last one, and records it as announced.
    pub(super) fn take_diff(&mut self) -> (Vec<Member>, Vec<String>) {
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        for key in std::mem::take(&mut self.dirty) {
            let shown = self.shown.remove(&key);
            match self.members.get(&key) {
                Some(member) => {
                    let entry = member.to_member(&key, false);
                    if shown || self.announced.get(&key) != Some(&entry) {
                        self.announced.insert(key, entry.clone());
                        joins.push(entry);
                    }
                }
                None => {
                    if self.announced.remove(&key).is_some() || shown {
                        leaves.push(key);
                    }
                }
            }
        }
        joins.sort_by(|a, b| a.key.cmp(&b.key));
        leaves.sort();
        (joins, leaves)
    }
}

#[derive(Default)]
pub(super) struct OpenViews {
    pub(super) views: HashMap<Arc<str>, ViewState>,
    /// The views each connection has open, with its member key in each. A vector: a
    /// connection has a few views open (at most `max_views_per_connection`), and an empty
    /// hash map per connection would cost more than the entries.
    pub(super) open: HashMap<ConnectionId, Vec<(Arc<str>, String)>>,
    /// Views with changes not yet sent.
    pub(super) dirty: HashSet<Arc<str>>,
    /// This node's changes not yet told to the other nodes (when there are any).
    pub(super) replication: cluster::Outgoing,
}

impl OpenViews {
    /// Opens view `name` for a connection of this node.
    pub(super) fn add_local(&mut self, connection: &Connection, name: &str) {
        let identity = connection.identity();
        let user = identity.as_ref().and_then(|identity| identity.user_id.clone());
        let data = identity.map(|identity| identity.data.clone()).unwrap_or_default();
        self.replication.opened(name, connection.id(), &user, &data);
        self.add(connection.id(), user, data, name);
    }

    /// Closes view `name` for a connection of this node.
    pub(super) fn remove_local(&mut self, id: ConnectionId, name: &str) -> bool {
        let removed = self.remove(id, name);
        if removed {
            self.replication.closed(name, id);
        }
        removed
    }

    /// Opens view `name` for connection `id` (of this node or another). Idempotent.
    pub(super) fn add(&mut self, id: ConnectionId, user: Option<String>, data: Value, name: &str) {
        let name: Arc<str> = name.into();
        let key = crate::protocol::member_key(user.as_deref(), id.as_u64());
        let view = self.views.entry(name.clone()).or_default();
        let member = view.members.entry(key.clone()).or_default();
        member.user = user;
        member.data = data;
        if !member.connections.contains(&id) {
            member.connections.push(id);
        }
        view.dirty.insert(key.clone());
        let open = self.open.entry(id).or_default();
        match open.iter_mut().find(|(open, _)| *open == name) {
            Some(entry) => entry.1 = key,
            None => open.push((name.clone(), key)),
        }
        self.dirty.insert(name);
    }

    pub(super) fn remove(&mut self, id: ConnectionId, name: &str) -> bool {
        let Some(open) = self.open.get_mut(&id) else { return false };
        let Some(index) = open.iter().position(|(open, _)| &**open == name) else { return false };
        let (name, key) = open.swap_remove(index);
        if open.is_empty() {
            self.open.remove(&id);
        }
        if let Some(view) = self.views.get_mut(&name) {
            if let Some(member) = view.members.get_mut(&key) {
                member.connections.retain(|open| *open != id);
                if member.connections.is_empty() {
                    view.members.remove(&key);
                }
            }
            view.dirty.insert(key);
            self.dirty.insert(name);
        }
        true
    }
}

pub(super) struct ViewsState {
    pub(super) config: ViewsConfig,
    pub(super) state: Mutex<OpenViews>,
    /// Held while a diff is broadcast and while an opener gets its state and joins the
    /// view's room, so that no connection receives a diff older than its state.
    pub(super) flush_gate: tokio::sync::Mutex<()>,
    /// Wakes the flusher; shared with it so that it can wait without keeping `ViewsState` alive.
    pub(super) dirty: Arc<Notify>,
}

impl ViewsState {
    /// The state of a router with `config` and no view open.
    pub(super) fn new(config: ViewsConfig) -> Self {
        Self {
            config,
            state: Mutex::new(OpenViews::default()),
            flush_gate: tokio::sync::Mutex::new(()),
            dirty: Arc::new(Notify::new()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, OpenViews> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn info(&self, name: &str, debug: bool) -> Option<ViewInfo> {
        let state = self.lock();
        state.views.get(name).filter(|view| !view.members.is_empty()).map(|view| view.info(name, debug))
    }

    /// The names of the open views matching `pattern`, the first `max` by name, and
    /// whether more matched.
    pub(super) fn names_matching(&self, pattern: &Regex, max: usize) -> (Vec<Arc<str>>, bool) {
        let mut names: Vec<Arc<str>> = {
            let state = self.lock();
            let open =
                state.views.iter().filter(|(name, view)| !view.members.is_empty() && pattern.is_match(name));
            open.map(|(name, _)| name.clone()).collect()
        };
        let truncated = names.len() > max;
        if truncated {
            // Only the first `max` need sorting.
            names.select_nth_unstable(max);
            names.truncate(max);
        }
        names.sort_unstable();
        (names, truncated)
    }

    /// Counts for `names` (in that order), leaving out views that have emptied meanwhile.
    pub(super) fn infos(&self, names: &[Arc<str>], debug: bool) -> Vec<ViewInfo> {
        let state = self.lock();
        let open = names.iter().filter_map(|name| {
            state.views.get(name).filter(|view| !view.members.is_empty()).map(|view| view.info(name, debug))
        });
        open.collect()
    }

    pub(super) fn info_matching(&self, pattern: &Regex, debug: bool) -> Vec<ViewInfo> {
        let state = self.lock();
        let mut infos: Vec<ViewInfo> = state
            .views
            .iter()
            .filter(|(name, view)| !view.members.is_empty() && pattern.is_match(name))
            .map(|(name, view)| view.info(name, debug))
            .collect();
        infos.sort_by(|a, b| a.view.cmp(&b.view));
        infos
    }
}

impl OpenViews {
    /// Takes every pending diff.
    pub(super) fn take_diffs(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        for name in std::mem::take(&mut self.dirty) {
            let Some(view) = self.views.get_mut(&name) else { continue };
            let (joins, leaves) = view.take_diff();
            if view.members.is_empty() {
                self.views.remove(&name);
            }
            if !joins.is_empty() || !leaves.is_empty() {
                frames.push(Frame::Diff { view: name.to_string(), joins, leaves });
            }
        }
        frames
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use network_core::{CloseFrame, ConnectionMeta, Link, Message, SendError};

    use super::*;

    struct NoLink;

    impl Link for NoLink {
        fn send(&self, _message: Message) -> Result<(), SendError> {
            Ok(())
        }

        fn close(&self, _frame: CloseFrame) {}
    }

    fn connection() -> Connection {
        Connection::new(ConnectionId::next(), ConnectionMeta::default(), Arc::new(NoLink)).0
    }

    fn key(connection: &Connection) -> String {
        format!("c:{}", connection.id().as_u64())
    }

    /// Opens `name` for `connection` as the router does, returning the state's keys.
    fn open(state: &mut OpenViews, connection: &Connection, name: &str) -> Vec<String> {
        state.add_local(connection, name);
        state.views.get_mut(name).unwrap().state().into_iter().map(|member| member.key).collect()
    }

    fn diffs(state: &mut OpenViews) -> Vec<(Vec<String>, Vec<String>)> {
        state
            .take_diffs()
            .into_iter()
            .map(|frame| match frame {
                Frame::Diff { joins, leaves, .. } => (joins.into_iter().map(|m| m.key).collect(), leaves),
                other => panic!("not a diff: {other:?}"),
            })
            .collect()
    }

    /// B joins and leaves within one diff interval, and C opens in between: C's state
    /// shows B, so the next diff must tell C that B left, although B was never announced.
    #[test]
    fn a_member_shown_in_a_state_then_gone_is_announced_as_leaving() {
        let mut state = OpenViews::default();
        let (a, b, c) = (connection(), connection(), connection());
        open(&mut state, &a, "doc");
        assert_eq!(diffs(&mut state), [(vec![key(&a)], vec![])]);
        open(&mut state, &b, "doc");
        let mut expected = vec![key(&a), key(&b), key(&c)];
        expected.sort();
        assert_eq!(open(&mut state, &c, "doc"), expected);
        assert!(state.remove(b.id(), "doc"));
        assert_eq!(diffs(&mut state), [(vec![key(&c)], vec![key(&b)])]);
        // Once told, nothing more.
        assert_eq!(diffs(&mut state), []);
    }

    /// Same for a member whose count changed and changed back: the state showed the
    /// intermediate count, so the next diff restates the entry.
    #[test]
    fn an_entry_shown_in_a_state_then_reverted_is_restated() {
        let mut state = OpenViews::default();
        let (ada, ada_tab, c) = (connection(), connection(), connection());
        for tab in [&ada, &ada_tab] {
            tab.set_identity(network_core::Identity::user("ada"));
        }
        open(&mut state, &ada, "doc");
        diffs(&mut state);
        open(&mut state, &ada_tab, "doc");
        open(&mut state, &c, "doc");
        assert!(state.remove(ada_tab.id(), "doc"));
        let mut joins = vec!["u:ada".to_owned(), key(&c)];
        joins.sort();
        assert_eq!(diffs(&mut state), [(joins, vec![])]);
    }
}
