//! The collection helper: a local copy of the items at a collection path, kept by id.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::Stream;
use futures_util::future::BoxFuture;
use network_core::client::fan_out;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Subscription;
use super::error::{InvalidItem, StartError, UnsubscribeError};
use super::state::{Listener, Mirror};
use super::stream::{Registration, SyncMessage};
use crate::protocol::Op;

/// One change of a [`Collection`]'s contents.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CollectionChange<T> {
    /// A new id: `item` was appended.
    Added {
        /// The item's id.
        id: String,
        /// The item.
        item: T,
    },
    /// An id the collection had now has another value.
    Changed {
        /// The item's id.
        id: String,
        /// The new value.
        item: T,
        /// The value it replaced.
        previous: T,
    },
    /// The id left the collection.
    Removed {
        /// The item's id.
        id: String,
        /// The item as the collection had it.
        item: T,
    },
    /// The server sent an item the collection cannot hold; the contents are unchanged for
    /// it (see [`InvalidItem`]).
    Invalid {
        /// The data as the server sent it.
        data: Value,
        /// Why it was not applied.
        error: InvalidItem,
    },
}

/// What one message from the server did to a [`Collection`], as
/// [`CollectionChanges`] delivers it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CollectionEvent<T> {
    /// The changes, in order. A push (`add`, `change`, `remove`) makes at most one; a
    /// snapshot the whole difference between the old contents and the new: removals
    /// first (in the old order), then additions and changes (in the list's order).
    pub changes: Vec<CollectionChange<T>>,
    /// Whether the contents were replaced by a full read: the snapshot of
    /// [`start`](Collection::start), the one after every reconnect or lost push, or a
    /// [`fetch`](Subscription::fetch). Snapshot events are delivered even when nothing
    /// changed (`changes` is then empty); pushes that change nothing (a value the
    /// collection has already, the removal of an unknown id) are not.
    pub snapshot: bool,
}

/// An item with the position it was inserted at and the JSON it came as (to tell a change
/// from a repetition).
struct Entry<T> {
    seq: u64,
    raw: Value,
    item: T,
}

/// The items by id, in insertion order.
struct Items<T> {
    order: BTreeMap<u64, String>,
    entries: HashMap<String, Entry<T>>,
    next_seq: u64,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Self { order: BTreeMap::new(), entries: HashMap::new(), next_seq: 0 }
    }
}

impl<T: Clone> Items<T> {
    fn iter(&self) -> impl Iterator<Item = (&String, &Entry<T>)> {
        self.order.values().filter_map(|id| self.entries.get_key_value(id))
    }

    /// Adds `id` at the end, or replaces its value in place.
    fn upsert(&mut self, id: String, raw: Value, item: T) -> Option<CollectionChange<T>> {
        if let Some(entry) = self.entries.get_mut(&id) {
            if entry.raw == raw {
                return None;
            }
            entry.raw = raw;
            let previous = std::mem::replace(&mut entry.item, item.clone());
            return Some(CollectionChange::Changed { id, item, previous });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, id.clone());
        self.entries.insert(id.clone(), Entry { seq, raw, item: item.clone() });
        Some(CollectionChange::Added { id, item })
    }

    fn remove(&mut self, id: &str) -> Option<CollectionChange<T>> {
        let (id, entry) = self.entries.remove_entry(id)?;
        self.order.remove(&entry.seq);
        Some(CollectionChange::Removed { id, item: entry.item })
    }

    /// Replaces the contents with `list` (in its order) and returns the difference;
    /// invalid items go to `invalid`. An invalid item keeps the previous value of its id,
    /// if there was one.
    fn replace(&mut self, list: &[Value], invalid: &mut Vec<CollectionChange<T>>) -> Vec<CollectionChange<T>>
    where
        T: DeserializeOwned,
    {
        let old = std::mem::take(self);
        for data in list {
            let (id, raw, item) = match decode::<T>(data) {
                Ok((id, item)) => (id, data.clone(), item),
                Err((id, error)) => {
                    invalid.push(CollectionChange::Invalid { data: data.clone(), error });
                    let previous = id.and_then(|id| {
                        let entry = old.entries.get(&id)?;
                        Some((id, entry.raw.clone(), entry.item.clone()))
                    });
                    match previous {
                        Some(previous) => previous,
                        None => continue,
                    }
                }
            };
            if self.entries.contains_key(&id) {
                tracing::warn!(id = %id, "an id appears twice in a collection's list; the last one counts");
            }
            self.upsert(id, raw, item);
        }
        let mut difference: Vec<CollectionChange<T>> = old
            .iter()
            .filter(|(id, _)| !self.entries.contains_key(*id))
            .map(|(id, entry)| CollectionChange::Removed { id: id.clone(), item: entry.item.clone() })
            .collect();
        for (id, entry) in self.iter() {
            match old.entries.get(id) {
                None => difference.push(CollectionChange::Added { id: id.clone(), item: entry.item.clone() }),
                Some(previous) if previous.raw != entry.raw => difference.push(CollectionChange::Changed {
                    id: id.clone(),
                    item: entry.item.clone(),
                    previous: previous.item.clone(),
                }),
                Some(_) => {}
            }
        }
        difference
    }
}

/// The key of an item: its `id` field as a string (a number as written in JSON).
fn key_of(data: &Value) -> Option<String> {
    match data.get("id")? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The id and the decoded item; on failure, the id when there is one, and why.
fn decode<T: DeserializeOwned>(data: &Value) -> Result<(String, T), (Option<String>, InvalidItem)> {
    let id = key_of(data).ok_or((None, InvalidItem::NoId))?;
    match T::deserialize(data) {
        Ok(item) => Ok((id, item)),
        Err(error) => Err((Some(id), InvalidItem::Decode(Arc::new(error)))),
    }
}

struct MirrorState<T> {
    items: Items<T>,
    subscribers: Vec<mpsc::Sender<CollectionEvent<T>>>,
    /// The router's id for this mirror, while it is registered.
    registration: Option<u64>,
}

/// The part of a [`Collection`] the router feeds.
struct CollectionMirror<T> {
    capacity: usize,
    state: Mutex<MirrorState<T>>,
}

impl<T> CollectionMirror<T> {
    fn lock(&self) -> MutexGuard<'_, MirrorState<T>> {
        // Only `T::clone` and `T::deserialize` run under this lock; if one panicked, the
        // maps are still structurally valid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> CollectionMirror<T> {
    fn changes(&self, message: &SyncMessage, items: &mut Items<T>) -> Vec<CollectionChange<T>> {
        let mut changes = Vec::new();
        let data = &message.data;
        if message.snapshot {
            let Value::Array(list) = data else {
                changes.push(CollectionChange::Invalid { data: data.clone(), error: InvalidItem::NotAList });
                return changes;
            };
            let difference = items.replace(list, &mut changes);
            changes.extend(difference);
            return changes;
        }
        match message.op {
            Op::Add | Op::Change => match decode::<T>(data) {
                Ok((id, item)) => changes.extend(items.upsert(id, data.clone(), item)),
                Err((_, error)) => changes.push(CollectionChange::Invalid { data: data.clone(), error }),
            },
            Op::Remove => {
                // The removed item, or leniently its bare id.
                let id = key_of(data).or_else(|| match data {
                    Value::String(id) => Some(id.clone()),
                    Value::Number(id) => Some(id.to_string()),
                    _ => None,
                });
                match id {
                    Some(id) => changes.extend(items.remove(&id)),
                    None => changes
                        .push(CollectionChange::Invalid { data: data.clone(), error: InvalidItem::NoId }),
                }
            }
        }
        changes
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> Mirror for CollectionMirror<T> {
    fn apply(&self, message: &SyncMessage) -> Option<BoxFuture<'static, ()>> {
        let mut state = self.lock();
        let changes = self.changes(message, &mut state.items);
        if changes.is_empty() && !message.snapshot {
            return None;
        }
        state.subscribers.retain(|subscriber| !subscriber.is_closed());
        if state.subscribers.is_empty() {
            return None;
        }
        let subscribers = state.subscribers.clone();
        drop(state);
        let event = CollectionEvent { changes, snapshot: message.snapshot };
        Some(Box::pin(fan_out(subscribers, event)))
    }

    fn end(&self) {
        let mut state = self.lock();
        state.registration = None;
        let ended = std::mem::take(&mut state.subscribers);
        drop(state);
        drop(ended);
    }
}

/// A local copy of the items at a collection path, kept up to date by the server's
/// pushes: the analogue of a Backbone collection. Made by
/// [`SyncClient::collection`](super::SyncClient::collection) or [`Collection::new`].
///
/// Items are JSON objects with an `id` field (a string or a number); the collection keys
/// them by that field, read from the raw JSON as a string (`7` and `"7"` are the same
/// key), so `T` needs no trait beyond `Deserialize` and `Clone`. Each item is decoded once,
/// when it arrives.
///
/// - [`start`](Self::start) subscribes with a snapshot: the answer carries the whole list
///   (a JSON array of items), and the pushes that follow are versioned.
/// - A pushed `add` or `change` adds the item at the end when its id is new, or replaces
///   the value of its id in place; a `remove` removes its id. Pushes are idempotent: a
///   value the collection has already, or the removal of an unknown id, changes nothing.
/// - A snapshot (the one of `start`, the one the router asks for after every reconnect or
///   a lost push, or [`Subscription::fetch`]) replaces the contents with the list, in the
///   list's order.
/// - An item without an id, or one that does not decode as `T`, is not applied and is
///   reported as [`CollectionChange::Invalid`].
///
/// The router applies each message as it handles it, so [`items`](Self::items) is
/// always as current as the frames the client has read; [`changes`](Self::changes) tells
/// what each message changed.
///
/// Dropping the collection stops maintaining it; the subscription stays (call
/// [`close`](Self::close) first to end it).
pub struct Collection<T> {
    subscription: Subscription,
    mirror: Arc<CollectionMirror<T>>,
}

impl<T> fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collection")
            .field("path", &self.subscription.path())
            .field("len", &self.mirror.lock().items.entries.len())
            .finish()
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> Collection<T> {
    /// A collection kept from the messages of `subscription`'s path, empty until
    /// [`start`](Self::start) (or the next snapshot). It applies the path's messages from
    /// now on, whoever subscribed.
    pub fn new(subscription: Subscription) -> Self {
        let mirror = Arc::new(CollectionMirror {
            capacity: subscription.core.config.message_queue_capacity,
            state: Mutex::new(MirrorState {
                items: Items::default(),
                subscribers: Vec::new(),
                registration: None,
            }),
        });
        let collection = Self { subscription, mirror };
        collection.register();
        collection
    }

    /// Registers the mirror with the router unless it is registered (a close or a
    /// refusal ends it).
    fn register(&self) {
        let mut state = self.mirror.lock();
        if state.registration.is_none() {
            let mirror: Arc<dyn Mirror> = self.mirror.clone();
            state.registration =
                self.subscription.core.add_listener(self.subscription.path(), Listener::Mirror(mirror));
        }
    }

    /// Subscribes with a snapshot ([`Subscription::connect_with_snapshot`]): one `sub`
    /// whose answer carries the list, and no separate read. When it returns `Ok`,
    /// [`items`](Self::items) holds the server's items, and the collection stays current
    /// from then on, reconnects included; a push the server sent while it read the list
    /// is applied after it, once (the newer ones only), never overwritten by it.
    ///
    /// Calling it again on a started collection asks for the list again the same way (a
    /// `sub` with a snapshot on a path subscribed already: the server keeps the
    /// subscription and answers the current list, which replaces the contents). If that
    /// read fails, the subscription ends, as the server answers one state: start again
    /// once the cause is fixed.
    ///
    /// A collection whose subscription was closed or refused starts maintaining itself
    /// again. See [`StartError`] for the failures; each leaves the items as they were.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only (see the cancel safety of
    /// `connect_with_snapshot`).
    pub async fn start(&self) -> Result<(), StartError> {
        self.register();
        self.subscription.connect_with_snapshot().await.map_err(StartError::Subscribe)
    }

    /// Unsubscribes ([`Subscription::close`]): the collection keeps its items but is no
    /// longer updated, and its change streams end.
    ///
    /// # Cancel safety
    /// See [`Subscription::close`].
    pub async fn close(&self) -> Result<(), UnsubscribeError> {
        self.subscription.close().await
    }

    /// The subscription the collection follows.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// The collection path.
    pub fn path(&self) -> &str {
        self.subscription.path()
    }

    /// The items, in order: the list's order after a snapshot, new ids appended as they
    /// are added.
    pub fn items(&self) -> Vec<T> {
        self.mirror.lock().items.iter().map(|(_, entry)| entry.item.clone()).collect()
    }

    /// The ids, in the order of [`items`](Self::items).
    pub fn ids(&self) -> Vec<String> {
        self.mirror.lock().items.iter().map(|(id, _)| id.clone()).collect()
    }

    /// The item whose `id` field is `id` (a number id as written in JSON: `"7"`).
    pub fn get(&self, id: &str) -> Option<T> {
        self.mirror.lock().items.entries.get(id).map(|entry| entry.item.clone())
    }

    /// How many items the collection holds.
    pub fn len(&self) -> usize {
        self.mirror.lock().items.entries.len()
    }

    /// Whether the collection holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new stream of what each message does to the collection (see
    /// [`CollectionEvent`]). Every stream gets every event from its creation on; read
    /// [`items`](Self::items) for the contents.
    pub fn changes(&self) -> CollectionChanges<T> {
        let (sender, receiver) = mpsc::channel(self.mirror.capacity);
        // Checked under the mirror's lock: a close that follows ends the stream.
        let mut state = self.mirror.lock();
        if !self.subscription.core.session.is_closed() {
            state.subscribers.push(sender);
        }
        drop(state);
        CollectionChanges { receiver }
    }
}

impl<T> Drop for Collection<T> {
    fn drop(&mut self) {
        let registration = self.mirror.lock().registration.take();
        drop(Registration {
            core: self.subscription.core.clone(),
            path: self.subscription.path.clone(),
            id: registration,
        });
    }
}

/// What each message does to a [`Collection`]; made by [`Collection::changes`].
///
/// The stream's queue holds
/// [`message_queue_capacity`](super::SyncClientConfig::message_queue_capacity) events
/// (a snapshot is one event, however long the list). When it is full the router waits for
/// the reader, and the client meanwhile reads nothing more from its socket
/// (backpressure: nothing is dropped, but a stream nobody reads stalls the client; drop
/// it). It ends when the subscription ends ([`Collection::close`], a refusal) or the
/// network closes for good.
pub struct CollectionChanges<T> {
    receiver: mpsc::Receiver<CollectionEvent<T>>,
}

impl<T> fmt::Debug for CollectionChanges<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectionChanges").field("queued", &self.receiver.len()).finish()
    }
}

impl<T> CollectionChanges<T> {
    /// The next event; `None` once the stream has ended.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is never lost when the future is dropped.
    pub async fn recv(&mut self) -> Option<CollectionEvent<T>> {
        self.receiver.recv().await
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<CollectionEvent<T>> {
        self.receiver.try_recv().ok()
    }
}

impl<T> Stream for CollectionChanges<T> {
    type Item = CollectionEvent<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Clone, Debug, PartialEq, Deserialize)]
    struct Book {
        title: String,
    }

    fn titles(items: &Items<Book>) -> Vec<(String, String)> {
        items.iter().map(|(id, entry)| (id.clone(), entry.item.title.clone())).collect()
    }

    #[test]
    fn pushes_upsert_in_insertion_order_and_are_idempotent() {
        let mut items = Items::<Book>::default();
        let (id, book) = decode::<Book>(&json!({"id": 2, "title": "b"})).unwrap();
        assert!(matches!(
            items.upsert(id, json!({"id": 2, "title": "b"}), book),
            Some(CollectionChange::Added { .. })
        ));
        let (id, book) = decode::<Book>(&json!({"id": "1", "title": "a"})).unwrap();
        items.upsert(id, json!({"id": "1", "title": "a"}), book.clone());
        assert!(items.upsert("1".into(), json!({"id": "1", "title": "a"}), book).is_none());
        let changed = items.upsert("2".into(), json!({"id": 2, "title": "B"}), Book { title: "B".into() });
        assert!(matches!(changed, Some(CollectionChange::Changed { previous, .. }) if previous.title == "b"));
        assert_eq!(titles(&items), [("2".into(), "B".into()), ("1".into(), "a".into())]);
        assert!(items.remove("3").is_none());
        assert!(matches!(items.remove("2"), Some(CollectionChange::Removed { .. })));
        assert_eq!(titles(&items), [("1".into(), "a".into())]);
    }

    #[test]
    fn a_snapshot_replaces_and_reports_the_difference() {
        let mut items = Items::<Book>::default();
        for (id, title) in [("1", "a"), ("2", "b"), ("3", "c")] {
            items.upsert(id.into(), json!({"id": id, "title": title}), Book { title: title.into() });
        }
        let mut invalid = Vec::new();
        let difference = items.replace(
            &[
                json!({"id": "4", "title": "d"}),
                json!({"id": "3", "title": "C"}),
                json!({"id": "1", "title": "a"}),
                json!({"id": "2", "title": 5}),
                json!({"title": "no id"}),
            ],
            &mut invalid,
        );
        assert_eq!(invalid.len(), 2);
        // `2` does not decode: it keeps its previous value.
        assert_eq!(
            titles(&items),
            [
                ("4".into(), "d".into()),
                ("3".into(), "C".into()),
                ("1".into(), "a".into()),
                ("2".into(), "b".into())
            ]
        );
        assert!(matches!(&difference[..], [
            CollectionChange::Added { id: added, .. },
            CollectionChange::Changed { id: changed, .. },
        ] if added == "4" && changed == "3"));
        let difference = items.replace(&[json!({"id": "1", "title": "a"})], &mut invalid);
        let removed: Vec<_> = difference
            .iter()
            .map(|change| match change {
                CollectionChange::Removed { id, .. } => id.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(removed, ["4", "3", "2"]);
    }
}
