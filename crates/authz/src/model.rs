//! What a decision is about: who asks ([`Subject`]), to do what ([`Action`]), to which item
//! ([`Target`]), and when ([`CallTime`]). Plain data; the gateway and `policy test` fill it in.

use std::fmt;
use std::net::IpAddr;

/// Whether the caller is a person or a machine (`Portcullis::User` / `Portcullis::Service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectKind {
    #[default]
    User,
    Service,
}

impl SubjectKind {
    /// The Cedar entity type's local name.
    pub fn cedar_type(self) -> &'static str {
        match self {
            SubjectKind::User => "User",
            SubjectKind::Service => "Service",
        }
    }
}

/// The authenticated caller, as the gateway's authentication stage saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Subject {
    /// Principal id (`alice`, `ci-bot`): the entity id and the `id` attribute.
    pub id: String,
    pub kind: SubjectKind,
    /// Role names; each becomes a parent `Portcullis::Role::"<role>"`.
    pub roles: Vec<String>,
    /// How the caller authenticated (`api_key`, `jwt`, `mtls`, `anonymous`, …).
    pub auth_method: String,
    /// Token scopes (empty for credentials without scopes).
    pub scopes: Vec<String>,
    pub client_ip: Option<IpAddr>,
}

/// The MCP operations a policy decides on (`Portcullis::Action::"<id>"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    CallTool,
    ListTools,
    ReadResource,
    ListResources,
    GetPrompt,
    ListPrompts,
    Complete,
    Subscribe,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::CallTool,
        Action::ListTools,
        Action::ReadResource,
        Action::ListResources,
        Action::GetPrompt,
        Action::ListPrompts,
        Action::Complete,
        Action::Subscribe,
    ];

    /// The Cedar action id.
    pub fn cedar_id(self) -> &'static str {
        match self {
            Action::CallTool => "call_tool",
            Action::ListTools => "list_tools",
            Action::ReadResource => "read_resource",
            Action::ListResources => "list_resources",
            Action::GetPrompt => "get_prompt",
            Action::ListPrompts => "list_prompts",
            Action::Complete => "complete",
            Action::Subscribe => "subscribe",
        }
    }

    /// The action an MCP method needs, if it is one that policies decide on. Methods answered
    /// by the gateway itself (`initialize`, `ping`, …) and `resources/unsubscribe` have none.
    pub fn from_method(method: &str) -> Option<Action> {
        Some(match method {
            "tools/call" => Action::CallTool,
            "tools/list" => Action::ListTools,
            "resources/read" => Action::ReadResource,
            "resources/list" | "resources/templates/list" => Action::ListResources,
            "prompts/get" => Action::GetPrompt,
            "prompts/list" => Action::ListPrompts,
            "completion/complete" => Action::Complete,
            "resources/subscribe" => Action::Subscribe,
            _ => return None,
        })
    }

    /// The action whose (argument-free) permission decides whether an item shows in a list:
    /// tools → `call_tool`, resources and templates → `read_resource`, prompts → `get_prompt`.
    pub fn use_of_listed(self) -> Option<Action> {
        match self {
            Action::ListTools => Some(Action::CallTool),
            Action::ListResources => Some(Action::ReadResource),
            Action::ListPrompts => Some(Action::GetPrompt),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cedar_id())
    }
}

/// A tool's security-relevant hints (`Portcullis::Tool`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolAttrs {
    /// The upstream's configured name (`fs`).
    pub upstream: String,
    /// The exposed, namespaced name (`fs__read_file`): entity id and `name` attribute.
    pub name: String,
    pub read_only: bool,
    pub destructive: bool,
    pub open_world: bool,
}

impl ToolAttrs {
    /// Merges a server's MCP tool `annotations` object (`readOnlyHint`, `destructiveHint`,
    /// `openWorldHint`; the spec's defaults when absent or not booleans: read-only false,
    /// destructive true, open-world true) with the operator's `[[upstream.tool]] read_only`.
    ///
    /// The server's claim never widens what the operator set: `Some(false)` makes the tool
    /// read-write whatever the server says; `Some(true)` makes it read-only and not destructive.
    /// A server that claims read-only is also taken as non-destructive, and its
    /// `destructiveHint` counts only when it does not claim read-only (as the spec says).
    pub fn from_annotations(
        upstream: impl Into<String>,
        name: impl Into<String>,
        annotations: Option<&serde_json::Value>,
        operator_read_only: Option<bool>,
    ) -> ToolAttrs {
        let hint = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .and_then(|v| v.as_bool())
        };
        let server_read_only = hint("readOnlyHint").unwrap_or(false);
        // `destructiveHint` means something only for a tool that is not read-only; a read-only
        // claim the operator overrules leaves the tool at the default (destructive).
        let server_destructive = server_read_only || hint("destructiveHint").unwrap_or(true);
        let open_world = hint("openWorldHint").unwrap_or(true);
        let (read_only, destructive) = match operator_read_only {
            Some(true) => (true, false),
            Some(false) => (false, server_destructive),
            None if server_read_only => (true, false),
            None => (false, server_destructive),
        };
        ToolAttrs {
            upstream: upstream.into(),
            name: name.into(),
            read_only,
            destructive,
            open_world,
        }
    }
}

/// What a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `Portcullis::Tool::"<exposed name>"`.
    Tool(ToolAttrs),
    /// `Portcullis::Resource::"<upstream>:<uri>"`, with the upstream's own URI (the prefix the
    /// gateway adds removed). Also a resource template's `uriTemplate` for `complete` and lists.
    Resource { upstream: String, uri: String },
    /// `Portcullis::Prompt::"<exposed name>"`.
    Prompt { upstream: String, name: String },
    /// `Portcullis::Upstream::"<name>"`: the target of the list actions.
    Upstream(String),
}

impl Target {
    pub fn upstream(&self) -> &str {
        match self {
            Target::Tool(t) => &t.upstream,
            Target::Resource { upstream, .. } | Target::Prompt { upstream, .. } => upstream,
            Target::Upstream(name) => name,
        }
    }
}

/// The wall-clock facts policies see: `context.hour` (0..=23) and `context.weekday`
/// (ISO: 1 = Monday … 7 = Sunday), in the operator's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTime {
    pub hour: u8,
    pub weekday: u8,
}

impl CallTime {
    /// The hour and weekday of `at` in `tz` (pure: the caller supplies the clock).
    pub fn at(at: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> CallTime {
        let local = tz.to_datetime(at);
        CallTime {
            hour: u8::try_from(local.hour()).unwrap_or(0),
            weekday: u8::try_from(local.weekday().to_monday_one_offset()).unwrap_or(1),
        }
    }

    /// Now, in `tz`.
    pub fn now(tz: &jiff::tz::TimeZone) -> CallTime {
        CallTime::at(jiff::Timestamp::now(), tz)
    }
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub subject: &'a Subject,
    pub action: Action,
    pub target: &'a Target,
    /// The call's arguments; `None` (and JSON `null`) is an empty record. See
    /// [`crate::args`] for how JSON becomes Cedar values.
    pub args: Option<&'a serde_json::Value>,
    /// The MCP protocol revision of the client's request (`2025-06-18`, `2026-07-28`).
    pub protocol_version: &'a str,
    pub time: CallTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_attrs_merge_table() {
        // (annotations, operator, read_only, destructive, open_world)
        let rows = [
            (None, None, false, true, true),
            (Some(json!({})), None, false, true, true),
            (Some(json!({"readOnlyHint": true})), None, true, false, true),
            (
                Some(json!({"readOnlyHint": false, "destructiveHint": false})),
                None,
                false,
                false,
                true,
            ),
            (
                Some(json!({"openWorldHint": false})),
                None,
                false,
                true,
                false,
            ),
            // operator read_only = false beats the server's read-only claim
            (
                Some(json!({"readOnlyHint": true, "destructiveHint": false})),
                Some(false),
                false,
                true,
                true,
            ),
            (
                Some(json!({"readOnlyHint": true})),
                Some(false),
                false,
                true,
                true,
            ),
            // operator read_only = true: read-only and not destructive, whatever the server says
            (
                Some(json!({"readOnlyHint": false, "destructiveHint": true})),
                Some(true),
                true,
                false,
                true,
            ),
            (None, Some(true), true, false, true),
            // non-boolean hints are ignored (spec defaults)
            (
                Some(json!({"readOnlyHint": "yes", "destructiveHint": 0})),
                None,
                false,
                true,
                true,
            ),
        ];
        for (i, (ann, op, ro, de, ow)) in rows.into_iter().enumerate() {
            let t = ToolAttrs::from_annotations("fs", "fs__x", ann.as_ref(), op);
            assert_eq!(
                (t.read_only, t.destructive, t.open_world),
                (ro, de, ow),
                "row {i}"
            );
        }
    }

    #[test]
    fn methods_map_to_actions() {
        let rows = [
            ("tools/call", Some(Action::CallTool)),
            ("tools/list", Some(Action::ListTools)),
            ("resources/read", Some(Action::ReadResource)),
            ("resources/list", Some(Action::ListResources)),
            ("resources/templates/list", Some(Action::ListResources)),
            ("prompts/get", Some(Action::GetPrompt)),
            ("prompts/list", Some(Action::ListPrompts)),
            ("completion/complete", Some(Action::Complete)),
            ("resources/subscribe", Some(Action::Subscribe)),
            ("resources/unsubscribe", None),
            ("initialize", None),
            ("ping", None),
        ];
        for (m, a) in rows {
            assert_eq!(Action::from_method(m), a, "{m}");
        }
    }

    #[test]
    fn call_time_uses_the_zone() {
        let at: jiff::Timestamp = "2026-01-05T23:30:00Z".parse().unwrap(); // a Monday
        assert_eq!(
            CallTime::at(at, &jiff::tz::TimeZone::UTC),
            CallTime {
                hour: 23,
                weekday: 1
            }
        );
        let plus2 = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(
            CallTime::at(at, &plus2),
            CallTime {
                hour: 1,
                weekday: 2
            }
        );
        let sunday: jiff::Timestamp = "2026-01-11T12:00:00Z".parse().unwrap();
        assert_eq!(CallTime::at(sunday, &jiff::tz::TimeZone::UTC).weekday, 7);
    }
}
