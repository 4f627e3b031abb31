//! The guard stages of the request path (DESIGN §1): what reaches an upstream must be well-formed
//! and inside its bounds; what comes back must be sane, free of secrets, and from the tools that
//! were approved.
//!
//! Every module is a set of pure decision functions (input → verdict with reasons), except where
//! the check is I/O by nature: path rules read the filesystem to follow symlinks, URL rules may
//! resolve DNS names ([`rules::check_resolved`]), and [`pins::PinStore`] writes the store.
//!
//! # How the gateway uses it
//! At start: [`GuardSet::build`] (every rule compiled; `portcullis check` prints its errors) and
//! [`pins::PinStore::open`].
//!
//! When an upstream's lists are fetched (and on `notifications/*/list_changed`):
//! 1. [`pins::PinStore::compare`] with the [`pins::Definition`]s — changed ones are blocked
//!    (hidden from lists, calls refused) while `pin_tools` is on;
//! 2. [`scan::scan`] — with `scan_tools` on, [`scan::blocks`] under `scan_action` hides them too;
//! 3. [`schema::SchemaCache::get`] per tool — a schema that does not compile makes the tool
//!    uncallable (fail closed).
//!
//! On `tools/call`: [`schema::check_args`] (→ `-32602` with [`schema::Violation`]'s text), then
//! [`GuardSet::check_args`] (→ `-32602` with [`rules::ArgViolation`]'s text), then
//! [`rules::check_resolved`] for the returned DNS names. On `resources/read`:
//! [`GuardSet::check_resource_uri`] then [`rules::check_resolved`].
//!
//! On a result: [`schema::check_output`], [`sanitize::sanitize_result`], then
//! [`redact::Redactor::redact_json`] on the result when [`GuardSet::redact_scope`] is `Results`,
//! and always on what is logged or audited.

pub mod pins;
pub mod redact;
pub mod rules;
pub mod sanitize;
pub mod scan;
pub mod schema;
pub mod set;
pub mod unicode;

pub use set::{GuardConfigError, GuardSet, ToolGuard};
