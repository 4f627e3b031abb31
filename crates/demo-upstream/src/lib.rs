//! `portcullis-demo-upstream`: a small, self-contained, dual-era MCP server.
//!
//! It is the example upstream of `portcullis demo` (spawned as `portcullis demo-upstream --root
//! DIR`, speaking stdio) and a fast HTTP upstream for tests and benchmarks. It is written by hand
//! on `serde_json`, independent of the gateway's own MCP parser, so each checks the other.
//!
//! Eras (see `era.rs`): a request carrying `_meta["io.modelcontextprotocol/protocolVersion"]`
//! is served statelessly under 2026-07-28; `initialize` opens a legacy (2025-06-18 / 2025-11-25)
//! scope, which is the stdio process or an HTTP session (`Mcp-Session-Id`).
//!
//! Request path, by file:
//! - `stdio.rs` / `http.rs`: framing, legacy scopes, HTTP header rules (`headers.rs`),
//!   cancellation (a `notifications/cancelled` on stdio, a closed SSE stream over HTTP).
//! - `jsonrpc.rs`: bytes → typed message, or a `-32700`/`-32600`/`-32602` error.
//! - `era.rs`: which era a request is served under.
//! - `server.rs`: method → answer, and the modern result shape.
//! - `tools.rs` (`fetch.rs`, `interactive.rs`), `resources.rs`, `prompts.rs`: the features;
//!   `files.rs` keeps every path inside the served directory; `peer.rs` carries progress and
//!   legacy server-to-client requests back to the client.
//!
//! Invariants: no input makes it panic; a bad stdio line gets an error reply and the loop goes
//! on; nothing but MCP messages is written to stdout.

mod era;
mod fetch;
mod files;
mod headers;
mod http;
mod inflight;
mod interactive;
mod jsonrpc;
mod peer;
mod prompts;
mod resources;
mod server;
mod session;
mod stdio;
mod tools;

pub use http::{router, serve_http};
pub use stdio::{serve_stdio, serve_stream};
