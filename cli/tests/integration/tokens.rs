//! With `[tokens]`, the issuer route wants the bearer secret, and every WebSocket needs a
//! one-time token.

use crate::support::*;

const SECRET: &str = "0123456789abcdef-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_issued_to_the_secret_only_and_open_one_socket_each() {
    let mut command = realtime(&["serve", "--listen", "127.0.0.1:0"]);
    command.env("REALTIME_TOKENS__SECRET", SECRET);
    let running = start(command).await;
    let addr = running.addr;

    let refused = http(addr, "POST", "/tokens?user=ada", &[]).await;
    assert_eq!(refused.status, 401, "{}", refused.head);
    let wrong =
        http(addr, "POST", "/tokens?user=ada", &["Authorization: Bearer 0123456789abcdef-secreT"]).await;
    assert_eq!(wrong.status, 401, "{}", wrong.head);

    let issued = http(addr, "POST", "/tokens?user=ada", &[&format!("Authorization: Bearer {SECRET}")]).await;
    assert_eq!(issued.status, 200, "{}", issued.head);
    let token = serde_json::from_str::<serde_json::Value>(&issued.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let without = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await;
    assert!(without.is_err(), "a socket without a token was accepted");
    let url = format!("ws://{addr}/?token={token}");
    within(tokio_tungstenite::connect_async(url.as_str())).await.unwrap();
    assert!(tokio_tungstenite::connect_async(url.as_str()).await.is_err(), "a token opened two sockets");
}
