//! The floor under any gateway on the benchmark's machine: a bare HTTP/1.1 reverse proxy built
//! from the parts Portcullis is built from (tokio with the same worker count, hyper, mimalloc),
//! doing nothing but pass requests and replies through. `bench/run` measures it beside
//! Portcullis, so what a second hop costs on the machine is known apart from the gateway's own
//! work: the proxy reads no body, checks nothing and keeps no record.
//!
//! With `--commit sqlite://FILE` it also commits one row per call through sqlx to SQLite before
//! the reply goes out, opened as the gateway opens its store for the minimal scenario (WAL,
//! `synchronous=NORMAL`, checkpoints in the background), with the calls that wait at the same
//! time committed together in one statement, as the gateway's audit writer does. That is the
//! floor of "the record is committed before the reply" through sqlx, whose SQLite connections
//! each run on a thread of their own. `--flush` flushes every commit to disk
//! (`synchronous=FULL`), as the full pipeline's store does.
//!
//! `bench-proxy --addr 127.0.0.1:9200 --upstream 127.0.0.1:9100 [--commit sqlite://FILE [--flush]] [--workers N]`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_store::sqlx::{self, AnyConnection, AssertSqlSafe};
use portcullis_store::{Commit, Migration, Store, now_ms};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Calls committed together at most (the gateway's audit writer batches up to 64 records).
const MAX_BATCH: usize = 64;

const MIGRATIONS: &[Migration] = &[Migration::same(
    1,
    "CREATE TABLE bench_calls (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, status BIGINT NOT NULL)",
)];

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, hyper::Error>;

/// A call waiting for its row to be committed.
type Waiting = (u16, oneshot::Sender<bool>);

struct Options {
    addr: SocketAddr,
    upstream: SocketAddr,
    commit: Option<String>,
    flush: bool,
    workers: usize,
}

fn main() -> ExitCode {
    let Some(opts) = options() else {
        eprintln!(
            "usage: bench-proxy --addr HOST:PORT --upstream HOST:PORT [--commit sqlite://FILE [--flush]] [--workers N]"
        );
        return ExitCode::from(2);
    };
    portcullis_bench::run("bench-proxy", Some(opts.workers), serve(opts))
}

fn options() -> Option<Options> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut addr = None;
    let mut upstream = None;
    let mut commit = None;
    let mut flush = false;
    // As the gateway: one less than the cores, at least one.
    let mut workers = cores.saturating_sub(1).max(1);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--flush" {
            flush = true;
            continue;
        }
        let value = args.next()?;
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().ok()?),
            "--upstream" => upstream = Some(value.parse().ok()?),
            "--commit" => commit = Some(value),
            "--workers" => workers = value.parse().ok().filter(|w| *w > 0)?,
            _ => return None,
        }
    }
    Some(Options {
        addr: addr?,
        upstream: upstream?,
        commit,
        flush,
        workers,
    })
}

async fn serve(opts: Options) -> Result<(), Box<dyn std::error::Error>> {
    let journal = match &opts.commit {
        Some(url) => {
            let commit = if opts.flush {
                Commit::Flushed
            } else {
                Commit::Unflushed
            };
            let store = Store::open_with(url, commit).await?;
            store.migrate("bench_proxy", MIGRATIONS).await?;
            let conn = store.pool().acquire().await?.detach();
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(writer(conn, rx));
            Some(tx)
        }
        None => None,
    };
    let listener = TcpListener::bind(opts.addr).await?;
    println!(
        "bench-proxy listening on http://{}, passing to {}{}",
        listener.local_addr()?,
        opts.upstream,
        if journal.is_some() {
            ", a row committed per call"
        } else {
            ""
        }
    );
    loop {
        let (client, _) = listener.accept().await?;
        let _ = client.set_nodelay(true);
        let journal = journal.clone();
        let upstream = opts.upstream;
        tokio::spawn(async move {
            if let Err(e) = connection(client, upstream, journal).await {
                eprintln!("bench-proxy: connection: {e}");
            }
        });
    }
}

/// One client connection, with one upstream connection of its own for its whole life.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    journal: Option<mpsc::Sender<Waiting>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(up)).await?;
    tokio::spawn(conn);
    // HTTP/1.1 serves one request of a connection at a time: the lock is never contended.
    let send = Arc::new(Mutex::new(send));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let send = Arc::clone(&send);
        let journal = journal.clone();
        async move {
            let mut send = send.lock().await;
            let sent = match send.ready().await {
                Ok(()) => send.send_request(req).await,
                Err(e) => Err(e),
            };
            drop(send);
            let reply = match sent {
                Ok(reply) => reply,
                Err(e) => return Ok::<_, hyper::Error>(failed(&format!("upstream: {e}"))),
            };
            if let Some(journal) = journal {
                let (done, committed) = oneshot::channel();
                let sent = journal.send((reply.status().as_u16(), done)).await.is_ok();
                if !sent || committed.await != Ok(true) {
                    return Ok(failed("the call's row was not committed"));
                }
            }
            Ok(reply.map(BodyExt::boxed_unsync))
        }
    });
    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .http1_only()
        .serve_connection(TokioIo::new(client), service)
        .await?;
    Ok(())
}

fn failed(why: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(why.to_owned()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

/// Commits a row for every waiting call, those waiting together in one statement.
async fn writer(mut conn: AnyConnection, mut rx: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let values = vec!["(?, ?)"; batch.len()].join(", ");
        let sql = format!("INSERT INTO bench_calls (ts, status) VALUES {values}");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        let ts = now_ms();
        for (status, _) in &batch {
            query = query.bind(ts).bind(i64::from(*status));
        }
        let ok = match query.execute(&mut conn).await {
            Ok(_) => true,
            Err(e) => {
                eprintln!("bench-proxy: commit: {e}");
                false
            }
        };
        for (_, done) in batch.drain(..) {
            let _ = done.send(ok);
        }
    }
}
