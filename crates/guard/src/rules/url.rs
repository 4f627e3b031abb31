//! URL arguments: `allow_hosts` and `deny_private` (SSRF protection).
//!
//! The value is parsed once with the WHATWG URL parser (the `url` crate), which turns the IPv4
//! spellings servers and libraries accept — `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` — into the
//! one address they mean, so the check sees the address the upstream will connect to. Text that
//! parsers disagree about (backslashes, whitespace, control characters, credentials before `@`)
//! is refused outright instead of guessed at.
//!
//! A host name that *resolves* to a private address cannot be caught from the text alone:
//! [`UrlRule::check`] judges the literal, and [`super::check_resolved`] checks what a name resolves to
//! (I/O, done by the gateway just before the call). The upstream resolves the name again when it
//! connects, so DNS rebinding remains possible; the sandbox's network allow-list is the backstop.

use std::net::IpAddr;

use url::{Host, Url};

use super::ip::{NonPublic, non_public};

/// A compiled `allow_hosts` / `deny_private` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlRule {
    /// Lowercase patterns: `*` (any host), `*.example.com` (subdomains, not the apex), an exact
    /// name or an IP address. Empty: any host.
    pub allow_hosts: Vec<String>,
    pub deny_private: bool,
}

/// Why a URL was refused. `Display` is the public message (without the argument's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlViolation {
    #[error("is not a valid URL")]
    Invalid,
    #[error("contains characters URL parsers disagree about (backslash, whitespace or control)")]
    Ambiguous,
    #[error("scheme {0:?} is not allowed (only http and https)")]
    Scheme(String),
    #[error("must not carry credentials before '@'")]
    Userinfo,
    #[error("has no host")]
    NoHost,
    #[error("host {0:?} is not allowed")]
    HostNotAllowed(String),
    #[error("host {host:?} is a {} address", why.as_str())]
    NonPublic { host: String, why: NonPublic },
    #[error("host {0:?} names the local machine or a metadata service")]
    LocalName(String),
    #[error("host {host:?} resolves to a {} address ({ip})", why.as_str())]
    ResolvesNonPublic {
        host: String,
        ip: IpAddr,
        why: NonPublic,
    },
    #[error("host {0:?} could not be resolved")]
    Unresolvable(String),
}

/// Host names that always mean this machine or a metadata service, whatever DNS says.
fn is_local_name(host: &str) -> bool {
    const NAMES: [&str; 8] = [
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    ];
    NAMES.contains(&host) || host.ends_with(".localhost")
}

/// The parsed URL's host, as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedHost {
    /// A literal address (already judged).
    Ip(IpAddr),
    /// A DNS name (lowercase, ASCII, no trailing dot) that [`super::check_resolved`] may still check.
    Name(String),
}

impl UrlRule {
    /// Judges the literal URL. On success returns its host (and port), so a DNS name can be
    /// resolved and judged again when `deny_private` is set.
    pub fn check(&self, text: &str) -> Result<(CheckedHost, u16), UrlViolation> {
        if text
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
        {
            return Err(UrlViolation::Ambiguous);
        }
        let url = Url::parse(text).map_err(|_| UrlViolation::Invalid)?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(UrlViolation::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlViolation::Userinfo);
        }
        // The raw authority may still hold an '@' the parser swallowed (`http://@evil`).
        if authority(text).contains('@') {
            return Err(UrlViolation::Userinfo);
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let host = match url.host() {
            None => return Err(UrlViolation::NoHost),
            Some(Host::Ipv4(v4)) => CheckedHost::Ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => CheckedHost::Ip(IpAddr::V6(v6)),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() {
                    return Err(UrlViolation::NoHost);
                }
                CheckedHost::Name(name)
            }
        };
        let shown = match &host {
            CheckedHost::Ip(ip) => ip.to_string(),
            CheckedHost::Name(name) => name.clone(),
        };
        if !self.allow_hosts.is_empty() && !self.allow_hosts.iter().any(|p| host_matches(p, &host))
        {
            return Err(UrlViolation::HostNotAllowed(shown));
        }
        if self.deny_private {
            match &host {
                CheckedHost::Ip(ip) => {
                    if let Some(why) = non_public(*ip) {
                        return Err(UrlViolation::NonPublic { host: shown, why });
                    }
                }
                CheckedHost::Name(name) => {
                    if is_local_name(name) {
                        return Err(UrlViolation::LocalName(shown));
                    }
                }
            }
        }
        Ok((host, port))
    }
}

/// The authority part of a URL's text (between `//` and the next `/`, `?` or `#`).
fn authority(text: &str) -> &str {
    let rest = text.split_once("//").map_or("", |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Does `pattern` (from `allow_hosts`) admit `host`?
fn host_matches(pattern: &str, host: &CheckedHost) -> bool {
    if pattern == "*" {
        return true;
    }
    match host {
        CheckedHost::Ip(ip) => pattern
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|p| canonical_ip(p) == canonical_ip(*ip)),
        CheckedHost::Name(name) => match pattern.strip_prefix("*.") {
            Some(domain) => name
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => name == pattern.trim_end_matches('.'),
        },
    }
}

/// IPv4-mapped IPv6 addresses compare equal to the IPv4 address they carry.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
