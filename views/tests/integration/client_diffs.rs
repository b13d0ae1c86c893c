//! Diffs: joins, count changes and leaves update the members and emit one `ViewChange`
//! each; a repeated diff emits nothing; several streams each get every change; a full
//! stream holds the router back instead of dropping changes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::client_support::*;
use serde_json::json;
use views::client::ViewsClientConfig;

#[tokio::test]
async fn diffs_update_the_members_and_emit_changes() {
    let mut server = FakeServer::start().await;
    let (client, views, connection) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = open(&mut server, &views, "doc", vec![user("ada", 1)]).await;
    let mut changes = doc.changes();

    // Someone joins.
    send(&connection, &diff("doc", vec![user("bob", 1)], &[]));
    let change = next_change(&mut changes).await;
    assert_eq!((change.joined, change.changed, change.left), (vec![user("bob", 1)], vec![], vec![]));
    assert_eq!(doc.members(), [user("ada", 1), user("bob", 1)]);

    // Ada opens a second tab: her count changes, she did not join.
    send(&connection, &diff("doc", vec![user("ada", 2)], &[]));
    let change = next_change(&mut changes).await;
    assert_eq!((change.joined, change.changed, change.left), (vec![], vec![user("ada", 2)], vec![]));
    assert_eq!(doc.client_count(), 3);

    // Bob leaves, an anonymous reader arrives, in one diff.
    send(&connection, &diff("doc", vec![anonymous(9)], &["u:bob"]));
    let change = next_change(&mut changes).await;
    assert_eq!(
        (change.joined, change.changed, change.left),
        (vec![anonymous(9)], vec![], vec![user("bob", 1)])
    );
    assert!(change.closed.is_none());
    assert_eq!(doc.members(), [anonymous(9), user("ada", 2)]);
    assert_eq!((doc.member_count(), doc.user_count(), doc.anonymous_count()), (2, 1, 1));

    // Metadata changes are changes too.
    let mut named = user("ada", 2);
    named.data = json!({"name": "Ada"});
    send(&connection, &diff("doc", vec![named.clone()], &[]));
    assert_eq!(next_change(&mut changes).await.changed, [named]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_repeated_diff_emits_nothing() {
    let mut server = FakeServer::start().await;
    let (client, views, connection) = connected(&mut server, ViewsClientConfig::default()).await;
    let doc = open(&mut server, &views, "doc", vec![user("ada", 1), user("bob", 1)]).await;
    let mut changes = doc.changes();

    let once = diff("doc", vec![user("cy", 1), user("ada", 2)], &["u:bob"]);
    send(&connection, &once);
    let change = next_change(&mut changes).await;
    assert_eq!((change.joined.len(), change.changed.len(), change.left.len()), (1, 1, 1));
    // The same diff again, a diff repeating what is known, a leave of someone gone.
    send(&connection, &once);
    send(&connection, &diff("doc", vec![user("cy", 1)], &[]));
    send(&connection, &diff("doc", vec![], &["u:nobody"]));
    // The next change is the next real one: the repeats emitted nothing.
    send(&connection, &diff("doc", vec![user("dee", 1)], &[]));
    assert_eq!(next_change(&mut changes).await.joined, [user("dee", 1)]);
    assert!(changes.try_recv().is_none());
    assert_eq!(doc.members(), [user("ada", 2), user("cy", 1), user("dee", 1)]);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn every_stream_gets_every_change_and_dropped_streams_are_left_out() {
    let mut server = FakeServer::start().await;
    let config = ViewsClientConfig::default().change_queue_capacity(1);
    let (client, views, connection) = connected(&mut server, config).await;
    let doc = open(&mut server, &views, "doc", vec![]).await;
    let mut first = doc.changes();
    let mut second = doc.changes();
    let dropped = doc.changes();
    drop(dropped);
    let unread = doc.changes();

    send(&connection, &diff("doc", vec![user("ada", 1)], &[]));
    assert_eq!(next_change(&mut first).await.joined, [user("ada", 1)]);
    assert_eq!(next_change(&mut second).await.joined, [user("ada", 1)]);
    // The unread stream is full now; dropping it lets the router go on.
    drop(unread);
    for name in ["bob", "cy", "dee"] {
        send(&connection, &diff("doc", vec![user(name, 1)], &[]));
        assert_eq!(next_change(&mut first).await.joined, [user(name, 1)]);
        assert_eq!(next_change(&mut second).await.joined, [user(name, 1)]);
    }
    assert_eq!(changes_view_keys(&first), ["u:ada", "u:bob", "u:cy", "u:dee"]);
    client.close().await;
    server.shutdown().await;
}

fn changes_view_keys(changes: &views::client::ChangeStream) -> Vec<String> {
    keys(&changes.view().members()).into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_full_stream_holds_the_router_back_without_losing_changes() {
    let mut server = FakeServer::start().await;
    let config = ViewsClientConfig::default().change_queue_capacity(1);
    let (client, views, connection) = connected(&mut server, config).await;
    let doc = open(&mut server, &views, "doc", vec![]).await;
    let mut changes = doc.changes();
    let names: Vec<String> = (0..20).map(|i| format!("user-{i:02}")).collect();
    for name in &names {
        send(&connection, &diff("doc", vec![user(name, 1)], &[]));
    }
    // Read slowly: one at a time, every change arrives, in order.
    for name in &names {
        let change = next_change(&mut changes).await;
        assert_eq!(change.joined, [user(name, 1)]);
        // The router is at most one change ahead of the reader (plus the one in its hands).
        assert!(doc.member_count() <= names.iter().position(|n| n == name).unwrap() + 3);
    }
    assert_eq!(doc.member_count(), 20);
    client.close().await;
    server.shutdown().await;
}
