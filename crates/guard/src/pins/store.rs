//! Pins in the gateway's store (component `guard_pins`, SQLite or PostgreSQL).
//!
//! One row per (upstream, kind, name): the pinned definition and digest, and the definition last
//! seen. A row whose seen digest differs from its pinned digest is *blocked*. Seeing the pinned
//! definition again unblocks it; `accept` makes the last seen definition the pin.

use std::collections::HashMap;

use portcullis_store::sqlx::{self, AnyConnection, Row};
use portcullis_store::{Migration, Store, StoreError, now_ms};

use super::{Definition, Kind, PinState, PinStatus, canonical};

const MIGRATIONS: &[Migration] = &[Migration::same(
    1,
    "CREATE TABLE guard_pins (
        upstream TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        definition TEXT NOT NULL,
        pinned_ms BIGINT NOT NULL,
        seen_digest TEXT NOT NULL,
        seen_definition TEXT NOT NULL,
        seen_ms BIGINT NOT NULL,
        PRIMARY KEY (upstream, kind, name)
    )",
)];

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("pin store query failed: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("pin store holds an unknown kind {0:?}")]
    Kind(String),
}

/// A definition that changed since it was pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedPin {
    pub upstream: String,
    pub kind: Kind,
    pub name: String,
    pub pinned_digest: String,
    pub seen_digest: String,
    /// When the changed definition was last seen (Unix ms).
    pub seen_ms: i64,
}

/// A definition `accept` made the new pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub upstream: String,
    pub kind: Kind,
    pub name: String,
    pub previous_digest: String,
    pub digest: String,
}

/// The pins, shared by every replica through the store.
#[derive(Debug, Clone)]
pub struct PinStore {
    store: Store,
}

struct Row_ {
    digest: String,
    seen_digest: String,
}

impl PinStore {
    /// Applies the `guard_pins` migrations and returns the store.
    pub async fn open(store: Store) -> Result<PinStore, PinError> {
        store.migrate("guard_pins", MIGRATIONS).await?;
        Ok(PinStore { store })
    }

    async fn rows(&self, upstream: &str) -> Result<HashMap<(Kind, String), Row_>, PinError> {
        let rows = sqlx::query(
            "SELECT kind, name, digest, seen_digest FROM guard_pins WHERE upstream = $1",
        )
        .bind(upstream)
        .fetch_all(self.store.pool())
        .await?;
        let mut out = HashMap::new();
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let kind = Kind::parse(&kind).ok_or(PinError::Kind(kind))?;
            out.insert(
                (kind, row.try_get("name")?),
                Row_ {
                    digest: row.try_get("digest")?,
                    seen_digest: row.try_get("seen_digest")?,
                },
            );
        }
        Ok(out)
    }

    /// How `defs` compare with their pins, without writing anything (`portcullis scan`).
    pub async fn peek(
        &self,
        upstream: &str,
        defs: &[Definition],
    ) -> Result<Vec<PinStatus>, PinError> {
        let rows = self.rows(upstream).await?;
        Ok(defs
            .iter()
            .map(|def| {
                let seen = def.digest();
                let state = match rows.get(&(def.kind, def.name.clone())) {
                    None => PinState::New,
                    Some(row) if row.digest == seen => PinState::Unchanged,
                    Some(row) => PinState::Changed {
                        pinned_digest: row.digest.clone(),
                        seen_digest: seen,
                    },
                };
                PinStatus {
                    kind: def.kind,
                    name: def.name.clone(),
                    state,
                }
            })
            .collect())
    }

    /// Compares `defs` (an upstream's current lists) with their pins: new definitions are pinned
    /// on first sight, changed ones are recorded as seen (and so blocked), and a definition that
    /// is back to its pin is unblocked.
    pub async fn compare(
        &self,
        upstream: &str,
        defs: &[Definition],
    ) -> Result<Vec<PinStatus>, PinError> {
        let rows = self.rows(upstream).await?;
        let mut out = Vec::with_capacity(defs.len());
        // Every write of one comparison commits together (one fsync for a whole new catalog),
        // and only when there is something to write.
        let mut tx = None;
        for def in defs {
            let seen = def.digest();
            let state = match rows.get(&(def.kind, def.name.clone())) {
                Some(row) if row.seen_digest == seen => state_of(&row.digest, seen),
                known => {
                    let conn = match &mut tx {
                        Some(t) => t,
                        None => tx.insert(self.store.pool().begin().await?),
                    };
                    match known {
                        None => pin_new(conn, upstream, def, &seen).await?,
                        Some(row) => {
                            record_seen(conn, upstream, def, &seen).await?;
                            state_of(&row.digest, seen)
                        }
                    }
                }
            };
            out.push(PinStatus {
                kind: def.kind,
                name: def.name.clone(),
                state,
            });
        }
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(out)
    }

    /// Definitions whose last seen form differs from their pin, for one upstream or all.
    pub async fn blocked(&self, upstream: Option<&str>) -> Result<Vec<BlockedPin>, PinError> {
        let rows = match upstream {
            Some(u) => {
                sqlx::query(
                    "SELECT upstream, kind, name, digest, seen_digest, seen_ms FROM guard_pins \
                     WHERE digest <> seen_digest AND upstream = $1 ORDER BY upstream, kind, name",
                )
                .bind(u)
                .fetch_all(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT upstream, kind, name, digest, seen_digest, seen_ms FROM guard_pins \
                     WHERE digest <> seen_digest ORDER BY upstream, kind, name",
                )
                .fetch_all(self.store.pool())
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(BlockedPin {
                    upstream: row.try_get("upstream")?,
                    kind: Kind::parse(&kind).ok_or(PinError::Kind(kind))?,
                    name: row.try_get("name")?,
                    pinned_digest: row.try_get("digest")?,
                    seen_digest: row.try_get("seen_digest")?,
                    seen_ms: row.try_get("seen_ms")?,
                })
            })
            .collect()
    }

    /// Makes the last seen definition the pin wherever it differs (for one upstream or all), and
    /// returns what changed. Run [`PinStore::compare`] with the current lists first so "last
    /// seen" is "current".
    pub async fn accept(&self, upstream: Option<&str>) -> Result<Vec<Accepted>, PinError> {
        let blocked = self.blocked(upstream).await?;
        let now = now_ms();
        let mut accepted = Vec::with_capacity(blocked.len());
        for b in blocked {
            // Only if the seen definition is still the one listed above (a concurrent compare
            // may have recorded a newer one, which then stays blocked).
            let updated = sqlx::query(
                "UPDATE guard_pins SET digest = seen_digest, definition = seen_definition, \
                 pinned_ms = $1 WHERE upstream = $2 AND kind = $3 AND name = $4 AND seen_digest = $5",
            )
            .bind(now)
            .bind(b.upstream.as_str())
            .bind(b.kind.as_str())
            .bind(b.name.as_str())
            .bind(b.seen_digest.as_str())
            .execute(self.store.pool())
            .await?
            .rows_affected();
            if updated == 1 {
                accepted.push(Accepted {
                    upstream: b.upstream,
                    kind: b.kind,
                    name: b.name,
                    previous_digest: b.pinned_digest,
                    digest: b.seen_digest,
                });
            }
        }
        Ok(accepted)
    }

    /// The pinned definition (canonical JSON) of one item, if any.
    pub async fn pinned(
        &self,
        upstream: &str,
        kind: Kind,
        name: &str,
    ) -> Result<Option<serde_json::Value>, PinError> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT definition FROM guard_pins WHERE upstream = $1 AND kind = $2 AND name = $3",
        )
        .bind(upstream)
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}

fn state_of(pinned: &str, seen: String) -> PinState {
    if pinned == seen {
        PinState::Unchanged
    } else {
        PinState::Changed {
            pinned_digest: pinned.to_owned(),
            seen_digest: seen,
        }
    }
}

async fn pin_new(
    conn: &mut AnyConnection,
    upstream: &str,
    def: &Definition,
    seen: &str,
) -> Result<PinState, PinError> {
    let json = String::from_utf8_lossy(&canonical(&def.value)).into_owned();
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO guard_pins (upstream, kind, name, digest, definition, pinned_ms, \
         seen_digest, seen_definition, seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (upstream, kind, name) DO NOTHING",
    )
    .bind(upstream)
    .bind(def.kind.as_str())
    .bind(def.name.as_str())
    .bind(seen)
    .bind(json.as_str())
    .bind(now)
    .bind(seen)
    .bind(json.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(PinState::New);
    }
    // Another replica pinned it first: compare with what it pinned.
    let pinned: String = sqlx::query_scalar(
        "SELECT digest FROM guard_pins WHERE upstream = $1 AND kind = $2 AND name = $3",
    )
    .bind(upstream)
    .bind(def.kind.as_str())
    .bind(def.name.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if pinned != seen {
        record_seen(conn, upstream, def, seen).await?;
    }
    Ok(state_of(&pinned, seen.to_owned()))
}

async fn record_seen(
    conn: &mut AnyConnection,
    upstream: &str,
    def: &Definition,
    seen: &str,
) -> Result<(), PinError> {
    let json = String::from_utf8_lossy(&canonical(&def.value)).into_owned();
    sqlx::query(
        "UPDATE guard_pins SET seen_digest = $1, seen_definition = $2, seen_ms = $3 \
         WHERE upstream = $4 AND kind = $5 AND name = $6",
    )
    .bind(seen)
    .bind(json)
    .bind(now_ms())
    .bind(upstream)
    .bind(def.kind.as_str())
    .bind(def.name.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
