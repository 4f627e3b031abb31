//! The I/O half of `deny_private`: a DNS name is resolved and every address it resolves to must
//! be public. [`super::ArgRules::check`] returns the names to resolve; the gateway calls
//! [`check_resolved`] with a [`Resolver`] just before forwarding the call.

use std::io;
use std::net::IpAddr;

use async_trait::async_trait;

use super::ip::non_public;
use super::url::UrlViolation;
use super::{ArgViolation, PendingHost, ValueViolation};

/// Resolves host names (the system resolver in production, a table in tests).
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, port)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// Resolves each pending host; refuses the call when any address is not public, or when a name
/// does not resolve at all (the upstream could not reach it either, and an error hides nothing).
pub async fn check_resolved(
    pending: &[PendingHost],
    resolver: &dyn Resolver,
) -> Result<(), ArgViolation> {
    for p in pending {
        let refuse = |violation: UrlViolation| ArgViolation {
            argument: p.argument.clone(),
            violation: ValueViolation::Url(violation),
        };
        let addrs = resolver
            .resolve(&p.host, p.port)
            .await
            .map_err(|_| refuse(UrlViolation::Unresolvable(p.host.clone())))?;
        if addrs.is_empty() {
            return Err(refuse(UrlViolation::Unresolvable(p.host.clone())));
        }
        for ip in addrs {
            if let Some(why) = non_public(ip) {
                return Err(refuse(UrlViolation::ResolvesNonPublic {
                    host: p.host.clone(),
                    ip,
                    why,
                }));
            }
        }
    }
    Ok(())
}
