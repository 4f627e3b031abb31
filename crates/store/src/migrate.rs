//! Per-component, forward-only migrations recorded in `portcullis_migrations`.

use sqlx::Executor;

use crate::{Dialect, Store, StoreError};

/// One schema step of a component. Versions start at 1 and increase by one.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    /// SQL for SQLite; may hold several statements separated by `;`.
    pub sqlite: &'static str,
    /// SQL for PostgreSQL.
    pub postgres: &'static str,
}

impl Migration {
    /// A step whose SQL is the same on both backends.
    pub const fn same(version: i64, sql: &'static str) -> Self {
        Self {
            version,
            sqlite: sql,
            postgres: sql,
        }
    }

    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS portcullis_migrations (
    component TEXT NOT NULL,
    version BIGINT NOT NULL,
    applied_ms BIGINT NOT NULL,
    PRIMARY KEY (component, version)
)";

pub(crate) async fn run(
    store: &Store,
    component: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    // SQLite: take the write lock up front. A deferred transaction that reads the ledger and
    // then writes fails at once with SQLITE_BUSY (no busy wait) when another connection
    // committed in between, e.g. the audit writer.
    let mut tx = match store.dialect {
        Dialect::Sqlite => store.pool.begin_with("BEGIN IMMEDIATE").await?,
        Dialect::Postgres => store.pool.begin().await?,
    };
    match store.dialect {
        // One migrator at a time across replicas; released at commit.
        Dialect::Postgres => {
            tx.execute("SELECT pg_advisory_xact_lock(7270617)").await?;
        }
        Dialect::Sqlite => {}
    }
    tx.execute(LEDGER).await?;
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM portcullis_migrations WHERE component = $1")
            .bind(component)
            .fetch_one(&mut *tx)
            .await?;
    let applied = applied.unwrap_or(0);
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if applied > known {
        return Err(StoreError::TooNew {
            component: component.to_owned(),
            found: applied,
            known,
        });
    }
    let mut pending: Vec<&Migration> = migrations.iter().filter(|m| m.version > applied).collect();
    pending.sort_by_key(|m| m.version);
    for m in pending {
        let fail = |source| StoreError::Migration {
            component: component.to_owned(),
            version: m.version,
            source,
        };
        tx.execute(sqlx::raw_sql(m.sql(store.dialect)))
            .await
            .map_err(fail)?;
        sqlx::query(
            "INSERT INTO portcullis_migrations (component, version, applied_ms) VALUES ($1, $2, $3)",
        )
        .bind(component)
        .bind(m.version)
        .bind(crate::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tracing::info!(component, version = m.version, "store migration applied");
    }
    tx.commit().await?;
    Ok(())
}
