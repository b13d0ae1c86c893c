//! A terminal presence display built on the views client: it opens one view and shows who
//! has it open, live, across reconnects.
//!
//! ```text
//! cargo run --example server                                        # in one terminal
//! cargo run --example presence -- ws://127.0.0.1:9001 --user ada    # in a few others
//! cargo run --example presence -- ws://127.0.0.1:9001 --view doc-7 --user bob
//! ```
//!
//! `cargo run --example presence -- ws://HOST:PORT[/PATH] [--view NAME] [--user NAME]`
//!
//! - `--view` names the view to open (default `lobby`). `--user NAME` goes into the URL as
//!   `?user=NAME`, which the example server turns into the connection's identity; without
//!   it the client is an anonymous member of its own.
//! - On a terminal the screen is redrawn in place (ANSI clear screen and cursor home):
//!   the view, the link's state, the member count, every user with its number of clients
//!   (tabs), the number of anonymous connections, and the last change.
//! - When stdout is not a terminal (`| cat`, a file, a test), it prints one line when the
//!   view opens and one line per change, for example
//!   `lobby: 3 members | users: ada (2), bob (1) | anonymous: 1 | joined: bob`; the link's
//!   events go to stderr.
//! - Stop the server and start it again: the display keeps the last known members while
//!   the client reconnects, then shows what changed meanwhile.
//! - Ctrl-C closes the view and the client and exits 0. A refused open (for example by an
//!   authorization hook) exits 1.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use realtime::views::Member;
use realtime::views::client::{OpenError, View, ViewChange, ViewsClient, ViewsClientConfig};
use realtime::ws_client::{Client, ClientConfig, ClientEvent};
use realtime_cli::terminal::chain;
use tokio::sync::broadcast::error::RecvError;

const USAGE: &str = "\
usage: presence ws://HOST:PORT[/PATH] [OPTIONS]

Shows who has a view open, live.

options:
  --view NAME    the view to open (default: lobby)
  --user NAME    the user name sent as ?user=NAME (default: none, anonymous)
  -h, --help     print this help and exit";

#[path = "shared/cli.rs"]
mod cli;

/// How long closing the view may take on the way out.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

struct Args {
    url: String,
    view: String,
    user: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = cli::parse_or_exit(|| parse_args(std::env::args().skip(1)), USAGE);
    match run(args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The arguments, or `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let (mut url, mut view, mut user) = (None, "lobby".to_owned(), None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--view" => view = value("--view")?,
            "--user" => user = Some(value("--user")?).filter(|user| !user.is_empty()),
            "-h" | "--help" => return Ok(None),
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ if url.is_none() => url = Some(arg),
            _ => bail!("unexpected argument {arg:?}"),
        }
    }
    Ok(Some(Args { url: url.context("missing the server URL")?, view, user }))
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ClientConfig::default().close_timeout(CLOSE_LIMIT);
    if let Some(user) = &args.user {
        config = config.query_param("user", user);
    }
    let client = Client::connect(args.url.as_str(), config)?;
    let mut lifecycle = client.lifecycle();
    let views = ViewsClient::attach(&client, ViewsClientConfig::default())?;
    let mut screen = Screen::new(&args);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    // Open the view. An open that times out (no server yet) leaves the view wanted: asking
    // again waits for the same open, which goes out as soon as the link is up.
    screen.start();
    let view = loop {
        tokio::select! {
            opened = views.open(&args.view) => match opened {
                Ok(view) => break view,
                Err(OpenError::Timeout(_)) => screen.status("still waiting for the server"),
                Err(err) => {
                    eprintln!("cannot open view {:?}: {}", args.view, chain(&err));
                    client.close().await;
                    return Ok(ExitCode::FAILURE);
                }
            },
            event = lifecycle.recv() => screen.lifecycle(event),
            _ = &mut ctrl_c => {
                client.close().await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    };

    // The stream first, then the snapshot: no change can fall in between.
    let mut changes = view.changes();
    screen.opened(view.clone());
    let code = loop {
        tokio::select! {
            change = changes.recv() => match change {
                Some(change) => {
                    if let Some(error) = &change.closed {
                        eprintln!("the server closed view {:?}: {error}", args.view);
                        break ExitCode::FAILURE;
                    }
                    screen.change(&change);
                }
                None => {
                    eprintln!("the client closed");
                    break ExitCode::FAILURE;
                }
            },
            event = lifecycle.recv() => screen.lifecycle(event),
            _ = &mut ctrl_c => break ExitCode::SUCCESS,
        }
    };

    // Leave politely: the others see us go at once rather than when the socket drops.
    match tokio::time::timeout(CLOSE_LIMIT, views.close(&view)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("closing the view: {}", chain(&err)),
        Err(_) => eprintln!("closing the view: no answer within {CLOSE_LIMIT:?}"),
    }
    client.close().await;
    screen.finish();
    Ok(code)
}

/// What is shown: redrawn in place on a terminal, one line per change otherwise.
struct Screen {
    terminal: bool,
    /// The view, once open.
    open: Option<View>,
    view: String,
    user: Option<String>,
    status: String,
    last_change: String,
}

impl Screen {
    fn new(args: &Args) -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            open: None,
            view: args.view.clone(),
            user: args.user.clone(),
            status: "connecting".to_owned(),
            last_change: String::new(),
        }
    }

    /// The first screen, before anything happened (a terminal only: lines follow events).
    fn start(&self) {
        if self.terminal {
            self.draw();
        }
    }

    /// The link's state changed.
    fn status(&mut self, status: impl Into<String>) {
        self.status = status.into();
        if self.terminal {
            self.draw();
        } else {
            eprintln!("{}", self.status);
        }
    }

    fn lifecycle(&mut self, event: Result<ClientEvent, RecvError>) {
        match event {
            Ok(ClientEvent::Connecting { attempt: 0 }) => self.status("connecting"),
            Ok(ClientEvent::Connecting { attempt }) => self.status(format!("connecting (attempt {attempt})")),
            Ok(ClientEvent::Open) => self.status("connected"),
            Ok(ClientEvent::Failed { error, .. }) => {
                self.status(format!("connection failed: {}", chain(&error)))
            }
            Ok(ClientEvent::Closed { frame }) => {
                self.status(format!("disconnected ({frame}); showing the last known members"))
            }
            Ok(ClientEvent::Reconnecting { delay, .. }) => {
                self.status(format!("reconnecting in {} ms", delay.as_millis()))
            }
            Ok(ClientEvent::RetriesExhausted) => self.status("gave up reconnecting"),
            Ok(ClientEvent::ReconnectDeclined) => self.status("the server closed for good"),
            Ok(other) => self.status(format!("{other:?}")),
            Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {}
        }
    }

    fn opened(&mut self, view: View) {
        self.open = Some(view);
        if self.terminal {
            self.draw();
        } else {
            self.line(&format!("{}: opened, {}", self.view, count(self.members().len(), "member")));
        }
    }

    fn change(&mut self, change: &ViewChange) {
        let mut parts = Vec::new();
        for (what, members) in
            [("joined", &change.joined), ("changed", &change.changed), ("left", &change.left)]
        {
            if !members.is_empty() {
                let names: Vec<String> = members.iter().map(describe).collect();
                parts.push(format!("{what}: {}", names.join(", ")));
            }
        }
        self.last_change = parts.join("; ");
        if self.terminal {
            self.draw();
        } else {
            self.line(&format!("{}: {}", self.view, count(self.members().len(), "member")));
        }
    }

    fn members(&self) -> Vec<Member> {
        self.open.as_ref().map(View::members).unwrap_or_default()
    }

    /// One line: `head | users: ... | anonymous: N | last change`.
    fn line(&self, head: &str) {
        let members = self.members();
        let users: Vec<String> = members.iter().filter(|m| m.user.is_some()).map(describe).collect();
        let anonymous = members.iter().filter(|m| m.user.is_none()).count();
        let mut line = format!("{head} | users: {} | anonymous: {anonymous}", users.join(", "));
        if !self.last_change.is_empty() {
            let _ = write!(line, " | {}", self.last_change);
        }
        // A closed stdout (`| head`) is not worth a panic.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// The whole screen, from the top.
    fn draw(&self) {
        let mut out = String::from("\x1b[H\x1b[2J");
        let me = self.user.as_deref().unwrap_or("anonymous");
        let _ = writeln!(out, "view {:?} as {me} · {}\n", self.view, self.status);
        match &self.open {
            None => out.push_str("opening...\n"),
            Some(view) => {
                let members = view.members();
                let anonymous = members.iter().filter(|m| m.user.is_none()).count();
                let _ = writeln!(
                    out,
                    "{} · {} · {anonymous} anonymous · {}{}\n",
                    count(members.len(), "member"),
                    count(members.len() - anonymous, "user"),
                    count(view.client_count(), "client"),
                    if view.is_synced() { "" } else { " (not current)" },
                );
                let width = members.iter().filter_map(|m| m.user.as_deref()).map(str::len).max().unwrap_or(0);
                for member in &members {
                    if let Some(user) = &member.user {
                        let clients = if member.clients == 1 { "client" } else { "clients" };
                        let _ = writeln!(out, "  {user:<width$}  {} {clients}", member.clients);
                    }
                }
                if anonymous > 0 {
                    let _ = writeln!(out, "  + {anonymous} anonymous");
                }
                if !self.last_change.is_empty() {
                    let _ = writeln!(out, "\nlast change: {}", self.last_change);
                }
            }
        }
        out.push_str("\nCtrl-C to quit\n");
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    fn finish(&self) {
        if self.terminal {
            println!();
        }
    }
}

/// `1 member`, `2 members`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `ada (2)` for a user, `anonymous c:17` for an anonymous connection.
fn describe(member: &Member) -> String {
    match &member.user {
        Some(user) => format!("{user} ({})", member.clients),
        None => format!("anonymous {}", member.key),
    }
}
