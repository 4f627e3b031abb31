//! What each upstream's tools, prompts and resource templates are, as the gateway last
//! verified them: the definition, (for tools) its compiled schemas, and whether it is blocked
//! (changed since pinned, or poisoned).
//!
//! Fetched whole (every page of `tools/list`, `prompts/list`, `resources/templates/list`) on
//! first use, again after the upstream says a list changed, when a listed definition differs
//! from the one held here, and after [`MAX_AGE`] (in the background when it is used in the
//! last quarter of that age, so steady traffic does not wait for it). Calls and lists consult
//! it: a blocked definition is hidden and refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use portcullis_guard::pins::{Definition, Kind as PinKind, PinState};
use portcullis_guard::scan;
use portcullis_guard::schema::CompiledTool;
use portcullis_mcp::RawObject;
use serde_json::Value;

use crate::Gateway;
use crate::error::GatewayError;
use crate::federation::Kind;
use crate::lists::fetch_page;

/// How long a verified catalog is trusted without a change notification.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// A catalog used after it is this far into [`MAX_AGE`] (in percent) is fetched again in the
/// background, so that steady traffic never waits for a refresh; past `MAX_AGE` a call waits.
const REFRESH_AHEAD_PERCENT: u32 = 75;
/// How often a definition blocked by its pin looks at the pin store again.
pub const PIN_RECHECK: Duration = Duration::from_secs(1);
/// Pages of one list read at most (a hostile upstream cannot page forever).
const MAX_PAGES: usize = 64;

/// The pinned kinds and how they are listed.
const LISTS: [(PinKind, &str, &str); 3] = [
    (PinKind::Tool, "tools/list", "tools"),
    (PinKind::Prompt, "prompts/list", "prompts"),
    (
        PinKind::ResourceTemplate,
        "resources/templates/list",
        "resourceTemplates",
    ),
];

/// The pin kind of a federation kind (plain resources are not pinned).
pub fn pin_kind(kind: Kind) -> Option<PinKind> {
    match kind {
        Kind::Tool => Some(PinKind::Tool),
        Kind::Prompt => Some(PinKind::Prompt),
        Kind::Template => Some(PinKind::ResourceTemplate),
        Kind::Resource => None,
    }
}

/// One definition as its upstream defines it.
#[derive(Debug)]
pub struct Verified {
    pub kind: PinKind,
    pub value: Value,
    pub digest: String,
    /// Tools: the compiled `inputSchema`/`outputSchema`; an error makes the tool uncallable.
    pub schema: Option<Result<Arc<CompiledTool>, String>>,
    /// Tools: the arguments declared with `x-mcp-header` (argument, header suffix).
    pub param_headers: Vec<(String, String)>,
    /// Why it is hidden and refused, if it is.
    pub blocked: Option<String>,
    /// Blocked because it changed since it was pinned: an operator's `pins accept` lifts that,
    /// so the pin is re-read (at most every [`PIN_RECHECK`]).
    pin_changed: bool,
    pin_checked: Mutex<Instant>,
}

/// A tool's verified definition.
pub type ToolDef = Verified;

impl Verified {
    pub fn annotations(&self) -> Option<&Value> {
        self.value.get("annotations")
    }
}

/// One upstream's verified definitions, by kind and the upstream's own name (`uriTemplate`
/// for templates).
#[derive(Debug)]
pub struct Catalog {
    entries: HashMap<(PinKind, String), Arc<Verified>>,
    fetched: Instant,
}

impl Catalog {
    pub fn get(&self, kind: PinKind, name: &str) -> Option<&Arc<Verified>> {
        self.entries.get(&(kind, name.to_owned()))
    }
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Arc<Catalog>>>,
    refresh: tokio::sync::Mutex<()>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
}

/// The catalogs of every upstream, by federation index.
pub struct Catalogs {
    slots: Vec<Slot>,
    /// [`MAX_AGE`] in milliseconds (settable for tests).
    max_age_ms: AtomicU64,
}

impl Catalogs {
    pub fn new(upstreams: usize) -> Self {
        Catalogs {
            slots: (0..upstreams).map(|_| Slot::default()).collect(),
            max_age_ms: AtomicU64::new(u64::try_from(MAX_AGE.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Trusts a catalog for `max_age` instead of [`MAX_AGE`] (tests use a short one).
    pub fn set_max_age(&self, max_age: Duration) {
        let ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        self.max_age_ms.store(ms, Ordering::Relaxed);
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.load(Ordering::Relaxed))
    }

    /// How long ago upstream `idx`'s catalog was fetched (`None` before the first fetch).
    pub fn age(&self, idx: usize) -> Option<Duration> {
        self.cached(idx).map(|c| c.fetched.elapsed())
    }

    fn cached(&self, idx: usize) -> Option<Arc<Catalog>> {
        let slot = self.slots.get(idx)?;
        slot.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets upstream `idx`'s catalog (a list changed).
    pub fn invalidate(&self, idx: usize) {
        if let Some(slot) = self.slots.get(idx) {
            *slot.current.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Upstream `idx`'s catalog: the cached one while fresh (fetched again in the background
    /// when it nears its age limit), else fetched and verified now.
    pub async fn catalog(
        &self,
        gw: &Arc<Gateway>,
        idx: usize,
    ) -> Result<Arc<Catalog>, GatewayError> {
        let max_age = self.max_age();
        match self.cached(idx) {
            Some(c) => {
                let age = c.fetched.elapsed();
                if age >= max_age {
                    return self.refresh(gw, idx, Some(&c)).await;
                }
                if age >= max_age * REFRESH_AHEAD_PERCENT / 100 {
                    self.refresh_in_background(gw, idx, &c);
                }
                Ok(c)
            }
            None => self.refresh(gw, idx, None).await,
        }
    }

    /// Starts fetching upstream `idx`'s catalog again unless that is already under way; a
    /// failure only logs (the catalog in use expires as usual, and the next call then waits
    /// for a fetch and sees its error).
    fn refresh_in_background(&self, gw: &Arc<Gateway>, idx: usize, seen: &Arc<Catalog>) {
        let Some(slot) = self.slots.get(idx) else {
            return;
        };
        if slot.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let gw = Arc::clone(gw);
        let seen = Arc::clone(seen);
        tokio::spawn(async move {
            if let Err(error) = gw.catalogs.refresh(&gw, idx, Some(&seen)).await {
                let upstream = gw.federation.member(idx).map(|m| m.name.clone());
                tracing::warn!(upstream = ?upstream, %error, "background catalog refresh failed");
            }
            if let Some(slot) = gw.catalogs.slots.get(idx) {
                slot.refreshing.store(false, Ordering::Release);
            }
        });
    }

    /// Fetches again unless another task already replaced `seen` meanwhile.
    pub async fn refresh(
        &self,
        gw: &Gateway,
        idx: usize,
        seen: Option<&Arc<Catalog>>,
    ) -> Result<Arc<Catalog>, GatewayError> {
        let slot = self
            .slots
            .get(idx)
            .ok_or_else(|| GatewayError::Internal("no such upstream".into()))?;
        let _one_at_a_time = slot.refresh.lock().await;
        if let Some(now) = self.cached(idx)
            && seen.is_none_or(|s| !Arc::ptr_eq(s, &now))
            && now.fetched.elapsed() < self.max_age()
        {
            return Ok(now);
        }
        let catalog = Arc::new(fetch(gw, idx).await?);
        *slot.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&catalog));
        Ok(catalog)
    }

    /// The verified definition of an item a list page shows: refreshed first when the page's
    /// definition is not the one verified (the upstream changed it without saying so).
    pub async fn listed(
        &self,
        gw: &Arc<Gateway>,
        idx: usize,
        kind: PinKind,
        name: &str,
        item: &Value,
    ) -> Option<Arc<Verified>> {
        let catalog = self.catalog(gw, idx).await.ok()?;
        let digest = portcullis_guard::pins::digest(item);
        let def = match catalog.get(kind, name) {
            Some(def) if def.digest == digest => Arc::clone(def),
            _ => {
                let catalog = self.refresh(gw, idx, Some(&catalog)).await.ok()?;
                catalog.get(kind, name).cloned()?
            }
        };
        Some(self.recheck_pin(gw, idx, def).await)
    }

    /// The verified definition a call names (refreshed once if unknown).
    pub async fn for_use(
        &self,
        gw: &Arc<Gateway>,
        idx: usize,
        kind: PinKind,
        name: &str,
    ) -> Result<Arc<Verified>, GatewayError> {
        let catalog = self.catalog(gw, idx).await?;
        let def = match catalog.get(kind, name) {
            Some(def) => Arc::clone(def),
            None => {
                let catalog = self.refresh(gw, idx, Some(&catalog)).await?;
                catalog
                    .get(kind, name)
                    .cloned()
                    .ok_or_else(|| GatewayError::UnknownTarget(gw.federation.expose(idx, name)))?
            }
        };
        Ok(self.recheck_pin(gw, idx, def).await)
    }

    /// A definition blocked by its pin, once more against the pin store: after `pins accept`
    /// the catalog is fetched again (and everything verified anew).
    async fn recheck_pin(&self, gw: &Gateway, idx: usize, def: Arc<Verified>) -> Arc<Verified> {
        if !def.pin_changed {
            return def;
        }
        let due = {
            let mut checked = def.pin_checked.lock().unwrap_or_else(|p| p.into_inner());
            let due = checked.elapsed() >= PIN_RECHECK;
            if due {
                *checked = Instant::now();
            }
            due
        };
        if !due {
            return def;
        }
        let (Some(member), Some(current)) = (
            gw.federation.member(idx),
            Definition::new(def.kind, def.value.clone()),
        ) else {
            return def;
        };
        match gw
            .pins
            .peek(&member.name, std::slice::from_ref(&current))
            .await
        {
            Ok(statuses) if statuses.iter().all(|s| s.state == PinState::Unchanged) => {
                tracing::info!(upstream = %member.name, kind = %def.kind.as_str(), name = %current.name, "pin accepted; verified again");
                let seen = self.cached(idx);
                match self.refresh(gw, idx, seen.as_ref()).await {
                    Ok(catalog) => catalog.get(def.kind, &current.name).cloned().unwrap_or(def),
                    Err(_) => def,
                }
            }
            _ => def,
        }
    }
}

/// Reads every page of the upstream's lists and verifies them: pins, poisoning scan, schemas.
async fn fetch(gw: &Gateway, idx: usize) -> Result<Catalog, GatewayError> {
    let member = gw
        .federation
        .member(idx)
        .ok_or_else(|| GatewayError::Internal("no such upstream".into()))?;
    let mut defs = Vec::new();
    for (kind, method, key) in LISTS {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (items, next) = fetch_page(
                gw,
                &crate::pipeline::EraCtx::Handshake,
                idx,
                method,
                key,
                &RawObject::new(),
                cursor.as_deref(),
            )
            .await?;
            for item in items {
                let value: Value = serde_json::from_str(item.to_raw().map_err(internal)?.get())
                    .map_err(internal)?;
                if let Some(def) = Definition::new(kind, value) {
                    defs.push(def);
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    let mut blocked: HashMap<(PinKind, String), String> = HashMap::new();
    let mut pin_changed: std::collections::HashSet<(PinKind, String)> =
        std::collections::HashSet::new();
    if gw.guard.pin_tools {
        match gw.pins.compare(&member.name, &defs).await {
            Ok(statuses) => {
                for s in statuses {
                    match s.state {
                        PinState::Changed {
                            pinned_digest,
                            seen_digest,
                        } => {
                            tracing::warn!(
                                upstream = %member.name, kind = %s.kind.as_str(), name = %s.name,
                                pinned = %pinned_digest, seen = %seen_digest,
                                "definition changed since it was pinned; blocked until `portcullis pins accept`"
                            );
                            pin_changed.insert((s.kind, s.name.clone()));
                            blocked.insert(
                                (s.kind, s.name),
                                "its definition changed since it was pinned".into(),
                            );
                        }
                        PinState::New => {
                            tracing::info!(upstream = %member.name, kind = %s.kind.as_str(), name = %s.name, "definition pinned")
                        }
                        PinState::Unchanged => {}
                    }
                }
            }
            Err(e) => {
                // Fail closed: without the pins nothing can be shown to be unchanged.
                tracing::error!(upstream = %member.name, error = %e, "pin store unavailable; every definition of this upstream is blocked");
                for d in &defs {
                    blocked.insert(
                        (d.kind, d.name.clone()),
                        "its pin could not be checked".into(),
                    );
                }
            }
        }
    }
    if gw.guard.scan_tools {
        let known: Vec<String> = defs
            .iter()
            .filter(|d| d.kind == PinKind::Tool)
            .map(|d| d.name.clone())
            .collect();
        let findings = scan::scan(&defs, &known, &gw.guard.scan_options);
        for f in &findings {
            tracing::warn!(upstream = %member.name, name = %f.name, finding = ?f, "definition scan finding");
            if scan::blocks(std::slice::from_ref(f), gw.guard.scan_action) {
                blocked
                    .entry((f.kind, f.name.clone()))
                    .or_insert_with(|| "its definition failed the poisoning scan".into());
            }
        }
    }
    let entries = defs
        .into_iter()
        .map(|d| {
            let schema = (d.kind == PinKind::Tool).then(|| {
                let compiled = gw.guard.schemas.get(&d.value).map_err(|e| e.to_string());
                if let Err(e) = &compiled {
                    tracing::warn!(upstream = %member.name, tool = %d.name, error = %e, "tool schema does not compile; tool is not callable");
                }
                compiled
            });
            let key = (d.kind, d.name.clone());
            let param_headers = if d.kind == PinKind::Tool {
                portcullis_mcp::headers::param_headers(d.value.get("inputSchema"))
            } else {
                Vec::new()
            };
            let def = Verified {
                param_headers,
                kind: d.kind,
                digest: d.digest(),
                pin_changed: pin_changed.contains(&key),
                pin_checked: Mutex::new(Instant::now()),
                blocked: blocked.remove(&key),
                value: d.value,
                schema,
            };
            (key, Arc::new(def))
        })
        .collect();
    Ok(Catalog {
        entries,
        fetched: Instant::now(),
    })
}

fn internal(e: serde_json::Error) -> GatewayError {
    GatewayError::Internal(e.to_string())
}
