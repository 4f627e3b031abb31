//! A loaded, validated policy set: Cedar policies from files, with ids, effects and the
//! Portcullis annotations (`@id`, `@approval`, `@reason`). Built once per version of the files.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use cedar_policy::{Effect, PolicyId, ValidationError, ValidationMode};
use miette::Diagnostic;

use crate::entities::ContextKeys;
use crate::error::{Location, PolicyError, PolicyErrors};
use crate::index::Index;
use crate::schema;

/// What the crate knows about one policy besides its Cedar text.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub effect: Effect,
    /// `@approval("required")`: an allow this permit decides needs a person's approval.
    pub approval: bool,
    /// `@reason("…")`: public text for a denial this policy decides.
    pub reason: Option<String>,
    pub at: Location,
}

/// Policies ready for decisions. Cheap to share (`Arc`), never changed after loading.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub(crate) cedar: cedar_policy::PolicySet,
    pub(crate) meta: HashMap<PolicyId, PolicyMeta>,
    /// The files read, in load order (path, text): to tell whether a reload changed anything.
    sources: Vec<(PathBuf, String)>,
    /// Some policy text mentions `args`: list visibility needs partial evaluation.
    pub(crate) uses_args: bool,
    /// The context attributes some policy can read.
    pub(crate) context: ContextKeys,
    warnings: Vec<String>,
    pub(crate) index: Index,
    /// Tells loaded sets apart (0: the empty set), so a decision remembered for one set is
    /// never used with another: see [`crate::entities::Store::remembered`].
    pub(crate) generation: u64,
}

impl PolicySet {
    /// No policies: every request is denied.
    pub fn empty() -> PolicySet {
        PolicySet::default()
    }

    /// Reads every file named by `patterns` (absolute paths or globs such as
    /// `/etc/portcullis/policies/*.cedar`, as `portcullis_config::Authz::policies` holds them),
    /// parses and validates each against the schema, and reports every problem found.
    pub fn load(patterns: &[PathBuf]) -> Result<PolicySet, PolicyErrors> {
        let (files, mut errors) = expand(patterns);
        let mut sources = Vec::new();
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((path, text)),
                Err(e) => errors.push(PolicyError::Read {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
        match PolicySet::from_sources(sources) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(PolicyErrors(errors)),
            Err(PolicyErrors(more)) => {
                errors.extend(more);
                Err(PolicyErrors(errors))
            }
        }
    }

    /// Builds a set from (file path, Cedar text) pairs; ids default to `<file name>:<index>`.
    pub fn from_sources(sources: Vec<(PathBuf, String)>) -> Result<PolicySet, PolicyErrors> {
        let mut errors = Vec::new();
        let mut cedar = cedar_policy::PolicySet::new();
        let mut meta: HashMap<PolicyId, PolicyMeta> = HashMap::new();
        // Which file each id came from, to place validation errors.
        let mut texts: HashMap<PolicyId, usize> = HashMap::new();
        for (file_index, (path, text)) in sources.iter().enumerate() {
            for parsed in parse_file(path, text, &mut errors) {
                if let Some(first) = meta.get(parsed.policy.id()) {
                    errors.push(PolicyError::DuplicateId {
                        at: parsed.meta.at.clone(),
                        id: parsed.policy.id().to_string(),
                        first: first.at.clone(),
                    });
                    continue;
                }
                let id = parsed.policy.id().clone();
                if let Err(e) = cedar.add(parsed.policy) {
                    errors.push(PolicyError::Syntax {
                        at: parsed.meta.at.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
                texts.insert(id.clone(), file_index);
                meta.insert(id, parsed.meta);
            }
        }
        let mut warnings = Vec::new();
        match schema::validator() {
            Err(e) => errors.push(PolicyError::Schema(e.to_owned())),
            Ok(validator) => {
                let result = validator.validate(&cedar, ValidationMode::Strict);
                let place = |id: &PolicyId, offset: Option<usize>| -> Option<Location> {
                    let (path, text) = sources.get(*texts.get(id)?)?;
                    let fallback = meta.get(id).map(|m| m.at.clone());
                    match offset {
                        Some(o) => Some(Location::of(path.clone(), text, o)),
                        None => fallback,
                    }
                };
                for e in result.validation_errors() {
                    let offset = first_offset(e);
                    let text = texts
                        .get(e.policy_id())
                        .and_then(|i| sources.get(*i))
                        .map(|(_, t)| t.as_str());
                    if is_open_args_access(e, text, offset) {
                        continue;
                    }
                    if let Some(at) = place(e.policy_id(), offset) {
                        errors.push(PolicyError::Invalid {
                            at,
                            reason: with_help(e),
                        });
                    }
                }
                for w in result.validation_warnings() {
                    let at = place(w.policy_id(), first_offset(w));
                    warnings.push(match at {
                        Some(at) => format!("{at}: {}", with_help(w)),
                        None => with_help(w),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }
        let uses_args = sources.iter().any(|(_, t)| t.contains("args"));
        let context = ContextKeys::read_by(sources.iter().map(|(_, t)| t.as_str()));
        let index = Index::new(cedar.policies());
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(PolicySet {
            index,
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            cedar,
            meta,
            sources,
            uses_args,
            context,
            warnings,
        })
    }

    /// How many policies.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Every policy id, sorted.
    pub fn ids(&self) -> Vec<String> {
        let ids: BTreeSet<String> = self.meta.keys().map(ToString::to_string).collect();
        ids.into_iter().collect()
    }

    /// Validator warnings (impossible policies, actions that never apply), with locations.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The files this set was read from.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.sources.iter().map(|(p, _)| p.as_path())
    }

    /// Same files with the same text: a reload would change nothing.
    pub fn same_sources(&self, other: &PolicySet) -> bool {
        self.sources == other.sources
    }
}

/// Every problem with the policies `patterns` name, one line each (empty: all good). For
/// `portcullis check`.
pub fn check(patterns: &[PathBuf]) -> Vec<String> {
    match PolicySet::load(patterns) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

/// The files `patterns` name, sorted within each glob, each file once.
fn expand(patterns: &[PathBuf]) -> (Vec<PathBuf>, Vec<PolicyError>) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        let Some(text) = pattern.to_str() else {
            errors.push(PolicyError::Pattern {
                pattern: pattern.display().to_string(),
                reason: "not valid UTF-8".into(),
            });
            continue;
        };
        if !text.contains(['*', '?', '[']) {
            if !files.contains(pattern) {
                files.push(pattern.clone());
            }
            continue;
        }
        let matches = match glob::glob(text) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(PolicyError::Pattern {
                    pattern: text.to_owned(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let mut found: Vec<PathBuf> = Vec::new();
        for m in matches {
            match m {
                Ok(path) if path.is_file() => found.push(path),
                Ok(_) => {}
                Err(e) => errors.push(PolicyError::Read {
                    path: e.path().to_path_buf(),
                    reason: e.error().to_string(),
                }),
            }
        }
        if found.is_empty() {
            errors.push(PolicyError::NoMatch {
                pattern: text.to_owned(),
            });
        }
        found.sort();
        for path in found {
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    (files, errors)
}

struct Parsed {
    policy: cedar_policy::Policy,
    meta: PolicyMeta,
}

/// The policies of one file with their final ids and annotations; problems go to `errors`.
fn parse_file(path: &Path, text: &str, errors: &mut Vec<PolicyError>) -> Vec<Parsed> {
    let set: cedar_policy::PolicySet = match text.parse() {
        Ok(set) => set,
        Err(e) => {
            let e: cedar_policy::ParseErrors = e;
            for err in e.iter() {
                let offset = first_offset(err).unwrap_or(0);
                errors.push(PolicyError::Syntax {
                    at: Location::of(path.to_path_buf(), text, offset),
                    reason: with_help(err),
                });
            }
            return Vec::new();
        }
    };
    if set.templates().next().is_some() {
        errors.push(PolicyError::Template {
            path: path.to_path_buf(),
        });
        return Vec::new();
    }
    // Cedar names the policies of a parsed text `policy0`, `policy1`, … in file order.
    let mut policies: Vec<(usize, &cedar_policy::Policy)> = set
        .policies()
        .map(|p| {
            let index = p
                .id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (index, p)
        })
        .collect();
    policies.sort_by_key(|(i, _)| *i);
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut cursor = 0;
    let mut out = Vec::new();
    for (index, policy) in policies {
        let offset = policy
            .to_cedar()
            .and_then(|src| text.get(cursor..)?.find(&src).map(|at| cursor + at))
            .unwrap_or(cursor);
        cursor = offset + 1;
        let at = Location::of(path.to_path_buf(), text, offset);
        let default_id = format!("{file_name}:{index}");
        match annotations(policy, &default_id) {
            Ok((id, approval, reason)) => out.push(Parsed {
                policy: policy.new_id(PolicyId::new(&id)),
                meta: PolicyMeta {
                    effect: policy.effect(),
                    approval,
                    reason,
                    at,
                },
            }),
            Err(reason) => errors.push(PolicyError::Annotation {
                at,
                id: default_id,
                reason,
            }),
        }
    }
    out
}

/// (id, approval required, public reason) from a policy's annotations.
fn annotations(
    policy: &cedar_policy::Policy,
    default_id: &str,
) -> Result<(String, bool, Option<String>), String> {
    let id = match policy.annotation("id") {
        None => default_id.to_owned(),
        Some(id) if id.trim().is_empty() || id.contains(',') => {
            return Err(format!("@id({id:?}) must be non-empty and without commas"));
        }
        Some(id) => id.to_owned(),
    };
    let approval = match policy.annotation("approval") {
        None => false,
        Some("required") if policy.effect() == Effect::Permit => true,
        Some("required") => {
            return Err("@approval applies to permit policies only".into());
        }
        Some(other) => {
            return Err(format!(
                "@approval({other:?}) is not understood; the only value is \"required\""
            ));
        }
    };
    let reason = match policy.annotation("reason") {
        None => None,
        Some(r) if r.trim().is_empty() => return Err("@reason(\"\") is empty".into()),
        Some(r) => Some(r.to_owned()),
    };
    Ok((id, approval, reason))
}

/// The start of a diagnostic's first labelled span.
fn first_offset(d: &dyn Diagnostic) -> Option<usize> {
    d.labels()?.next().map(|l| l.offset())
}

/// The message plus Cedar's hint, if it has one.
fn with_help(d: &dyn Diagnostic) -> String {
    match d.help() {
        Some(help) => format!("{d} ({help})"),
        None => d.to_string(),
    }
}

/// An "attribute not found" error for `context.args.<x>`: expected, since arguments are
/// whatever the tool takes (the schema declares `args` open; strict validation still reports
/// the access, so it is dropped here and checked at evaluation).
fn is_open_args_access(e: &ValidationError, text: Option<&str>, offset: Option<usize>) -> bool {
    if !matches!(e, ValidationError::UnsafeAttributeAccess(_)) {
        return false;
    }
    let (Some(text), Some(offset)) = (text, offset) else {
        return false;
    };
    let Some(rest) = text.get(offset..) else {
        return false;
    };
    let compact: String = rest
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(16)
        .collect();
    compact.starts_with("context.args.")
        || compact.starts_with("context.args[")
        || compact.starts_with("context[\"args\"]")
}
