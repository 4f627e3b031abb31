//! The guard stages of the request path (DESIGN §1): what reaches an upstream must be well-formed
//! and inside its bounds; what comes back must be sane, free of secrets, and from the tools that
//! were approved.
//!
//! Every module is a set of pure decision functions (input → verdict with reasons), except where
//! the check is I/O by nature: path rules read the filesystem to follow symlinks, URL rules may
//! resolve DNS names ([`rules::check_resolved`]), and [`pins::PinStore`] writes the store.

pub mod pins;
pub mod redact;
pub mod rules;
pub mod sanitize;
pub mod scan;
pub mod schema;
pub mod set;
pub mod unicode;

pub use set::{GuardConfigError, GuardSet, ToolGuard};
