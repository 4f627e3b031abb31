//! Scope index: which policies can apply to a request at all.
//!
//! Cedar evaluates every policy of a set for every request, and each evaluation costs about as
//! much as building the request. A policy whose scope (`principal …, action …, resource …`)
//! cannot match a request is never satisfied and never fails, so leaving it out changes
//! nothing. The scope test here is exact for Portcullis requests: a principal's only ancestors
//! are its roles (role entities have no parents), a target's only ancestor is its upstream,
//! and the schema has no action groups. The subsets are built once per distinct selection and
//! cached with the policy set (bounded).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{ActionConstraint, EntityUid, PrincipalConstraint, ResourceConstraint};

/// Most distinct selections kept; beyond it subsets are built per request (still correct).
const CACHE_LIMIT: usize = 4096;

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    entries: Vec<Entry>,
    cache: Arc<RwLock<HashMap<Vec<u64>, Arc<cedar_policy::PolicySet>>>>,
}

#[derive(Debug, Clone)]
struct Entry {
    policy: cedar_policy::Policy,
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
}

/// What the scope of a policy can see of one request.
pub(crate) struct Facts<'a> {
    pub principal: &'a EntityUid,
    pub roles: &'a [EntityUid],
    pub action: &'a EntityUid,
    pub resource: &'a EntityUid,
    /// The target's upstream (`None` when the target is the upstream itself).
    pub upstream: Option<&'a EntityUid>,
}

impl Facts<'_> {
    fn principal_in(&self, group: &EntityUid) -> bool {
        group == self.principal || self.roles.contains(group)
    }

    fn resource_in(&self, group: &EntityUid) -> bool {
        group == self.resource || self.upstream == Some(group)
    }

    fn admits(&self, e: &Entry) -> bool {
        let principal_type = self.principal.type_name();
        let resource_type = self.resource.type_name();
        let principal = match &e.principal {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::In(g) => self.principal_in(g),
            PrincipalConstraint::Eq(u) => u == self.principal,
            PrincipalConstraint::Is(t) => t == principal_type,
            PrincipalConstraint::IsIn(t, g) => t == principal_type && self.principal_in(g),
        };
        let action = match &e.action {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == self.action,
            ActionConstraint::In(list) => list.contains(self.action),
        };
        let resource = match &e.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::In(g) => self.resource_in(g),
            ResourceConstraint::Eq(u) => u == self.resource,
            ResourceConstraint::Is(t) => t == resource_type,
            ResourceConstraint::IsIn(t, g) => t == resource_type && self.resource_in(g),
        };
        principal && action && resource
    }
}

impl Index {
    pub fn new<'p>(policies: impl IntoIterator<Item = &'p cedar_policy::Policy>) -> Index {
        let entries = policies
            .into_iter()
            .map(|p| Entry {
                policy: p.clone(),
                principal: p.principal_constraint(),
                action: p.action_constraint(),
                resource: p.resource_constraint(),
            })
            .collect();
        Index {
            entries,
            cache: Arc::default(),
        }
    }

    /// The policies whose scope admits `facts`; `None` when that is every policy.
    pub fn select(&self, facts: &Facts<'_>) -> Option<Arc<cedar_policy::PolicySet>> {
        let mut key = vec![0u64; self.entries.len().div_ceil(64)];
        let mut all = true;
        for (i, e) in self.entries.iter().enumerate() {
            if facts.admits(e) {
                if let Some(word) = key.get_mut(i / 64) {
                    *word |= 1 << (i % 64);
                }
            } else {
                all = false;
            }
        }
        if all {
            return None;
        }
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Some(hit);
        }
        let chosen = self.entries.iter().enumerate().filter(|(i, _)| {
            key.get(i / 64)
                .is_some_and(|word| word & (1 << (i % 64)) != 0)
        });
        // Ids are unique in the full set, so this cannot fail; if it did, the full set (None)
        // gives the same answer.
        let subset = Arc::new(
            cedar_policy::PolicySet::from_policies(chosen.map(|(_, e)| e.policy.clone())).ok()?,
        );
        if let Ok(mut cache) = self.cache.write()
            && cache.len() < CACHE_LIMIT
        {
            cache.insert(key, Arc::clone(&subset));
        }
        Some(subset)
    }
}
