//! What each upstream's tools are, as the gateway last verified them: the definition, its
//! compiled schemas, and whether it is blocked (changed since pinned, or poisoned).
//!
//! Fetched whole (every page of `tools/list`) on first use, again after the upstream says its
//! list changed, when a listed definition differs from the one held here, and after
//! [`MAX_AGE`]. Calls and lists consult it: a blocked tool is hidden and refused.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use portcullis_guard::pins::{Definition, Kind as PinKind, PinState};
use portcullis_guard::scan;
use portcullis_guard::schema::CompiledTool;
use portcullis_mcp::RawObject;
use serde_json::Value;

use crate::Gateway;
use crate::error::GatewayError;
use crate::lists::fetch_page;

/// How long a verified catalog is trusted without a change notification.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// How often a tool blocked by its pin looks at the pin store again.
pub const PIN_RECHECK: Duration = Duration::from_secs(1);
/// Pages of `tools/list` read at most (a hostile upstream cannot page forever).
const MAX_PAGES: usize = 64;

/// One tool as its upstream defines it.
#[derive(Debug)]
pub struct ToolDef {
    pub value: Value,
    pub digest: String,
    /// Compiled `inputSchema`/`outputSchema`; an error makes the tool uncallable.
    pub schema: Result<Arc<CompiledTool>, String>,
    /// Why the tool is hidden and refused, if it is.
    pub blocked: Option<String>,
    /// Blocked because it changed since it was pinned: an operator's `pins accept` lifts that,
    /// so the pin is re-read (at most every [`PIN_RECHECK`]).
    pin_changed: bool,
    pin_checked: std::sync::Mutex<Instant>,
}

impl ToolDef {
    pub fn annotations(&self) -> Option<&Value> {
        self.value.get("annotations")
    }
}

/// One upstream's verified tools, by the upstream's own name.
#[derive(Debug)]
pub struct Tools {
    pub by_name: HashMap<String, Arc<ToolDef>>,
    fetched: Instant,
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Arc<Tools>>>,
    refresh: tokio::sync::Mutex<()>,
}

/// The catalogs of every upstream, by federation index.
pub struct Catalogs {
    slots: Vec<Slot>,
}

impl Catalogs {
    pub fn new(upstreams: usize) -> Self {
        Catalogs {
            slots: (0..upstreams).map(|_| Slot::default()).collect(),
        }
    }

    fn cached(&self, idx: usize) -> Option<Arc<Tools>> {
        let slot = self.slots.get(idx)?;
        slot.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets upstream `idx`'s catalog (its list changed).
    pub fn invalidate(&self, idx: usize) {
        if let Some(slot) = self.slots.get(idx) {
            *slot.current.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Upstream `idx`'s tools: the cached catalog while fresh, else fetched and verified now.
    pub async fn tools(&self, gw: &Gateway, idx: usize) -> Result<Arc<Tools>, GatewayError> {
        match self.cached(idx) {
            Some(t) if t.fetched.elapsed() < MAX_AGE => Ok(t),
            seen => self.refresh(gw, idx, seen.as_ref()).await,
        }
    }

    /// Fetches again unless another task already replaced `seen` meanwhile.
    pub async fn refresh(
        &self,
        gw: &Gateway,
        idx: usize,
        seen: Option<&Arc<Tools>>,
    ) -> Result<Arc<Tools>, GatewayError> {
        let slot = self
            .slots
            .get(idx)
            .ok_or_else(|| GatewayError::Internal("no such upstream".into()))?;
        let _one_at_a_time = slot.refresh.lock().await;
        if let Some(now) = self.cached(idx)
            && seen.is_none_or(|s| !Arc::ptr_eq(s, &now))
            && now.fetched.elapsed() < MAX_AGE
        {
            return Ok(now);
        }
        let tools = Arc::new(fetch(gw, idx).await?);
        *slot.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&tools));
        Ok(tools)
    }

    /// The verified definition of a tool a list page shows: refreshed first when the page's
    /// definition is not the one verified (the upstream changed it without saying so).
    pub async fn listed(
        &self,
        gw: &Gateway,
        idx: usize,
        name: &str,
        item: &Value,
    ) -> Option<Arc<ToolDef>> {
        let tools = self.tools(gw, idx).await.ok()?;
        let digest = portcullis_guard::pins::digest(item);
        let def = match tools.by_name.get(name) {
            Some(def) if def.digest == digest => Arc::clone(def),
            _ => {
                let tools = self.refresh(gw, idx, Some(&tools)).await.ok()?;
                tools.by_name.get(name).cloned()?
            }
        };
        Some(self.recheck_pin(gw, idx, name, def).await)
    }

    /// A tool blocked by its pin, once more against the pin store: after `pins accept` the
    /// catalog is fetched again (and the tool verified anew).
    async fn recheck_pin(
        &self,
        gw: &Gateway,
        idx: usize,
        name: &str,
        def: Arc<ToolDef>,
    ) -> Arc<ToolDef> {
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
        let Some(member) = gw.federation.member(idx) else {
            return def;
        };
        let Some(current) = Definition::new(PinKind::Tool, def.value.clone()) else {
            return def;
        };
        match gw
            .pins
            .peek(&member.name, std::slice::from_ref(&current))
            .await
        {
            Ok(statuses) if statuses.iter().all(|s| s.state == PinState::Unchanged) => {
                tracing::info!(upstream = %member.name, tool = %name, "pin accepted; tool verified again");
                let seen = self.cached(idx);
                match self.refresh(gw, idx, seen.as_ref()).await {
                    Ok(tools) => tools.by_name.get(name).cloned().unwrap_or(def),
                    Err(_) => def,
                }
            }
            _ => def,
        }
    }

    /// The verified definition of the tool a call names (refreshed once if unknown).
    pub async fn for_call(
        &self,
        gw: &Gateway,
        idx: usize,
        name: &str,
    ) -> Result<Arc<ToolDef>, GatewayError> {
        let tools = self.tools(gw, idx).await?;
        let def =
            match tools.by_name.get(name) {
                Some(def) => Arc::clone(def),
                None => {
                    let tools = self.refresh(gw, idx, Some(&tools)).await?;
                    tools.by_name.get(name).cloned().ok_or_else(|| {
                        GatewayError::UnknownTarget(gw.federation.expose(idx, name))
                    })?
                }
            };
        Ok(self.recheck_pin(gw, idx, name, def).await)
    }
}

/// Reads every page of the upstream's tools and verifies them: pins, poisoning scan, schemas.
async fn fetch(gw: &Gateway, idx: usize) -> Result<Tools, GatewayError> {
    let member = gw
        .federation
        .member(idx)
        .ok_or_else(|| GatewayError::Internal("no such upstream".into()))?;
    let mut defs = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = fetch_page(
            gw,
            &crate::pipeline::EraCtx::Handshake,
            idx,
            "tools/list",
            "tools",
            &RawObject::new(),
            cursor.as_deref(),
        )
        .await?;
        for item in items {
            let value: Value =
                serde_json::from_str(item.to_raw().map_err(internal)?.get()).map_err(internal)?;
            if let Some(def) = Definition::new(PinKind::Tool, value) {
                defs.push(def);
            }
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut blocked: HashMap<String, String> = HashMap::new();
    let mut pin_changed: std::collections::HashSet<String> = std::collections::HashSet::new();
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
                                upstream = %member.name, tool = %s.name, pinned = %pinned_digest,
                                seen = %seen_digest,
                                "tool definition changed since it was pinned; blocked until `portcullis pins accept`"
                            );
                            pin_changed.insert(s.name.clone());
                            blocked.insert(
                                s.name,
                                "its definition changed since it was pinned".into(),
                            );
                        }
                        PinState::New => {
                            tracing::info!(upstream = %member.name, tool = %s.name, "tool pinned")
                        }
                        PinState::Unchanged => {}
                    }
                }
            }
            Err(e) => {
                // Fail closed: without the pins nothing can be shown to be unchanged.
                tracing::error!(upstream = %member.name, error = %e, "pin store unavailable; every tool of this upstream is blocked");
                for d in &defs {
                    blocked.insert(d.name.clone(), "its pin could not be checked".into());
                }
            }
        }
    }
    if gw.guard.scan_tools {
        let known: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
        let findings = scan::scan(&defs, &known, &gw.guard.scan_options);
        for f in &findings {
            tracing::warn!(upstream = %member.name, tool = %f.name, finding = ?f, "tool definition scan finding");
            if scan::blocks(std::slice::from_ref(f), gw.guard.scan_action) {
                blocked
                    .entry(f.name.clone())
                    .or_insert_with(|| "its definition failed the poisoning scan".into());
            }
        }
    }
    let by_name = defs
        .into_iter()
        .map(|d| {
            let schema = gw
                .guard
                .schemas
                .get(&d.value)
                .map_err(|e| e.to_string());
            if let Err(e) = &schema {
                tracing::warn!(upstream = %member.name, tool = %d.name, error = %e, "tool schema does not compile; tool is not callable");
            }
            let def = ToolDef {
                digest: d.digest(),
                pin_changed: pin_changed.contains(&d.name),
                pin_checked: std::sync::Mutex::new(Instant::now()),
                blocked: blocked.remove(&d.name),
                value: d.value,
                schema,
            };
            (d.name, Arc::new(def))
        })
        .collect();
    Ok(Tools {
        by_name,
        fetched: Instant::now(),
    })
}

fn internal(e: serde_json::Error) -> GatewayError {
    GatewayError::Internal(e.to_string())
}
