//! Several upstreams behind one endpoint: names are namespaced per upstream, routed back by
//! prefix, and lists are merged page by page with a cursor that remembers which upstream is next.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_transport::Upstream;
use serde::{Deserialize, Serialize};

use crate::error::GatewayError;

/// What kind of item a name belongs to (names are separate namespaces per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
    Template,
}

impl Kind {
    /// The field of a list item that holds its name.
    pub fn name_field(self) -> &'static str {
        match self {
            Kind::Tool | Kind::Prompt => "name",
            Kind::Resource => "uri",
            Kind::Template => "uriTemplate",
        }
    }
}

pub struct Member {
    pub name: String,
    /// Shared with the calls whose results pass through (`relay.rs::streaming`).
    pub prefix: Arc<str>,
    pub upstream: Arc<dyn Upstream>,
}

/// The upstreams and the names they offer.
pub struct Federation {
    members: Vec<Member>,
    /// Exposed names seen in lists, for upstreams without a prefix.
    seen: RwLock<HashMap<(Kind, String), usize>>,
    collisions: RwLock<HashSet<(Kind, String)>>,
}

#[derive(Serialize, Deserialize)]
struct CursorState {
    u: usize,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    c: Option<String>,
}

impl Federation {
    pub fn new(members: Vec<Member>) -> Self {
        Self {
            members,
            seen: RwLock::default(),
            collisions: RwLock::default(),
        }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, idx: usize) -> Option<&Member> {
        self.members.get(idx)
    }

    pub fn expose(&self, idx: usize, inner: &str) -> String {
        match self.members.get(idx) {
            Some(m) => format!("{}{}", m.prefix, inner),
            None => inner.to_owned(),
        }
    }

    /// Which upstream serves `exposed`, and its name there.
    pub fn route(&self, kind: Kind, exposed: &str) -> Result<(usize, String), GatewayError> {
        let key = (kind, exposed.to_owned());
        if self.collisions.read().is_ok_and(|c| c.contains(&key)) {
            return Err(GatewayError::Collision(exposed.to_owned()));
        }
        let by_prefix = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                !m.prefix.is_empty()
                    && exposed.len() > m.prefix.len()
                    && exposed.starts_with(&*m.prefix)
            })
            .max_by_key(|(_, m)| m.prefix.len());
        if let Some((idx, m)) = by_prefix {
            return Ok((idx, exposed[m.prefix.len()..].to_owned()));
        }
        let bare: Vec<usize> = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.prefix.is_empty())
            .map(|(i, _)| i)
            .collect();
        match bare.as_slice() {
            [only] => Ok((*only, exposed.to_owned())),
            [] => Err(GatewayError::UnknownTarget(exposed.to_owned())),
            _ => match self.seen.read().ok().and_then(|s| s.get(&key).copied()) {
                Some(idx) => Ok((idx, exposed.to_owned())),
                None => Err(GatewayError::UnknownTarget(exposed.to_owned())),
            },
        }
    }

    /// Records that upstream `idx` lists `exposed`. Returns false (and remembers the collision)
    /// when another upstream already claimed the same exposed name: neither may shadow the other.
    pub fn record(&self, kind: Kind, exposed: &str, idx: usize) -> bool {
        let key = (kind, exposed.to_owned());
        let Ok(mut seen) = self.seen.write() else {
            return true;
        };
        match seen.get(&key) {
            Some(&owner) if owner != idx => {
                let owner_name = self
                    .members
                    .get(owner)
                    .map(|m| m.name.as_str())
                    .unwrap_or("?");
                let other = self
                    .members
                    .get(idx)
                    .map(|m| m.name.as_str())
                    .unwrap_or("?");
                tracing::error!(name = %exposed, first = %owner_name, second = %other, "name collision between upstreams; both are hidden until the configuration separates them");
                if let Ok(mut c) = self.collisions.write() {
                    c.insert(key);
                }
                false
            }
            _ => {
                seen.insert(key.clone(), idx);
                !self.collisions.read().is_ok_and(|c| c.contains(&key))
            }
        }
    }

    /// Decodes a client's cursor into (upstream index, that upstream's cursor).
    pub fn decode_cursor(
        &self,
        cursor: Option<&str>,
    ) -> Result<(usize, Option<String>), GatewayError> {
        let Some(c) = cursor else {
            return Ok((0, None));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(c)
            .map_err(|_| GatewayError::InvalidParams("invalid cursor".into()))?;
        let state: CursorState = serde_json::from_slice(&bytes)
            .map_err(|_| GatewayError::InvalidParams("invalid cursor".into()))?;
        if state.u >= self.members.len() {
            return Err(GatewayError::InvalidParams("invalid cursor".into()));
        }
        Ok((state.u, state.c))
    }

    pub fn encode_cursor(idx: usize, inner: Option<&str>) -> String {
        let state = CursorState {
            u: idx,
            c: inner.map(str::to_owned),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&state).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
