//! A local MCP server run as a child process, supervised: restarted with back-off when it exits,
//! with calls failing clearly meanwhile.
//!
//! The child gets only the configured environment plus `PATH` and a private `HOME`; never the
//! gateway's own environment (which may hold the gateway's secrets).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use portcullis_config::Secret;
use portcullis_mcp::{Era, Notification, Outcome};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::sync::CancellationToken;

use super::peer::Peer;
use super::subscriptions::{Subscriptions, is_subscription, listen_params};
use super::{
    Call, ClientContext, Health, ServerIdentity, Upstream, UpstreamError, UpstreamLimits, handshake,
};

#[derive(Clone)]
enum State {
    Starting,
    Up(Arc<Peer>),
    Down(String),
}

struct Shared {
    name: String,
    command: Vec<String>,
    env: BTreeMap<String, Secret>,
    cwd: Option<PathBuf>,
    limits: UpstreamLimits,
    state: watch::Sender<State>,
    notifications: broadcast::Sender<Notification>,
    stop: CancellationToken,
    home: PathBuf,
    subs: Subscriptions,
}

pub struct StdioUpstream {
    shared: Arc<Shared>,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(60);
const WAIT_FOR_START: Duration = Duration::from_secs(15);

impl StdioUpstream {
    /// Starts supervising the process (the first start happens in the background).
    pub fn spawn(
        name: &str,
        command: Vec<String>,
        env: BTreeMap<String, Secret>,
        cwd: Option<PathBuf>,
        limits: UpstreamLimits,
    ) -> Self {
        let (state, _) = watch::channel(State::Starting);
        let (notifications, _) = broadcast::channel(256);
        let home = std::env::temp_dir().join(format!("portcullis-{}-{name}", std::process::id()));
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            command,
            env,
            cwd,
            limits,
            state,
            notifications,
            stop: CancellationToken::new(),
            home,
            subs: Subscriptions::default(),
        });
        tokio::spawn(supervise(Arc::clone(&shared)));
        Self { shared }
    }

    async fn peer(&self) -> Result<Arc<Peer>, UpstreamError> {
        let mut rx = self.shared.state.subscribe();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    State::Up(p) => return Ok(Arc::clone(p)),
                    State::Down(why) => {
                        return Err(UpstreamError::Unavailable(format!(
                            "{}: {why}",
                            self.shared.name
                        )));
                    }
                    State::Starting => {}
                }
                if rx.changed().await.is_err() {
                    return Err(UpstreamError::Unavailable(format!(
                        "{} stopped",
                        self.shared.name
                    )));
                }
            }
        };
        tokio::time::timeout(WAIT_FOR_START, wait)
            .await
            .unwrap_or_else(|_| {
                Err(UpstreamError::Unavailable(format!(
                    "{} is still starting",
                    self.shared.name
                )))
            })
    }
}

async fn supervise(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_START;
    loop {
        shared.state.send_replace(State::Starting);
        let started = Instant::now();
        match start(&shared).await {
            Ok((peer, mut child)) => {
                let pid = child.id();
                tracing::info!(upstream = %shared.name, pid, "upstream process ready");
                shared.state.send_replace(State::Up(Arc::clone(&peer)));
                // Ends with this process (the guard aborts it).
                let _listener = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(listen(
                    Arc::clone(&shared),
                    Arc::clone(&peer),
                )));
                let why = tokio::select! {
                    status = child.wait() => match status {
                        Ok(s) => format!("process exited ({s})"),
                        Err(e) => format!("process wait failed: {e}"),
                    },
                    () = shared.stop.cancelled() => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        peer.fail_all();
                        shared.state.send_replace(State::Down("gateway is stopping".into()));
                        return;
                    }
                };
                peer.fail_all();
                tracing::error!(upstream = %shared.name, reason = %why, "upstream process stopped; restarting");
                shared.state.send_replace(State::Down(why));
            }
            Err(e) => {
                tracing::error!(upstream = %shared.name, error = %e, "upstream failed to start");
                shared.state.send_replace(State::Down(e.to_string()));
            }
        }
        if started.elapsed() > STABLE_AFTER {
            backoff = BACKOFF_START;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shared.stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn start(shared: &Arc<Shared>) -> Result<(Arc<Peer>, Child), UpstreamError> {
    let (program, args) = shared
        .command
        .split_first()
        .ok_or_else(|| UpstreamError::Connect("empty command".into()))?;
    std::fs::create_dir_all(&shared.home)
        .map_err(|e| UpstreamError::Connect(format!("home dir: {e}")))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("HOME", &shared.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in &shared.env {
        cmd.env(k, v.expose());
    }
    if let Some(cwd) = &shared.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| UpstreamError::Connect(format!("cannot start {program}: {e}")))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(UpstreamError::Connect("child has no pipes".into()));
    };

    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(256);
    let peer = Arc::new(Peer::new(&shared.name, wtx, shared.notifications.clone()));

    let name = shared.name.clone();
    tokio::spawn(async move {
        let mut stdin = stdin;
        while let Some(mut bytes) = wrx.recv().await {
            bytes.push(b'\n');
            if let Err(e) = stdin.write_all(&bytes).await {
                tracing::debug!(upstream = %name, error = %e, "stdin closed");
                break;
            }
            let _ = stdin.flush().await;
        }
    });

    let max_line = usize::try_from(shared.limits.max_response_bytes).unwrap_or(usize::MAX);
    let depth = shared.limits.max_json_depth;
    let reader_peer = Arc::clone(&peer);
    let name = shared.name.clone();
    tokio::spawn(async move {
        let mut lines = FramedRead::new(stdout, LinesCodec::new_with_max_length(max_line));
        while let Some(line) = lines.next().await {
            match line {
                Ok(line) if line.trim().is_empty() => {}
                Ok(line) => match portcullis_mcp::parse(line.as_bytes(), depth) {
                    Ok(msg) => reader_peer.dispatch(msg),
                    Err(e) => {
                        tracing::warn!(upstream = %name, error = %e, "upstream wrote an invalid message")
                    }
                },
                Err(e) => {
                    // An over-long line: the codec discards it and resynchronises at the next newline.
                    tracing::warn!(upstream = %name, error = %e, "upstream message dropped");
                }
            }
        }
        reader_peer.fail_all();
    });

    let name = shared.name.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(upstream = %name, stream = "stderr", "{}", line.chars().take(2000).collect::<String>());
        }
    });

    let identity = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake_with(&peer))
        .await
        .map_err(|_| UpstreamError::Connect("handshake timed out".into()))??;
    tracing::info!(upstream = %shared.name, era = ?identity.era, version = %identity.protocol_version, "upstream connected");
    let _ = peer.identity.set(identity);
    Ok((peer, child))
}

/// A 2026-07-28 server sends list changes and resource updates only on a
/// `subscriptions/listen` stream: one stays open for the process's life, reopened when the
/// subscribed resources change (dropping the request cancels it upstream) and, after a pause,
/// when the server ends it. A 2025-era server notifies without one.
async fn listen(shared: Arc<Shared>, peer: Arc<Peer>) {
    let Some(identity) = peer.identity.get().cloned() else {
        return;
    };
    if identity.era != Era::Modern {
        return;
    }
    loop {
        let open = async {
            let Some(params) = listen_params(shared.subs.filter(&identity.capabilities))? else {
                // Nothing to listen for until the subscriptions change.
                return std::future::pending().await;
            };
            peer.request(Call {
                method: "subscriptions/listen".into(),
                params: Some(params),
                client: ClientContext::default(),
                events: None,
            })
            .await
        };
        let ended = tokio::select! {
            () = shared.stop.cancelled() => return,
            () = shared.subs.changed.notified() => continue,
            r = open => r,
        };
        tracing::debug!(upstream = %shared.name, outcome = ?ended.map(|o| matches!(o, Outcome::Result(_))), "upstream listen stream ended");
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = shared.subs.changed.notified() => {}
            () = tokio::time::sleep(BACKOFF_START * 4) => {}
        }
    }
}

async fn handshake_with(peer: &Arc<Peer>) -> Result<ServerIdentity, UpstreamError> {
    let probe = Call {
        method: "server/discover".into(),
        params: Some(handshake::discover_params()),
        client: ClientContext::default(),
        events: None,
    };
    if let Ok(Ok(Outcome::Result(r))) =
        tokio::time::timeout(PROBE_TIMEOUT, peer.request(probe)).await
        && let Some(identity) = handshake::read_discover(&r)
    {
        return Ok(identity);
    }
    let init = Call {
        method: "initialize".into(),
        params: Some(handshake::initialize_params()),
        client: ClientContext::default(),
        events: None,
    };
    let identity = match peer.request(init).await? {
        Outcome::Result(r) => handshake::read_initialize(&r)?,
        Outcome::Error(e) => {
            return Err(UpstreamError::Connect(format!(
                "initialize refused: {} ({})",
                e.message, e.code
            )));
        }
    };
    peer.notify(Notification {
        method: "notifications/initialized".into(),
        params: None,
    })
    .await?;
    Ok(identity)
}

#[async_trait]
impl Upstream for StdioUpstream {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn health(&self) -> Health {
        match &*self.shared.state.borrow() {
            State::Starting => Health::Starting,
            State::Up(_) => Health::Up,
            State::Down(_) => Health::Down,
        }
    }

    fn identity(&self) -> Option<ServerIdentity> {
        match &*self.shared.state.borrow() {
            State::Up(p) => p.identity.get().cloned(),
            _ => None,
        }
    }

    async fn call(&self, call: Call) -> Result<Outcome, UpstreamError> {
        let peer = self.peer().await?;
        let modern = peer.identity.get().is_some_and(|id| id.era == Era::Modern);
        if modern && is_subscription(&call.method) {
            return Ok(self
                .shared
                .subs
                .change(&call.method, call.params.as_deref()));
        }
        peer.request(call).await
    }

    async fn notify(&self, notification: Notification) -> Result<(), UpstreamError> {
        self.peer().await?.notify(notification).await
    }

    fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.shared.notifications.subscribe()
    }

    async fn shutdown(&self) {
        self.shared.stop.cancel();
        let mut rx = self.shared.state.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while !matches!(&*rx.borrow_and_update(), State::Down(_)) {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        let _ = std::fs::remove_dir_all(&self.shared.home);
    }
}
