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
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;

use crate::Gateway;

/// How long in-flight calls may finish after a stop signal before they are cut.
const DRAIN: Duration = Duration::from_secs(20);

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that holds at most `max` connections (the next accept waits for a free slot)
/// and, with TLS configured, hands out only connections whose handshake completed. Handshakes
/// run concurrently, so a slow client cannot hold up the others.
pub struct LimitedListener {
    ready: mpsc::Receiver<(LimitedStream, SocketAddr)>,
    local: SocketAddr,
}

impl LimitedListener {
    /// Starts accepting on `inner`. Stops when the listener is dropped.
    pub fn spawn(inner: TcpListener, max: usize, tls: Option<TlsAcceptor>) -> io::Result<Self> {
        let local = inner.local_addr()?;
        let slots = Arc::new(Semaphore::new(max.max(1)));
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(inner, slots, tls, tx));
        Ok(Self { ready, local })
    }
}

async fn accept_loop(
    inner: TcpListener,
    slots: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<(LimitedStream, SocketAddr)>,
) {
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = tx.closed() => return,
        };
        let accepted = tokio::select! {
            a = inner.accept() => a,
            () = tx.closed() => return,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = tls.clone() else {
            let conn = LimitedStream {
                inner: Conn::Plain(stream),
                client_cert: None,
                _permit: permit,
            };
            if tx.send((conn, addr)).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let client_cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.clone().into_owned());
                    let conn = LimitedStream {
                        inner: Conn::Tls(Box::new(tls)),
                        client_cert,
                        _permit: permit,
                    };
                    let _ = tx.send((conn, addr)).await;
                }
                // Refused certificates, protocol errors and timeouts end here: the handshake
                // itself is the refusal (no HTTP request was read).
                Ok(Err(e)) => {
                    tracing::info!(client.ip = %addr.ip(), error = %e, "TLS handshake refused")
                }
                Err(_) => tracing::info!(client.ip = %addr.ip(), "TLS handshake timed out"),
            }
        });
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A connection that frees its slot when closed.
pub struct LimitedStream {
    inner: Conn,
    /// The client's end-entity certificate, verified by the handshake.
    client_cert: Option<CertificateDer<'static>>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (it only does when this listener is gone): never resolve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's address and verified certificate, as handlers see them.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub client_cert: Option<CertificateDer<'static>>,
}

impl Connected<IncomingStream<'_, LimitedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, LimitedListener>) -> Self {
        Peer {
            addr: *stream.remote_addr(),
            client_cert: stream.io().client_cert.clone(),
        }
    }
}

/// Serves until `stop` completes, then drains in-flight calls and stops upstreams.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    spawn_background(&gw);
    let app = crate::http::router(Arc::clone(&gw));
    let listener = LimitedListener::spawn(listener, max_connections, tls)?;
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
            // Verify the new definitions (pins, scan) before they are listed or used.
            gw.catalogs.invalidate(idx);
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
