//! TLS with a certificate authority generated here (rcgen): `Server::bind` with
//! `ServerConfig::tls`, and `realtime serve --tls-cert --tls-key`, reached by our client and
//! by Node's `ws`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use network_core::{Message, Network, NetworkEvent};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ws_client::rustls;
use ws_client::{Client, ClientConfig};
use ws_server::{Server, ServerConfig};

use crate::support::*;

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in a
/// directory of their own (removed on drop).
struct Certificates {
    dir: PathBuf,
    ca_pem: String,
}

impl Certificates {
    fn generate(name: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: with rcgen's one default name for both, Node takes the leaf for
        // a self-signed certificate.
        ca.distinguished_name.push(DnType::CommonName, "realtime test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = leaf.signed_by(&key, &issuer).unwrap();

        let dir = std::env::temp_dir().join(format!("realtime-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        Self { dir, ca_pem: ca_cert.pem() }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The server's rustls configuration, through the binary's own loader.
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let files: realtime_cli::config::TlsFiles =
            toml::from_str(&format!("cert = {:?}\nkey = {:?}", self.path("cert.pem"), self.path("key.pem")))
                .unwrap();
        realtime_cli::tls::server_config(&files).unwrap()
    }

    /// Our client, trusting this CA only.
    fn client_config(&self) -> ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap();
        roots.add(ca).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        ClientConfig::default().tls(Some(Arc::new(tls))).max_retries(Some(0))
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use rustls::pki_types::pem::PemObject as _;

/// The next text frame `client` receives.
async fn next_text(events: &mut network_core::Events) -> String {
    loop {
        match within(events.recv()).await.expect("the client stopped") {
            NetworkEvent::Message { message: Message::Text(text), .. } => return text.to_string(),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bind_with_tls_serves_wss() {
    let certificates = Certificates::generate("bind");
    let config = ServerConfig::default().tls(Some(certificates.server_config()));
    let server = Server::bind("127.0.0.1:0", config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let mut server_events = server.events().unwrap();

    let client =
        Client::connect(format!("wss://localhost:{}/", addr.port()), certificates.client_config()).unwrap();
    client.send(Message::text("over tls")).unwrap();
    let received = loop {
        match within(server_events.recv()).await.unwrap() {
            NetworkEvent::Message { message, connection } => break (message, connection),
            _ => continue,
        }
    };
    assert_eq!(received.0, Message::text("over tls"));
    received.1.send(Message::text("back")).unwrap();
    let mut client_events = client.events().unwrap();
    assert_eq!(next_text(&mut client_events).await, "back");

    // A client that does not trust the CA never gets through.
    let untrusting = Client::connect(
        format!("wss://localhost:{}/", addr.port()),
        ClientConfig::default().max_retries(Some(0)),
    )
    .unwrap();
    let mut lifecycle = untrusting.lifecycle();
    loop {
        match within(lifecycle.recv()).await.unwrap() {
            ws_client::ClientEvent::Failed { error, .. } => {
                assert!(matches!(error, ws_client::ConnectError::Tls(_)), "{error:?}");
                break;
            }
            ws_client::ClientEvent::Open => panic!("connected without trusting the CA"),
            _ => continue,
        }
    }
    server.shutdown().await;
}

/// Our client on `url`, trusting `certificates`' CA, once open, with its events.
async fn open_client(url: &str, certificates: &Certificates) -> (Client, network_core::Events) {
    let client = Client::connect(url, certificates.client_config()).unwrap();
    let events = client.events().unwrap();
    let mut lifecycle = client.lifecycle();
    while !matches!(within(lifecycle.recv()).await.unwrap(), ws_client::ClientEvent::Open) {}
    (client, events)
}

async fn serve_tls(certificates: &Certificates) -> Running {
    let (cert, key) = (certificates.path("cert.pem"), certificates.path("key.pem"));
    serve(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_wss_and_https_on_one_port() {
    let certificates = Certificates::generate("binary");
    let running = serve_tls(&certificates).await;
    let port = running.addr.port();
    assert_eq!(
        running.banner,
        [format!("listening on wss://{}", running.addr), format!("listening on https://{}", running.addr)]
    );
    // Plain HTTP on the TLS port gets nothing useful.
    assert_ne!(http(running.addr, "GET", "/healthz", &[]).await.status, 200);

    let url = format!("wss://localhost:{port}/");
    let ada = Client::connect(url.as_str(), certificates.client_config()).unwrap();
    let grace = Client::connect(url.as_str(), certificates.client_config()).unwrap();
    let mut grace_events = grace.events().unwrap();
    // Relayed to every other connection, grace's once the server registered it (after its
    // upgrade's answer): ada speaks until grace hears.
    within(async {
        loop {
            ada.send(Message::text("hello over tls")).unwrap();
            let wait = std::time::Duration::from_millis(200);
            if let Ok(text) = tokio::time::timeout(wait, next_text(&mut grace_events)).await {
                assert_eq!(text, "hello over tls");
                break;
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(node_ws_missing, ignore = "needs node and bench/node's ws: npm --prefix bench/node ci")]
async fn node_ws_connects_with_the_generated_ca() {
    let certificates = Certificates::generate("node");
    let running = serve_tls(&certificates).await;
    let url = format!("wss://localhost:{}/", running.addr.port());
    let (ours, mut ours_events) = open_client(&url, &certificates).await;

    let ws_module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/node/node_modules/ws");
    // Sends a line once open, prints the first frame it receives, and exits 0.
    let script = r#"
        const [wsPath, url, caPath] = process.argv.slice(1);
        const WebSocket = require(wsPath);
        const socket = new WebSocket(url, { ca: require('fs').readFileSync(caPath) });
        socket.on('open', () => socket.send('from node'));
        socket.on('message', (data) => { console.log(String(data)); socket.close(); process.exit(0); });
        socket.on('error', (error) => { console.error(String(error)); process.exit(1); });
    "#;
    let node = tokio::process::Command::new("node")
        .args([
            "-e",
            script,
            ws_module.to_str().unwrap(),
            &url,
            certificates.path("ca.pem").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut output = tokio::spawn(node.wait_with_output());
    tokio::select! {
        text = next_text(&mut ours_events) => assert_eq!(text, "from node"),
        ended = &mut output => panic!("node ended first: {ended:?}"),
    }
    ours.send(Message::text("to node")).unwrap();
    let output = within(output).await.unwrap().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "to node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_connect_trusts_the_ca_it_is_given() {
    let certificates = Certificates::generate("connect");
    let running = serve_tls(&certificates).await;
    let url = format!("wss://localhost:{}/", running.addr.port());
    let (_ours, mut ours_events) = open_client(&url, &certificates).await;

    let ca = certificates.path("ca.pem");
    let mut connect = realtime(&["connect", &url, "--ca-cert", ca.to_str().unwrap(), "--max-retries", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = connect.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"over wss from the terminal\n").await.unwrap();
    // The line came over wss: `connect` trusted the CA it was given (and only it: the
    // Mozilla roots do not know this one). It is killed when dropped.
    let mut output = tokio::spawn(connect.wait_with_output());
    tokio::select! {
        text = next_text(&mut ours_events) => assert_eq!(text, "over wss from the terminal"),
        ended = &mut output => panic!("connect ended first: {ended:?}"),
    }
    drop(stdin);
}
