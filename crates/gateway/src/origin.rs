//! DNS-rebinding protection: which `Origin` and `Host` headers a request may carry.
//!
//! A browser page on `evil.example` whose name resolves to 127.0.0.1 reaches a loopback
//! listener with `Host: evil.example` and `Origin: http://evil.example`. So:
//! - an `Origin` is accepted when it is listed in `listen.allowed_origins`, or when it is the
//!   listener's own origin on a loopback address (`http://127.0.0.1:8080`, `http://localhost:8080`,
//!   `http://[::1]:8080`: a page the gateway itself served); requests without `Origin`
//!   (non-browser clients) pass;
//! - on a loopback listener, the `Host` header must name a loopback host (`localhost`,
//!   `127.0.0.1`, `[::1]`, any port) or the host of an allowed origin.

use std::net::SocketAddr;

use http::HeaderMap;
use http::header;

use crate::error::GatewayError;

#[derive(Debug, Clone)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    listen: SocketAddr,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

impl OriginPolicy {
    pub fn new(allowed: Vec<String>, listen: SocketAddr) -> Self {
        Self { allowed, listen }
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), GatewayError> {
        let loopback = self.listen.ip().is_loopback();
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin, loopback) {
                return Err(GatewayError::OriginRejected(clip(origin)));
            }
        }
        if loopback && let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !self.host_allowed(host) {
                return Err(GatewayError::HostRejected(clip(host)));
            }
        }
        Ok(())
    }

    fn origin_allowed(&self, origin: &str, loopback: bool) -> bool {
        if self.allowed.iter().any(|o| o == origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        let (host, port) = split_authority(authority);
        loopback
            && LOOPBACK_NAMES.contains(&host.to_ascii_lowercase().as_str())
            && port == Some(self.listen.port())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let (name, _) = split_authority(host);
        let name = name.to_ascii_lowercase();
        LOOPBACK_NAMES.contains(&name.as_str())
            || self.allowed.iter().any(|o| {
                let authority = o.split_once("://").map_or(o.as_str(), |(_, a)| a);
                split_authority(authority).0.eq_ignore_ascii_case(&name)
            })
    }
}

/// `host:port` / `[v6]:port` / `host` → (host, port).
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let authority = authority.trim_end_matches('/');
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let port = authority[end + 1..]
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok());
                (&authority[..=end], port)
            }
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (authority, None),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        if let Some(v) = host {
            h.insert(header::HOST, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_and_host_table() {
        let local = OriginPolicy::new(
            vec!["http://localhost:3000".into()],
            "127.0.0.1:8080".parse().unwrap(),
        );
        let public = OriginPolicy::new(vec![], "0.0.0.0:8080".parse().unwrap());
        let rows: &[(&OriginPolicy, Option<&str>, Option<&str>, bool)] = &[
            // Non-browser clients send no Origin.
            (&local, None, Some("127.0.0.1:8080"), true),
            (&local, None, None, true),
            // The listener's own origin, by any loopback name.
            (
                &local,
                Some("http://127.0.0.1:8080"),
                Some("127.0.0.1:8080"),
                true,
            ),
            (
                &local,
                Some("http://localhost:8080"),
                Some("localhost:8080"),
                true,
            ),
            (&local, Some("http://[::1]:8080"), Some("[::1]:8080"), true),
            // Listed origins.
            (
                &local,
                Some("http://localhost:3000"),
                Some("localhost:8080"),
                true,
            ),
            // Another local port is another origin.
            (
                &local,
                Some("http://localhost:9999"),
                Some("localhost:8080"),
                false,
            ),
            // DNS rebinding: foreign name for a loopback address.
            (
                &local,
                Some("http://evil.example.com"),
                Some("evil.example.com"),
                false,
            ),
            (&local, None, Some("evil.example.com:8080"), false),
            (&local, Some("null"), None, false),
            (&local, Some("http://127.0.0.1:8080.evil.com"), None, false),
            // A public listener does not judge Host (load balancers), only Origin.
            (&public, None, Some("gw.example.com"), true),
            (&public, Some("http://127.0.0.1:8080"), None, false),
            (&public, Some("https://gw.example.com"), None, false),
        ];
        for (i, (policy, origin, host, ok)) in rows.iter().enumerate() {
            let got = policy.check(&headers(*origin, *host));
            assert_eq!(got.is_ok(), *ok, "row {i}: {origin:?} {host:?} -> {got:?}");
        }
    }
}
