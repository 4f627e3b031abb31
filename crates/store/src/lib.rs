//! The gateway's durable store: SQLite by default, PostgreSQL for several replicas, through one
//! code path (`sqlx::Any`).
//!
//! This crate owns the connection pool, the dialect differences and the migration runner. Each
//! component (API keys, audit records, tool pins, approvals) owns its own tables: it passes its
//! [`Migration`]s to [`Store::migrate`] under its own component name and writes its own SQL.
//!
//! SQL written against a [`Store`] uses `$1, $2, …` placeholders (both backends accept them),
//! `BIGINT`/`TEXT` columns, and [`Dialect`] for the few spots where the backends differ
//! (binary columns, auto-increment keys, upserts). Timestamps are stored as Unix milliseconds.

mod migrate;
pub mod testing;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use migrate::Migration;
pub use sqlx;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Column type for raw bytes.
    pub fn blob(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage url {0:?} is neither sqlite:// nor postgres://")]
    Scheme(String),
    #[error("cannot create the directory for {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the {dialect} store: {source}")]
    Connect {
        dialect: &'static str,
        source: sqlx::Error,
    },
    #[error("migration {component} v{version} failed: {source}")]
    Migration {
        component: String,
        version: i64,
        source: sqlx::Error,
    },
    #[error(
        "the store has {component} v{found}, newer than this build knows (v{known}); refusing to run an older binary against it"
    )]
    TooNew {
        component: String,
        found: i64,
        known: i64,
    },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// When a commit returns: after its writes are flushed to disk (the default), or as soon as
/// they are written, before the flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Commit {
    /// A committed write survives a crash of the machine or of the database server:
    /// SQLite `synchronous=FULL`; PostgreSQL as its server is set (`synchronous_commit=on`
    /// unless its operator chose otherwise).
    #[default]
    Flushed,
    /// A committed write survives a crash of the gateway, but the last ones (SQLite: since
    /// its last WAL checkpoint; PostgreSQL: up to three times its `wal_writer_delay`) can be
    /// lost when the machine or the database server crashes. Never corrupts or reorders
    /// what stays: SQLite `synchronous=NORMAL` in WAL mode, PostgreSQL
    /// `synchronous_commit=off`.
    Unflushed,
}

/// How long a pooled connection may sit idle and still be handed out without a ping.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool of connections to the configured database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens `sqlite://PATH` (created when missing, with its directory) or `postgres://…`.
    /// SQLite runs in WAL mode with `synchronous=FULL`: a committed write survives a crash.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, Commit::Flushed).await
    }

    /// [`Store::open`] with commits that return when `commit` says.
    pub async fn open_with(url: &str, commit: Commit) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Scheme(url.to_owned()));
        };
        let url = match dialect {
            Dialect::Sqlite => sqlite_url(url)?,
            Dialect::Postgres => url.to_owned(),
        };
        let connect_err = |source| StoreError::Connect {
            dialect: dialect.name(),
            source,
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(connect_err)?
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            // A connection is checked (pinged) before use only after it sat idle a while: a
            // ping per acquire is one more round trip for every batch of every writer.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    match (dialect, commit) {
                        (Dialect::Sqlite, _) => {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute(match commit {
                                Commit::Flushed => "PRAGMA synchronous = FULL",
                                Commit::Unflushed => "PRAGMA synchronous = NORMAL",
                            })
                            .await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // Checkpoints run in the background (`checkpoints`), never inside
                            // the commit that happens to cross the threshold.
                            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                            // A log that grew in a burst shrinks back when it restarts.
                            conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                        }
                        (Dialect::Postgres, Commit::Unflushed) => {
                            conn.execute("SET synchronous_commit = off").await?;
                        }
                        // The server's own setting (`on` unless its operator changed it).
                        (Dialect::Postgres, Commit::Flushed) => {}
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        if dialect == Dialect::Sqlite {
            tokio::spawn(checkpoints(pool.clone()));
        }
        Ok(Store { pool, dialect })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Cheap liveness check for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }

    /// Applies `component`'s migrations that have not run yet, in version order, each in its
    /// own transaction. Safe to call from several replicas at once (PostgreSQL advisory lock).
    pub async fn migrate(
        &self,
        component: &str,
        migrations: &[Migration],
    ) -> Result<(), StoreError> {
        migrate::run(self, component, migrations).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// How often the SQLite write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// A log this long (in 4 KiB pages; SQLite's own automatic threshold) is restarted from its
/// beginning after the copy, so it stops growing even while writes never pause.
const RESTART_AFTER_PAGES: i64 = 1000;

/// Copies the SQLite write-ahead log into the database file every [`CHECKPOINT_EVERY`] until
/// the pool closes. SQLite would otherwise checkpoint inside whichever commit crossed 1000 log
/// pages, and that caller (an audited request) would wait for the copy and its flushes.
///
/// The copy is `PASSIVE` (writers go on meanwhile). A log of [`RESTART_AFTER_PAGES`] or more
/// is then checkpointed with `RESTART`, which holds writers only for what they appended during
/// the copy and makes the next commit start the log over: under steady writes a passive copy
/// never catches up with the end, and the log would grow without bound.
async fn checkpoints(pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Said once when checkpoints start failing and once when they work again, not every tick.
    let mut failing = false;
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match checkpoint(&pool).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("SQLite checkpoints work again");
            }
            Ok(()) => {}
            Err(_) if pool.is_closed() => return,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, retry_every = ?CHECKPOINT_EVERY, "SQLite checkpoint failed; the write-ahead log grows until one succeeds");
            }
            Err(_) => {}
        }
    }
}

async fn checkpoint(pool: &AnyPool) -> Result<(), sqlx::Error> {
    use sqlx::Row;
    // (busy, pages in the log, pages copied)
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let pages: i64 = row.try_get(1)?;
    if pages >= RESTART_AFTER_PAGES {
        pool.execute("PRAGMA wal_checkpoint(RESTART)").await?;
    }
    Ok(())
}

/// `sqlite://PATH` → `sqlite://PATH?mode=rwc`, creating PATH's directory. `sqlite::memory:`
/// passes through.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if rest.starts_with(":memory:") {
        return Ok(url.to_owned());
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{}", params.join("&")))
}

/// Milliseconds since the Unix epoch, the store's timestamp format.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            sqlite_url("sqlite://db.sqlite").ok().as_deref(),
            Some("sqlite://db.sqlite?mode=rwc")
        );
        assert_eq!(
            sqlite_url("sqlite://x.db?mode=ro").ok().as_deref(),
            Some("sqlite://x.db?mode=ro")
        );
        assert_eq!(
            sqlite_url("sqlite::memory:").ok().as_deref(),
            Some("sqlite::memory:")
        );
    }
}
