//! Transports: SSE framing and the clients the gateway uses to reach upstream MCP servers.
//!
//! **Invariant:** an upstream connection belongs to the gateway. Request ids and progress tokens
//! are assigned here, never taken from a client, so calls from many clients can share one
//! upstream session without colliding; nothing a client sent as credentials is forwarded.

pub mod sse;
pub mod upstream;

pub use upstream::{
    Call, ClientContext, Delivery, Event, Health, ResultStream, ServerRequest, StreamEnd,
    Streaming, Upstream, UpstreamError,
};
