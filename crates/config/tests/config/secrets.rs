//! Secrets: `env:NAME`, `file:PATH`, inline (warned), and never shown by `Debug`.

use std::fs;
use std::path::Path;

use portcullis_config::{Secret, UpstreamTransport, from_str};

use super::support::{env, error_lines, parse};

const INTROSPECTION: &str = "[auth.introspection]\nurl = \"https://idp.example/i\"\n\
                             client_id = \"gw\"\nclient_secret = \"env:INTROSPECT_SECRET\"";

#[test]
fn missing_env_var_is_an_error_naming_it() {
    assert_eq!(
        error_lines(INTROSPECTION),
        ["F: auth.introspection.client_secret: environment variable INTROSPECT_SECRET is not set"]
    );
}

#[test]
fn empty_env_var_is_an_error() {
    let vars = env(&[("INTROSPECT_SECRET", "")]);
    let errors = from_str(INTROSPECTION, None, &vars)
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        "<string>: auth.introspection.client_secret: environment variable INTROSPECT_SECRET is empty"
    );
}

#[test]
fn env_secret_resolves_and_records_its_origin() {
    let vars = env(&[("INTROSPECT_SECRET", "hunter2")]);
    let config = from_str(INTROSPECTION, None, &vars).unwrap();
    let secret = &config.auth.introspection.as_ref().unwrap().client_secret;
    assert_eq!(
        (secret.origin(), secret.expose()),
        ("env:INTROSPECT_SECRET", "hunter2")
    );
    assert!(!config.warnings.iter().any(|w| w.contains("inline")));
}

#[test]
fn file_secret_is_relative_to_the_config_dir_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("keys")).unwrap();
    fs::write(dir.path().join("keys/token"), "  tok en \r\n\n").unwrap();
    let text = "[[upstream]]\nname = \"s\"\nurl = \"https://a.example\"\n\
                auth = { bearer = \"file:keys/token\" }";
    let source = dir.path().join("portcullis.toml");
    let config = from_str(text, Some(&source), &env(&[])).unwrap();
    let UpstreamTransport::Http { bearer, .. } = &config.upstreams[0].transport else {
        panic!()
    };
    let bearer = bearer.as_ref().unwrap();
    assert_eq!(
        bearer.expose(),
        "  tok en ",
        "only trailing newlines are trimmed"
    );
    assert_eq!(
        bearer.origin(),
        format!("file:{}", dir.path().join("keys/token").display())
    );
}

#[test]
fn unreadable_or_empty_file_secret_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty"), "\n").unwrap();
    let text = "[audit]\nsigning_key = \"file:missing.pem\"\nencryption_key = \"file:empty\"";
    let source = dir.path().join("p.toml");
    let errors = from_str(text, Some(&source), &env(&[])).unwrap_err();
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let d = dir.path().display();
    assert_eq!(
        lines,
        [
            format!(
                "{d}/p.toml: audit.signing_key: cannot read secret file {d}/missing.pem: \
                 no such file or directory"
            ),
            format!("{d}/p.toml: audit.encryption_key: secret file {d}/empty is empty"),
        ]
    );
}

#[test]
fn inline_secret_is_accepted_with_a_warning() {
    let text = "[audit]\nencryption_key = \"0123456789abcdef\"";
    let config = parse(text).unwrap();
    assert_eq!(
        config.audit.encryption_key.as_ref().unwrap().expose(),
        "0123456789abcdef"
    );
    assert!(
        config
            .warnings
            .contains(&"inline secret at audit.encryption_key; use env: or file:".into())
    );
}

#[test]
fn debug_never_shows_a_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("key.pem"), "FILE-SECRET-VALUE\n").unwrap();
    let text = r#"
        [storage]
        url = "postgres://app:STORAGE-PASSWORD@db/p"
        [rate_limit]
        backend = "redis://:REDIS-PASSWORD@cache:6379"
        [auth.introspection]
        url = "https://idp.example/i"
        client_id = "gw"
        client_secret = "env:INTROSPECT_SECRET"
        [[upstream]]
        name = "s"
        url = "https://a.example"
        auth = { bearer = "INLINE-BEARER" }
        headers = { X-Key = "env:HEADER_KEY" }
        [[upstream]]
        name = "c"
        command = ["srv"]
        env = { TOKEN = "CHILD-ENV-VALUE" }
        [audit]
        signing_key = "file:key.pem"
        encryption_key = "env:AUDIT_KEY"
        [[audit.sink]]
        kind = "webhook"
        url = "https://siem.example"
        headers = { Authorization = "WEBHOOK-TOKEN" }
    "#;
    let vars = env(&[
        ("INTROSPECT_SECRET", "ENV-INTROSPECT"),
        ("HEADER_KEY", "ENV-HEADER"),
        ("AUDIT_KEY", "ENV-AUDIT"),
    ]);
    let config = from_str(text, Some(&dir.path().join("p.toml")), &vars).unwrap();
    let values = [
        "STORAGE-PASSWORD",
        "REDIS-PASSWORD",
        "ENV-INTROSPECT",
        "INLINE-BEARER",
        "ENV-HEADER",
        "CHILD-ENV-VALUE",
        "FILE-SECRET-VALUE",
        "ENV-AUDIT",
        "WEBHOOK-TOKEN",
    ];
    for debug in [format!("{config:?}"), format!("{config:#?}")] {
        for value in values {
            assert!(
                !debug.contains(value),
                "{value} leaked into Debug:\n{debug}"
            );
        }
    }
}

#[test]
fn secret_debug_shows_only_the_origin() {
    let secret = Secret::new("env:X", "value");
    assert_eq!(format!("{secret:?}"), "Secret(env:X)");
    assert_eq!(Path::new(secret.origin()), Path::new("env:X"));
}
