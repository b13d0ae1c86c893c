//! `realtime serve`: the banner, HTTP and WebSocket on one port, the relay, `/healthz`, the
//! order of config file, environment and flags, and a graceful stop on SIGTERM.

use std::process::Stdio;

use futures_util::StreamExt;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_port_serves_the_relay_healthz_and_the_page_until_sigterm() {
    let mut running = serve(&[]).await;
    let addr = running.addr;
    assert_eq!(running.banner, [format!("listening on ws://{addr}"), format!("listening on http://{addr}")]);

    let health = http(addr, "GET", "/healthz", &[]).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"), "{}", health.head);
    let page = http(addr, "GET", "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.head.to_lowercase().contains("content-type: text/html"), "{}", page.head);

    // An application frame goes to every other connection, not back to its sender.
    let (mut ada, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
    let (mut grace, _) =
        within(tokio_tungstenite::connect_async(format!("ws://{addr}/any/path"))).await.unwrap();
    relay_until_received(&mut ada, &mut grace, "hello").await;

    // SIGTERM: the clients are closed with 1001 and the process exits 0.
    let pid = running.child.id().unwrap().to_string();
    let killed = within(tokio::process::Command::new("kill").args(["-TERM", &pid]).status()).await.unwrap();
    assert!(killed.success());
    let close = loop {
        match within(ada.next()).await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|frame| u16::from(frame.code)), Some(1001));
    let status = within(running.child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_the_environment_which_beats_the_file() {
    let dir = std::env::temp_dir().join(format!("realtime-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("realtime.toml");
    // The file's address is taken by nobody's choice: the flag must replace it.
    std::fs::write(&file, "listen = \"192.0.2.1:9\"\ndemo_page = true\n").unwrap();
    let mut command = realtime(&["serve", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    command.env("REALTIME_DEMO_PAGE", "false");
    let running = start(command).await;
    // No page: `/` goes to the WebSocket server, which wants an upgrade.
    let page = http(running.addr, "GET", "/", &[]).await;
    assert_ne!(page.status, 200, "{}", page.head);
    assert!(http(running.addr, "GET", "/healthz", &[]).await.status == 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_refused_with_its_name() {
    let output = realtime(&["serve", "--listen", "127.0.0.1:0"])
        .env("REALTIME_LIMITS__MAX_CONECTIONS", "5")
        .stdin(Stdio::null())
        .output();
    let output = within(output).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("max_conections"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_address_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = realtime(&["serve", "--listen", &addr]).stdin(Stdio::null()).output();
    let output = within(output).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot bind the listening socket on {addr}")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_and_level_come_from_the_flags() {
    let mut command =
        realtime(&["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"]);
    command.env_remove("RUST_LOG").stderr(Stdio::piped());
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = within(stdout.next_line()).await.unwrap().unwrap();
    let addr = banner.rsplit("://").next().unwrap().to_owned();
    let (socket, _) =
        within(tokio_tungstenite::connect_async(format!("ws://{addr}/?user=ada"))).await.unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let connected = loop {
        let line = within(stderr.next_line()).await.unwrap().expect("no log line");
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if event["fields"]["message"] == "connected" {
            break event;
        }
    };
    assert_eq!(connected["level"], "INFO", "{connected}");
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_healthz_first_and_serves_through_the_drain() {
    let mut command = realtime(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("REALTIME_DRAIN_SECS", "60");
    let running = start(command).await;
    let addr = running.addr;
    let (mut ada, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
    let (mut grace, _) = within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();

    let pid = running.child.id().unwrap().to_string();
    assert!(
        within(tokio::process::Command::new("kill").args(["-TERM", &pid]).status()).await.unwrap().success()
    );
    within(async {
        while http(addr, "GET", "/healthz", &[]).await.status != 503 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // Draining: the open connections still relay, and new ones are still accepted.
    relay_until_received(&mut ada, &mut grace, "still here").await;
    within(tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
}
