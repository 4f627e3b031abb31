//! The writer: one background task that sequences queued drafts, chains and inserts them in one
//! transaction per batch (group commit), and answers each caller only after that commit.
//!
//! Several writers (replicas on one PostgreSQL, or processes on one SQLite file) interleave
//! whole batches into one gap-free chain: a batch is planned on the head this writer last
//! committed and commits in one call only if that is still the head (`audit_head`); else it is
//! planned again on the head locked and read inside its transaction.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_store::sqlx::pool::PoolConnection;
use portcullis_store::sqlx::{Acquire, Any};
use portcullis_store::{Dialect, PING_AFTER_IDLE, Store, now_ms};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::checkpoint::{Checkpoint, CheckpointKind};
use crate::clock;
use crate::draft::{FieldPolicy, Redact, SealedDraft};
use crate::error::AuditError;
use crate::record::{Record, RecordDraft};
use crate::seal::FieldKeys;
use crate::signing::CheckpointSigner;
use crate::table;

/// Most records committed in one transaction.
pub const MAX_BATCH: usize = 512;
/// Drafts waiting for the writer before `append` waits for room (back-pressure, never drops).
pub const QUEUE_CAPACITY: usize = 4096;

/// Where a record landed in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: String,
}

enum Job {
    Append(
        Box<SealedDraft>,
        oneshot::Sender<Result<Appended, AuditError>>,
    ),
    /// Answered once every job queued before it is committed; `true` also signs a checkpoint
    /// of the head if records are unsigned.
    Flush(bool, oneshot::Sender<Result<(), AuditError>>),
    Stop(oneshot::Sender<Result<(), AuditError>>),
}

/// Checkpoint policy and keys the writer task uses.
pub(crate) struct Chain {
    pub(crate) store: Store,
    pub(crate) signer: CheckpointSigner,
    pub(crate) checkpoint_records: u64,
    pub(crate) checkpoint_interval: Duration,
}

/// The audit log of this process. Cheap to clone; every clone feeds the same writer task.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Job>,
    fields: FieldPolicy,
    committed: watch::Receiver<u64>,
    pub(crate) chain: Arc<Chain>,
    pub(crate) retention: Option<Duration>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("store", &self.chain.store)
            .field("signer", &self.chain.signer)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Migrates the audit tables, loads the keys and starts the writer task (needs a Tokio
    /// runtime). `key_dir` is where a generated signing key lives when `[audit] signing_key`
    /// is unset (see [`crate::key_dir`]).
    pub async fn open(
        store: Store,
        config: &portcullis_config::Audit,
        key_dir: &Path,
    ) -> Result<AuditLog, AuditError> {
        let keys = FieldKeys::from_config(config)?;
        let signer = CheckpointSigner::load(config, store.dialect(), key_dir)?;
        table::migrate(&store).await?;
        let head = table::read_head(&store).await?;
        let chain = Arc::new(Chain {
            store,
            signer,
            checkpoint_records: config.checkpoint_records.max(1),
            checkpoint_interval: config.checkpoint_interval.max(Duration::from_millis(10)),
        });
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let (committed_tx, committed) = watch::channel(head.seq);
        let task = tokio::spawn(run(Arc::clone(&chain), jobs, committed_tx));
        tracing::info!(
            head = head.seq,
            signing_key = chain.signer.id(),
            encrypted = keys.current().is_some(),
            "audit log open"
        );
        Ok(AuditLog {
            queue,
            fields: FieldPolicy {
                keys,
                redactor: None,
                max_bytes: Some(config.max_field_bytes),
            },
            committed,
            chain,
            retention: config.retention,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }

    /// Redacts `args` and `result` before storing them when no encryption key is configured
    /// (without a redactor only their digests are kept).
    pub fn with_redactor(mut self, redactor: Arc<dyn Redact>) -> AuditLog {
        self.fields.redactor = Some(redactor);
        self
    }

    pub fn store(&self) -> &Store {
        &self.chain.store
    }

    /// The id and public half of the checkpoint signing key.
    pub fn signer(&self) -> &CheckpointSigner {
        &self.chain.signer
    }

    /// Appends one record. Resolves once the record is durably committed (with the rest of
    /// its batch); an error means it was not written. Waits while the queue is full.
    pub async fn append(&self, draft: RecordDraft) -> Result<Appended, AuditError> {
        let sealed = self.fields.seal(draft)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job::Append(Box::new(sealed), reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Resolves once every record appended before the call is committed.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.control(|reply| Job::Flush(false, reply)).await
    }

    /// Commits everything queued, signs a checkpoint of the head if any record is unsigned.
    pub async fn checkpoint_now(&self) -> Result<(), AuditError> {
        self.control(|reply| Job::Flush(true, reply)).await
    }

    /// For SIGTERM: commits everything queued, signs a final checkpoint and stops the writer.
    /// Later `append`s fail with [`AuditError::Closed`].
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        let result = self.control(Job::Stop).await;
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        match result {
            Err(AuditError::Closed) => Ok(()),
            other => other,
        }
    }

    /// The highest sequence number this process has committed (starts at the head when
    /// opened). Sinks wait on it instead of polling.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// How many drafts are waiting for the writer (for the queue-depth metric).
    pub fn queue_depth(&self) -> usize {
        QUEUE_CAPACITY - self.queue.capacity()
    }

    async fn control(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<(), AuditError>>) -> Job,
    ) -> Result<(), AuditError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(job(reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }
}

/// The writer task.
async fn run(chain: Arc<Chain>, mut jobs: mpsc::Receiver<Job>, committed: watch::Sender<u64>) {
    let mut writer = Writer::new(&chain, committed);
    let tick =
        (chain.checkpoint_interval / 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<(SealedDraft, oneshot::Sender<Result<Appended, AuditError>>)> =
        Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            job = jobs.recv() => job,
            _ = ticker.tick() => {
                if let Err(error) = writer.checkpoint_if_due(false).await {
                    tracing::error!(%error, "audit checkpoint failed");
                }
                continue;
            }
        };
        let Some(mut job) = first else { break };
        loop {
            match job {
                Job::Append(draft, reply) => batch.push((*draft, reply)),
                Job::Flush(sign, reply) => {
                    writer.commit(&mut batch).await;
                    let result = if sign {
                        writer.checkpoint_if_due(true).await
                    } else {
                        Ok(())
                    };
                    let _ = reply.send(result);
                }
                Job::Stop(reply) => {
                    writer.commit(&mut batch).await;
                    let _ = reply.send(writer.checkpoint_if_due(true).await);
                    tracing::info!("audit writer stopped");
                    return;
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            match jobs.try_recv() {
                Ok(next) => job = next,
                Err(_) => break,
            }
        }
        writer.commit(&mut batch).await;
    }
}

/// The writer task's state: where it last left the head, and its connection.
struct Writer<'a> {
    chain: &'a Chain,
    committed: watch::Sender<u64>,
    /// The head after this writer's last commit, while it can be trusted to still be the
    /// head (see [`Writer::append`]); forgotten after any failure.
    head: Option<table::Head>,
    /// The connection the last batch was committed on, and when. Kept between batches: a
    /// pooled connection is pinged every time it goes back to the pool, one more round trip
    /// to the database per batch. Handed back after any failure, or once it sat idle as long
    /// as the pool lets a connection sit before checking it again.
    held: Option<(PoolConnection<Any>, Instant)>,
}

impl<'a> Writer<'a> {
    fn new(chain: &'a Chain, committed: watch::Sender<u64>) -> Writer<'a> {
        Writer {
            chain,
            committed,
            head: None,
            held: None,
        }
    }

    /// The connection to commit the next batch on.
    async fn conn(&mut self) -> Result<&mut PoolConnection<Any>, AuditError> {
        if self
            .held
            .as_ref()
            .is_some_and(|(_, used)| used.elapsed() >= PING_AFTER_IDLE)
        {
            self.held = None;
        }
        let held = match self.held.take() {
            Some((conn, _)) => conn,
            None => self.chain.store.pool().acquire().await?,
        };
        let (conn, _) = self.held.insert((held, Instant::now()));
        Ok(conn)
    }

    /// Commits `batch` in one transaction and answers every waiter.
    async fn commit(
        &mut self,
        batch: &mut Vec<(SealedDraft, oneshot::Sender<Result<Appended, AuditError>>)>,
    ) {
        if batch.is_empty() {
            return;
        }
        let (drafts, replies): (Vec<SealedDraft>, Vec<_>) = batch.drain(..).unzip();
        let count = drafts.len();
        let outcome = self.append(drafts).await;
        if let Err(error) = &outcome {
            tracing::error!(%error, records = count, "audit batch not committed");
        }
        for (i, reply) in replies.into_iter().enumerate() {
            let answer = match &outcome {
                Ok(appended) => appended.get(i).cloned().ok_or(AuditError::Closed),
                Err(error) => Err(error.clone()),
            };
            let _ = reply.send(answer);
        }
        if let Ok(appended) = &outcome
            && let Some(last) = appended.last()
        {
            self.committed.send_if_modified(|seq| {
                let newer = last.seq > *seq;
                if newer {
                    *seq = last.seq;
                }
                newer
            });
        }
    }

    /// Chains and commits `drafts`. A batch is first planned on the head this writer last
    /// committed and written in one call ([`table::commit_on`]), which fails as a whole if the
    /// head has moved since (another process or replica appended); it is then planned again on
    /// the head locked and read inside its transaction, as is the first batch.
    async fn append(&mut self, drafts: Vec<SealedDraft>) -> Result<Vec<Appended>, AuditError> {
        let chain = self.chain;
        let batch = match self.head.take() {
            Some(head) => {
                let batch = Batch::chain(chain, head, drafts);
                match self.commit_unlocked(&batch).await {
                    Ok(true) => Ok(batch),
                    Ok(false) => self.write(|head| batch.rebase(chain, head)).await,
                    Err(error) => {
                        if table::is_conflict(&error) {
                            tracing::debug!("audit head moved by another writer; batch replanned");
                        } else {
                            tracing::warn!(%error, "audit batch failed; retrying on the locked head");
                        }
                        self.write(|head| batch.rebase(chain, head)).await
                    }
                }
            }
            None => self.write(|head| Batch::chain(chain, head, drafts)).await,
        }?;
        self.remember(&batch);
        Ok(batch.appended())
    }

    /// Locks the head, commits what `plan` makes of it, and returns the batch committed. A
    /// connection that fails before the batch was planned (its server process went away while
    /// it was held) is dropped and the batch is written on a fresh one.
    async fn write(
        &mut self,
        plan: impl FnOnce(table::Head) -> Batch,
    ) -> Result<Batch, AuditError> {
        let mut plan = Some(plan);
        let mut retried = false;
        loop {
            let dialect = self.chain.store.dialect();
            let result = write(self.conn().await?, dialect, &mut plan).await;
            if let Err(error) = &result {
                self.held = None;
                if plan.is_some() && !retried {
                    tracing::warn!(%error, "audit connection failed; batch retried on another");
                    retried = true;
                    continue;
                }
            }
            return result;
        }
    }

    /// Commits `batch` on the head it was planned on, in one call ([`table::commit_on`]);
    /// `false` when it is too large for one call and nothing was sent. A connection whose
    /// transaction cannot be rolled back after a failure is closed, never returned to the pool
    /// with a transaction open.
    async fn commit_unlocked(&mut self, batch: &Batch) -> Result<bool, AuditError> {
        let dialect = self.chain.store.dialect();
        let conn = self.conn().await?;
        let result = table::commit_on(conn, dialect, &batch.base, &batch.commit()).await;
        // On PostgreSQL the batch was one statement: nothing is left open.
        if let Err(failed) = &result {
            if dialect == Dialect::Sqlite
                && let Err(error) = table::rollback(conn).await
            {
                tracing::warn!(%error, "audit connection closed: its transaction could not be rolled back");
                conn.close_on_drop();
                self.held = None;
            }
            // A moved head is no fault of the connection.
            if !table::is_conflict(failed) {
                self.held = None;
            }
        }
        result
    }

    /// Signs a checkpoint of the head when [`checkpoint_due`].
    async fn checkpoint_if_due(&mut self, force: bool) -> Result<(), AuditError> {
        let chain = self.chain;
        // A cheap unlocked look first: most ticks find nothing to do.
        let head = match &self.head {
            Some(head) => head.clone(),
            None => table::read_head(&chain.store).await?,
        };
        if !checkpoint_due(chain, &head, now_ms(), force) {
            return Ok(());
        }
        self.head = None;
        let batch = self
            .write(|head| Batch::checkpoint(chain, head, force))
            .await?;
        self.remember(&batch);
        Ok(())
    }

    fn remember(&mut self, batch: &Batch) {
        self.head = Some(batch.head_after());
    }
}

/// A batch chained onto a head (the locked one, or on SQLite the one this writer last
/// committed): the records to insert, where the head moves, and a checkpoint to sign with it.
/// Appends and timed checkpoints are committed the same way.
struct Batch {
    /// The head it was planned on.
    base: table::Head,
    records: Vec<Record>,
    /// The checkpoint and when it was signed (ms since the epoch).
    checkpoint: Option<(Checkpoint, i64)>,
}

impl Batch {
    /// `drafts` sequenced after `head`, with a checkpoint when `checkpoint_records` are unsigned.
    fn chain(chain: &Chain, head: table::Head, drafts: Vec<SealedDraft>) -> Batch {
        Batch::sequence(chain, head, drafts, SealedDraft::into_record)
    }

    /// The same records sequenced after `head`: as they are when it is the head they were
    /// planned on (the one-call commit failed or was not tried, nobody appended), else
    /// renumbered and chained again.
    fn rebase(self, chain: &Chain, head: table::Head) -> Batch {
        if head == self.base {
            return self;
        }
        Batch::sequence(
            chain,
            head,
            self.records,
            |mut record, seq, ts, prev_hash| {
                record.seq = seq;
                record.ts = ts;
                record.prev_hash = prev_hash;
                crate::chain::seal(record)
            },
        )
    }

    fn sequence<T>(
        chain: &Chain,
        head: table::Head,
        items: Vec<T>,
        make: impl Fn(T, u64, String, String) -> Record,
    ) -> Batch {
        let now = now_ms();
        let ts = clock::format_ms(now);
        let mut seq = head.seq;
        let mut prev = head.hash.clone();
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            seq += 1;
            let record = make(item, seq, ts.clone(), prev);
            prev = record.hash.clone();
            records.push(record);
        }
        let checkpoint = (seq.saturating_sub(head.checkpoint_seq) >= chain.checkpoint_records)
            .then(|| {
                (
                    Checkpoint::sign(&chain.signer, CheckpointKind::Checkpoint, seq, &prev, &ts),
                    now,
                )
            });
        Batch {
            base: head,
            records,
            checkpoint,
        }
    }

    /// No records; a checkpoint of `head` when [`checkpoint_due`].
    fn checkpoint(chain: &Chain, head: table::Head, force: bool) -> Batch {
        let now = now_ms();
        let checkpoint = checkpoint_due(chain, &head, now, force).then(|| {
            let ts = clock::format_ms(now);
            let signed = Checkpoint::sign(
                &chain.signer,
                CheckpointKind::Checkpoint,
                head.seq,
                &head.hash,
                &ts,
            );
            (signed, now)
        });
        Batch {
            base: head,
            records: Vec::new(),
            checkpoint,
        }
    }

    /// Where the chain ends once this batch is committed: its last record, or the base.
    fn end(&self) -> (u64, &str) {
        self.records
            .last()
            .map_or((self.base.seq, self.base.hash.as_str()), |r| {
                (r.seq, r.hash.as_str())
            })
    }

    /// Where each record landed.
    fn appended(&self) -> Vec<Appended> {
        self.records
            .iter()
            .map(|r| Appended {
                seq: r.seq,
                hash: r.hash.clone(),
            })
            .collect()
    }

    /// The head once this batch is committed.
    fn head_after(&self) -> table::Head {
        let (checkpoint_seq, checkpoint_ms) = match &self.checkpoint {
            Some((checkpoint, at_ms)) => (checkpoint.seq, *at_ms),
            None => (self.base.checkpoint_seq, self.base.checkpoint_ms),
        };
        let (seq, hash) = self.end();
        table::Head {
            seq,
            hash: hash.to_owned(),
            checkpoint_seq,
            checkpoint_ms,
        }
    }

    fn commit(&self) -> table::Commit<'_> {
        let (seq, hash) = self.end();
        table::Commit {
            records: &self.records,
            seq,
            hash,
            checkpoint: self.checkpoint.as_ref().map(|(c, at)| (c, *at)),
        }
    }
}

/// Records are unsigned and `checkpoint_interval` has passed since the last checkpoint (or
/// always, with `force`).
fn checkpoint_due(chain: &Chain, head: &table::Head, now: i64, force: bool) -> bool {
    let interval_ms = i64::try_from(chain.checkpoint_interval.as_millis()).unwrap_or(i64::MAX);
    head.seq > head.checkpoint_seq
        && (force || now.saturating_sub(head.checkpoint_ms) >= interval_ms)
}

/// Locks the head on `conn`, commits what `plan` makes of it, and returns the batch committed.
/// `plan` is taken only once the head is locked.
async fn write(
    conn: &mut PoolConnection<Any>,
    dialect: Dialect,
    plan: &mut Option<impl FnOnce(table::Head) -> Batch>,
) -> Result<Batch, AuditError> {
    let mut tx = conn.begin().await?;
    let head = table::lock_head(&mut tx).await?;
    let Some(plan) = plan.take() else {
        return Err(AuditError::Closed);
    };
    let batch = plan(head);
    if !batch.records.is_empty() {
        table::insert_records(&mut tx, dialect, &batch.records).await?;
        let (seq, hash) = batch.end();
        table::set_head(&mut tx, seq, hash).await?;
    }
    if let Some((checkpoint, at_ms)) = &batch.checkpoint {
        table::insert_checkpoint(&mut tx, checkpoint).await?;
        table::set_checkpointed(&mut tx, checkpoint.seq, *at_ms).await?;
    }
    tx.commit().await?;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use portcullis_store::sqlx::{self, Row};
    use portcullis_store::testing;

    use super::*;
    use crate::record::Decision;

    async fn backend_pid(writer: &mut Writer<'_>) -> i32 {
        let conn = writer.conn().await.unwrap();
        sqlx::query("SELECT pg_backend_pid() AS pid")
            .fetch_one(&mut **conn)
            .await
            .unwrap()
            .try_get("pid")
            .unwrap()
    }

    async fn terminate(admin: &Store, pid: i32) {
        let done: bool = sqlx::query("SELECT pg_terminate_backend($1) AS done")
            .bind(pid)
            .fetch_one(admin.pool())
            .await
            .unwrap()
            .try_get("done")
            .unwrap();
        assert!(done, "backend {pid} not terminated");
    }

    fn drafts(fields: &FieldPolicy, n: u64) -> Vec<SealedDraft> {
        (0..n)
            .map(|i| {
                fields
                    .seal(RecordDraft::new(format!("r{i}"), "ping", Decision::Allow))
                    .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn the_writer_keeps_its_connection_and_replaces_a_dead_or_idle_one() {
        let store = testing::postgres().await.unwrap();
        table::migrate(&store).await.unwrap();
        let admin = Store::open(&testing::postgres_url()).await.unwrap();
        let chain = Chain {
            store: store.clone(),
            signer: CheckpointSigner::generate().unwrap(),
            checkpoint_records: 1000,
            checkpoint_interval: Duration::from_secs(3600),
        };
        let fields = FieldPolicy {
            keys: FieldKeys::default(),
            redactor: None,
            max_bytes: None,
        };
        let (committed, _) = watch::channel(0);
        let mut writer = Writer::new(&chain, committed);

        writer.append(drafts(&fields, 2)).await.unwrap();
        let first = backend_pid(&mut writer).await;
        writer.append(drafts(&fields, 1)).await.unwrap();
        assert_eq!(
            backend_pid(&mut writer).await,
            first,
            "kept between batches"
        );

        // Its server process is gone: the batch is written on another connection.
        terminate(&admin, first).await;
        let appended = writer.append(drafts(&fields, 2)).await.unwrap();
        assert_eq!(appended.last().map(|a| a.seq), Some(5));
        let second = backend_pid(&mut writer).await;
        assert_ne!(second, first);

        // Held idle as long as the pool lets a connection sit unchecked: handed back, and the
        // next batch goes out on a connection the pool vouches for.
        if let Some((_, used)) = writer.held.as_mut() {
            *used = Instant::now().checked_sub(PING_AFTER_IDLE).unwrap_or(*used);
        }
        terminate(&admin, second).await;
        let appended = writer.append(drafts(&fields, 1)).await.unwrap();
        assert_eq!(appended.last().map(|a| a.seq), Some(6));
        assert_ne!(backend_pid(&mut writer).await, second);
        assert_eq!(table::read_head(&store).await.unwrap().seq, 6);
        drop(writer);
        admin.close().await;
    }
}
