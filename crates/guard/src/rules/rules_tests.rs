use std::collections::HashMap;
use std::path::PathBuf;

use portcullis_config::ArgRule;
use serde_json::json;

use super::*;

fn compiled(rule: ArgRule) -> ValueRule {
    ValueRule::compile(&rule).unwrap()
}

#[test]
fn scalar_rules_table() {
    let range = compiled(ArgRule {
        min: Some(1.0),
        max: Some(100.0),
        ..ArgRule::default()
    });
    let pattern = compiled(ArgRule {
        pattern: Some(r"^[\w ]{1,20}$".into()),
        ..ArgRule::default()
    });
    let unanchored = compiled(ArgRule {
        pattern: Some(r"ok".into()),
        ..ArgRule::default()
    });
    let one_of = compiled(ArgRule {
        r#enum: vec!["asc".into(), "desc".into(), "10".into(), "true".into()],
        ..ArgRule::default()
    });
    let length = compiled(ArgRule {
        max_length: Some(5),
        ..ArgRule::default()
    });
    use ValueViolation as V;
    let rows: Vec<(&ValueRule, serde_json::Value, Result<(), ValueViolation>)> = vec![
        (&range, json!(1), Ok(())),
        (&range, json!(100), Ok(())),
        (&range, json!(50.5), Ok(())),
        (&range, json!(0), Err(V::BelowMin("1".into()))),
        (&range, json!(0.999), Err(V::BelowMin("1".into()))),
        (&range, json!(-5), Err(V::BelowMin("1".into()))),
        (&range, json!(101), Err(V::AboveMax("100".into()))),
        (&range, json!(1e308), Err(V::AboveMax("100".into()))),
        (&range, json!(u64::MAX), Err(V::AboveMax("100".into()))),
        (&range, json!("50"), Err(V::NotNumber)),
        (&range, json!(null), Err(V::NotNumber)),
        (&range, json!([5]), Err(V::NotNumber)),
        (&pattern, json!("hello world"), Ok(())),
        (&pattern, json!("hello; rm -rf /"), Err(V::Pattern)),
        (&pattern, json!(""), Err(V::Pattern)),
        (&pattern, json!("a\nb"), Err(V::Pattern)),
        (&pattern, json!(12), Err(V::NotString)),
        // anchored as written: an unanchored pattern matches anywhere
        (&unanchored, json!("this is ok!"), Ok(())),
        (&unanchored, json!("nope"), Err(V::Pattern)),
        (&one_of, json!("asc"), Ok(())),
        (&one_of, json!("desc"), Ok(())),
        (&one_of, json!(10), Ok(())),
        (&one_of, json!(true), Ok(())),
        (&one_of, json!("ASC"), Err(V::NotAllowed)),
        (&one_of, json!("asc "), Err(V::NotAllowed)),
        (&one_of, json!(11), Err(V::NotAllowed)),
        (&one_of, json!({"a": 1}), Err(V::NotAllowed)),
        (&length, json!("12345"), Ok(())),
        (&length, json!("ééééé"), Ok(())),
        (&length, json!("🦀🦀🦀🦀🦀"), Ok(())),
        (&length, json!("123456"), Err(V::TooLong(5))),
        (&length, json!(123456), Err(V::NotString)),
    ];
    for (rule, value, want) in rows {
        assert_eq!(rule.check(&value, "p").map(|_| ()), want, "{value}");
    }
}

#[test]
fn selectors_address_top_level_nested_and_array_values() {
    let args = json!({
        "path": "/a",
        "paths": ["/b", "/c"],
        "options": {"target": "/d", "a/b": "/e"},
        "edits": [{"path": "/f"}, {"path": "/g"}, {"other": 1}],
        "matrix": [["/h"], ["/i"]]
    });
    let rows: Vec<(&str, Vec<(&str, serde_json::Value)>)> = vec![
        ("path", vec![("path", json!("/a"))]),
        (
            "paths",
            vec![("paths/0", json!("/b")), ("paths/1", json!("/c"))],
        ),
        ("missing", vec![]),
        ("/options/target", vec![("options/target", json!("/d"))]),
        ("/options/a~1b", vec![("options/a/b", json!("/e"))]),
        (
            "/edits/*/path",
            vec![("edits/0/path", json!("/f")), ("edits/1/path", json!("/g"))],
        ),
        ("/edits/1/path", vec![("edits/1/path", json!("/g"))]),
        (
            "/matrix",
            vec![("matrix/0/0", json!("/h")), ("matrix/1/0", json!("/i"))],
        ),
        (
            "/options/*",
            vec![
                ("options/a/b", json!("/e")),
                ("options/target", json!("/d")),
            ],
        ),
        ("/nothing/here", vec![]),
    ];
    for (name, want) in rows {
        // Object members come in map order, which serde_json features may change: compare sorted.
        let mut got: Vec<(String, serde_json::Value)> = Selector::parse(name)
            .select(&args)
            .into_iter()
            .map(|(at, v)| (at, v.clone()))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(String, serde_json::Value)> =
            want.into_iter().map(|(a, v)| (a.to_owned(), v)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn arg_rules_name_the_failing_argument() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let rules = ArgRules::new(vec![
        (
            Selector::parse("paths"),
            compiled(ArgRule {
                within: vec![root.clone()],
                ..ArgRule::default()
            }),
        ),
        (
            Selector::parse("url"),
            compiled(ArgRule {
                allow_hosts: vec!["*.example.com".into()],
                deny_private: true,
                ..ArgRule::default()
            }),
        ),
        (
            Selector::parse("limit"),
            compiled(ArgRule {
                min: Some(1.0),
                max: Some(100.0),
                ..ArgRule::default()
            }),
        ),
    ]);
    let ok = json!({"paths": [format!("{}/a", root.display())], "url": "https://api.example.com/x", "limit": 5});
    assert_eq!(
        rules.check(&ok, "p"),
        Ok(vec![PendingHost {
            argument: "url".into(),
            host: "api.example.com".into(),
            port: 443
        }])
    );
    let bad_path = json!({"paths": [format!("{}/a", root.display()), "/etc/passwd"]});
    let err = rules.check(&bad_path, "p").unwrap_err();
    assert_eq!(
        err.to_string(),
        "argument \"paths/1\" is outside the allowed directories"
    );
    let bad_url = json!({"url": "http://169.254.169.254/latest"});
    assert_eq!(
        rules.check(&bad_url, "p").unwrap_err().to_string(),
        "argument \"url\" host \"169.254.169.254\" is not allowed"
    );
    let bad_limit = json!({"limit": 1000});
    assert_eq!(
        rules.check(&bad_limit, "p").unwrap_err().to_string(),
        "argument \"limit\" must be at most 100"
    );
    // Absent arguments are the schema's business.
    assert_eq!(rules.check(&json!({}), "p"), Ok(vec![]));
    let _ = PathBuf::new();
}

struct Table(HashMap<&'static str, Vec<std::net::IpAddr>>);

#[async_trait::async_trait]
impl Resolver for Table {
    async fn resolve(&self, host: &str, _port: u16) -> std::io::Result<Vec<std::net::IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let resolver = Table(HashMap::from([
        ("public.example", vec!["93.184.216.34".parse().unwrap()]),
        (
            "rebind.example",
            vec![
                "93.184.216.34".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
            ],
        ),
        ("internal.example", vec!["10.1.2.3".parse().unwrap()]),
        (
            "mapped.example",
            vec!["::ffff:169.254.169.254".parse().unwrap()],
        ),
        ("ula.example", vec!["fd00::5".parse().unwrap()]),
        ("empty.example", vec![]),
    ]));
    let pending = |host: &str| {
        vec![PendingHost {
            argument: "url".into(),
            host: host.into(),
            port: 443,
        }]
    };
    let rows = [
        ("public.example", Ok(())),
        (
            "rebind.example",
            Err(
                "argument \"url\" host \"rebind.example\" resolves to a loopback address (127.0.0.1)",
            ),
        ),
        (
            "internal.example",
            Err(
                "argument \"url\" host \"internal.example\" resolves to a private address (10.1.2.3)",
            ),
        ),
        (
            "mapped.example",
            Err("resolves to a cloud metadata endpoint address (::ffff:169.254.169.254)"),
        ),
        (
            "ula.example",
            Err("resolves to a private address (fd00::5)"),
        ),
        ("empty.example", Err("could not be resolved")),
        ("nxdomain.example", Err("could not be resolved")),
    ];
    for (host, want) in rows {
        let got = check_resolved(&pending(host), &resolver)
            .await
            .map_err(|e| e.to_string());
        match want {
            Ok(()) => assert!(got.is_ok(), "{host}: {got:?}"),
            Err(text) => {
                let err = got.unwrap_err();
                assert!(err.contains(text), "{host}: {err}");
            }
        }
    }
}

#[tokio::test]
async fn system_resolver_judges_localhost() {
    let pending = vec![PendingHost {
        argument: "url".into(),
        host: "localhost".into(),
        port: 80,
    }];
    let err = check_resolved(&pending, &SystemResolver).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}
