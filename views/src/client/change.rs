//! A view's members as the client knows them, and the [`ViewChange`]s between two states.
//!
//! Pure logic, no I/O: the server's `state` replaces the map, its `diff` upserts and
//! removes by key, and each returns the net difference it made (empty when it changed
//! nothing, so that repeated frames stay silent).

use std::collections::BTreeMap;

use super::error::RemoteError;
use crate::protocol::Member;

/// What one frame from the server changed in a view, delivered on
/// [`ChangeStream`](super::ChangeStream)s.
///
/// The three lists hold the net difference between the members before and after the frame,
/// each sorted by key; a member is in at most one of them. Frames that change nothing (a
/// repeated diff, a re-sent state equal to the known one) produce no `ViewChange` at all.
///
/// - Logic reacts to [`joined`](Self::joined) and [`left`](Self::left) (a user with two
///   tabs who closes one is in [`changed`](Self::changed), with `clients: 1`, not in
///   `left`).
/// - A display redraws from [`View::members`](super::View::members) (the stream's
///   [`view`](super::ChangeStream::view)), the sorted snapshot. It is the latest state: the
///   state after this change, or after later changes still waiting in the stream, so a
///   reader that drains the stream before redrawing skips intermediate frames.
///
/// The last change of a view that the server refused to re-open after a reconnect carries
/// [`closed`](Self::closed); the stream ends after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewChange {
    /// Members that appeared, with their entry.
    pub joined: Vec<Member>,
    /// Members whose entry changed (their `clients` count, their `data`), with the new
    /// entry.
    pub changed: Vec<Member>,
    /// Members that are gone, with their last known entry.
    pub left: Vec<Member>,
    /// The server refused to re-open the view after a reconnect (its authorization
    /// changed): the view is forgotten, [`View::members`](super::View::members) is empty
    /// from now on, and this is the stream's last item. The members are not listed in
    /// `left`: they did not leave, the client stopped seeing them.
    pub closed: Option<RemoteError>,
}

impl ViewChange {
    /// Whether nothing changed (no member, and not closed).
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.changed.is_empty() && self.left.is_empty() && self.closed.is_none()
    }

    /// The last change of a view whose re-open was refused.
    pub(super) fn refused(error: RemoteError) -> Self {
        Self { closed: Some(error), ..Self::default() }
    }
}

/// A view's members by key.
#[derive(Debug, Default)]
pub(super) struct MemberMap(BTreeMap<String, Member>);

impl MemberMap {
    /// Replaces every member (a `state` frame); duplicate keys: the last entry wins.
    pub(super) fn replace(&mut self, members: Vec<Member>) -> ViewChange {
        let new: BTreeMap<String, Member> = members.into_iter().map(|m| (m.key.clone(), m)).collect();
        let old = std::mem::replace(&mut self.0, new);
        let mut change = ViewChange::default();
        for (key, member) in &self.0 {
            match old.get(key) {
                None => change.joined.push(member.clone()),
                Some(before) if before != member => change.changed.push(member.clone()),
                Some(_) => {}
            }
        }
        change.left = old.into_iter().filter(|(key, _)| !self.0.contains_key(key)).map(|(_, m)| m).collect();
        change
    }

    /// Applies a `diff` frame: `joins` upserted by key, then `leaves` removed by key.
    pub(super) fn apply(&mut self, joins: Vec<Member>, leaves: Vec<String>) -> ViewChange {
        // The entry of every touched key before the frame, to report the net difference
        // (a key that joins and leaves in one frame, or appears twice, counts once).
        let mut before: BTreeMap<String, Option<Member>> = BTreeMap::new();
        for member in joins {
            let key = member.key.clone();
            let old = self.0.insert(key.clone(), member);
            before.entry(key).or_insert(old);
        }
        for key in leaves {
            if let Some(old) = self.0.remove(&key) {
                before.entry(key).or_insert(Some(old));
            }
        }
        let mut change = ViewChange::default();
        for (key, old) in before {
            match (old, self.0.get(&key)) {
                (None, Some(new)) => change.joined.push(new.clone()),
                (Some(old), None) => change.left.push(old),
                (Some(old), Some(new)) if old != *new => change.changed.push(new.clone()),
                _ => {}
            }
        }
        change
    }

    /// Every member, sorted by key.
    pub(super) fn members(&self) -> Vec<Member> {
        self.0.values().cloned().collect()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn users(&self) -> usize {
        self.0.values().filter(|member| member.user.is_some()).count()
    }

    pub(super) fn clients(&self) -> usize {
        // u32 to usize: lossless on the 32- and 64-bit targets tokio supports.
        self.0.values().map(|member| member.clients as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn user(name: &str, clients: u32) -> Member {
        Member {
            key: format!("u:{name}"),
            user: Some(name.into()),
            clients,
            data: Value::Null,
            connections: None,
        }
    }

    fn anonymous(id: u64) -> Member {
        Member { key: format!("c:{id}"), user: None, clients: 1, data: Value::Null, connections: None }
    }

    #[test]
    fn a_state_reports_its_difference_with_the_known_members() {
        let mut map = MemberMap::default();
        let first = map.replace(vec![user("bob", 1), user("ada", 2), anonymous(7)]);
        // Sorted by key: anonymous `c:` keys before `u:` users.
        assert_eq!(first.joined, [anonymous(7), user("ada", 2), user("bob", 1)]);
        assert!(first.changed.is_empty() && first.left.is_empty());
        assert_eq!(map.members(), [anonymous(7), user("ada", 2), user("bob", 1)]);

        assert!(map.replace(vec![anonymous(7), user("ada", 2), user("bob", 1)]).is_empty());

        let second = map.replace(vec![user("ada", 1), user("cy", 1)]);
        assert_eq!(second.joined, [user("cy", 1)]);
        assert_eq!(second.changed, [user("ada", 1)]);
        assert_eq!(second.left, [anonymous(7), user("bob", 1)]);
        assert_eq!((map.len(), map.users(), map.clients()), (2, 2, 2));
    }

    #[test]
    fn diffs_are_upserts_and_repeating_one_changes_nothing() {
        let mut map = MemberMap::default();
        map.replace(vec![user("ada", 1), anonymous(7)]);
        let joins = vec![user("ada", 2), user("bob", 1)];
        let leaves = vec!["c:7".to_owned(), "c:99".to_owned()];
        let change = map.apply(joins.clone(), leaves.clone());
        assert_eq!(change.joined, [user("bob", 1)]);
        assert_eq!(change.changed, [user("ada", 2)]);
        assert_eq!(change.left, [anonymous(7)]);
        assert!(map.apply(joins, leaves).is_empty());
        // What a state just said, repeated by a diff.
        assert!(map.apply(vec![user("bob", 1)], Vec::new()).is_empty());
        assert_eq!((map.len(), map.users(), map.clients()), (2, 2, 3));
    }

    #[test]
    fn net_difference_within_one_diff() {
        let mut map = MemberMap::default();
        map.replace(vec![user("ada", 1)]);
        // Joins then leaves: a newcomer that also leaves is no change; a known member
        // updated then removed has left, with its entry from before the frame.
        let change = map.apply(vec![user("bob", 1), user("ada", 3)], vec!["u:bob".into(), "u:ada".into()]);
        assert_eq!(change, ViewChange { left: vec![user("ada", 1)], ..ViewChange::default() });
        // The same key twice: the last entry wins, reported once.
        let change = map.apply(vec![user("cy", 1), user("cy", 2)], Vec::new());
        assert_eq!(change.joined, [user("cy", 2)]);
        // A change of data alone is a change.
        let mut cy = user("cy", 2);
        cy.data = json!({"name": "Cy"});
        assert_eq!(map.apply(vec![cy.clone()], Vec::new()).changed, [cy]);
    }
}
