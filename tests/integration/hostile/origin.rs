//! Cross-site WebSocket hijacking: with `allowed_origins` set, an upgrade whose `Origin` is
//! not on the list (`null` included) gets 403 before the handshake hook runs, on both
//! mounts; the comparison normalises case and default ports; a request without `Origin`
//! (not a browser) passes; a malformed list is refused when the server starts.

use realtime::network_core::Identity;
use realtime::ws_server::{Server, ServerConfig, ServerError, TokenConfig, TokenStore};

use super::endpoints::*;

fn allow_list() -> Option<Vec<String>> {
    Some(vec!["https://app.example".to_owned(), "http://localhost:8080".to_owned()])
}

#[tokio::test]
async fn origins_off_the_list_get_403_on_both_mounts() {
    for mount in MOUNTS {
        let endpoint = start(mount, ServerConfig::default().allowed_origins(allow_list())).await;
        let (addr, path) = (endpoint.addr, endpoint.path);
        for origin in [
            None,
            Some("https://app.example"),
            Some("HTTPS://App.Example:443"),
            Some("http://localhost:8080"),
        ] {
            let extra: Vec<_> = origin.map(|origin| ("Origin", origin)).into_iter().collect();
            let (response, _ws) = exchange(addr, &request(path, "HTTP/1.1", &upgrade_headers(&extra))).await;
            assert_eq!(response.status, 101, "{mount:?}, Origin {origin:?}: {response:?}");
        }
        for origin in [
            "https://evil.example",
            "null",
            "https://app.example:8443",
            "http://app.example",
            "https://app.example.evil.example",
            "https://evil.example/https://app.example",
            "http://localhost",
            "",
        ] {
            let (response, _stream) =
                exchange(addr, &request(path, "HTTP/1.1", &upgrade_headers(&[("Origin", origin)]))).await;
            assert_eq!(response.status, 403, "{mount:?}, Origin {origin:?}: {response:?}");
            assert_eq!(response.body, "origin not allowed", "{mount:?}");
            if let Mount::Bound = mount {
                // The shape of every refusal (the mount's is the subject of `handshake_limits`).
                assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
                assert_eq!(response.header("connection"), Some("close"));
            }
        }
        // Two `Origin` headers: one of them allowed is not enough.
        let twice = upgrade_headers(&[("Origin", "https://app.example"), ("Origin", "https://evil.example")]);
        let (response, _stream) = exchange(addr, &request(path, "HTTP/1.1", &twice)).await;
        assert_eq!(response.status, 403, "{mount:?}: {response:?}");

        // The documented default: without a list, nothing is checked.
        let open = start(mount, ServerConfig::default()).await;
        let evil = upgrade_headers(&[("Origin", "https://evil.example")]);
        let (response, _ws) = exchange(open.addr, &request(open.path, "HTTP/1.1", &evil)).await;
        assert_eq!(response.status, 101, "{mount:?}, no list: {response:?}");
    }
}

#[tokio::test]
async fn a_refused_origin_does_not_spend_a_token() {
    for mount in MOUNTS {
        let tokens = TokenStore::new(TokenConfig::default()).unwrap();
        let config = ServerConfig::default().allowed_origins(allow_list()).handshake(tokens.handshake_hook());
        let endpoint = start(mount, config).await;
        let token = tokens.issue(Identity::user("ada")).unwrap();
        let target = format!("{}?token={token}", endpoint.path);

        let evil = upgrade_headers(&[("Origin", "https://evil.example")]);
        let (response, _stream) = exchange(endpoint.addr, &request(&target, "HTTP/1.1", &evil)).await;
        assert_eq!(response.status, 403, "{mount:?}: {response:?}");
        assert_eq!(tokens.len(), 1, "{mount:?}: the hook must not run for a refused origin");

        let good = upgrade_headers(&[("Origin", "https://app.example")]);
        let (response, _ws) = exchange(endpoint.addr, &request(&target, "HTTP/1.1", &good)).await;
        assert_eq!(response.status, 101, "{mount:?}: {response:?}");
        assert!(tokens.is_empty());
    }
}

#[tokio::test]
async fn a_malformed_list_is_refused_at_start() {
    for entry in
        ["null", "*", "app.example", "https://app.example/", "https://", "https://app.example:99999", ""]
    {
        let config = ServerConfig::default().allowed_origins(Some(vec![entry.to_owned()]));
        match Server::bind("127.0.0.1:0", config.clone()).await {
            Err(ServerError::Config(error)) => assert_eq!(error.field, "allowed_origins", "{error}"),
            other => panic!("{entry:?}: expected a configuration error, got {other:?}"),
        }
        assert!(matches!(Server::detached(config), Err(ServerError::Config(_))), "{entry:?}");
    }
    // IPv6 hosts and other schemes (a desktop app's) are fine.
    let fine = vec!["http://[::1]:3000".to_owned(), "tauri://localhost".to_owned()];
    assert!(Server::detached(ServerConfig::default().allowed_origins(Some(fine))).is_ok());
}
