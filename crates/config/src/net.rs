//! Network value syntaxes: http(s) URLs, origins, `host:port`, host patterns.
//!
//! Deliberately small: enough to reject what is wrong at start-up. The HTTP client parses URLs
//! again with its own parser.

use std::net::IpAddr;

use crate::model::HostPort;

/// The parts of an `http://` or `https://` URL that validation looks at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HttpUrl<'a> {
    pub https: bool,
    /// Without IPv6 brackets.
    pub host: &'a str,
    /// `user[:password]@` present.
    pub userinfo: bool,
    /// Anything after the authority (`/mcp`, `?x`), possibly empty.
    pub rest: &'a str,
}

impl HttpUrl<'_> {
    pub fn is_loopback(&self) -> bool {
        is_loopback(self.host)
    }
}

pub(crate) fn parse_http_url(text: &str) -> Result<HttpUrl<'_>, String> {
    if text.chars().any(char::is_whitespace) {
        return Err(format!("invalid URL {text:?}: contains whitespace"));
    }
    let Some((scheme, after)) = text.split_once("://") else {
        return Err(format!(
            "invalid URL {text:?}: expected http:// or https://"
        ));
    };
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => {
            return Err(format!(
                "invalid URL {text:?}: expected http:// or https://"
            ));
        }
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((_, host_port)) => (true, host_port),
        None => (false, authority),
    };
    let (host, _port) =
        split_host_port(host_port).map_err(|reason| format!("invalid URL {text:?}: {reason}"))?;
    Ok(HttpUrl {
        https,
        host,
        userinfo,
        rest,
    })
}

/// An exact browser origin, `scheme://host[:port]`, returned in lower case.
pub(crate) fn parse_origin(text: &str) -> Result<String, String> {
    let url = parse_http_url(text)
        .map_err(|_| format!("invalid origin {text:?}: expected scheme://host[:port]"))?;
    if url.userinfo || !url.rest.is_empty() {
        return Err(format!(
            "invalid origin {text:?}: expected scheme://host[:port] without path or trailing slash"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// `"host:port"` or `"[v6]:port"`; the port is required and not 0.
pub(crate) fn parse_host_port(text: &str) -> Result<HostPort, String> {
    match split_host_port(text) {
        Ok((host, Some(port))) => Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        }),
        Ok((_, None)) => Err(format!("invalid address {text:?}: expected host:port")),
        Err(reason) => Err(format!("invalid address {text:?}: {reason}")),
    }
}

/// A host pattern for `allow_hosts`: `example.com`, `*.example.com`, an IP address, or `*`.
pub(crate) fn parse_host_pattern(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    if lower == "*" || name.parse::<IpAddr>().is_ok() || is_hostname(name) {
        Ok(lower)
    } else {
        Err(format!(
            "invalid host pattern {text:?}: expected a host name, *.domain, an IP address or *"
        ))
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]`; brackets are removed from IPv6 hosts.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in host".to_owned())?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 address {host:?}"));
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("unexpected text after ']'".to_owned()),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    if !text.starts_with('[') && host.parse::<IpAddr>().is_err() && !is_hostname(host) {
        return Err(format!("invalid host {host:?}"));
    }
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("invalid port {port:?}")),
            Ok(port) => Some(port),
        },
    };
    Ok((host, port))
}

/// DNS name: dot-separated labels of letters, digits, `-` and `_`, each 1–63 characters.
fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls() {
        let ok = [
            (
                "https://search.internal/mcp",
                true,
                "search.internal",
                false,
            ),
            ("http://127.0.0.1:9000/mcp", false, "127.0.0.1", false),
            ("http://[::1]:8080", false, "::1", false),
            ("HTTPS://a.example?x=1", true, "a.example", false),
            ("https://u:p@a.example/", true, "a.example", true),
        ];
        for (text, https, host, userinfo) in ok {
            let url = parse_http_url(text).unwrap();
            assert_eq!(
                (url.https, url.host, url.userinfo),
                (https, host, userinfo),
                "{text}"
            );
        }
        let bad = [
            "ftp://a.example",
            "a.example/mcp",
            "https://",
            "https://:443/x",
            "https://a.example:0/",
            "https://a.example:99999/",
            "https://[::1/",
            "https://a b/",
            "https://exa$mple.com/",
        ];
        for text in bad {
            assert!(parse_http_url(text).is_err(), "{text}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "::",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn origins_host_ports_and_patterns() {
        assert_eq!(
            parse_origin("http://LOCALHOST:3000").unwrap(),
            "http://localhost:3000"
        );
        assert!(parse_origin("http://localhost:3000/").is_err());
        assert!(parse_origin("*").is_err());
        assert_eq!(
            parse_host_port("api.example:443").unwrap(),
            HostPort {
                host: "api.example".into(),
                port: 443
            }
        );
        assert_eq!(
            parse_host_port("[::1]:53").unwrap(),
            HostPort {
                host: "::1".into(),
                port: 53
            }
        );
        for bad in ["api.example", ":443", "a:0", "a:b", "[::1]", "a b:1"] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
        for good in ["*.Example.com", "example.com", "*", "10.0.0.1", "::1"] {
            assert!(parse_host_pattern(good).is_ok(), "{good}");
        }
        for bad in ["*example.com", "a.*.com", "", "http://a.com"] {
            assert!(parse_host_pattern(bad).is_err(), "{bad}");
        }
    }
}
