//! Integration tests of `portcullis-authn`: one binary, one module per concern.
//! (`#[cfg(test)]` lets clippy treat the helpers as test code.)

#[cfg(test)]
mod api_keys;
#[cfg(test)]
mod introspection;
#[cfg(test)]
mod jwt_rules;
#[cfg(test)]
mod minted;
#[cfg(test)]
mod mtls;
#[cfg(test)]
mod oidc_provider;
#[cfg(test)]
mod support;
