//! Running the binary, reading its banner, and plain HTTP requests.

use std::net::SocketAddr;
use std::process::Stdio;

pub(crate) use testkit::within;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The binary, with a clean `REALTIME_` environment.
pub(crate) fn realtime(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_realtime"));
    command.args(args).env("RUST_LOG", "warn").kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REALTIME_") {
            command.env_remove(name);
        }
    }
    command
}

/// A running `realtime serve` and the address its banner gave.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// The banner's two lines.
    pub(crate) banner: [String; 2],
}

/// Starts `command` (a `realtime serve`) and waits for its two banner lines.
pub(crate) async fn start(mut command: Command) -> Running {
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = within(lines.next_line()).await.unwrap().expect("the server printed no banner");
    let second = within(lines.next_line()).await.unwrap().expect("the server printed one banner line");
    let addr = first.rsplit("://").next().unwrap().parse().unwrap();
    // Keep reading stdout so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running { child, addr, banner: [first, second] }
}

/// `realtime serve --listen 127.0.0.1:0` and `extra`.
pub(crate) async fn serve(extra: &[&str]) -> Running {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start(realtime(&args)).await
}

/// A plain HTTP/1.1 response: status and body.
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

/// Sends `method path` with `headers` (each `Name: value`) and reads the whole response.
pub(crate) async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> HttpResponse {
    let mut stream = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    HttpResponse { status, head: head.to_owned(), body: body.to_owned() }
}

/// A test's WebSocket client.
pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `text` from `from` until `to` receives it; returns how many times it was sent. The
/// upgrade's answer comes before the server registers the connection, so a relay right after
/// a connect may miss a receiver not yet registered (on another node, not yet known there);
/// nothing outside the server says when it is.
pub(crate) async fn relay_until_received(from: &mut Socket, to: &mut Socket, text: &str) -> u64 {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    within(async {
        let mut sent = 0;
        loop {
            from.send(Message::text(text)).await.unwrap();
            sent += 1;
            let wait = std::time::Duration::from_millis(200);
            if let Ok(received) = tokio::time::timeout(wait, to.next()).await {
                assert_eq!(received.unwrap().unwrap(), Message::text(text));
                return sent;
            }
        }
    })
    .await
}
