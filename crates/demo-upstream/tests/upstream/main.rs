//! Integration tests of `portcullis-demo-upstream` over real transports: one binary, one
//! module per transport. (`#[cfg(test)]` lets clippy treat the helpers as test code.)

#[cfg(test)]
mod http;
#[cfg(test)]
mod stdio;
