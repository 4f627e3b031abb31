//! A [`Request`] as Cedar sees it: principal, action and resource entities plus the context.
//! This is the per-decision cost, so it builds only what policies can read: the principal (with
//! its roles as parents) and the target (with its upstream as parent). Role and upstream
//! entities carry no attributes and need not be in the store for `in` to work.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use cedar_policy::{Context, Entities, Entity, EntityUid, RestrictedExpression};

use crate::args;
use crate::model::{Action, Request, Subject, SubjectKind, Target};
use crate::schema::Names;

/// Whether `context.args` holds the call's arguments or is left unknown (list visibility).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Args<'a> {
    Known(Option<&'a serde_json::Value>),
    Unknown,
}

/// The context attributes a policy set can read: those named anywhere in its text. Cedar reads
/// a record's attribute only by naming it (`context.hour`, `context["hour"]`, `context has
/// hour`), so an attribute no text names cannot change a decision and is not built. A text that
/// uses `context` any other way (a comparison of the whole record, or just a comment) gets all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ContextKeys(u8);

impl ContextKeys {
    const NAMES: [&str; 7] = [
        "args",
        "hour",
        "weekday",
        "protocol_version",
        "auth_method",
        "scopes",
        "client_ip",
    ];
    pub(crate) const ALL: ContextKeys = ContextKeys(0x7f);

    pub(crate) fn read_by<'a>(texts: impl IntoIterator<Item = &'a str>) -> ContextKeys {
        let mut keys = ContextKeys::default();
        for text in texts {
            if reads_whole_context(text) {
                return ContextKeys::ALL;
            }
            for (i, name) in Self::NAMES.iter().enumerate() {
                if text.contains(name) {
                    keys.0 |= 1 << i;
                }
            }
        }
        keys
    }

    fn has(self, name: &str) -> bool {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// `context` followed by anything but an attribute access.
fn reads_whole_context(text: &str) -> bool {
    text.match_indices("context").any(|(at, word)| {
        let rest = text[at + word.len()..].trim_start();
        !(rest.starts_with('.') || rest.starts_with('[') || rest.starts_with("has "))
    })
}

/// The principal's entity, reusable across the targets of one list page.
pub(crate) struct PreparedSubject {
    pub uid: EntityUid,
    pub roles: Vec<EntityUid>,
    entity: Entity,
}

/// The entity store of one (principal, target) pair, with the facts the scope index needs.
/// It depends on nothing else (not the arguments, the time or the policies), so decisions
/// share it: see [`Stores`].
pub(crate) struct Store {
    pub principal: EntityUid,
    pub roles: Vec<EntityUid>,
    pub resource: EntityUid,
    pub upstream: Option<EntityUid>,
    pub entities: Entities,
    /// Per (policy set, action): Cedar's response when it does not depend on the request's
    /// context, or `None` when it does. See [`crate::decide`].
    remembered: RwLock<Vec<Remembered>>,
}

/// A policy set's generation, an action, and Cedar's response for them if it holds for every
/// context.
type Remembered = (u64, EntityUid, Option<Arc<cedar_policy::Response>>);

impl Store {
    /// Most (policy set, action) pairs remembered; emptied when full.
    const REMEMBERED: usize = 16;

    /// What [`Store::remember`] kept for this policy set and action: `Some(None)` means the
    /// response depends on the context.
    pub(crate) fn remembered(
        &self,
        generation: u64,
        action: &EntityUid,
    ) -> Option<Option<Arc<cedar_policy::Response>>> {
        let remembered = self.remembered.read().ok()?;
        remembered
            .iter()
            .find(|(g, a, _)| *g == generation && a == action)
            .map(|(_, _, r)| r.clone())
    }

    pub(crate) fn remember(
        &self,
        generation: u64,
        action: &EntityUid,
        response: Option<Arc<cedar_policy::Response>>,
    ) {
        if let Ok(mut remembered) = self.remembered.write() {
            if remembered.len() >= Self::REMEMBERED {
                remembered.clear();
            }
            remembered.push((generation, action.clone(), response));
        }
    }
}

/// A request ready for Cedar.
pub(crate) struct Prepared {
    pub request: cedar_policy::Request,
    pub action: EntityUid,
    pub store: Arc<Store>,
}

pub(crate) fn subject(names: &Names, s: &Subject) -> Result<PreparedSubject, String> {
    let ty = match s.kind {
        SubjectKind::User => &names.user,
        SubjectKind::Service => &names.service,
    };
    let uid = Names::uid(ty, &s.id);
    let mut attrs = HashMap::from([
        (
            "id".to_owned(),
            RestrictedExpression::new_string(s.id.clone()),
        ),
        (
            "auth_method".to_owned(),
            RestrictedExpression::new_string(s.auth_method.clone()),
        ),
        ("scopes".to_owned(), strings(&s.scopes)),
    ]);
    if let Some(ip) = s.client_ip {
        attrs.insert("client_ip".to_owned(), ip_expr(ip));
    }
    let roles: Vec<EntityUid> = s.roles.iter().map(|r| Names::uid(&names.role, r)).collect();
    let parents: HashSet<EntityUid> = roles.iter().cloned().collect();
    let entity = Entity::new(uid.clone(), attrs, parents).map_err(|e| format!("principal: {e}"))?;
    Ok(PreparedSubject { uid, roles, entity })
}

/// The Cedar request for `req`. With `who`, the principal prepared by [`subject`] (a list page:
/// many targets, each seen once) and a store built for this request only; without, the store
/// comes from [`Stores`] (a call: the same caller and tool again and again).
pub(crate) fn request(
    names: &Names,
    who: Option<&PreparedSubject>,
    req: &Request<'_>,
    args_mode: Args<'_>,
    keys: ContextKeys,
) -> Result<Prepared, String> {
    let parties = parties(names, who, req)?;
    let request = parties.cedar_request(req, args_mode, keys)?;
    let Parties { action, store } = parties;
    Ok(Prepared {
        request,
        action,
        store,
    })
}

/// A request's action and its (principal, target) entity store: all of its Cedar request but
/// the context, which only a full evaluation reads (see [`crate::decide`]).
pub(crate) struct Parties {
    pub action: EntityUid,
    pub store: Arc<Store>,
}

/// [`request`] without the context.
pub(crate) fn parties(
    names: &Names,
    who: Option<&PreparedSubject>,
    req: &Request<'_>,
) -> Result<Parties, String> {
    let action = names
        .action(req.action)
        .ok_or_else(|| format!("action {} is not in the schema", req.action))?
        .clone();
    check_fits(req.action, req.target)?;
    let store = match who {
        Some(who) => Arc::new(store(names, who, req.target)?),
        None => STORES.get_or_build(req.subject, req.target, || {
            store(names, &subject(names, req.subject)?, req.target)
        })?,
    };
    Ok(Parties { action, store })
}

impl Parties {
    /// The Cedar request of these parties with `req`'s context.
    pub(crate) fn cedar_request(
        &self,
        req: &Request<'_>,
        args_mode: Args<'_>,
        keys: ContextKeys,
    ) -> Result<cedar_policy::Request, String> {
        cedar_policy::Request::new(
            self.store.principal.clone(),
            self.action.clone(),
            self.store.resource.clone(),
            context(req, args_mode, keys)?,
            None,
        )
        .map_err(|e| format!("request: {e}"))
    }
}

/// Fails exactly when building `req`'s context (with known arguments) would, without building
/// it: a request refused for its context is refused whether or not a policy reads it.
pub(crate) fn check_context(req: &Request<'_>, keys: ContextKeys) -> Result<(), String> {
    if keys.has("args") {
        args::check_object(req.args).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn store(names: &Names, who: &PreparedSubject, target: &Target) -> Result<Store, String> {
    let (resource, entity) = self::target(names, target)?;
    let mut entities = vec![who.entity.clone()];
    entities.extend(entity);
    let entities = Entities::from_entities(entities, None).map_err(|e| format!("entities: {e}"))?;
    let upstream = match target {
        Target::Upstream(_) => None,
        t => Some(Names::uid(&names.upstream, t.upstream())),
    };
    Ok(Store {
        principal: who.uid.clone(),
        roles: who.roles.clone(),
        resource,
        upstream,
        entities,
        remembered: RwLock::default(),
    })
}

/// Entity stores of recent (principal, target) pairs. Building one (attribute evaluation, the
/// transitive closure of parents) was most of a decision's cost. Bounded: emptied when full.
struct Stores {
    hasher: RandomState,
    built: Mutex<HashMap<u64, Cached>>,
}

struct Cached {
    subject: Subject,
    target: Target,
    store: Arc<Store>,
}

static STORES: LazyLock<Stores> = LazyLock::new(|| Stores {
    hasher: RandomState::new(),
    built: Mutex::default(),
});

impl Stores {
    const MAX: usize = 4096;

    fn get_or_build(
        &self,
        subject: &Subject,
        target: &Target,
        build: impl FnOnce() -> Result<Store, String>,
    ) -> Result<Arc<Store>, String> {
        let key = self.hasher.hash_one((subject, target));
        let hit = |c: &Cached| c.subject == *subject && c.target == *target;
        if let Ok(built) = self.built.lock()
            && let Some(cached) = built.get(&key).filter(|c| hit(c))
        {
            return Ok(Arc::clone(&cached.store));
        }
        let store = Arc::new(build()?);
        if let Ok(mut built) = self.built.lock() {
            if built.len() >= Self::MAX {
                built.clear();
            }
            built.insert(
                key,
                Cached {
                    subject: subject.clone(),
                    target: target.clone(),
                    store: Arc::clone(&store),
                },
            );
        }
        Ok(store)
    }
}

/// Actions apply to one kind of target each (as the schema says); anything else is refused
/// before Cedar sees it.
fn check_fits(action: Action, target: &Target) -> Result<(), String> {
    let fits = match action {
        Action::CallTool => matches!(target, Target::Tool(_)),
        Action::ReadResource | Action::Subscribe => matches!(target, Target::Resource { .. }),
        Action::GetPrompt => matches!(target, Target::Prompt { .. }),
        Action::Complete => matches!(target, Target::Prompt { .. } | Target::Resource { .. }),
        Action::ListTools | Action::ListResources | Action::ListPrompts => {
            matches!(target, Target::Upstream(_))
        }
    };
    if fits {
        Ok(())
    } else {
        Err(format!("{action} does not apply to {target:?}"))
    }
}

fn target(names: &Names, t: &Target) -> Result<(EntityUid, Option<Entity>), String> {
    let upstream = |name: &str| HashSet::from([Names::uid(&names.upstream, name)]);
    let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
    let (uid, attrs, parents) = match t {
        Target::Upstream(name) => return Ok((Names::uid(&names.upstream, name), None)),
        Target::Tool(tool) => (
            Names::uid(&names.tool, &tool.name),
            HashMap::from([
                ("upstream".to_owned(), s(&tool.upstream)),
                ("name".to_owned(), s(&tool.name)),
                (
                    "read_only".to_owned(),
                    RestrictedExpression::new_bool(tool.read_only),
                ),
                (
                    "destructive".to_owned(),
                    RestrictedExpression::new_bool(tool.destructive),
                ),
                (
                    "open_world".to_owned(),
                    RestrictedExpression::new_bool(tool.open_world),
                ),
            ]),
            upstream(&tool.upstream),
        ),
        Target::Resource { upstream: up, uri } => (
            Names::uid(&names.resource, &format!("{up}:{uri}")),
            HashMap::from([
                ("upstream".to_owned(), s(up)),
                ("uri".to_owned(), s(uri)),
                ("segments".to_owned(), segments_expr(uri)),
            ]),
            upstream(up),
        ),
        Target::Prompt { upstream: up, name } => (
            Names::uid(&names.prompt, name),
            HashMap::from([("upstream".to_owned(), s(up)), ("name".to_owned(), s(name))]),
            upstream(up),
        ),
    };
    let entity = Entity::new(uid.clone(), attrs, parents).map_err(|e| format!("resource: {e}"))?;
    Ok((uid, Some(entity)))
}

fn context(req: &Request<'_>, args_mode: Args<'_>, keys: ContextKeys) -> Result<Context, String> {
    let s = req.subject;
    let mut pairs = Vec::with_capacity(7);
    let mut add = |name: &str, value: &dyn Fn() -> Result<RestrictedExpression, String>| {
        if keys.has(name) {
            pairs.push((name.to_owned(), value()?));
        }
        Ok::<(), String>(())
    };
    add("args", &|| match args_mode {
        Args::Known(v) => args::args_record(v).map_err(|e| e.to_string()),
        Args::Unknown => Ok(RestrictedExpression::new_unknown("args")),
    })?;
    add("hour", &|| {
        Ok(RestrictedExpression::new_long(i64::from(req.time.hour)))
    })?;
    add("weekday", &|| {
        Ok(RestrictedExpression::new_long(i64::from(req.time.weekday)))
    })?;
    add("protocol_version", &|| {
        Ok(RestrictedExpression::new_string(
            req.protocol_version.to_owned(),
        ))
    })?;
    add("auth_method", &|| {
        Ok(RestrictedExpression::new_string(s.auth_method.clone()))
    })?;
    add("scopes", &|| Ok(strings(&s.scopes)))?;
    if let Some(ip) = s.client_ip {
        add("client_ip", &|| Ok(ip_expr(ip)))?;
    }
    Context::from_pairs(pairs).map_err(|e| format!("context: {e}"))
}

/// `ip("…")` for an address. Cedar parses the extension function's name with its grammar on
/// every `new_ip` (tens of microseconds, more than the rest of a decision), so each address's
/// expression is built once and cloned after (bounded: the cache is emptied when full).
fn ip_expr(ip: IpAddr) -> RestrictedExpression {
    const MAX_ADDRESSES: usize = 4096;
    static BUILT: LazyLock<Mutex<HashMap<IpAddr, RestrictedExpression>>> =
        LazyLock::new(Mutex::default);
    let Ok(mut built) = BUILT.lock() else {
        return RestrictedExpression::new_ip(ip.to_string());
    };
    if let Some(expr) = built.get(&ip) {
        return expr.clone();
    }
    if built.len() >= MAX_ADDRESSES {
        built.clear();
    }
    let expr = RestrictedExpression::new_ip(ip.to_string());
    built.insert(ip, expr.clone());
    expr
}

fn strings(values: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().cloned().map(RestrictedExpression::new_string))
}

fn segments_expr(uri: &str) -> RestrictedExpression {
    RestrictedExpression::new_set(segments(uri).into_iter().filter_map(|(parent, name)| {
        RestrictedExpression::new_record([
            (
                "parent".to_owned(),
                RestrictedExpression::new_string(parent),
            ),
            ("name".to_owned(), RestrictedExpression::new_string(name)),
        ])
        .ok()
    }))
}

/// The (parent, name) steps of a URI's path, for per-principal rules: each non-empty segment
/// with everything before it. Query and fragment are ignored. A URI that could step
/// somewhere else once decoded (`.` or `..` segments, also percent-encoded, encoded `/` or
/// `\`, or a raw `\`) has no steps at all, so no per-principal rule can match it.
pub fn segments(uri: &str) -> Vec<(String, String)> {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let uri = &uri[..end];
    let lower = uri.to_ascii_lowercase();
    if uri.contains('\\') || lower.contains("%2f") || lower.contains("%5c") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (slash, _) in uri.match_indices('/') {
        let parent = &uri[..=slash];
        let rest = &uri[slash + 1..];
        let name = rest.split('/').next().unwrap_or("");
        let decoded = name.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Vec::new();
        }
        if !name.is_empty() {
            out.push((parent.to_owned(), name.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, CallTime, ToolAttrs};

    /// A call's entity store is shared only by requests with the same principal (all of its
    /// facts: roles, scopes, address…) and the same target.
    #[test]
    fn stores_are_shared_per_subject_and_target() {
        let names = Names::get().unwrap();
        let dev = Subject {
            id: "alice".into(),
            roles: vec!["dev".into()],
            auth_method: "api_key".into(),
            client_ip: "10.0.0.1".parse().ok(),
            ..Subject::default()
        };
        let echo = Target::Tool(ToolAttrs::from_annotations(
            "demo",
            "demo__echo",
            None,
            None,
        ));
        let store_of = |subject: &Subject, target: &Target| {
            let req = Request {
                subject,
                action: Action::CallTool,
                target,
                args: None,
                protocol_version: "2026-07-28",
                time: CallTime {
                    hour: 1,
                    weekday: 1,
                },
            };
            request(names, None, &req, Args::Known(None), ContextKeys::ALL)
                .unwrap()
                .store
        };
        let first = store_of(&dev, &echo);
        assert!(Arc::ptr_eq(&first, &store_of(&dev, &echo)));

        let admin = Subject {
            roles: vec!["admin".into()],
            ..dev.clone()
        };
        let other = store_of(&admin, &echo);
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.roles, vec![Names::uid(&names.role, "admin")]);
        let moved = Subject {
            client_ip: "10.0.0.2".parse().ok(),
            ..dev.clone()
        };
        assert!(!Arc::ptr_eq(&first, &store_of(&moved, &echo)));
        let read_only = Target::Tool(ToolAttrs::from_annotations(
            "demo",
            "demo__echo",
            None,
            Some(true),
        ));
        let ro = store_of(&dev, &read_only);
        assert!(!Arc::ptr_eq(&first, &ro));
        assert_eq!(ro.resource, first.resource);
    }

    #[test]
    fn segments_table() {
        let s = |p: &str, n: &str| (p.to_owned(), n.to_owned());
        assert_eq!(
            segments("file:///srv/home/alice/notes.txt"),
            vec![
                s("file:///", "srv"),
                s("file:///srv/", "home"),
                s("file:///srv/home/", "alice"),
                s("file:///srv/home/alice/", "notes.txt"),
            ]
        );
        assert_eq!(
            segments("mem://notes/alice?x=/y#/z"),
            vec![s("mem://", "notes"), s("mem://notes/", "alice")]
        );
        for unsafe_uri in [
            "file:///srv/home/alice/../bob/x",
            "file:///srv/home/alice/%2e%2E/bob",
            "file:///srv/home/./alice",
            "file:///srv/home/alice%2F..%2Fbob",
            "file:///srv/home/alice\\..\\bob",
            "file:///srv/home/alice/%5c",
        ] {
            assert!(segments(unsafe_uri).is_empty(), "{unsafe_uri}");
        }
        assert!(segments("no-slashes").is_empty());
    }
}
