//! `GET /metrics` after some traffic: the counters and gauges moved.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// The value of the sample `name_and_labels` (as written before the value), if present.
fn value(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_are_there_at_zero_before_any_connection() {
    let running = serve(&[]).await;
    let text = http(running.addr, "GET", "/metrics", &[]).await.body;
    assert_eq!(value(&text, "realtime_connections"), Some(0.0), "{text}");
    assert_eq!(value(&text, "realtime_connections_total"), Some(0.0), "{text}");
    assert_eq!(value(&text, "realtime_socket_bytes_in_total"), Some(0.0), "{text}");
    assert_eq!(value(&text, "realtime_socket_bytes_out_total"), Some(0.0), "{text}");
    assert_eq!(value(&text, r#"realtime_messages_out_total{kind="text"}"#), Some(0.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_moves_the_counters_and_gauges() {
    let running = serve(&[]).await;
    let addr = running.addr;
    let (mut ada, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
    let (mut grace, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
    let warm_up = relay_until_received(&mut ada, &mut grace, "ready").await;
    for text in ["one", "two", "three"] {
        ada.send(Message::text(text)).await.unwrap();
        assert_eq!(within(grace.next()).await.unwrap().unwrap(), Message::text(text));
    }
    ada.send(Message::binary(vec![1, 2, 3, 4])).await.unwrap();
    assert_eq!(within(grace.next()).await.unwrap().unwrap(), Message::binary(vec![1, 2, 3, 4]));
    // Not an upgrade: refused (400, as `Server::bind` refuses a plain GET).
    assert_eq!(http(addr, "GET", "/not-a-page", &[]).await.status, 400);

    let scraped = http(addr, "GET", "/metrics", &[]).await;
    assert_eq!(scraped.status, 200, "{}", scraped.head);
    assert!(
        scraped.head.to_lowercase().contains("content-type: text/plain; version=0.0.4"),
        "{}",
        scraped.head
    );
    let text = &scraped.body;
    assert_eq!(value(text, "realtime_connections"), Some(2.0), "{text}");
    assert_eq!(value(text, "realtime_connections_total"), Some(2.0), "{text}");
    let texts = warm_up as f64 + 3.0;
    assert_eq!(value(text, r#"realtime_messages_in_total{kind="text"}"#), Some(texts), "{text}");
    assert_eq!(value(text, r#"realtime_messages_in_total{kind="binary"}"#), Some(1.0), "{text}");
    let text_bytes = warm_up as f64 * 5.0 + 11.0;
    assert_eq!(value(text, r#"realtime_bytes_in_total{kind="text"}"#), Some(text_bytes), "{text}");
    assert_eq!(value(text, r#"realtime_bytes_in_total{kind="binary"}"#), Some(4.0), "{text}");
    // Each relayed frame went to one other connection; the sockets took them with their
    // two header bytes each (short frames from the server are not masked), and more.
    assert_eq!(value(text, r#"realtime_bytes_out_total{kind="text"}"#), Some(text_bytes), "{text}");
    assert_eq!(value(text, r#"realtime_bytes_out_total{kind="binary"}"#), Some(4.0), "{text}");
    let framed = text_bytes + 2.0 * texts + 6.0;
    assert!(value(text, "realtime_socket_bytes_out_total").is_some_and(|bytes| bytes >= framed), "{text}");
    assert_eq!(value(text, r#"realtime_messages_out_total{kind="text"}"#), Some(texts), "{text}");
    assert_eq!(value(text, r#"realtime_messages_out_total{kind="binary"}"#), Some(1.0), "{text}");
    assert_eq!(value(text, r#"realtime_handshakes_refused_total{reason="400"}"#), Some(1.0), "{text}");
    assert_eq!(value(text, "realtime_outgoing_queue_bytes"), Some(0.0), "{text}");
    assert_eq!(value(text, "realtime_views"), Some(0.0), "{text}");
    assert_eq!(value(text, "realtime_sync_subscriptions"), Some(0.0), "{text}");
    assert!(value(text, "realtime_rooms").is_some(), "{text}");
    for router in ["ch", "views", "sync"] {
        let depth = value(text, &format!(r#"realtime_router_queue_depth{{router="{router}"}}"#));
        assert!(depth.is_some(), "{router}: {text}");
    }
    assert!(value(text, "realtime_event_queue_depth").is_some(), "{text}");
    assert!(text.contains("# TYPE realtime_connections_total counter"), "{text}");
    assert!(text.contains("# HELP realtime_connections "), "{text}");

    // A closed connection leaves the gauge.
    ada.close(None).await.unwrap();
    while within(ada.next()).await.is_some() {}
    let gone = within(async {
        loop {
            let text = http(addr, "GET", "/metrics", &[]).await.body;
            if value(&text, "realtime_connections") == Some(1.0) {
                break text;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(value(&gone, "realtime_connections_total"), Some(2.0), "{gone}");
}
