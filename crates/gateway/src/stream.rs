//! The messages one response stream carries, kept so a reader can start late or resume.
//!
//! A producer (the task running an upstream call) appends JSON-RPC messages; readers turn them
//! into the HTTP reply. For a 2025-era session every event has an id (`<stream>-<seq>`) and the
//! log is kept a while after it ends, so a client that lost its connection can resume with
//! `Last-Event-ID`. Bounded: the oldest events are dropped past `MAX_EVENTS`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::Notify;

const MAX_EVENTS: usize = 1024;

#[derive(Debug, Clone)]
pub struct LogEvent {
    pub seq: u64,
    pub data: Bytes,
    /// The response that ends the stream.
    pub last: bool,
    /// The JSON-RPC error code of a final error response (some set the HTTP status in the
    /// 2026-07-28 era), so the reply needs no second parse of the body.
    pub error_code: Option<i64>,
    /// A final response passed through as it arrives: `data` is its beginning, the rest comes
    /// from here (taken once, by the reply; see [`EventLog::push_streamed`]).
    pub rest: Option<Rest>,
}

/// A piece of a response that is passed through; `last` ends the response.
#[derive(Debug)]
pub struct RestPiece {
    pub bytes: Bytes,
    pub last: bool,
}

/// The rest of a response that is passed through. If the sender goes away before the `last`
/// piece, the response breaks off: the reply ends without finishing its body, so the client
/// never sees a whole result.
pub type RestReceiver = tokio::sync::mpsc::Receiver<RestPiece>;

/// [`RestReceiver`], shared by the clones of its event and taken by the one reply.
#[derive(Debug, Clone)]
pub struct Rest(Arc<Mutex<Option<RestReceiver>>>);

impl Rest {
    /// The pieces, for the one reader that takes them first.
    pub fn take(&self) -> Option<RestReceiver> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<LogEvent>,
    next_seq: u64,
    done: bool,
}

#[derive(Debug)]
pub struct EventLog {
    pub stream: u64,
    /// Whether events carry ids (2025-era sessions).
    pub resumable: bool,
    inner: Mutex<Inner>,
    notify: Notify,
}

impl EventLog {
    pub fn new(stream: u64, resumable: bool) -> Arc<Self> {
        Arc::new(Self {
            stream,
            resumable,
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a message; `last` also ends the stream.
    pub fn push(&self, data: Bytes, last: bool) {
        self.append(data, last, None, None);
    }

    /// Appends the final response, and ends the stream.
    pub fn push_response(&self, response: &portcullis_mcp::Response) {
        let code = match &response.outcome {
            portcullis_mcp::Outcome::Error(e) => Some(e.code),
            portcullis_mcp::Outcome::Result(_) => None,
        };
        self.append(Bytes::from(response.to_bytes()), true, code, None);
    }

    /// Appends the final response as `head` followed by the pieces `rest` yields, and ends the
    /// stream. Only a reply that is not an SSE stream yet takes such a response whole.
    pub fn push_streamed(&self, head: Bytes, rest: RestReceiver) {
        let rest = Rest(Arc::new(Mutex::new(Some(rest))));
        self.append(head, true, None, Some(rest));
    }

    fn append(&self, data: Bytes, last: bool, error_code: Option<i64>, rest: Option<Rest>) {
        {
            let mut inner = self.lock();
            if inner.done {
                return;
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.events.push_back(LogEvent {
                seq,
                data,
                last,
                error_code,
                rest,
            });
            if inner.events.len() > MAX_EVENTS {
                inner.events.pop_front();
            }
            if last {
                inner.done = true;
            }
        }
        self.notify.notify_waiters();
    }

    /// Ends the stream without a final message (cancelled, session ended).
    pub fn finish(&self) {
        self.lock().done = true;
        self.notify.notify_waiters();
    }

    /// The sequence number the next event will get (a reader from here sees only new events).
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    pub fn is_done(&self) -> bool {
        self.lock().done
    }

    /// The event id a client sees for `seq`.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{}", self.stream, seq)
    }

    /// Waits for the first event: `Some(event)` once one exists, `None` if the stream ended empty.
    pub async fn first(&self) -> Option<LogEvent> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if let Some(e) = inner.events.front() {
                    return Some(e.clone());
                }
                if inner.done {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Events with `seq >= from`, as they arrive, until the stream ends.
    pub fn reader(self: &Arc<Self>, from: u64) -> impl Stream<Item = LogEvent> + Send + 'static {
        futures::stream::unfold((Arc::clone(self), from), |(log, next)| async move {
            let event = log.next_after(next).await?;
            let after = event.seq + 1;
            Some((event, (log, after)))
        })
    }

    /// The first event with `seq >= next`, waiting for it; `None` once the stream has ended.
    async fn next_after(&self, next: u64) -> Option<LogEvent> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if let Some(e) = inner.events.iter().find(|e| e.seq >= next) {
                    return Some(e.clone());
                }
                if inner.done {
                    return None;
                }
            }
            notified.await;
        }
    }
}

/// The task that fills an [`EventLog`], not started yet. The reply drives it on its own task
/// until the first event exists ([`Producer::first`]): a call answered with one response (most
/// are) then runs start to end on the task that read the request, with no hand-off to another
/// task. Whatever is left of it when it is dropped (the stream goes on as SSE, or the client
/// went away first) is spawned and runs to its end, as it would have on a task of its own:
/// a call is never abandoned halfway, and its audit record is always written.
pub struct Producer(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Producer {
    pub fn new(task: impl Future<Output = ()> + Send + 'static) -> Producer {
        Producer(Some(Box::pin(task)))
    }

    /// Runs the producer until `log` has its first event (as [`EventLog::first`]); the rest of
    /// it, if any, goes on as a task of its own.
    pub async fn first(mut self, log: &EventLog) -> Option<LogEvent> {
        let first = log.first();
        tokio::pin!(first);
        loop {
            let Some(task) = self.0.as_mut() else {
                return first.await;
            };
            tokio::select! {
                biased;
                event = &mut first => return event,
                () = task => self.0 = None,
            }
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(task) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(task);
        }
    }
}

/// Parses a `Last-Event-ID` of the form `<stream>-<seq>`.
pub fn parse_event_id(s: &str) -> Option<(u64, u64)> {
    let (stream, seq) = s.split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn late_reader_sees_everything_then_ends() {
        let log = EventLog::new(3, true);
        log.push(Bytes::from_static(b"a"), false);
        let reader = log.reader(0);
        log.push(Bytes::from_static(b"b"), true);
        let got: Vec<_> = reader.map(|e| (e.seq, e.data)).collect().await;
        assert_eq!(
            got,
            vec![(0, Bytes::from_static(b"a")), (1, Bytes::from_static(b"b"))]
        );
        assert_eq!(log.event_id(1), "3-1");
    }

    #[tokio::test]
    async fn resume_after_an_id_skips_what_was_seen() {
        let log = EventLog::new(1, true);
        for i in 0..3u8 {
            log.push(Bytes::from(vec![i]), i == 2);
        }
        let got: Vec<_> = log.reader(2).map(|e| e.seq).collect().await;
        assert_eq!(got, vec![2]);
    }

    #[tokio::test]
    async fn first_waits_for_the_producer() {
        let log = EventLog::new(0, false);
        let l2 = Arc::clone(&log);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            l2.push(Bytes::from_static(b"x"), true);
        });
        assert!(log.first().await.unwrap().last);
        let empty = EventLog::new(0, false);
        empty.finish();
        assert!(empty.first().await.is_none());
    }

    #[tokio::test]
    async fn a_producer_runs_inline_until_its_first_event_and_the_rest_on_its_own() {
        // Answered at once: it runs to its end inside `first`.
        let log = EventLog::new(0, false);
        let l2 = Arc::clone(&log);
        let ended = Arc::new(Notify::new());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let producer = Producer::new(async move {
            l2.push(Bytes::from_static(b"only"), true);
            let _ = tx.send(());
        });
        assert!(producer.first(&log).await.unwrap().last);
        assert!(rx.await.is_ok());

        // A progress event first: `first` returns it, the rest runs without being polled by
        // anyone and still ends the stream.
        let log = EventLog::new(0, false);
        let l2 = Arc::clone(&log);
        let e2 = Arc::clone(&ended);
        let producer = Producer::new(async move {
            l2.push(Bytes::from_static(b"progress"), false);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            l2.push(Bytes::from_static(b"done"), true);
            e2.notify_one();
        });
        let first = producer.first(&log).await.unwrap();
        assert!(!first.last);
        ended.notified().await;
        assert_eq!(log.next_seq(), 2);
        assert!(log.is_done());

        // Dropped before it was ever polled (the client went away): it still runs.
        let log = EventLog::new(0, false);
        let l2 = Arc::clone(&log);
        let e2 = Arc::clone(&ended);
        drop(Producer::new(async move {
            l2.push(Bytes::from_static(b"late"), true);
            e2.notify_one();
        }));
        ended.notified().await;
        assert!(log.is_done());

        // A producer that ends without an event: the stream ends empty.
        let log = EventLog::new(0, false);
        let l2 = Arc::clone(&log);
        assert!(
            Producer::new(async move { l2.finish() })
                .first(&log)
                .await
                .is_none()
        );
    }

    #[test]
    fn event_ids() {
        assert_eq!(parse_event_id("12-7"), Some((12, 7)));
        assert_eq!(parse_event_id("x-7"), None);
        assert_eq!(parse_event_id("12"), None);
    }
}
