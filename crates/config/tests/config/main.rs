//! Integration tests of `portcullis-config`: one binary, one module per concern.
//! (`#[cfg(test)]` lets clippy treat the helpers as test code.)

#[cfg(test)]
mod full;
#[cfg(test)]
mod invalid;
#[cfg(test)]
mod paths;
#[cfg(test)]
mod secrets;
#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod support;
#[cfg(test)]
mod valid;
