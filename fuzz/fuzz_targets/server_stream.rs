//! The whole server-side input path: the HTTP upgrade parser and validation, then
//! ws-server's frame reader, our connection task (close codes, the outbox write path),
//! the hub's envelope routing and a router decoding what it is sent.
//!
//! The input is written into one end of an in-memory duplex stream whose other end is
//! served by `Server::serve_stream`; whatever the server answers is read and discarded.
//! The first byte chooses:
//! - bit 0 clear: the rest is prefixed with a valid upgrade request, so that the fuzzer
//!   starts at the frame parser; set: the rest is the raw stream, HTTP request included;
//! - bits 1-7: write the input in chunks of that many bytes (0: all at once), yielding in
//!   between, so that frames arrive split across reads.
//!
//! Application frames are echoed back and envelopes for router `a` are decoded and
//! answered, so the write path carries fuzzed payloads too.
//!
//! The runtime's clock is paused: every timeout of the server (handshake, close, idle)
//! elapses as soon as nothing else can run, so a run is deterministic and quick. The
//! server must have finished with the stream long before `DEADLINE` of virtual time; a
//! run that does not is a hang and fails.
#![no_main]

mod server_io;

use server_io::UPGRADE;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use network_core::{Network, NetworkEvent, Router, envelope};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use ws_server::{Server, ServerConfig};

/// Far past the sum of the server's own timeouts below.
const DEADLINE: Duration = Duration::from_secs(60);

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let prefix: &[u8] = if control & 1 == 0 { UPGRADE } else { b"" };
        let chunk = usize::from(control >> 1);
        let session = tokio::time::timeout(DEADLINE, session(prefix, input, chunk)).await;
        assert!(session.is_ok(), "the server did not finish within {DEADLINE:?}");
    });
});

async fn session(prefix: &[u8], input: &[u8], chunk: usize) {
    let config = ServerConfig::default()
        .handshake_timeout(Duration::from_millis(50))
        .close_timeout(Duration::from_millis(50))
        .ping_interval(None)
        .idle_timeout(Some(Duration::from_millis(500)))
        // Small limits, so that short inputs reach the size checks.
        .max_handshake_size(1024)
        .max_message_size(4096)
        .read_buffer_size(256)
        .outgoing_queue_size(8192);
    let server = Server::detached(config).expect("a valid config");
    server.attach(Echo).expect("router attached");
    let application = server_io::spawn_echo(&server);

    let (client, stream) = tokio::io::duplex(16 * 1024);
    let (mut reader, mut writer) = tokio::io::split(client);
    let write = async {
        server_io::write_in_pieces(&mut writer, &[prefix, input].concat(), chunk).await;
    };
    let read = async {
        let mut sink = [0u8; 4096];
        while let Ok(1..) = reader.read(&mut sink).await {}
    };
    tokio::join!(server.serve_stream(stream, None), write, read);
    server.shutdown().await;
    application.abort();
}

/// Answers each envelope for `a` with its decoded body, in the frame's format.
struct Echo;

impl<N: Network> Router<N> for Echo {
    fn name(&self) -> &str {
        "a"
    }

    async fn on_event(&mut self, _network: &N, event: NetworkEvent) {
        if let NetworkEvent::Message { connection, message } = event
            && let Ok(body) = envelope::decode::<Value>("a", &message)
        {
            let reply =
                if message.is_text() { envelope::json("a", &body) } else { envelope::msgpack("a", &body) };
            if let Ok(reply) = reply {
                let _ = connection.send(reply);
            }
        }
    }
}
