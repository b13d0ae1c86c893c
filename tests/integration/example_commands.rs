//! The examples as a new user first meets them: `--help` prints the full usage on stdout
//! and exits 0, a bad flag prints the usage on stderr and exits 2, and the example client
//! exits 1 as soon as its retries run out, even with stdin still open.

use std::path::PathBuf;
use std::process::Stdio;

use crate::support::*;

/// `cargo test` builds the examples beside the test binaries.
fn example(name: &str) -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples").join(name)
}

const EXAMPLES: [&str; 9] = [
    "autobahn_client",
    "axum_mount",
    "axum_tokens",
    "client",
    "custom_router",
    "echo",
    "presence",
    "server",
    "sync_books",
];

async fn run(name: &str, args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(example(name))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    within(child).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_prints_the_usage_on_stdout_and_exits_0() {
    for name in EXAMPLES {
        let output = run(name, &["--help"]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{name} --help: {output:?}");
        assert!(stdout.starts_with(&format!("usage: {name}")), "{name} --help printed {stdout:?}");
        assert!(stdout.contains("--help"), "{name} --help lists every flag: {stdout:?}");
        assert!(output.stderr.is_empty(), "{name} --help wrote to stderr: {output:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_flag_prints_the_usage_on_stderr_and_exits_2() {
    for name in EXAMPLES {
        let output = run(name, &["--no-such-flag"]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name} --no-such-flag: {output:?}");
        assert!(stderr.contains(&format!("usage: {name}")), "{name} --no-such-flag printed {stderr:?}");
        assert!(output.stdout.is_empty(), "{name} --no-such-flag wrote to stdout: {output:?}");
    }
}

/// It used to print `retries exhausted: giving up` and then wait for a line of stdin: the
/// runtime's shutdown waited for tokio's blocking read of stdin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_exits_1_when_its_retries_run_out_with_stdin_open() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut client = tokio::process::Command::new(example("client"))
        .args([
            &format!("ws://127.0.0.1:{closed_port}"),
            "--max-retries",
            "1",
            "--min-delay",
            "10",
            "--max-delay",
            "20",
        ])
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Kept open (and unwritten) until the client has exited.
    let stdin = client.stdin.take().unwrap();
    let stderr = client.stderr.take().unwrap();
    let status = within(client.wait()).await.unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(1), "{status}");
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut log).await.unwrap();
    assert!(log.contains("retries exhausted: giving up"), "{log}");
}
