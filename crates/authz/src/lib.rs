//! Authorization with Cedar (DESIGN §3.3 `[authz]`, §3.4).
//!
//! Nothing is allowed unless a policy allows it. The gateway turns each MCP message into a
//! [`Request`] — who ([`Subject`]), what ([`Action`]), on which item ([`Target`]), with which
//! arguments and at what time ([`CallTime`]) — and asks [`decide`] against one snapshot of the
//! live [`PolicySet`] ([`Authorizer::current`]). Lists are filtered with [`Lister`].
//!
//! # The Cedar model
//!
//! The schema is [`schema::SCHEMA_TEXT`] (`src/portcullis.cedarschema`); every policy is
//! validated against it strictly at load (`portcullis check`), except that `context.args` may
//! have any attribute.
//!
//! | Cedar | from |
//! |---|---|
//! | `principal`: `Portcullis::User::"alice"` / `Portcullis::Service::"ci-bot"`, in `Portcullis::Role::"<role>"` for each role; attributes `id`, `auth_method`, `scopes`, `client_ip` (optional `ipaddr`) | [`Subject`] |
//! | `action`: `Portcullis::Action::"call_tool"`, `list_tools`, `read_resource`, `list_resources`, `get_prompt`, `list_prompts`, `complete`, `subscribe` | [`Action::from_method`] |
//! | `resource`: `Portcullis::Tool::"fs__read_file"` (`upstream`, `name`, `read_only`, `destructive`, `open_world`) | [`Target::Tool`], [`ToolAttrs::from_annotations`] |
//! | `resource`: `Portcullis::Resource::"fs:file:///srv/x"` (`upstream`, `uri`, `segments`) — the upstream's own URI | [`Target::Resource`] |
//! | `resource`: `Portcullis::Prompt::"fs__review"` (`upstream`, `name`) | [`Target::Prompt`] |
//! | `resource`: `Portcullis::Upstream::"fs"` for `list_*`; every tool, resource and prompt is `in` its upstream | [`Target::Upstream`] |
//! | `context`: `args`, `hour`, `weekday` (1 = Monday … 7 = Sunday), `protocol_version`, `auth_method`, `scopes`, `client_ip` (optional) | [`Request`] |
//!
//! Targets per method: `tools/call` → the tool; `resources/read`, `resources/subscribe` → the
//! resource; `prompts/get` → the prompt; `completion/complete` → the prompt or the resource
//! template (`uri` = the `uriTemplate`) named by its `ref`, with `args` = the `argument` object;
//! `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list` → each upstream
//! (`list_*` on `Portcullis::Upstream::"<name>"`; a denied upstream contributes nothing), and
//! then each item is shown only if [`visible`] (tools: `call_tool`; resources and templates:
//! `read_resource`; prompts: `get_prompt`).
//!
//! Arguments become Cedar values as [`args`] describes (floats, nulls and huge integers have a
//! fixed, documented mapping).
//!
//! # Decisions
//!
//! - Default deny: no satisfied permit → [`Verdict::Deny`] with an empty `policy_ids`.
//! - A satisfied `forbid` denies; its `@reason("…")` is the public reason, if it has one.
//! - A `forbid` that fails to evaluate (a missing argument, a type mismatch) denies: Cedar
//!   would skip it and could allow. Write `context.args has path && …` to avoid that.
//! - A satisfied permit annotated `@approval("required")` turns the allow into
//!   [`Verdict::ApprovalRequired`].
//! - Policy ids are the `@id("…")` annotations, else `<file name>:<index>` (0-based, in file
//!   order). Duplicate ids are load errors.
//!
//! # Per-principal resources
//!
//! Cedar cannot build strings from the principal's id, so resources carry their URI's path
//! steps instead: `resource.segments` holds `{ parent, name }` for every segment (`parent` is
//! everything before it), and the principal has `id`. A rule "each user reads only their own
//! home" is then
//!
//! ```cedar
//! permit (principal, action == Portcullis::Action::"read_resource", resource)
//! when { resource.segments.contains({ parent: "file:///srv/home/", name: principal.id }) };
//! ```
//!
//! which matches `file:///srv/home/alice/…` for `alice` only, at exactly that position. URIs
//! with `.`/`..` segments or encoded separators have no segments, so such rules never match
//! them. Tool arguments are kept per tenant by the guard (`within = ["/srv/home/{principal}"]`).
//!
//! # Hot reload
//!
//! [`Authorizer::watch`] reloads on file change; a set is swapped in whole, and a bad edit keeps
//! the previous set (logged with file:line:col, counted in [`Authorizer::reload_failures`]).

pub mod args;
mod decide;
mod entities;
mod error;
mod index;
mod model;
pub mod offline;
mod policies;
pub mod schema;
mod watch;

/// The time library [`CallTime::at`] takes (`jiff::Timestamp`, `jiff::tz::TimeZone`).
pub use jiff;

pub use decide::{Decision, Lister, Verdict, decide, reasons, visible};
pub use entities::segments;
pub use error::{Location, PolicyError, PolicyErrors};
pub use model::{Action, CallTime, Request, Subject, SubjectKind, Target, ToolAttrs};
pub use offline::ToolOverrides;
pub use policies::{PolicySet, check};
pub use watch::{Authorizer, DEBOUNCE, POLL_BUSY, PolicyWatch, WatchError};
