//! Proofs handed from one stage to the next. Each has private fields and one constructor in the
//! stage that checks it, so later stages cannot be reached without the earlier ones:
//! [`Authenticated`] (authn.rs) → [`Authorized`] (authorize.rs) → [`Validated`] (validate.rs),
//! and only a `Validated` call can be sent upstream (relay.rs).

pub use portcullis_authn::{AuthMethod, Principal};

/// Made only by the authentication stage.
#[derive(Debug, Clone)]
pub struct Authenticated {
    principal: Principal,
}

impl Authenticated {
    pub(crate) fn assert(principal: Principal) -> Self {
        Self { principal }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Made only by the authorization stage: policy permits this principal this call.
#[derive(Debug)]
pub struct Authorized<T> {
    call: T,
    pub principal: Principal,
    /// The policies that permitted it.
    pub policy_ids: Vec<String>,
}

impl<T> Authorized<T> {
    pub(crate) fn assert(call: T, who: &Authenticated, policy_ids: Vec<String>) -> Self {
        Self {
            call,
            principal: who.principal.clone(),
            policy_ids,
        }
    }

    pub fn call(&self) -> &T {
        &self.call
    }
}

/// Made only by the validation stage: the arguments passed the tool's schema and the
/// operator's rules. The only thing relay.rs accepts.
#[derive(Debug)]
pub struct Validated<T> {
    call: T,
    pub principal: Principal,
    pub policy_ids: Vec<String>,
}

impl<T> Validated<T> {
    pub(crate) fn assert(authorized: Authorized<T>) -> Self {
        Self {
            call: authorized.call,
            principal: authorized.principal,
            policy_ids: authorized.policy_ids,
        }
    }

    pub fn call(&self) -> &T {
        &self.call
    }

    pub fn into_inner(self) -> T {
        self.call
    }
}
