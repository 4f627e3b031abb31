//! HTTP/1.1 connections to one plain-HTTP upstream, each driven by the task that uses it.
//!
//! A pooled client (reqwest, hyper-util's) runs every connection as a task of its own: a call
//! hands its request to that task and waits to be handed the response back, two more task
//! switches per call, often a thread wake-up each. Here the task sending a request polls the
//! connection itself until the response's last byte, then puts the idle connection back. Used
//! for `http://` upstreams (the usual sidecar or loopback server); `https://` ones go through
//! reqwest.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt as _;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::UpstreamError;

/// Idle connections kept; more are closed when they finish.
const MAX_IDLE: usize = 256;

/// How long a connection may sit idle before it is closed instead of reused.
const IDLE_FOR: Duration = Duration::from_secs(90);

struct Conn {
    send: SendRequest<Full<Bytes>>,
    conn: Connection<TokioIo<TcpStream>, Full<Bytes>>,
}

/// The connections to one upstream address.
pub(super) struct Direct {
    host: String,
    port: u16,
    authority: HeaderValue,
    target: Uri,
    connect_timeout: Duration,
    idle_for: Duration,
    /// Oldest first (each is pushed when it comes back).
    idle: Mutex<Vec<(Box<Conn>, Instant)>>,
}

impl Direct {
    /// For an `http://` URL; `None` for any other scheme.
    pub(super) fn new(url: &reqwest::Url, connect_timeout: Duration) -> Option<Direct> {
        if url.scheme() != "http" {
            return None;
        }
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        Some(Direct {
            host: host.to_owned(),
            port,
            authority: HeaderValue::from_str(&authority).ok()?,
            target: Uri::try_from(target).ok()?,
            connect_timeout,
            idle_for: IDLE_FOR,
            idle: Mutex::default(),
        })
    }

    /// POSTs `body` with `headers` and returns the response once its head arrived. A request
    /// that a reused connection could not take (the server closed it while it sat idle) is
    /// sent again on a new one; a request that went out, even in part, is never sent twice.
    pub(super) async fn post(
        self: &Arc<Self>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.target.clone();
        *req.headers_mut() = headers;
        req.headers_mut().insert(HOST, self.authority.clone());
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            let Conn { send, conn: driven } = &mut *conn;
            let mut response = pin!(send.try_send_request(req));
            let step = poll_fn(|cx| {
                if driven.poll_without_shutdown(cx).is_ready() {
                    return Poll::Ready(None);
                }
                response.as_mut().poll(cx).map(Some)
            })
            .await;
            let (sent, conn) = match step {
                Some(sent) => (sent, Some(conn)),
                // The connection ended (closed, failed or told to close). Dropping it hands
                // back a request it never wrote, or completes one it answered in full.
                None => {
                    drop(conn);
                    (response.await, None)
                }
            };
            match sent {
                Ok(resp) => {
                    return Ok(resp.map(|body| Body {
                        body,
                        conn,
                        pool: Arc::clone(self),
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: safe to send on another connection.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Connect(describe(e.error()))),
                },
            }
        }
    }

    /// The connection that came back last, if it has not sat too long.
    fn checkout(&self) -> Option<Box<Conn>> {
        let mut idle = self.idle.lock().ok()?;
        let (conn, since) = idle.pop()?;
        if since.elapsed() < self.idle_for {
            return Some(conn);
        }
        // It and every older one sat too long.
        idle.clear();
        None
    }

    /// Pools `conn`, closing the connections that sat idle too long (the upstream has likely
    /// closed its end of them by now).
    fn checkin(&self, conn: Box<Conn>) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        let stale = idle.partition_point(|(_, since)| now.duration_since(*since) >= self.idle_for);
        idle.drain(..stale);
        if idle.len() < MAX_IDLE {
            idle.push((conn, now));
        }
    }

    async fn connect(&self) -> Result<Box<Conn>, UpstreamError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| UpstreamError::Connect("connection timed out".into()))?
            .map_err(|e| UpstreamError::Connect(format!("connection failed: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| UpstreamError::Connect(format!("connection failed: {e}")))?;
        let (send, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(describe(&e)))?;
        Ok(Box::new(Conn { send, conn }))
    }
}

fn describe(e: &hyper::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        "connection closed before the response was complete".into()
    } else if e.is_parse() {
        "malformed HTTP response".into()
    } else {
        format!("request failed: {e}")
    }
}

/// A response body read by driving its connection; the connection goes back to the pool
/// once the body ended, and is closed if the body is dropped before that.
pub(super) struct Body {
    body: Incoming,
    conn: Option<Box<Conn>>,
    pool: Arc<Direct>,
}

impl Body {
    /// The next chunk of data; `None` at the end.
    pub(super) async fn chunk(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        loop {
            let Body { body, conn, .. } = self;
            let frame = poll_fn(|cx| {
                if let Some(c) = conn.as_mut()
                    && c.conn.poll_without_shutdown(cx).is_ready()
                {
                    // Closed or failed: the body reports what happened to it.
                    *conn = None;
                }
                Pin::new(&mut *body).poll_frame(cx)
            })
            .await;
            match frame {
                None => {
                    if let Some(conn) = self.conn.take() {
                        self.pool.checkin(conn);
                    }
                    return None;
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Some(Err(e)) => {
                    self.conn = None;
                    return Some(Err(UpstreamError::Connect(describe(&e))));
                }
            }
        }
    }

    /// Reads what is left of the body if it has already arrived (an SSE stream's end after
    /// the awaited response), so its connection can be reused; a body still being sent is
    /// dropped with its connection.
    pub(super) fn finish(mut self) {
        for _ in 0..8 {
            match self.chunk().now_or_never() {
                Some(Some(Ok(_))) => {}
                _ => return,
            }
        }
    }
}

impl Drop for Body {
    /// Nothing left to read (an empty `202`, or the end was read): the connection is idle and
    /// kept. Anything still unread closes it with the body.
    fn drop(&mut self) {
        if self.body.is_end_stream()
            && let Some(conn) = self.conn.take()
        {
            self.pool.checkin(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// What the test server does with the n-th request it reads (counted from 0).
    #[derive(Clone, Copy)]
    enum Then {
        /// Answers `n` and keeps the connection open.
        Answer,
        /// Answers, then closes the connection a little later, without saying so in the
        /// response (as a server ending an idle keep-alive connection does).
        AnswerAndClose,
        /// Answers with `connection: close` and closes at once.
        AnswerClosing,
        /// Answers `202` with no body.
        Accepted,
        /// Answers with the body as one chunk of a chunked body, its end in the same write.
        Chunked,
        /// Closes the connection without answering.
        Close,
        /// Sends the head and part of a chunked body, then waits.
        Stall,
    }

    struct Server {
        url: reqwest::Url,
        accepted: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
        /// One message each time the server closed a connection.
        closed: mpsc::UnboundedReceiver<()>,
    }

    /// A raw HTTP/1.1 server: every request's body is echoed back as the response body.
    async fn server(plan: fn(usize) -> Then) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            reqwest::Url::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let (a, r) = (Arc::clone(&accepted), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                let (r, closed_tx) = (Arc::clone(&r), closed_tx.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(body) = read_request(&mut socket, &mut buf).await else {
                            break;
                        };
                        let n = r.fetch_add(1, Ordering::SeqCst);
                        let answer =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                        match plan(n) {
                            Then::Answer | Then::AnswerAndClose => {
                                socket.write_all(answer.as_bytes()).await.unwrap();
                                socket.write_all(&body).await.unwrap();
                                if matches!(plan(n), Then::AnswerAndClose) {
                                    // Later, once the client put the connection back.
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    break;
                                }
                            }
                            Then::AnswerClosing => {
                                let answer =
                                    answer.replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
                                socket.write_all(answer.as_bytes()).await.unwrap();
                                socket.write_all(&body).await.unwrap();
                                break;
                            }
                            Then::Chunked => {
                                let mut answer = format!(
                                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
                                    body.len()
                                )
                                .into_bytes();
                                answer.extend_from_slice(&body);
                                answer.extend_from_slice(b"\r\n0\r\n\r\n");
                                socket.write_all(&answer).await.unwrap();
                            }
                            Then::Accepted => {
                                let answer = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                                socket.write_all(answer.as_bytes()).await.unwrap();
                            }
                            Then::Close => break,
                            Then::Stall => {
                                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                                socket.write_all(head.as_bytes()).await.unwrap();
                                socket.write_all(b"5\r\nhello\r\n").await.unwrap();
                                // Until the client goes away.
                                while socket.read(&mut [0; 64]).await.unwrap_or(0) > 0 {}
                                break;
                            }
                        }
                    }
                    drop(socket);
                    let _ = closed_tx.send(());
                });
            }
        });
        Server {
            url,
            accepted,
            requests,
            closed,
        }
    }

    /// One request's body (its head must carry `content-length`); `None` at end of stream.
    async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + len {
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    return Some(body);
                }
            }
            let mut chunk = [0; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn post(pool: &Arc<Direct>, body: &'static str) -> Result<String, UpstreamError> {
        let mut resp = pool
            .post(HeaderMap::new(), Bytes::from_static(body.as_bytes()))
            .await?;
        let mut out = Vec::new();
        while let Some(chunk) = resp.body_mut().chunk().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(String::from_utf8(out).unwrap())
    }

    fn pool(url: &reqwest::Url) -> Arc<Direct> {
        Arc::new(Direct::new(url, Duration::from_secs(5)).unwrap())
    }

    #[test]
    fn only_plain_http_urls_are_served() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let d = Direct::new(&url("http://[::1]:8080/a/mcp?x=1"), Duration::ZERO).unwrap();
        assert_eq!((d.host.as_str(), d.port), ("::1", 8080));
        assert_eq!(d.authority, "[::1]:8080");
        assert_eq!(d.target, "/a/mcp?x=1");
        let d = Direct::new(&url("http://upstream.internal/mcp"), Duration::ZERO).unwrap();
        assert_eq!(
            (d.port, d.authority.to_str().unwrap()),
            (80, "upstream.internal")
        );
        assert!(Direct::new(&url("https://upstream.internal/mcp"), Duration::ZERO).is_none());
    }

    #[tokio::test]
    async fn calls_one_after_another_share_one_connection() {
        let s = server(|_| Then::Answer).await;
        let pool = pool(&s.url);
        for body in ["one", "two", "three", "four"] {
            assert_eq!(post(&pool, body).await.unwrap(), body);
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(s.requests.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn concurrent_calls_get_a_connection_each() {
        let s = server(|_| Then::Answer).await;
        let pool = pool(&s.url);
        let calls = ["a", "b", "c"].map(|b| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { post(&pool, b).await })
        });
        for (call, body) in calls.into_iter().zip(["a", "b", "c"]) {
            assert_eq!(call.await.unwrap().unwrap(), body);
        }
        // All three went back to the pool and serve the next calls.
        let before = s.accepted.load(Ordering::SeqCst);
        assert!(before <= 3, "{before} connections for 3 calls");
        for _ in 0..3 {
            assert_eq!(post(&pool, "again").await.unwrap(), "again");
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), before);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_replaced() {
        let mut s = server(|_| Then::AnswerAndClose).await;
        let pool = pool(&s.url);
        assert_eq!(post(&pool, "first").await.unwrap(), "first");
        s.closed.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(post(&pool, "second").await.unwrap(), "second");
        assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
        assert_eq!(s.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_response_that_closes_its_connection_arrives_whole() {
        let s = server(|_| Then::AnswerClosing).await;
        let pool = pool(&s.url);
        for body in ["first", "second"] {
            assert_eq!(post(&pool, body).await.unwrap(), body);
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_the_server_read_is_never_sent_again() {
        let s = server(|n| if n == 0 { Then::Answer } else { Then::Close }).await;
        let pool = pool(&s.url);
        assert_eq!(post(&pool, "first").await.unwrap(), "first");
        let err = post(&pool, "second").await.unwrap_err();
        assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
        // The second request reached the server once; it was not retried on a new connection.
        assert_eq!(s.requests.load(Ordering::SeqCst), 2);
        assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let mut s = server(|n| if n == 0 { Then::Stall } else { Then::Answer }).await;
        let pool = pool(&s.url);
        let mut resp = pool
            .post(HeaderMap::new(), Bytes::from_static(b"x"))
            .await
            .unwrap();
        let first = resp.body_mut().chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"hello");
        drop(resp);
        // The stalled connection is closed (the server sees it go), not pooled.
        s.closed.recv().await.unwrap();
        assert!(pool.idle.lock().unwrap().is_empty());
        assert_eq!(post(&pool, "next").await.unwrap(), "next");
        assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_empty_answer_dropped_unread_keeps_its_connection() {
        let s = server(|_| Then::Accepted).await;
        let pool = pool(&s.url);
        for _ in 0..3 {
            let resp = pool
                .post(HeaderMap::new(), Bytes::from_static(b"{}"))
                .await
                .unwrap();
            assert_eq!(resp.status(), http::StatusCode::ACCEPTED);
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_whose_end_already_arrived_is_finished_and_its_connection_kept() {
        let s = server(|_| Then::Chunked).await;
        let pool = pool(&s.url);
        for _ in 0..3 {
            let mut resp = pool
                .post(HeaderMap::new(), Bytes::from_static(b"event"))
                .await
                .unwrap();
            let first = resp.body_mut().chunk().await.unwrap().unwrap();
            assert_eq!(&first[..], b"event");
            resp.into_body().finish();
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn connections_idle_too_long_are_closed_not_reused() {
        let mut s = server(|_| Then::Answer).await;
        let mut pool = Direct::new(&s.url, Duration::from_secs(5)).unwrap();
        pool.idle_for = Duration::from_millis(100);
        let pool = Arc::new(pool);
        let (a, b) = (Arc::clone(&pool), Arc::clone(&pool));
        let (x, y) = tokio::join!(post(&a, "x"), post(&b, "y"));
        assert_eq!((x.unwrap(), y.unwrap()), ("x".into(), "y".into()));
        assert_eq!(pool.idle.lock().unwrap().len(), 2);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(post(&pool, "z").await.unwrap(), "z");
        // Both old connections were closed; only the new one is pooled.
        s.closed.recv().await.unwrap();
        s.closed.recv().await.unwrap();
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
        assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            reqwest::Url::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let err = post(&pool(&url), "x").await.unwrap_err();
        assert!(
            matches!(&err, UpstreamError::Connect(m) if m.starts_with("connection failed")),
            "{err:?}"
        );
    }
}
