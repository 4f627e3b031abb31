//! The audit tables and every SQL statement on them (component `audit` in the store).
//!
//! - `audit_records`: one row per record, one column per field of DESIGN §3.5 (`policy_ids`,
//!   `args`, `result` hold JSON text) plus `kid`, the key id of the encrypted fields.
//! - `audit_checkpoints`: signed checkpoints and retention anchors.
//! - `audit_head`: a single row (`id = 1`) with the last sequence number and hash, and when the
//!   last checkpoint was written. An append locks it first (`UPDATE … SET seq = seq`), which
//!   serializes writers across processes and replicas on both backends: on PostgreSQL it is a
//!   row lock held to commit, on SQLite the statement takes the database's write lock before
//!   anything is read. An append may instead be planned on a head read earlier and move it
//!   only if it is unchanged, in one call ([`commit_on`]).

use portcullis_store::sqlx::any::AnyRow;
use portcullis_store::sqlx::{self, AnyConnection, Row};
use portcullis_store::{Dialect, Migration, Store};

use crate::checkpoint::{Checkpoint, CheckpointKind};
use crate::error::AuditError;
use crate::record::{Decision, Record};

pub(crate) const COMPONENT: &str = "audit";

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration::same(
        1,
        "CREATE TABLE audit_records (
        seq BIGINT PRIMARY KEY,
        ts TEXT NOT NULL,
        request_id TEXT NOT NULL,
        principal TEXT,
        auth_method TEXT,
        client_ip TEXT,
        upstream TEXT,
        method TEXT NOT NULL,
        name TEXT,
        decision TEXT NOT NULL,
        reason TEXT,
        policy_ids TEXT NOT NULL,
        args_digest TEXT,
        args TEXT,
        result_digest TEXT,
        result TEXT,
        status BIGINT,
        latency_ms BIGINT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        kid TEXT
    );
    CREATE INDEX audit_records_ts ON audit_records (ts);
    CREATE TABLE audit_checkpoints (
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        hash TEXT NOT NULL,
        ts TEXT NOT NULL,
        key_id TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature TEXT NOT NULL,
        PRIMARY KEY (seq, kind)
    );
    CREATE TABLE audit_head (
        id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL,
        checkpoint_seq BIGINT NOT NULL,
        checkpoint_ms BIGINT NOT NULL
    );
    INSERT INTO audit_head (id, seq, hash, checkpoint_seq, checkpoint_ms)
        VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0)",
    ),
    // SQLite: `seq` becomes the table's rowid (`INTEGER PRIMARY KEY`) instead of a second
    // index beside it, so an append writes one B-tree less: fewer pages per commit, a smaller
    // file. The table is rebuilt with its rows; PostgreSQL keeps its table as it is.
    Migration {
        version: 2,
        sqlite: "CREATE TABLE audit_records_v2 (
            seq INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            request_id TEXT NOT NULL,
            principal TEXT,
            auth_method TEXT,
            client_ip TEXT,
            upstream TEXT,
            method TEXT NOT NULL,
            name TEXT,
            decision TEXT NOT NULL,
            reason TEXT,
            policy_ids TEXT NOT NULL,
            args_digest TEXT,
            args TEXT,
            result_digest TEXT,
            result TEXT,
            status BIGINT,
            latency_ms BIGINT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            kid TEXT
        );
        INSERT INTO audit_records_v2 (seq, ts, request_id, principal, auth_method, client_ip,
            upstream, method, name, decision, reason, policy_ids, args_digest, args,
            result_digest, result, status, latency_ms, prev_hash, hash, kid)
        SELECT seq, ts, request_id, principal, auth_method, client_ip,
            upstream, method, name, decision, reason, policy_ids, args_digest, args,
            result_digest, result, status, latency_ms, prev_hash, hash, kid
        FROM audit_records ORDER BY seq;
        DROP TABLE audit_records;
        ALTER TABLE audit_records_v2 RENAME TO audit_records;
        CREATE INDEX audit_records_ts ON audit_records (ts);",
        postgres: "SELECT 1",
    },
];

/// Creates or upgrades the audit tables.
pub async fn migrate(store: &Store) -> Result<(), AuditError> {
    store.migrate(COMPONENT, MIGRATIONS).await?;
    Ok(())
}

/// The chain head: last sequence number and hash, and the last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub checkpoint_seq: u64,
    pub checkpoint_ms: i64,
}

const RECORD_COLUMNS: &str = "seq, ts, request_id, principal, auth_method, client_ip, upstream, \
    method, name, decision, reason, policy_ids, args_digest, args, result_digest, result, \
    status, latency_ms, prev_hash, hash, kid";

/// Takes the writers' lock on the head row and reads it. Call first in a transaction.
pub(crate) async fn lock_head(conn: &mut AnyConnection) -> Result<Head, AuditError> {
    // A no-op write takes the row lock (PostgreSQL) or the write lock (SQLite) and reads the
    // head in the same statement.
    let row = sqlx::query(
        "UPDATE audit_head SET seq = seq WHERE id = 1 \
         RETURNING seq, hash, checkpoint_seq, checkpoint_ms",
    )
    .fetch_one(&mut *conn)
    .await?;
    head_from_row(&row)
}

pub(crate) async fn read_head_on(conn: &mut AnyConnection) -> Result<Head, AuditError> {
    let row =
        sqlx::query("SELECT seq, hash, checkpoint_seq, checkpoint_ms FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    head_from_row(&row)
}

fn head_from_row(row: &AnyRow) -> Result<Head, AuditError> {
    Ok(Head {
        seq: to_u64(row.try_get("seq")?),
        hash: row.try_get("hash")?,
        checkpoint_seq: to_u64(row.try_get("checkpoint_seq")?),
        checkpoint_ms: row.try_get("checkpoint_ms")?,
    })
}

/// The chain head as committed.
pub async fn read_head(store: &Store) -> Result<Head, AuditError> {
    let mut conn = store.pool().acquire().await?;
    read_head_on(&mut conn).await
}

pub(crate) async fn set_head(
    conn: &mut AnyConnection,
    seq: u64,
    hash: &str,
) -> Result<(), AuditError> {
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(to_i64(seq))
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn set_checkpointed(
    conn: &mut AnyConnection,
    seq: u64,
    at_ms: i64,
) -> Result<(), AuditError> {
    sqlx::query("UPDATE audit_head SET checkpoint_seq = $1, checkpoint_ms = $2 WHERE id = 1")
        .bind(to_i64(seq))
        .bind(at_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Statement sizes (rows per `INSERT`) a batch is split into, largest first: few statements
/// per batch, and few distinct statements for the prepared-statement cache.
const INSERT_ROWS: [usize; 4] = [64, 16, 4, 1];
const RECORD_PARAMS: usize = 21;

/// The sizes (rows per `INSERT`) `count` records are split into, largest first, none above
/// `max`.
fn chunks(count: usize, max: usize) -> impl Iterator<Item = usize> {
    let mut rest = count;
    std::iter::from_fn(move || {
        let rows = INSERT_ROWS.into_iter().find(|n| *n <= rest && *n <= max)?;
        rest -= rows;
        Some(rows)
    })
}

/// Inserts `records` in as few statements as [`INSERT_ROWS`] allows; on PostgreSQL at most 16
/// rows per statement, which keeps a statement of typical records within one TLS record (see
/// [`ONE_CALL_BYTES`]).
pub(crate) async fn insert_records(
    conn: &mut AnyConnection,
    dialect: Dialect,
    records: &[Record],
) -> Result<(), AuditError> {
    let mut rest = records;
    for rows in chunks(records.len(), max_rows(dialect)) {
        let (chunk, tail) = rest.split_at(rows);
        let mut sql = String::new();
        insert_sql(&mut sql, rows, Params::Numbered);
        let query = chunk
            .iter()
            .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), bind_record);
        query.execute(&mut *conn).await?;
        rest = tail;
    }
    Ok(())
}

/// Rows per `INSERT` at most (see [`insert_records`]).
fn max_rows(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => 64,
        Dialect::Postgres => 16,
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn bind_record<'q>(query: AnyQuery<'q>, record: &Record) -> AnyQuery<'q> {
    query
        .bind(to_i64(record.seq))
        .bind(&record.ts)
        .bind(&record.request_id)
        .bind(&record.principal)
        .bind(&record.auth_method)
        .bind(&record.client_ip)
        .bind(&record.upstream)
        .bind(&record.method)
        .bind(&record.name)
        .bind(record.decision.as_str())
        .bind(&record.reason)
        .bind(json(&record.policy_ids))
        .bind(&record.args_digest)
        .bind(record.args.as_ref().map(json))
        .bind(&record.result_digest)
        .bind(record.result.as_ref().map(json))
        .bind(record.status.map(i64::from))
        .bind(to_i64(record.latency_ms))
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .bind(record.kid())
}

/// How a statement's parameters are written.
#[derive(Clone, Copy)]
enum Params {
    /// `$1, $2, …`: both dialects.
    Numbered,
    /// `?`: SQLite only, bound in order. A statement with many numbered parameters costs SQLite
    /// a search of its parameter names for each one, when preparing and when binding.
    Anonymous,
}

/// Appends `INSERT … VALUES (…), (…)` for `rows` records to `sql`.
fn insert_sql(sql: &mut String, rows: usize, params: Params) {
    use std::fmt::Write as _;
    let _ = write!(sql, "INSERT INTO audit_records ({RECORD_COLUMNS}) VALUES ");
    values_sql(sql, rows, RECORD_PARAMS, params, 1);
}

/// Appends `(…), (…)`: `rows` rows of `cols` parameters, numbered from `first`.
fn values_sql(sql: &mut String, rows: usize, cols: usize, params: Params, first: usize) {
    use std::fmt::Write as _;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..cols {
            if col > 0 {
                sql.push_str(", ");
            }
            match params {
                Params::Numbered => {
                    let _ = write!(sql, "${}", first + row * cols + col);
                }
                Params::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
}

/// What a batch moves the head to, and the checkpoint (with when it was signed, ms since the
/// epoch) written with it.
pub(crate) struct Commit<'a> {
    pub records: &'a [Record],
    pub seq: u64,
    pub hash: &'a str,
    pub checkpoint: Option<(&'a Checkpoint, i64)>,
}

/// Commits a batch planned on `base` in one call to SQLite's driver thread (SQLite only: one
/// query string of several statements, whose `?` parameters are bound in order across them),
/// instead of a round trip per statement. `BEGIN IMMEDIATE` takes the write lock; the head
/// moves only if it is still `base`, and when it is not (another process appended) the
/// `INSERT` of a second head row fails on its primary key, so the whole batch fails with a
/// unique violation (see [`is_conflict`]) before `COMMIT`. On any error the transaction is
/// still open: the caller rolls it back ([`rollback`]).
///
/// Returns `false`, having sent nothing, when the batch is too large for one call on
/// PostgreSQL ([`ONE_CALL_BYTES`]): the caller writes it on the locked head instead.
pub(crate) async fn commit_on(
    conn: &mut AnyConnection,
    dialect: Dialect,
    base: &Head,
    commit: &Commit<'_>,
) -> Result<bool, AuditError> {
    match dialect {
        Dialect::Sqlite => commit_on_sqlite(conn, base, commit).await.map(|()| true),
        Dialect::Postgres => commit_on_postgres(conn, base, commit).await,
    }
}

/// The most record data (JSON bytes) a one-call batch carries on PostgreSQL. A message larger
/// than one TLS record (16 KiB) goes out in several writes, and sqlx 0.9.0 leaves Nagle's
/// algorithm on (sqlx issue #4335, fixed after that release): the last write then waits for
/// the server's delayed acknowledgement, about 40 ms. Larger batches take the locked path.
pub(crate) const ONE_CALL_BYTES: usize = 14 * 1024;

/// PostgreSQL: one statement (its own transaction, one round trip) whose first part moves the
/// head only if it is still `base`, and whose inserts take effect only if it did. A head
/// locked by another writer's transaction is waited for and then read again, so a batch never
/// lands on a head that moved; it fails with [`AuditError::HeadMoved`] and nothing is written.
/// The records travel as one JSON array (`json_to_recordset`), so the statement has the same
/// text for every batch size and stays prepared.
async fn commit_on_postgres(
    conn: &mut AnyConnection,
    base: &Head,
    commit: &Commit<'_>,
) -> Result<bool, AuditError> {
    let rows = (!commit.records.is_empty()).then(|| {
        let rows: Vec<JsonRow<'_>> = commit.records.iter().map(JsonRow::from).collect();
        json(&rows)
    });
    if rows.as_ref().is_some_and(|r| r.len() > ONE_CALL_BYTES) {
        return Ok(false);
    }
    let mut sql = String::from("WITH head AS (UPDATE audit_head SET seq = $1, hash = $2");
    let mut next = 5;
    if commit.checkpoint.is_some() {
        sql.push_str(", checkpoint_seq = $5, checkpoint_ms = $6");
        next = 7;
    }
    sql.push_str(" WHERE id = 1 AND seq = $3 AND hash = $4 RETURNING id)");
    if !commit.records.is_empty() {
        use std::fmt::Write as _;
        let _ = write!(
            sql,
            ", records AS (INSERT INTO audit_records ({RECORD_COLUMNS}) \
             SELECT {RECORD_COLUMNS} FROM json_to_recordset(${next}::json) AS v({RECORD_TYPES}) \
             WHERE EXISTS (SELECT 1 FROM head))"
        );
        next += 1;
    }
    if commit.checkpoint.is_some() {
        sql.push_str(", checkpoint AS (");
        sql.push_str(CHECKPOINT_INSERT);
        sql.push_str(" SELECT * FROM (VALUES ");
        values_sql(&mut sql, 1, CHECKPOINT_PARAMS, Params::Numbered, next);
        sql.push_str(") AS c WHERE EXISTS (SELECT 1 FROM head) ");
        sql.push_str(CHECKPOINT_CONFLICT);
        sql.push(')');
    }
    sql.push_str(" SELECT count(*) AS moved FROM head");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_i64(commit.seq))
        .bind(commit.hash)
        .bind(to_i64(base.seq))
        .bind(&base.hash);
    if let Some((checkpoint, at_ms)) = commit.checkpoint {
        query = query.bind(to_i64(checkpoint.seq)).bind(at_ms);
    }
    if let Some(rows) = rows {
        query = query.bind(rows);
    }
    if let Some((checkpoint, _)) = commit.checkpoint {
        query = bind_checkpoint(query, checkpoint);
    }
    let moved: i64 = query.fetch_one(&mut *conn).await?.try_get("moved")?;
    if moved == 1 {
        Ok(true)
    } else {
        Err(AuditError::HeadMoved)
    }
}

/// The column types of `audit_records`, in [`RECORD_COLUMNS`] order, for `json_to_recordset`.
const RECORD_TYPES: &str = "seq BIGINT, ts TEXT, request_id TEXT, principal TEXT, \
    auth_method TEXT, client_ip TEXT, upstream TEXT, method TEXT, name TEXT, decision TEXT, \
    reason TEXT, policy_ids TEXT, args_digest TEXT, args TEXT, result_digest TEXT, result TEXT, \
    status BIGINT, latency_ms BIGINT, prev_hash TEXT, hash TEXT, kid TEXT";

/// A record as one element of the JSON array [`commit_on_postgres`] sends: the values
/// [`bind_record`] binds, under their column names.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    seq: i64,
    ts: &'a str,
    request_id: &'a str,
    principal: Option<&'a str>,
    auth_method: Option<&'a str>,
    client_ip: Option<&'a str>,
    upstream: Option<&'a str>,
    method: &'a str,
    name: Option<&'a str>,
    decision: &'a str,
    reason: Option<&'a str>,
    policy_ids: String,
    args_digest: Option<&'a str>,
    args: Option<String>,
    result_digest: Option<&'a str>,
    result: Option<String>,
    status: Option<i64>,
    latency_ms: i64,
    prev_hash: &'a str,
    hash: &'a str,
    kid: Option<&'a str>,
}

impl<'a> From<&'a Record> for JsonRow<'a> {
    fn from(record: &'a Record) -> Self {
        JsonRow {
            seq: to_i64(record.seq),
            ts: &record.ts,
            request_id: &record.request_id,
            principal: record.principal.as_deref(),
            auth_method: record.auth_method.as_deref(),
            client_ip: record.client_ip.as_deref(),
            upstream: record.upstream.as_deref(),
            method: &record.method,
            name: record.name.as_deref(),
            decision: record.decision.as_str(),
            reason: record.reason.as_deref(),
            policy_ids: json(&record.policy_ids),
            args_digest: record.args_digest.as_deref(),
            args: record.args.as_ref().map(json),
            result_digest: record.result_digest.as_deref(),
            result: record.result.as_ref().map(json),
            status: record.status.map(i64::from),
            latency_ms: to_i64(record.latency_ms),
            prev_hash: &record.prev_hash,
            hash: &record.hash,
            kid: record.kid(),
        }
    }
}

/// SQLite: several statements in one query string, one call to the driver's thread.
async fn commit_on_sqlite(
    conn: &mut AnyConnection,
    base: &Head,
    commit: &Commit<'_>,
) -> Result<(), AuditError> {
    let mut sql = String::from(
        "BEGIN IMMEDIATE; \
         UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?; \
         INSERT INTO audit_head (id, seq, hash, checkpoint_seq, checkpoint_ms) \
         SELECT 1, 0, '', 0, 0 WHERE changes() = 0; ",
    );
    for rows in chunks(commit.records.len(), max_rows(Dialect::Sqlite)) {
        insert_sql(&mut sql, rows, Params::Anonymous);
        sql.push_str("; ");
    }
    if commit.checkpoint.is_some() {
        sql.push_str(CHECKPOINT_INSERT);
        sql.push_str(" VALUES (?, ?, ?, ?, ?, ?, ?) ");
        sql.push_str(CHECKPOINT_CONFLICT);
        sql.push_str(
            "; UPDATE audit_head SET checkpoint_seq = ?, checkpoint_ms = ? WHERE id = 1; ",
        );
    }
    sql.push_str("COMMIT");
    // Small batches are the common shapes (one per call at low concurrency): keep them
    // prepared; a large batch's statements would hold much memory in the cache for little.
    let keep = commit.records.len() <= 16;
    let query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(keep)
        .bind(to_i64(commit.seq))
        .bind(commit.hash)
        .bind(to_i64(base.seq))
        .bind(&base.hash);
    let mut query = commit.records.iter().fold(query, bind_record);
    if let Some((checkpoint, at_ms)) = commit.checkpoint {
        query = bind_checkpoint(query, checkpoint)
            .bind(to_i64(checkpoint.seq))
            .bind(at_ms);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Ends a transaction [`commit_on`] left open after an error.
pub(crate) async fn rollback(conn: &mut AnyConnection) -> Result<(), AuditError> {
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(())
}

/// The head had moved under [`commit_on`]: another writer appended.
pub(crate) fn is_conflict(error: &AuditError) -> bool {
    match error {
        AuditError::HeadMoved => true,
        AuditError::Sql(e) => e
            .as_database_error()
            .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation),
        _ => false,
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) async fn insert_checkpoint(
    conn: &mut AnyConnection,
    checkpoint: &Checkpoint,
) -> Result<(), AuditError> {
    let sql =
        format!("{CHECKPOINT_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7) {CHECKPOINT_CONFLICT}");
    bind_checkpoint(sqlx::query(sqlx::AssertSqlSafe(sql)), checkpoint)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const CHECKPOINT_INSERT: &str =
    "INSERT INTO audit_checkpoints (seq, kind, hash, ts, key_id, public_key, signature)";
const CHECKPOINT_CONFLICT: &str = "ON CONFLICT (seq, kind) DO NOTHING";
const CHECKPOINT_PARAMS: usize = 7;

fn bind_checkpoint<'q>(query: AnyQuery<'q>, checkpoint: &Checkpoint) -> AnyQuery<'q> {
    query
        .bind(to_i64(checkpoint.seq))
        .bind(checkpoint.kind.as_str())
        .bind(&checkpoint.hash)
        .bind(&checkpoint.ts)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.public_key)
        .bind(&checkpoint.signature)
}

/// Up to `limit` records with `seq > after`, in sequence order. The cursor for sinks and
/// exports: pass the last `seq` seen to get the next page.
pub async fn records_after(
    store: &Store,
    after: u64,
    limit: u32,
) -> Result<Vec<Record>, AuditError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2"
    )))
    .bind(to_i64(after))
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// Up to `limit` records with `ts >= since` (RFC 3339 UTC, as [`crate::clock::format_ms`]
/// writes it) and `seq > after`, in sequence order. Page with `after` = the last `seq` seen.
pub async fn records_since(
    store: &Store,
    since: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<Record>, AuditError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM audit_records WHERE ts >= $1 AND seq > $2 \
         ORDER BY seq LIMIT $3"
    )))
    .bind(since)
    .bind(to_i64(after))
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// The lowest and highest stored sequence numbers (`None` when no record is stored).
pub async fn seq_range(store: &Store) -> Result<Option<(u64, u64)>, AuditError> {
    let row = sqlx::query("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_records")
        .fetch_one(store.pool())
        .await?;
    let lo: Option<i64> = row.try_get("lo")?;
    let hi: Option<i64> = row.try_get("hi")?;
    Ok(lo.zip(hi).map(|(lo, hi)| (to_u64(lo), to_u64(hi))))
}

/// Every checkpoint and anchor, in sequence order.
pub async fn checkpoints(store: &Store) -> Result<Vec<Checkpoint>, AuditError> {
    let rows = sqlx::query(
        "SELECT seq, kind, hash, ts, key_id, public_key, signature FROM audit_checkpoints \
         ORDER BY seq, kind",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let seq = to_u64(row.try_get("seq")?);
            let kind: String = row.try_get("kind")?;
            Ok(Checkpoint {
                seq,
                kind: CheckpointKind::parse(&kind).ok_or_else(|| AuditError::Malformed {
                    seq,
                    reason: format!("checkpoint kind {kind:?}"),
                })?,
                hash: row.try_get("hash")?,
                ts: row.try_get("ts")?,
                key_id: row.try_get("key_id")?,
                public_key: row.try_get("public_key")?,
                signature: row.try_get("signature")?,
            })
        })
        .collect()
}

/// The last record with `ts < before`, if any: `(seq, hash)`.
pub(crate) async fn last_before(
    store: &Store,
    before: &str,
) -> Result<Option<(u64, String)>, AuditError> {
    let row =
        sqlx::query("SELECT seq, hash FROM audit_records WHERE ts < $1 ORDER BY seq DESC LIMIT 1")
            .bind(before)
            .fetch_optional(store.pool())
            .await?;
    row.map(|row| Ok((to_u64(row.try_get("seq")?), row.try_get("hash")?)))
        .transpose()
}

fn record_from_row(row: &AnyRow) -> Result<Record, AuditError> {
    let seq = to_u64(row.try_get("seq")?);
    let malformed = |reason: String| AuditError::Malformed { seq, reason };
    let decision: String = row.try_get("decision")?;
    let status: Option<i64> = row.try_get("status")?;
    Ok(Record {
        seq,
        ts: row.try_get("ts")?,
        request_id: row.try_get("request_id")?,
        principal: row.try_get("principal")?,
        auth_method: row.try_get("auth_method")?,
        client_ip: row.try_get("client_ip")?,
        upstream: row.try_get("upstream")?,
        method: row.try_get("method")?,
        name: row.try_get("name")?,
        decision: Decision::parse(&decision)
            .ok_or_else(|| malformed(format!("decision {decision:?}")))?,
        reason: row.try_get("reason")?,
        policy_ids: parse_json(seq, "policy_ids", Some(row.try_get("policy_ids")?))?
            .unwrap_or_default(),
        args_digest: row.try_get("args_digest")?,
        args: parse_json(seq, "args", row.try_get("args")?)?,
        result_digest: row.try_get("result_digest")?,
        result: parse_json(seq, "result", row.try_get("result")?)?,
        status: status
            .map(|s| u16::try_from(s).map_err(|_| malformed(format!("status {s}"))))
            .transpose()?,
        latency_ms: to_u64(row.try_get("latency_ms")?),
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(
    seq: u64,
    column: &str,
    text: Option<String>,
) -> Result<Option<T>, AuditError> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| AuditError::Malformed {
            seq,
            reason: format!("column {column}: {e}"),
        })
    })
    .transpose()
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use portcullis_store::sqlx::Acquire;
    use portcullis_store::testing;

    use super::*;
    use crate::chain::{GENESIS, seal};
    use crate::record::Sealed;

    /// `count` records chained from the genesis hash, each changed by `edit` before it is
    /// sealed.
    fn chained(count: u64, edit: impl Fn(Record) -> Record) -> Vec<Record> {
        let mut prev = GENESIS.to_owned();
        (1..=count)
            .map(|seq| {
                let r = seal(edit(record(seq, prev.clone())));
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn record(seq: u64, prev_hash: String) -> Record {
        seal(Record {
            seq,
            ts: "2026-01-02T03:04:05.678Z".into(),
            request_id: format!("r-{seq}"),
            principal: Some("alice".into()),
            auth_method: Some("api_key".into()),
            client_ip: seq.is_multiple_of(2).then(|| "127.0.0.1".into()),
            upstream: Some("fs".into()),
            method: "tools/call".into(),
            name: Some(format!("fs__tool_{seq}")),
            decision: Decision::Allow,
            reason: seq.is_multiple_of(3).then(|| "it's \"quoted\"".into()),
            policy_ids: vec![format!("p-{seq}")],
            args_digest: Some(format!("{seq:x}")),
            args: Some(Sealed::Redacted {
                value: serde_json::json!({"n": seq}),
            }),
            result_digest: None,
            result: None,
            status: Some(200),
            latency_ms: seq,
            prev_hash,
            hash: String::new(),
        })
    }

    #[test]
    fn batches_are_split_into_few_statement_shapes() {
        assert_eq!(chunks(85, 64).collect::<Vec<_>>(), [64, 16, 4, 1]);
        assert_eq!(
            chunks(85, 16).collect::<Vec<_>>(),
            [16, 16, 16, 16, 16, 4, 1]
        );
        assert_eq!(chunks(3, 64).collect::<Vec<_>>(), [1, 1, 1]);
        assert_eq!(chunks(0, 64).count(), 0);
        assert_eq!(
            (max_rows(Dialect::Sqlite), max_rows(Dialect::Postgres)),
            (64, 16)
        );
    }

    /// A store written by version 1 of the schema (`seq` beside the rowid, with an index of its
    /// own) keeps every record, field for field, when it is opened by the current version, and
    /// `seq` is then the rowid: no index on `audit_records` but the one on `ts`.
    #[tokio::test]
    async fn version_1_tables_are_rebuilt_with_seq_as_the_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        store.migrate(COMPONENT, &MIGRATIONS[..1]).await.unwrap();
        let indexes = |store: Store| async move {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name = 'audit_records' ORDER BY name",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            names
        };
        assert_eq!(
            indexes(store.clone()).await,
            ["audit_records_ts", "sqlite_autoindex_audit_records_1"]
        );
        let records = chained(40, |r| r);
        let mut conn = store.pool().acquire().await.unwrap();
        insert_records(&mut conn, Dialect::Sqlite, &records)
            .await
            .unwrap();
        drop(conn);

        migrate(&store).await.unwrap();
        assert_eq!(indexes(store.clone()).await, ["audit_records_ts"]);
        let declared: String =
            sqlx::query_scalar("SELECT type FROM pragma_table_info('audit_records') WHERE pk = 1")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(declared, "INTEGER");
        assert_eq!(records_after(&store, 0, 1000).await.unwrap(), records);
        // A record at a taken seq is still refused.
        let mut conn = store.pool().acquire().await.unwrap();
        let error = insert_records(&mut conn, Dialect::Sqlite, &records[..1])
            .await
            .unwrap_err();
        assert!(is_conflict(&error), "{error}");
        drop(conn);
        store.close().await;
    }

    /// A batch of 85 records goes in as 64 + 16 + 4 + 1 rows (16-row statements at most on
    /// PostgreSQL) and reads back field for field, in order, on both backends.
    #[tokio::test]
    async fn batched_insert_round_trips_every_record() {
        let mut sql = String::new();
        insert_sql(&mut sql, 2, Params::Numbered);
        assert_eq!(
            sql.matches('$').count(),
            2 * RECORD_PARAMS,
            "one placeholder per column and row"
        );
        let dir = tempfile::tempdir().unwrap();
        for store in testing::both(dir.path()).await.unwrap() {
            migrate(&store).await.unwrap();
            let records = chained(85, |r| r);
            let mut conn = store.pool().acquire().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            insert_records(&mut tx, store.dialect(), &records)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            drop(conn);
            let back = records_after(&store, 0, 1000).await.unwrap();
            assert_eq!(back, records);
            store.close().await;
        }
    }

    /// A batch of 85 records (some fields quoted, some absent, one encrypted) committed in one
    /// call on each backend reads back field for field, in order.
    #[tokio::test]
    async fn one_call_commit_round_trips_every_record() {
        let dir = tempfile::tempdir().unwrap();
        for store in testing::both(dir.path()).await.unwrap() {
            migrate(&store).await.unwrap();
            let records = chained(85, |mut r| {
                if r.seq == 7 {
                    r.result = Some(Sealed::Encrypted {
                        kid: "k1".into(),
                        nonce: "bm9uY2U=".into(),
                        ct: "Y2lwaGVy\u{e9}".into(),
                    });
                    r.result_digest = Some("d\u{1f512}".into());
                }
                r
            });
            let last = records.last().map(|r| r.hash.clone()).unwrap_or_default();
            let commit = Commit {
                records: &records,
                seq: 85,
                hash: &last,
                checkpoint: None,
            };
            let genesis = read_head(&store).await.unwrap();
            let mut conn = store.pool().acquire().await.unwrap();
            let dialect = store.dialect();
            let sent = commit_on(&mut conn, dialect, &genesis, &commit)
                .await
                .unwrap();
            if dialect == Dialect::Postgres {
                // Too large for one call: nothing was sent. The first 10 fit in one call; the
                // rest go in on the locked head.
                assert!(!sent);
                assert_eq!(read_head(&store).await.unwrap(), genesis);
                let (first, rest) = records.split_at(10);
                let ten = Commit {
                    records: first,
                    seq: 10,
                    hash: &first[9].hash,
                    checkpoint: None,
                };
                assert!(commit_on(&mut conn, dialect, &genesis, &ten).await.unwrap());
                let mut tx = conn.begin().await.unwrap();
                assert_eq!(lock_head(&mut tx).await.unwrap().seq, 10);
                insert_records(&mut tx, dialect, rest).await.unwrap();
                set_head(&mut tx, 85, &last).await.unwrap();
                tx.commit().await.unwrap();
            } else {
                assert!(sent);
            }
            drop(conn);
            assert_eq!(records_after(&store, 0, 1000).await.unwrap(), records);
            assert_eq!(read_head(&store).await.unwrap().seq, 85);
            store.close().await;
        }
    }

    /// One call commits records, head and checkpoint when the head is the planned base; when
    /// the head has moved (here without a record at the planned seq, so only the head guard
    /// can notice) it fails as a conflict and leaves nothing behind (on SQLite once rolled
    /// back: its transaction is left open).
    #[tokio::test]
    async fn commit_on_writes_only_onto_the_planned_head() {
        let dir = tempfile::tempdir().unwrap();
        for store in testing::both(dir.path()).await.unwrap() {
            let dialect = store.dialect();
            migrate(&store).await.unwrap();
            let genesis = read_head(&store).await.unwrap();
            let r1 = record(1, GENESIS.to_owned());
            let r2 = record(2, r1.hash.clone());
            let signer = crate::signing::CheckpointSigner::generate().unwrap();
            let checkpoint = Checkpoint::sign(
                &signer,
                CheckpointKind::Checkpoint,
                2,
                &r2.hash,
                "2026-01-02T03:04:05.678Z",
            );
            let records = [r1, r2];
            let commit = Commit {
                records: &records,
                seq: 2,
                hash: &records[1].hash,
                checkpoint: Some((&checkpoint, 42)),
            };
            let mut conn = store.pool().acquire().await.unwrap();
            assert!(
                commit_on(&mut conn, dialect, &genesis, &commit)
                    .await
                    .unwrap()
            );
            let head = read_head(&store).await.unwrap();
            assert_eq!(
                head,
                Head {
                    seq: 2,
                    hash: records[1].hash.clone(),
                    checkpoint_seq: 2,
                    checkpoint_ms: 42
                }
            );
            assert_eq!(records_after(&store, 0, 10).await.unwrap(), records);
            assert_eq!(checkpoints(&store).await.unwrap(), vec![checkpoint]);

            // A batch without a checkpoint.
            let r3 = record(3, records[1].hash.clone());
            let next = Commit {
                records: std::slice::from_ref(&r3),
                seq: 3,
                hash: &r3.hash,
                checkpoint: None,
            };
            assert!(commit_on(&mut conn, dialect, &head, &next).await.unwrap());
            let head = read_head(&store).await.unwrap();
            assert_eq!((head.seq, head.checkpoint_seq), (3, 2));

            // Another writer moved the head to 5; a batch planned on 3 must not land.
            sqlx::query("UPDATE audit_head SET seq = 5, hash = 'elsewhere' WHERE id = 1")
                .execute(store.pool())
                .await
                .unwrap();
            let r4 = record(4, r3.hash.clone());
            let late = Commit {
                records: std::slice::from_ref(&r4),
                seq: 4,
                hash: &r4.hash,
                checkpoint: None,
            };
            let error = commit_on(&mut conn, dialect, &head, &late)
                .await
                .unwrap_err();
            assert!(is_conflict(&error), "{error}");
            if dialect == Dialect::Sqlite {
                rollback(&mut conn).await.unwrap();
            }
            assert_eq!(records_after(&store, 0, 10).await.unwrap().len(), 3);
            assert_eq!(read_head(&store).await.unwrap().hash, "elsewhere");
            // The connection is usable again (no transaction left open).
            drop(conn);
            let mut conn = store.pool().acquire().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            assert_eq!(lock_head(&mut tx).await.unwrap().seq, 5);
            tx.rollback().await.unwrap();
            drop(conn);
            store.close().await;
        }
    }
}
