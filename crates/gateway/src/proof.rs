//! Proofs handed from one stage to the next. Each has private fields and one constructor in the
//! stage that checks it, so later stages cannot be reached without the earlier ones.

use std::net::IpAddr;

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No credentials; only where the operator set `dangerous_allow_anonymous`.
    Anonymous,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: String,
    pub auth_method: AuthMethod,
    pub client_ip: Option<IpAddr>,
}

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

/// Made only by the authorization stage: this principal may send this call to this upstream.
#[derive(Debug)]
pub struct Authorized<T> {
    call: T,
    pub principal: Principal,
}

impl<T> Authorized<T> {
    pub(crate) fn assert(call: T, who: &Authenticated) -> Self {
        Self {
            call,
            principal: who.principal.clone(),
        }
    }

    pub fn into_inner(self) -> T {
        self.call
    }
}
