//! The MCP wire model, parsed narrowly.
//!
//! Only the envelope (`jsonrpc`, `id`, `method`) is parsed; `params`, `result` and error `data`
//! stay raw JSON ([`serde_json::value::RawValue`]) so `_meta`, extensions and fields this crate
//! does not know pass through byte for byte. Stages parse the little they need with
//! [`object::RawFields`] (read) or [`object::RawObject`] (change and write back).
//!
//! **Invariant:** nothing in this crate panics on any input; every parser returns a typed error.

pub mod depth;
pub mod error;
pub mod headers;
pub mod jsonrpc;
pub mod method;
pub mod object;
pub mod result_stream;
pub mod version;

pub use error::{ErrorCode, ErrorObject};
pub use jsonrpc::{Id, Message, Notification, Outcome, ParseError, Request, Response, parse};
pub use method::Method;
pub use object::{RawEdit, RawFields, RawObject};
pub use version::{Era, Revision};
