//! The client's handles are `Send + Sync` and its futures `Send`, so they can be shared
//! and spawned freely.
#![allow(clippy::unwrap_used, missing_docs)]

use views::client::{ChangeStream, View, ViewChange, ViewsClient};

fn send_sync<T: Send + Sync>(_: &T) {}
fn send<T: Send>(_: &T) {}

#[allow(dead_code, clippy::diverging_sub_expression)]
fn handles_and_futures(views: ViewsClient, view: View, mut changes: ChangeStream, change: ViewChange) {
    send_sync(&views);
    send_sync(&view);
    send_sync(&changes);
    send_sync(&change);
    send(&views.open("doc"));
    send(&views.close(&view));
    send(&views.close_name("doc"));
    send(&views.info("doc"));
    send(&views.info_debug("doc"));
    send(&views.info_matching("^doc"));
    send(&views.info_matching_debug("^doc"));
    send(&changes.recv());
}

#[test]
fn compiles() {}
