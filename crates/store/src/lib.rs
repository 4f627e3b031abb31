//! The gateway's durable store: SQLite by default, PostgreSQL for several replicas, through one
//! code path (`sqlx::Any`). On SQLite a thread that writes synchronously (the audit writer) may
//! also take a connection of its own, set up as the pool's are ([`Store::sqlite_connection`]).
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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use migrate::Migration;
pub use rusqlite;
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
    #[error("cannot open a connection of its own to the SQLite store {name}: {source}")]
    SqliteOpen {
        name: String,
        source: rusqlite::Error,
    },
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
    /// SQLite: the database the pool's connections open, for [`Store::sqlite_connection`].
    sqlite: Option<Arc<SqliteTarget>>,
}

/// Where a SQLite store lives and how its commits return.
#[derive(Debug)]
struct SqliteTarget {
    /// A file path, or the shared-cache name of an in-memory database.
    name: String,
    memory: bool,
    commit: Commit,
}

/// The settings of every SQLite connection, pooled or not.
fn sqlite_pragmas(commit: Commit) -> [&'static str; 6] {
    [
        "PRAGMA journal_mode = WAL",
        match commit {
            Commit::Flushed => "PRAGMA synchronous = FULL",
            Commit::Unflushed => "PRAGMA synchronous = NORMAL",
        },
        "PRAGMA busy_timeout = 10000",
        // Checkpoints run in the background (`checkpoints`), never inside the commit that
        // happens to cross the threshold.
        "PRAGMA wal_autocheckpoint = 0",
        // A log that grew in a burst shrinks back when it restarts.
        "PRAGMA journal_size_limit = 67108864",
        "PRAGMA foreign_keys = ON",
    ]
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
        let (url, sqlite) = match dialect {
            Dialect::Sqlite => {
                let (url, name, memory) = sqlite_url(url)?;
                let target = SqliteTarget {
                    name,
                    memory,
                    commit,
                };
                (url, Some(Arc::new(target)))
            }
            Dialect::Postgres => (url.to_owned(), None),
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
                            for pragma in sqlite_pragmas(commit) {
                                conn.execute(pragma).await?;
                            }
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
        Ok(Store {
            pool,
            dialect,
            sqlite,
        })
    }

    /// SQLite: a new connection to the store's database outside the pool, set up as the
    /// pool's are, for a thread that writes synchronously (the audit writer). `None` on
    /// PostgreSQL.
    pub fn sqlite_connection(&self) -> Result<Option<rusqlite::Connection>, StoreError> {
        use rusqlite::OpenFlags;
        let Some(target) = &self.sqlite else {
            return Ok(None);
        };
        let open_err = |source| StoreError::SqliteOpen {
            name: target.name.clone(),
            source,
        };
        // As sqlx opens the pool's (`SQLITE_OPEN_URI` is also what lets an in-memory database
        // be shared by name).
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        if target.memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let conn = rusqlite::Connection::open_with_flags(&target.name, flags).map_err(open_err)?;
        for pragma in sqlite_pragmas(target.commit) {
            // `journal_mode` answers with a row; the others with none.
            conn.query_row(pragma, [], |_| Ok(()))
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(()),
                    e => Err(e),
                })
                .map_err(open_err)?;
        }
        Ok(Some(conn))
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

/// `sqlite://PATH` → `sqlite://PATH?mode=rwc`, creating PATH's directory; with the name of the
/// database and whether it lives in memory. `sqlite::memory:` becomes an in-memory database of
/// its own, named so that a connection outside the pool can open it too.
fn sqlite_url(url: &str) -> Result<(String, String, bool), StoreError> {
    static NEXT_MEMORY: AtomicU64 = AtomicU64::new(0);
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if let Some(query) = rest.strip_prefix(":memory:") {
        // A URI: SQLite shares an in-memory database between connections by name only then.
        let name = format!(
            "file:portcullis-memory-{}-{}",
            std::process::id(),
            NEXT_MEMORY.fetch_add(1, Ordering::Relaxed)
        );
        let sep = if query.starts_with('?') { "&" } else { "?" };
        let url = format!("sqlite:{name}{query}{sep}mode=memory");
        return Ok((url, name, true));
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
    Ok((
        format!("sqlite://{path}?{}", params.join("&")),
        path.to_owned(),
        false,
    ))
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
        let url = |u: &str| sqlite_url(u).ok();
        assert_eq!(
            url("sqlite://db.sqlite"),
            Some((
                "sqlite://db.sqlite?mode=rwc".into(),
                "db.sqlite".into(),
                false
            ))
        );
        assert_eq!(
            url("sqlite://x.db?mode=ro"),
            Some(("sqlite://x.db?mode=ro".into(), "x.db".into(), false))
        );
        let (memory, name, true) = sqlite_url("sqlite::memory:").unwrap() else {
            panic!("not in memory")
        };
        assert!(name.starts_with("file:portcullis-memory-"), "{name}");
        assert_eq!(memory, format!("sqlite:{name}?mode=memory"));
        let (other, ..) = sqlite_url("sqlite::memory:").unwrap();
        assert_ne!(
            other, memory,
            "every in-memory store is a database of its own"
        );
    }

    /// A connection of its own sees what the pool wrote and writes what the pool reads, on a
    /// file and in memory, with the pool's settings.
    #[tokio::test]
    async fn a_connection_of_its_own_shares_the_database_with_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("sqlite://{}", dir.path().join("s.db").display());
        for url in [file.as_str(), "sqlite::memory:"] {
            let store = Store::open_with(url, Commit::Unflushed).await.unwrap();
            store
                .pool()
                .execute("CREATE TABLE t (n BIGINT NOT NULL); INSERT INTO t VALUES (1)")
                .await
                .unwrap();
            let own = store.sqlite_connection().unwrap().expect("a SQLite store");
            let sum: i64 = own
                .query_row("SELECT sum(n) FROM t", [], |r| r.get(0))
                .expect(url);
            assert_eq!(sum, 1, "{url}");
            own.execute("INSERT INTO t VALUES (2)", []).unwrap();
            let sum: i64 = sqlx::query_scalar("SELECT sum(n) FROM t")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(sum, 3, "{url}");
            let sync: i64 = own
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sync, 1, "NORMAL, as the pool's");
            let busy: i64 = own
                .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
                .unwrap();
            assert_eq!(busy, 10000);
            store.close().await;
        }
    }
}
