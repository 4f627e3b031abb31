//! The tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663, 2026-07-28): an upstream may
//! answer a `tools/call` with a task handle (`resultType: "task"`); the client then polls
//! `tasks/get`, answers `tasks/update` and may `tasks/cancel`. The gateway records which
//! upstream made each task and for whom, in its store, so these go to that upstream, for that
//! principal only, through whichever replica on the same store the client reaches: another
//! caller presenting the id gets the same answer as for an unknown one. A completed task's
//! result passes the same response guard as a direct call's.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use portcullis_guard::pins::Kind as PinKind;
use portcullis_mcp::{Method, Outcome, RawFields, RawObject, Request};
use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Migration, Store, StoreError, now_ms};
use portcullis_transport::ClientContext;
use serde_json::value::RawValue;

use crate::Gateway;
use crate::audit::Entry;
use crate::error::GatewayError;
use crate::federation::Kind;
use crate::pipeline::EraCtx;
use crate::proof::{Authenticated, Authorized};

/// The extension's identifier, in client and server capabilities (`extensions`).
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// How long a task is remembered when the upstream states no `ttlMs`, and at most.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// How often expired tasks are deleted (by whichever replica records a task after that long).
const SWEEP_EVERY_MS: i64 = 60_000;

const MIGRATIONS: &[Migration] = &[
    Migration::same(
        1,
        "CREATE TABLE gateway_tasks (
            task_id TEXT NOT NULL,
            principal TEXT NOT NULL,
            upstream TEXT NOT NULL,
            exposed TEXT NOT NULL,
            tool TEXT,
            expires_ms BIGINT NOT NULL,
            PRIMARY KEY (task_id, principal)
        )",
    ),
    Migration::same(
        2,
        "CREATE INDEX gateway_tasks_expires ON gateway_tasks (expires_ms)",
    ),
];

/// Who a task belongs to and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The upstream's configured name.
    pub upstream: String,
    pub principal: String,
    /// The tool as the client named it.
    pub exposed: String,
    /// The tool as the upstream knows it, when the call had its verified definition (the
    /// result's `outputSchema` check and redaction scope use it).
    pub tool: Option<String>,
}

/// The tasks upstreams created for callers of every replica on this store.
pub struct Tasks {
    store: Store,
    /// When expired rows were last deleted (Unix ms).
    swept: AtomicI64,
}

impl Tasks {
    /// Applies the `gateway_tasks` migrations.
    pub async fn open(store: Store) -> Result<Tasks, StoreError> {
        store.migrate("gateway_tasks", MIGRATIONS).await?;
        Ok(Tasks {
            store,
            swept: AtomicI64::new(0),
        })
    }

    /// Records the task an upstream's handle created. The same id from the same principal's
    /// later call replaces the earlier record.
    pub async fn created(&self, task: &Handle, owner: &Owner) -> Result<(), sqlx::Error> {
        let Handle { task_id, ttl } = task;
        let now = now_ms();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO gateway_tasks (task_id, principal, upstream, exposed, tool, expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (task_id, principal) DO UPDATE SET upstream = excluded.upstream,
                 exposed = excluded.exposed, tool = excluded.tool, expires_ms = excluded.expires_ms",
        )
        .bind(task_id)
        .bind(&owner.principal)
        .bind(&owner.upstream)
        .bind(&owner.exposed)
        .bind(owner.tool.as_deref())
        .bind(expires)
        .execute(self.store.pool())
        .await?;
        tracing::info!(task = %task_id, client.id = %owner.principal, mcp.name = %owner.exposed, "upstream created a task");
        self.sweep(now).await;
        Ok(())
    }

    /// Deletes expired tasks, at most once a minute per replica.
    async fn sweep(&self, now: i64) {
        let last = self.swept.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let deleted = sqlx::query("DELETE FROM gateway_tasks WHERE expires_ms <= $1")
            .bind(now)
            .execute(self.store.pool())
            .await;
        if let Err(e) = deleted {
            tracing::warn!(error = %e, "expired tasks could not be deleted; they are ignored");
        }
    }

    /// The task's owner, when `principal` made it and it has not expired.
    pub async fn find(&self, task_id: &str, principal: &str) -> Result<Option<Owner>, sqlx::Error> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT upstream, exposed, tool FROM gateway_tasks
             WHERE task_id = $1 AND principal = $2 AND expires_ms > $3",
        )
        .bind(task_id)
        .bind(principal)
        .bind(now)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(row) = row {
            return Ok(Some(Owner {
                upstream: row.try_get("upstream")?,
                principal: principal.to_owned(),
                exposed: row.try_get("exposed")?,
                tool: row.try_get("tool")?,
            }));
        }
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM gateway_tasks WHERE task_id = $1 AND expires_ms > $2",
        )
        .bind(task_id)
        .bind(now)
        .fetch_one(self.store.pool())
        .await?;
        if others > 0 {
            tracing::warn!(task = %task_id, client.id = %principal, "task id presented by another principal");
        }
        Ok(None)
    }
}

/// A `CreateTaskResult`: the task's id, and how long the gateway remembers it.
#[derive(Debug)]
pub struct Handle {
    task_id: String,
    ttl: Duration,
}

/// The task handle `result` is, if it is one (its content comes later, through `tasks/get`).
pub fn handle(result: &RawValue) -> Option<Handle> {
    let obj = RawFields::parse(result).ok()?;
    if obj.get_str("resultType").as_deref() != Some("task") {
        return None;
    }
    let task_id = obj.get_str("taskId")?.into_owned();
    let ttl = obj
        .get_as::<u64>("ttlMs")
        .and_then(Result::ok)
        .map_or(DEFAULT_TTL, Duration::from_millis)
        .min(MAX_TTL);
    Some(Handle { task_id, ttl })
}

/// Whether capabilities (a client's per-request ones, an upstream's) declare the extension.
pub fn declared(capabilities: Option<&RawValue>) -> bool {
    capabilities
        .and_then(|c| RawFields::parse(c).ok())
        .is_some_and(|c| declared_in(&c))
}

/// [`declared`], for capabilities already parsed.
pub fn declared_in(capabilities: &RawFields<'_>) -> bool {
    capabilities
        .get("extensions")
        .and_then(|e| RawFields::parse(e).ok())
        .is_some_and(|e| e.contains(EXTENSION))
}

/// Whether some connected upstream offers the extension (then the gateway offers it too).
pub fn offered(gw: &Gateway) -> bool {
    gw.federation.members().iter().any(|m| {
        m.upstream
            .identity()
            .is_some_and(|id| declared(Some(&id.capabilities)))
    })
}

/// `tasks/get`, `tasks/update`, `tasks/cancel` from a 2026-07-28 client.
pub async fn relay(
    gw: &Arc<Gateway>,
    req: &Request,
    method: Method,
    who: &Authenticated,
    era: &EraCtx,
    entry: &mut Entry,
) -> Result<Box<RawValue>, GatewayError> {
    let EraCtx::Modern { client, caps, .. } = era else {
        return Err(GatewayError::MethodNotFound(req.method.clone()));
    };
    if !caps.tasks {
        return Err(GatewayError::MissingCapability {
            message: format!("{} needs the client extension {EXTENSION}", req.method),
            required: serde_json::json!({ "extensions": { EXTENSION: {} } }),
        });
    }
    let task_id = req
        .params
        .as_deref()
        .and_then(|p| RawFields::parse(p).ok())
        .and_then(|p| p.get_str("taskId"))
        .ok_or_else(|| GatewayError::InvalidParams("taskId is required".into()))?;
    let unknown = format!("Unknown taskId: {task_id}");
    let owner = gw
        .tasks
        .find(&task_id, &who.principal().id)
        .await
        .map_err(|e| GatewayError::Internal(format!("task store: {e}")))?
        .ok_or_else(|| GatewayError::InvalidParams(unknown.clone()))?;
    // A task of an upstream no longer configured is as unknown as any other.
    let (idx, member) = gw
        .federation
        .members()
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == owner.upstream)
        .ok_or(GatewayError::InvalidParams(unknown))?;
    entry.target(&member.name, &owner.exposed);
    // Owning the task is the permission: the call that created it was authorized and
    // validated, and these methods only follow it up.
    let target = crate::relay::Target {
        kind: Kind::Tool,
        upstream: idx,
        exposed: owner.exposed.clone(),
        inner: task_id.into_owned(),
        params: req.params.clone(),
    };
    let owned = Authorized::assert(target, who, Vec::new());
    let call = crate::validate::validate(gw, owned, crate::validate::Subject::Other, None).await?;
    let client = ClientContext {
        request_id: Some(Arc::from(entry.request_id())),
        ..client.clone()
    };
    let outcome = crate::relay::call_once(gw, call, &req.method, client).await?;
    match outcome {
        Outcome::Result(r) if method == Method::TasksGet => {
            let screened = screen_task(gw, idx, &owner, &r).await?;
            entry.result(serde_json::from_str(screened.get()).ok());
            Ok(screened)
        }
        Outcome::Result(r) => Ok(r),
        Outcome::Error(e) => Err(GatewayError::Upstream(crate::relay::public_upstream_error(
            &member.name,
            &owner.exposed,
            &e,
        ))),
    }
}

/// A task's `result` (present once it completed) gets the checks a direct call's result gets,
/// against the tool's verified definition as it is now (a tool no longer offered fails).
async fn screen_task(
    gw: &Arc<Gateway>,
    idx: usize,
    owner: &Owner,
    raw: &RawValue,
) -> Result<Box<RawValue>, GatewayError> {
    let mut task = RawObject::from_raw(raw).map_err(|e| GatewayError::UpstreamFailed {
        upstream: owner.upstream.clone(),
        detail: format!("task is not a JSON object: {e}"),
    })?;
    let Some(result) = task.remove("result") else {
        return Ok(raw.to_owned());
    };
    let def = match &owner.tool {
        Some(name) => Some((
            name.as_str(),
            gw.catalogs.for_use(gw, idx, PinKind::Tool, name).await?,
        )),
        None => None,
    };
    let tool = def.as_ref().map(|(name, def)| (*name, def.as_ref()));
    let rewrite = crate::results::Rewrite {
        method: Method::ToolsCall,
        upstream: idx,
        modern: true,
    };
    let cleared = crate::relay::clear(gw, &owner.upstream, tool, result, Some(rewrite))?;
    task.set_raw("result", cleared.raw);
    task.to_raw()
        .map_err(|e| GatewayError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    fn task(s: &str) -> Handle {
        handle(&raw(s)).unwrap()
    }

    fn owner(principal: &str, upstream: &str) -> Owner {
        Owner {
            upstream: upstream.into(),
            principal: principal.into(),
            exposed: "slow".into(),
            tool: Some("slow_compute".into()),
        }
    }

    #[tokio::test]
    async fn a_task_is_found_only_by_its_principal_and_only_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        for store in portcullis_store::testing::both(dir.path()).await.unwrap() {
            let tasks = Tasks::open(store.clone()).await.unwrap();
            let created =
                task(r#"{"resultType":"task","taskId":"t-1","status":"working","ttlMs":60000}"#);
            tasks.created(&created, &owner("alice", "a")).await.unwrap();
            assert_eq!(
                tasks.find("t-1", "alice").await.unwrap(),
                Some(owner("alice", "a"))
            );
            assert_eq!(
                tasks.find("t-1", "bob").await.unwrap(),
                None,
                "another principal"
            );
            assert_eq!(
                tasks.find("t-2", "alice").await.unwrap(),
                None,
                "unknown id"
            );

            // Another replica on the same store finds it too (nothing is kept in memory).
            let replica = Tasks::open(store.clone()).await.unwrap();
            assert!(replica.find("t-1", "alice").await.unwrap().is_some());

            // The same id from another principal is theirs alone; from the same principal it
            // replaces the earlier record.
            tasks.created(&created, &owner("bob", "b")).await.unwrap();
            assert_eq!(
                tasks.find("t-1", "bob").await.unwrap(),
                Some(owner("bob", "b"))
            );
            assert_eq!(
                tasks.find("t-1", "alice").await.unwrap(),
                Some(owner("alice", "a"))
            );
            tasks.created(&created, &owner("alice", "c")).await.unwrap();
            assert_eq!(
                tasks.find("t-1", "alice").await.unwrap(),
                Some(owner("alice", "c"))
            );

            let short =
                task(r#"{"resultType":"task","taskId":"t-3","status":"working","ttlMs":0}"#);
            tasks.created(&short, &owner("alice", "a")).await.unwrap();
            assert_eq!(tasks.find("t-3", "alice").await.unwrap(), None, "expired");
            let plain = raw(r#"{"resultType":"complete","content":[]}"#);
            assert!(handle(&plain).is_none(), "not a task handle");

            // Expired tasks are deleted by the next sweep; live ones stay.
            tasks.swept.store(0, Ordering::Relaxed);
            tasks.sweep(now_ms()).await;
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gateway_tasks")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(rows, 2, "t-1 of alice and of bob");
        }
    }

    #[test]
    fn the_extension_is_declared_under_extensions() {
        assert!(declared(Some(&raw(
            r#"{"extensions":{"io.modelcontextprotocol/tasks":{}}}"#
        ))));
        assert!(!declared(Some(&raw(r#"{"extensions":{}}"#))));
        assert!(!declared(Some(&raw(r#"{"tasks":{}}"#))));
        assert!(!declared(None));
    }
}
