//! The client's handles are `Send + Sync` and its futures `Send`, so they can be shared
//! and spawned freely.
#![allow(clippy::unwrap_used, missing_docs)]

use channels::client::{Channel, ChannelsClient, ErrorStream, EventStream};

fn send_sync<T: Send + Sync>(_: &T) {}
fn send<T: Send>(_: &T) {}

#[allow(dead_code, clippy::diverging_sub_expression)]
fn handles_and_futures(
    channels: ChannelsClient,
    channel: Channel,
    mut events: EventStream<String>,
    mut errors: ErrorStream,
) {
    send_sync(&channels);
    send_sync(&channel);
    send_sync(&events);
    send_sync(&errors);
    send(&channels.ready());
    send(&channel.join());
    send(&channel.leave());
    send(&channel.emit_with_ack::<u32, _>("add", &[1, 2]));
    send(&channel.emit_with_ack::<(), _>("say", "hi"));
    send(&events.recv());
    send(&errors.recv());
}

#[test]
fn compiles() {}
