//! Serving: the listener with a connection limit, background tasks, graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use bytes::Bytes;
use portcullis_mcp::{Notification, RawObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Gateway;

/// How long in-flight calls may finish after a stop signal before they are cut.
const DRAIN: Duration = Duration::from_secs(20);

/// A TCP listener that holds at most `max` connections; the next accept waits for a free slot.
pub struct LimitedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

/// A connection that frees its slot when closed.
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                // The semaphore is never closed; if it were, keep serving without a limit slot.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        LimitedStream {
                            inner: stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The client's address, as handlers see it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, LimitedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, LimitedListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Serves until `stop` completes, then drains in-flight calls and stops upstreams.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    max_connections: usize,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    spawn_background(&gw);
    let app = crate::http::router(Arc::clone(&gw));
    let listener = LimitedListener::new(listener, max_connections);
    let gw2 = Arc::clone(&gw);
    let signal = async move {
        stop.await;
        tracing::info!("stopping: no new connections; draining in-flight calls");
        // Notification streams never end on their own: close them so the drain can finish.
        for s in gw2.sessions.all() {
            s.standalone.finish();
        }
        let gw3 = Arc::clone(&gw2);
        tokio::spawn(async move {
            tokio::time::sleep(DRAIN).await;
            tracing::warn!("drain period over; cancelling what is left");
            gw3.shutdown.cancel();
            gw3.sessions.end_all();
        });
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(signal)
        .await?;
    gw.stop().await;
    tracing::info!("stopped");
    Ok(())
}

fn spawn_background(gw: &Arc<Gateway>) {
    // Idle 2025-era sessions end.
    let g = Arc::clone(gw);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let n = g.sessions.sweep();
                    if n > 0 {
                        tracing::info!(ended = n, "idle sessions ended");
                        g.metrics.sessions.set(g.sessions.len() as i64);
                    }
                }
                () = g.shutdown.cancelled() => return,
            }
        }
    });
    // Upstream notifications that concern every session: list changes, resource updates.
    for (idx, m) in gw.federation.members().iter().enumerate() {
        let mut rx = m.upstream.notifications();
        let g = Arc::clone(gw);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Ok(n) => fan_out(&g, idx, n),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                            tracing::warn!(skipped = k, "upstream notifications dropped");
                        }
                        Err(_) => return,
                    },
                    () = g.shutdown.cancelled() => return,
                }
            }
        });
    }
}

fn fan_out(gw: &Gateway, idx: usize, n: Notification) {
    match n.method.as_str() {
        "notifications/tools/list_changed"
        | "notifications/prompts/list_changed"
        | "notifications/resources/list_changed" => {
            gw.changes.publish(&n);
            let bytes = Bytes::from(n.to_bytes());
            for s in gw.sessions.all() {
                s.standalone.push(bytes.clone(), false);
            }
        }
        "notifications/resources/updated" => {
            let Some(mut params) = n
                .params
                .as_deref()
                .and_then(|p| RawObject::from_raw(p).ok())
            else {
                return;
            };
            let Some(uri) = params.get_str("uri") else {
                return;
            };
            let exposed = gw.federation.expose(idx, &uri);
            if params.set("uri", &exposed).is_err() {
                return;
            }
            let exposed_note = Notification {
                method: n.method,
                params: params.to_raw().ok(),
            };
            gw.changes.publish(&exposed_note);
            let bytes = Bytes::from(exposed_note.to_bytes());
            for s in gw
                .sessions
                .all()
                .into_iter()
                .filter(|s| s.is_subscribed(&exposed))
            {
                s.standalone.push(bytes.clone(), false);
            }
        }
        other => {
            tracing::debug!(method = %other, upstream = %gw.federation.member(idx).map(|m| m.name.as_str()).unwrap_or("?"), "upstream notification not relayed")
        }
    }
}
