//! Integration tests of the audit crate against real SQLite and PostgreSQL stores: one binary,
//! one module per concern. (`#[cfg(test)]` lets clippy treat the helpers as test code.)

#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod encryption;
#[cfg(test)]
mod keys;
#[cfg(test)]
mod retention;
#[cfg(test)]
mod support;
#[cfg(test)]
mod tamper;
