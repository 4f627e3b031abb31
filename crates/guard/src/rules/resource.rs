//! `[upstream.resources]`: the path and URL rules applied to `resources/read` URIs.
//!
//! `file:` URIs are judged by the path rule (`within`) on their decoded path; `http:`/`https:`
//! URIs by the URL rule (`allow_hosts`, `deny_private`). A scheme family without a configured
//! rule is not constrained by it (custom schemes like `notes://` are the upstream's own
//! namespace). `pattern`, `enum` and `max_length` apply to the whole URI text.

use serde_json::Value;

use super::path::PathViolation;
use super::{ArgViolation, PendingHost, ValueRule, ValueViolation};

fn refuse(violation: ValueViolation) -> ArgViolation {
    ArgViolation {
        argument: "uri".to_owned(),
        violation,
    }
}

/// Checks a `resources/read` URI. On success, returns the DNS name to resolve (URL rule with
/// `deny_private`), like [`super::ArgRules::check`].
pub fn check_resource_uri(
    uri: &str,
    rule: &ValueRule,
    principal: &str,
) -> Result<Option<PendingHost>, ArgViolation> {
    let text_rule = ValueRule {
        path: None,
        url: None,
        ..rule.clone()
    };
    text_rule
        .check(&Value::String(uri.to_owned()), principal)
        .map_err(refuse)?;
    let scheme = uri
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "file" => {
            if let Some(path_rule) = &rule.path {
                let path = file_path(uri).map_err(|v| refuse(ValueViolation::Path(v)))?;
                path_rule
                    .check(&path, principal)
                    .map_err(|v| refuse(ValueViolation::Path(v)))?;
            }
            Ok(None)
        }
        "http" | "https" => match &rule.url {
            Some(url_rule) => {
                let (host, port) = url_rule
                    .check(uri)
                    .map_err(|v| refuse(ValueViolation::Url(v)))?;
                Ok(match (url_rule.deny_private, host) {
                    (true, super::CheckedHost::Name(host)) => Some(PendingHost {
                        argument: "uri".to_owned(),
                        host,
                        port,
                    }),
                    _ => None,
                })
            }
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The path of a `file:` URI, percent-decoded once. A host other than `localhost` (a UNC share)
/// and text URL parsers disagree about are refused.
fn file_path(uri: &str) -> Result<String, PathViolation> {
    if uri.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(PathViolation::Windows);
    }
    let url = url::Url::parse(uri).map_err(|_| PathViolation::Unreadable)?;
    match url.host_str() {
        None | Some("") | Some("localhost") => {}
        Some(_) => return Err(PathViolation::Windows),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(PathViolation::Unreadable);
    }
    let decoded = percent_encoding::percent_decode_str(url.path())
        .decode_utf8()
        .map_err(|_| PathViolation::Unreadable)?;
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use portcullis_config::ArgRule;

    use super::*;

    #[test]
    fn resource_uri_table() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        let r = root.display().to_string();
        let rule = ValueRule::compile(&ArgRule {
            within: vec![root.clone()],
            allow_hosts: vec!["*.example.com".into()],
            deny_private: true,
            max_length: Some(300),
            ..ArgRule::default()
        })
        .unwrap();
        let rows: Vec<(String, Result<(), &str>)> = vec![
            (format!("file://{r}/a.txt"), Ok(())),
            (format!("file://localhost{r}/a.txt"), Ok(())),
            (format!("file://{r}/new%20file.txt"), Ok(())),
            (
                "file:///etc/passwd".into(),
                Err("outside the allowed directories"),
            ),
            (
                format!("file://{r}/../x"),
                Err("outside the allowed directories"),
            ),
            (
                format!("file://{r}/%2e%2e/x"),
                Err("outside the allowed directories"),
            ),
            (format!("file://{r}/%252e%252e/x"), Err("percent-encoded")),
            (format!("file://{r}/a%00.txt"), Err("control characters")),
            (format!("file://{r}/a.txt%5c..%5c..%5cx"), Err("Windows")),
            (format!("file://{r}\\..\\x"), Err("Windows")),
            ("file://server/share/x".into(), Err("Windows")),
            (
                "FILE:///etc/shadow".into(),
                Err("outside the allowed directories"),
            ),
            ("https://docs.example.com/a".into(), Ok(())),
            ("https://evil.net/a".into(), Err("not allowed")),
            ("http://169.254.169.254/latest".into(), Err("not allowed")),
            ("http://a.example.com@127.0.0.1/".into(), Err("credentials")),
            ("notes://1".into(), Ok(())),
            (
                format!("notes://{}", "x".repeat(300)),
                Err("at most 300 characters"),
            ),
        ];
        for (uri, want) in rows {
            let got = check_resource_uri(&uri, &rule, "p")
                .map(|_| ())
                .map_err(|e| e.to_string());
            match want {
                Ok(()) => assert!(got.is_ok(), "{uri}: {got:?}"),
                Err(text) => {
                    let err = got.unwrap_err();
                    assert!(err.starts_with("argument \"uri\" "), "{err}");
                    assert!(err.contains(text), "{uri}: {err}");
                }
            }
        }
        let pending = check_resource_uri("https://api.example.com/x", &rule, "p").unwrap();
        assert_eq!(pending.map(|p| p.host), Some("api.example.com".to_owned()));
    }
}
