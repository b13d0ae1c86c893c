//! `realtime connect`: stdin lines go out as text frames, received frames print one a line
//! (MessagePack as JSON), and it exits 0 once stdin ends and its lines are written.

use std::process::Stdio;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_go_out_and_frames_print_until_stdin_ends() {
    let running = serve(&[]).await;
    let addr = running.addr;
    let (mut peer, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();

    // `--no-resume`: the exit after stdin ends waits for the queue to be written, not acknowledged.
    let mut connect =
        realtime(&["connect", &format!("ws://{addr}/"), "--header", "X-Test: 1", "--no-resume"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let mut stdin = connect.stdin.take().unwrap();
    let mut stdout = BufReader::new(connect.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(connect.stderr.take().unwrap()).lines();
    // Connected once it says so on stderr (before that, a relayed frame would miss it).
    loop {
        let line = within(stderr.next_line()).await.unwrap().expect("connect ended early");
        if line.starts_with("connected to") {
            break;
        }
    }

    stdin.write_all(b"from the terminal\n").await.unwrap();
    assert_eq!(within(peer.next()).await.unwrap().unwrap(), Message::text("from the terminal"));

    peer.send(Message::text("plain text")).await.unwrap();
    assert_eq!(within(stdout.next_line()).await.unwrap().as_deref(), Some("plain text"));
    // A fixmap {"n": 1} in MessagePack.
    peer.send(Message::binary(vec![0x81, 0xa1, b'n', 0x01])).await.unwrap();
    assert_eq!(within(stdout.next_line()).await.unwrap().as_deref(), Some(r#"{"n":1}"#));

    drop(stdin);
    let status = within(connect.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_port_is_refused() {
    let output = realtime(&["connect", "ws://127.0.0.1:99999"]).stdin(Stdio::piped()).output();
    let output = within(output).await.unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid url"), "{output:?}");
}

/// With a session, `flush` waits for the server's `ack` of what was written; it used to wait
/// on until some other event woke it, since the `ack` did not (and `realtime connect` then
/// took its 10 s flush limit to exit after stdin ended, or failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_in_a_session_ends_at_the_servers_ack() {
    use network_core::Message;
    use ws_client::{Client, ClientConfig, ClientEvent};
    let running = serve(&[]).await;
    let client =
        Client::connect(format!("ws://{}/", running.addr), ClientConfig::default().resume(true)).unwrap();
    let mut lifecycle = client.lifecycle();
    while !matches!(within(lifecycle.recv()).await.unwrap(), ClientEvent::Open) {}
    client.send(Message::text("acknowledge me")).unwrap();
    within(client.flush()).await.unwrap();
}
