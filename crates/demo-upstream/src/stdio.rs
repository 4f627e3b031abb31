//! The stdio transport: one JSON-RPC message per line in, one per line out.
//!
//! The read loop parses each line and decides its era; `initialize` is answered in the loop
//! (so its reply precedes later ones), every other request runs in its own task so that a
//! legacy elicitation can wait for the client's answer (read by this same loop) and
//! `notifications/cancelled` can abort it. One writer task owns stdout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::era::{self, ClientCaps, Era, Legacy, Route};
use crate::inflight::Inflight;
use crate::jsonrpc::{self, INVALID_REQUEST, Message, Request, RpcError};
use crate::peer::{Peer, Pending};
use crate::server::{Ctx, Server};

/// Longest line accepted; longer ones are answered with `-32600` and skipped.
const MAX_LINE: u64 = 16 * 1024 * 1024;
/// After end of input, how long running requests may take to finish before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves MCP on this process's stdin and stdout until stdin ends.
pub async fn serve_stdio(root: PathBuf) -> std::io::Result<()> {
    serve_stream(tokio::io::stdin(), tokio::io::stdout(), root).await
}

/// Serves MCP over any byte stream pair with stdio framing (newline-delimited JSON-RPC),
/// until `reader` ends. `root` is the directory the tools and resources expose.
pub async fn serve_stream<R, W>(reader: R, writer: W, root: PathBuf) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let server = Arc::new(Server::new(&root)?);
    let (out, rx) = mpsc::channel(64);
    let writer = tokio::spawn(write_lines(writer, rx));
    let mut conn = Connection {
        server,
        out,
        pending: Arc::new(Pending::new()),
        legacy: None,
        inflight: Arc::default(),
        tasks: JoinSet::new(),
    };
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let read_result = loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break Ok(()),
            Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 > MAX_LINE => {
                if let Err(e) = skip_line(&mut reader).await {
                    break Err(e);
                }
                let error = RpcError::new(INVALID_REQUEST, "Invalid request: message too large");
                conn.send(jsonrpc::response(None, &Err(error))).await;
            }
            Ok(_) => {
                if !line.trim_ascii().is_empty() {
                    conn.on_line(line.trim_ascii()).await;
                }
                while conn.tasks.try_join_next().is_some() {}
            }
            Err(e) => break Err(e),
        }
    };
    conn.shutdown().await;
    drop(conn);
    match writer.await {
        Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
        _ => {}
    }
    read_result
}

async fn skip_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> std::io::Result<()> {
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        let n = (&mut *reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut chunk)
            .await?;
        if n == 0 || chunk.last() == Some(&b'\n') {
            return Ok(());
        }
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(
    writer: W,
    mut rx: mpsc::Receiver<String>,
) -> std::io::Result<()> {
    let mut writer = tokio::io::BufWriter::new(writer);
    while let Some(line) = rx.recv().await {
        writer.write_all(line.as_bytes()).await?;
        writer.write_all(b"\n").await?;
        if rx.is_empty() {
            writer.flush().await?;
        }
    }
    writer.flush().await
}

enum Next {
    Run(Era, ClientCaps),
    Reply(Result<Value, RpcError>),
}

/// One stdio connection: the legacy scope (if `initialize` was seen) and running requests.
struct Connection {
    server: Arc<Server>,
    out: mpsc::Sender<String>,
    pending: Arc<Pending>,
    legacy: Option<(Legacy, ClientCaps)>,
    inflight: Arc<Inflight>,
    tasks: JoinSet<()>,
}

impl Connection {
    async fn send(&self, line: String) {
        // A closed stdout is noticed by the writer; replies to nobody are simply dropped.
        let _ = self.out.send(line).await;
    }

    async fn on_line(&mut self, line: &[u8]) {
        match jsonrpc::parse(line) {
            Err(rejected) => {
                tracing::debug!(code = rejected.error.code, "rejected a stdio line");
                let reply = jsonrpc::response(rejected.id.as_ref(), &Err(rejected.error));
                self.send(reply).await;
            }
            Ok(Message::Request(req)) => self.on_request(req).await,
            Ok(Message::Notification { method, params }) => self.on_notification(&method, &params),
            Ok(Message::Response { id, outcome }) => {
                if !self.pending.resolve(&id, outcome) {
                    tracing::debug!(id = %id.key(), "answer to no pending request");
                }
            }
        }
    }

    /// What to do with a request: run it in an era, or answer it here and now.
    fn decide(&mut self, req: &Request) -> Next {
        let route = match era::route(&req.method, &req.params) {
            Ok(route) => route,
            Err(error) => return Next::Reply(Err(error)),
        };
        match route {
            Route::Initialize => Next::Reply(self.server.initialize(&req.params).map(
                |(version, caps, result)| {
                    self.legacy = Some((version, caps));
                    result
                },
            )),
            Route::Modern(envelope) => match envelope.accept() {
                Ok(caps) => Next::Run(Era::Modern, caps),
                Err(error) => Next::Reply(Err(error)),
            },
            Route::Legacy => match self.legacy {
                Some((version, caps)) => Next::Run(Era::Legacy(version), caps),
                None if req.method == "ping" => {
                    Next::Run(Era::Legacy(Legacy::LATEST), ClientCaps::default())
                }
                None => Next::Reply(Err(era::not_initialized())),
            },
        }
    }

    async fn on_request(&mut self, req: Request) {
        tracing::debug!(mcp.method = %req.method, "stdio request");
        let (era, caps) = match self.decide(&req) {
            Next::Run(era, caps) => (era, caps),
            Next::Reply(answer) => {
                self.send(jsonrpc::response(Some(&req.id), &answer)).await;
                return;
            }
        };
        let ctx = Ctx {
            era,
            caps,
            peer: Peer::new(self.out.clone(), Some(self.pending.clone())),
        };
        let (server, out, inflight) =
            (self.server.clone(), self.out.clone(), self.inflight.clone());
        let id = req.id.clone();
        let tasks = &mut self.tasks;
        self.inflight.start(&id, || {
            tasks.spawn(async move {
                let outcome = server.handle(&req, &ctx).await;
                inflight.finished(&req.id);
                let _ = out.send(jsonrpc::response(Some(&req.id), &outcome)).await;
            })
        });
    }

    fn on_notification(&mut self, method: &str, params: &Map<String, Value>) {
        match method {
            "notifications/cancelled" => self.inflight.cancel(params),
            _ => tracing::debug!(mcp.method = %method, "notification"),
        }
    }

    async fn shutdown(&mut self) {
        self.pending.close();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.shutdown().await;
        }
    }
}
