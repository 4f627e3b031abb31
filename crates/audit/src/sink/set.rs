//! The delivery tasks: one per sink, each reading records after its cursor, delivering them
//! and moving the cursor; with lag, failure and gap accounting for metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_store::Store;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::jsonl::JsonlSink;
use super::otlp::OtlpSink;
use super::syslog::SyslogSink;
use super::webhook::WebhookSink;
use super::{SinkError, SinkOptions, SinkSpec, cursor};
use crate::record::Record;
use crate::table;

/// A snapshot of one sink's delivery, for `/metrics` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    /// The cursor's id (`webhook-0123456789abcdef`).
    pub id: String,
    pub kind: &'static str,
    /// Kind and destination, without secrets.
    pub label: String,
    /// Last delivered sequence number.
    pub delivered_seq: u64,
    /// Last sequence number known to be committed.
    pub head_seq: u64,
    /// Records committed but not yet delivered.
    pub lag: u64,
    /// Records delivered by this process.
    pub delivered: u64,
    /// Failed deliveries (each retried).
    pub failures: u64,
    /// Records that were gone from the store before they could be delivered.
    pub gaps: u64,
    /// The last delivery error, until a delivery succeeds.
    pub last_error: Option<String>,
    /// Whether this process holds the sink's lease (false: another replica delivers).
    pub active: bool,
}

#[derive(Debug)]
struct Shared {
    id: String,
    kind: &'static str,
    label: String,
    cursor: AtomicU64,
    delivered: AtomicU64,
    failures: AtomicU64,
    gaps: AtomicU64,
    active: AtomicU64,
    last_error: Mutex<Option<String>>,
    wake: Notify,
}

impl Shared {
    fn set_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = error;
        }
    }
}

/// Wakes the delivery tasks after records were committed; cheap to clone into the writer.
#[derive(Debug, Clone)]
pub struct SinkNotifier {
    sinks: Arc<Vec<Arc<Shared>>>,
    head: Arc<AtomicU64>,
}

impl SinkNotifier {
    /// Records up to `seq` are committed: deliver them now rather than at the next poll.
    pub fn committed(&self, seq: u64) {
        self.head.fetch_max(seq, Ordering::Relaxed);
        self.notify();
    }

    /// Something was committed: look now.
    pub fn notify(&self) {
        for sink in self.sinks.iter() {
            sink.wake.notify_one();
        }
    }
}

/// The running sinks.
#[derive(Debug)]
pub struct SinkSet {
    notifier: SinkNotifier,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

enum Transport {
    Jsonl(JsonlSink),
    Syslog(SyslogSink),
    Otlp(OtlpSink),
    Webhook(WebhookSink),
}

impl Transport {
    fn new(spec: &SinkSpec, options: &SinkOptions) -> Result<Transport, SinkError> {
        Ok(match spec {
            SinkSpec::Jsonl {
                path,
                max_bytes,
                keep,
            } => Transport::Jsonl(JsonlSink::new(path.clone(), *max_bytes, *keep)),
            SinkSpec::Syslog { target } => {
                Transport::Syslog(SyslogSink::new(target.clone(), options.timeout)?)
            }
            SinkSpec::Otlp { endpoint, headers } => {
                Transport::Otlp(OtlpSink::new(endpoint, headers, options.timeout)?)
            }
            SinkSpec::Webhook { url, headers } => {
                Transport::Webhook(WebhookSink::new(url, headers, options.timeout)?)
            }
        })
    }

    async fn deliver(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        match self {
            Transport::Jsonl(sink) => Ok(sink.deliver(batch).await?),
            Transport::Syslog(sink) => sink.deliver(batch).await,
            Transport::Otlp(sink) => sink.deliver(batch).await,
            Transport::Webhook(sink) => sink.deliver(batch).await,
        }
    }
}

impl SinkSet {
    /// Creates the cursor table if needed, opens each sink's cursor (new sinks start at the
    /// chain head) and starts one delivery task per sink. The tasks stop when `shutdown` is
    /// cancelled (a delivery in flight completes first). A sink whose configuration cannot
    /// work (unreadable CA file, bad header) fails the whole set.
    pub async fn spawn(
        store: Store,
        specs: Vec<SinkSpec>,
        options: SinkOptions,
        shutdown: CancellationToken,
    ) -> Result<SinkSet, SinkError> {
        cursor::migrate(&store).await?;
        let head = table::read_head(&store).await?.seq;
        let owner = owner_id();
        let mut prepared = Vec::new();
        let mut sinks: Vec<Arc<Shared>> = Vec::new();
        for spec in &specs {
            let id = spec.id();
            if sinks.iter().any(|s| s.id == id) {
                tracing::warn!(sink = %spec.label(), "the same audit sink is configured twice; using it once");
                continue;
            }
            let transport = Transport::new(spec, &options)?;
            let start = cursor::open(&store, &id, head).await?;
            let shared = Arc::new(Shared {
                id,
                kind: spec.kind(),
                label: spec.label(),
                cursor: AtomicU64::new(start),
                delivered: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                gaps: AtomicU64::new(0),
                active: AtomicU64::new(0),
                last_error: Mutex::new(None),
                wake: Notify::new(),
            });
            sinks.push(Arc::clone(&shared));
            prepared.push((shared, transport));
        }
        let head = Arc::new(AtomicU64::new(head));
        let tasks = prepared
            .into_iter()
            .map(|(shared, transport)| {
                let task = Delivery {
                    store: store.clone(),
                    shared,
                    transport,
                    options: options.clone(),
                    owner: owner.clone(),
                    head: Arc::clone(&head),
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(task.run())
            })
            .collect();
        Ok(SinkSet {
            notifier: SinkNotifier {
                sinks: Arc::new(sinks),
                head,
            },
            shutdown,
            tasks,
        })
    }

    /// Wakes the sinks whenever `committed` (the writer's [`crate::AuditLog::committed`])
    /// moves, so delivery follows each commit instead of the poll interval.
    pub fn follow(&mut self, mut committed: watch::Receiver<u64>) {
        let notifier = self.notifier.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    changed = committed.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let seq = *committed.borrow_and_update();
                        notifier.committed(seq);
                    }
                }
            }
        }));
    }

    /// A handle for the audit writer: call [`SinkNotifier::committed`] after each commit.
    pub fn notifier(&self) -> SinkNotifier {
        self.notifier.clone()
    }

    /// See [`SinkNotifier::notify`].
    pub fn notify(&self) {
        self.notifier.notify();
    }

    /// Every sink's delivery state.
    pub fn status(&self) -> Vec<SinkStatus> {
        let head = self.notifier.head.load(Ordering::Relaxed);
        self.notifier
            .sinks
            .iter()
            .map(|s| {
                let delivered_seq = s.cursor.load(Ordering::Relaxed);
                SinkStatus {
                    id: s.id.clone(),
                    kind: s.kind,
                    label: s.label.clone(),
                    delivered_seq,
                    head_seq: head.max(delivered_seq),
                    lag: head.saturating_sub(delivered_seq),
                    delivered: s.delivered.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                    gaps: s.gaps.load(Ordering::Relaxed),
                    last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
                    active: s.active.load(Ordering::Relaxed) == 1,
                }
            })
            .collect()
    }

    /// `(sink id, records not yet delivered)` per sink: the lag gauge.
    pub fn lag(&self) -> Vec<(String, u64)> {
        self.status().into_iter().map(|s| (s.id, s.lag)).collect()
    }

    /// Waits for every delivery task to stop (after `shutdown` was cancelled).
    pub async fn join(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "an audit sink task ended abnormally");
            }
        }
    }
}

/// `host/pid/start-ms`: who holds a lease.
fn owner_id() -> String {
    format!(
        "{}/{}/{}",
        crate::export::Origin::local().hostname,
        std::process::id(),
        portcullis_store::now_ms()
    )
}

struct Delivery {
    store: Store,
    shared: Arc<Shared>,
    transport: Transport,
    options: SinkOptions,
    owner: String,
    head: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

/// What one step of the loop found.
enum Step {
    /// Delivered a batch; look again at once.
    Delivered,
    /// Nothing to deliver (or another replica holds the lease): wait.
    Idle,
    /// Failed: back off.
    Failed(SinkError),
}

impl Delivery {
    async fn run(mut self) {
        let sink = self.shared.label.clone();
        tracing::info!(sink = %sink, id = %self.shared.id, cursor = self.shared.cursor.load(Ordering::Relaxed), "audit sink started");
        let mut backoff = self.options.backoff_min;
        let mut failing_since: Option<Instant> = None;
        let mut last_warning: Option<Instant> = None;
        while !self.shutdown.is_cancelled() {
            let wait = match self.step().await {
                Step::Delivered => {
                    backoff = self.options.backoff_min;
                    if let Some(since) = failing_since.take() {
                        tracing::info!(sink = %sink, outage_ms = since.elapsed().as_millis() as u64, "audit sink recovered; catching up");
                    }
                    self.shared.set_error(None);
                    self.warn_lag(&mut last_warning);
                    continue;
                }
                Step::Idle => {
                    backoff = self.options.backoff_min;
                    self.options.poll_interval
                }
                Step::Failed(error) => {
                    self.shared.failures.fetch_add(1, Ordering::Relaxed);
                    let message = error.to_string();
                    let first = failing_since.is_none();
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    let lag = self
                        .head
                        .load(Ordering::Relaxed)
                        .saturating_sub(self.shared.cursor.load(Ordering::Relaxed));
                    if first || last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(30))
                    {
                        tracing::warn!(sink = %sink, error = %message, lag, failing_ms = since.elapsed().as_millis() as u64, retry_in_ms = backoff.as_millis() as u64, "audit sink delivery failed; records stay queued in the store");
                        last_warning = Some(Instant::now());
                    }
                    self.shared.set_error(Some(message));
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.options.backoff_max);
                    wait
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = self.shared.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.shared.active.store(0, Ordering::Relaxed);
        if let Err(e) = cursor::release(&self.store, &self.shared.id, &self.owner).await {
            tracing::debug!(sink = %sink, error = %e, "could not release the audit sink lease");
        }
        tracing::info!(sink = %sink, cursor = self.shared.cursor.load(Ordering::Relaxed), "audit sink stopped");
    }

    fn warn_lag(&self, last_warning: &mut Option<Instant>) {
        let lag = self
            .head
            .load(Ordering::Relaxed)
            .saturating_sub(self.shared.cursor.load(Ordering::Relaxed));
        if lag > self.options.lag_warn
            && last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            tracing::warn!(sink = %self.shared.label, lag, "audit sink is behind");
            *last_warning = Some(Instant::now());
        }
    }

    async fn step(&mut self) -> Step {
        let lease_ms = i64::try_from(self.options.lease.as_millis()).unwrap_or(i64::MAX);
        let until = portcullis_store::now_ms().saturating_add(lease_ms);
        let cursor = match cursor::claim(&self.store, &self.shared.id, &self.owner, until).await {
            Ok(Some(cursor)) => cursor,
            Ok(None) => {
                self.shared.active.store(0, Ordering::Relaxed);
                return Step::Idle;
            }
            Err(e) => return Step::Failed(e.into()),
        };
        self.shared.active.store(1, Ordering::Relaxed);
        self.shared.cursor.store(cursor, Ordering::Relaxed);
        let head = match table::read_head(&self.store).await {
            Ok(head) => head.seq,
            Err(e) => return Step::Failed(e.into()),
        };
        self.head.fetch_max(head, Ordering::Relaxed);
        if head <= cursor {
            return Step::Idle;
        }
        let batch = match table::records_after(&self.store, cursor, self.options.batch).await {
            Ok(batch) => batch,
            Err(e) => return Step::Failed(e.into()),
        };
        let Some(last) = batch.last().map(|r| r.seq) else {
            // The head is ahead but nothing after the cursor is stored: all pruned.
            self.gap(cursor, head + 1);
            return self.advance(cursor, head, 0).await;
        };
        let mut expected = cursor + 1;
        for record in &batch {
            if record.seq > expected {
                self.gap(expected - 1, record.seq);
            }
            expected = record.seq + 1;
        }
        if let Err(e) = self.transport.deliver(&batch).await {
            return Step::Failed(e);
        }
        self.advance(cursor, last, batch.len() as u64).await
    }

    /// Records `after + 1 .. before` are not in the store.
    fn gap(&self, after: u64, before: u64) {
        let missing = before.saturating_sub(after + 1);
        if missing == 0 {
            return;
        }
        self.shared.gaps.fetch_add(missing, Ordering::Relaxed);
        tracing::warn!(sink = %self.shared.label, first = after + 1, last = before - 1, missing, "audit records gone from the store (pruned by retention or deleted) before this sink received them");
    }

    async fn advance(&mut self, from: u64, to: u64, delivered: u64) -> Step {
        match cursor::advance(
            &self.store,
            &self.shared.id,
            &self.owner,
            from,
            to,
            delivered,
        )
        .await
        {
            Ok(true) => {
                self.shared.cursor.store(to, Ordering::Relaxed);
                self.shared
                    .delivered
                    .fetch_add(delivered, Ordering::Relaxed);
                Step::Delivered
            }
            Ok(false) => {
                tracing::warn!(sink = %self.shared.label, "audit sink lease lost during a delivery; another replica continues (the batch may arrive twice)");
                Step::Idle
            }
            Err(e) => Step::Failed(e.into()),
        }
    }
}
