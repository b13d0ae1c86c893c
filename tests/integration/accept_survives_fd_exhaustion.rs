//! Running out of file descriptors makes `accept` fail; the accept loop must survive it
//! and serve again once descriptors are free.
//!
//! The test re-runs itself in a child process with a low `ulimit -n`, so that exhausting
//! descriptors affects nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::support::*;
use realtime::ws_server::ServerConfig;

const CHILD_ENV: &str = "ACCEPT_SURVIVES_FD_EXHAUSTION_CHILD";

#[test]
fn accept_loop_survives_fd_exhaustion() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let stdout = run_as_child_with_open_files(
        &test_name(module_path!(), "accept_loop_survives_fd_exhaustion"),
        CHILD_ENV,
        64,
    );
    assert!(stdout.contains("accept failed"), "the accept loop never hit the limit:\n{stdout}");
    assert!(stdout.contains("served again after exhaustion"), "{stdout}");
}

fn child() {
    // The server's warnings go to stdout, where the parent looks for "accept failed".
    tracing_subscriber::fmt().with_writer(std::io::stdout).with_ansi(false).init();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let server = echo_server(ServerConfig::default()).await;
        let addr = server.local_addr().unwrap();
        // Open plain TCP connections until the process runs out of descriptors. Each one
        // costs a descriptor on the client side and, once accepted, on the server side.
        let mut held = Vec::new();
        loop {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => held.push(stream),
                Err(error) => {
                    println!("exhausted after {} connections: {error}", held.len());
                    break;
                }
            }
            assert!(held.len() < 1000, "the descriptor limit did not apply");
        }
        // Let the accept loop hit EMFILE a few times.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        drop(held);
        let mut ws = raw_client(&url(&server)).await;
        send_text(&mut ws, "alive").await;
        let echoed = next_data(&mut ws).await;
        assert_eq!(echoed.into_text().unwrap().as_str(), "alive");
        println!("served again after exhaustion");
    });
}
