//! The socketioxide peer of the bench: the Socket.IO server a Rust user would pick instead of
//! us, in the idiom of socketioxide's README (axum, `io.ns("/", ...)`, rooms), doing the same
//! job as `bench serve` and `bench/node/socketio.js`.
//!
//! ```text
//! bench-socketioxide --scenario echo|fanout|memory [--listen 127.0.0.1:0]
//! ```
//!
//! - echo: every `m` event goes back to its sender (`socket.emit("m", data)`).
//! - fanout: the socket whose handshake query has `role=pub` is the publisher; every other
//!   socket joins the room `bench` when it connects, and each `m` event of the publisher is
//!   broadcast to the room except the sender (`socket.to("bench").emit("m", seq)`).
//! - memory: every socket joins the room `bench` and stays idle.
//!
//! One tokio worker (a current-thread runtime), like `bench serve`. It prints
//! `listening on ws://ADDR` once it listens, which is how `bench run` learns the port.

use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};

/// The one room of the fan-out and memory scenarios.
const ROOM: &str = "bench";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Echo,
    Fanout,
    Memory,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|index| args.get(index + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let scenario = match value("--scenario", "echo").as_str() {
        "echo" => Scenario::Echo,
        "fanout" => Scenario::Fanout,
        "memory" => Scenario::Memory,
        other => return Err(format!("unknown scenario {other} (echo, fanout or memory)").into()),
    };
    let listen = value("--listen", "127.0.0.1:0");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(scenario, &listen))
}

async fn serve(scenario: Scenario, listen: &str) -> Result<(), BoxError> {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async move |socket: SocketRef| match scenario {
        Scenario::Echo => socket.on("m", async |socket: SocketRef, Data(data): Data<serde_json::Value>| {
            // Full buffer or closed socket: the frame is dropped, as socketioxide does.
            let _ = socket.emit("m", &data);
        }),
        Scenario::Fanout if is_publisher(&socket) => {
            socket.on("m", async |socket: SocketRef, Data(seq): Data<u64>| {
                let _ = socket.to(ROOM).emit("m", &seq).await;
            })
        }
        Scenario::Fanout | Scenario::Memory => socket.join(ROOM),
    });
    let app = axum::Router::new().fallback(async || "bench socketioxide").layer(layer);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The publisher connects with `role=pub` in its handshake query (Engine.IO's URL).
fn is_publisher(socket: &SocketRef) -> bool {
    socket.req_parts().uri.query().is_some_and(|query| query.split('&').any(|pair| pair == "role=pub"))
}
