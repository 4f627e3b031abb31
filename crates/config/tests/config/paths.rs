//! Relative paths resolve against the config file's directory (or the current directory when
//! there is no file); files that must exist are checked.

use std::fs;
use std::path::{Path, PathBuf};

use portcullis_config::{PrincipalFrom, Sink, UpstreamTransport, from_str, load};

use super::support::env;

const RELATIVE: &str = r#"
[listen.tls]
cert = "certs/server.pem"
key = "./certs/../certs/server-key.pem"
client_ca = "certs/ca.pem"
require_client_cert = true

[storage]
url = "sqlite://data/portcullis.db"

[auth.mtls]
principal_from = "subject_cn"

[authz]
policies = ["policies/main.cedar", "policies/extra/*.cedar"]

[[upstream]]
name = "fs"
command = ["bin/server", "data"]
cwd = "."

[upstream.sandbox]
fs_read = ["data"]
fs_write = ["../scratch"]

[[upstream.tool]]
name = "read_file"
args.path = { within = ["data", "/abs/elsewhere"] }

[[audit.sink]]
kind = "jsonl"
path = "audit.jsonl"
"#;

/// A config directory `<tmp>/etc/portcullis` holding the files `RELATIVE` names.
fn config_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("etc/portcullis");
    for sub in ["certs", "policies"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in [
        "certs/server.pem",
        "certs/server-key.pem",
        "certs/ca.pem",
        "policies/main.cedar",
    ] {
        fs::write(dir.join(file), "x").unwrap();
    }
    fs::write(dir.join("portcullis.toml"), RELATIVE).unwrap();
    (tmp, dir)
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let (tmp, dir) = config_dir();
    let config = load(&dir.join("portcullis.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.source.as_deref(),
        Some(dir.join("portcullis.toml").as_path())
    );
    let tls = config.listen.tls.as_ref().unwrap();
    assert_eq!(tls.cert, dir.join("certs/server.pem"));
    assert_eq!(tls.key, dir.join("certs/server-key.pem"), "normalised");
    assert_eq!(tls.client_ca, Some(dir.join("certs/ca.pem")));
    assert_eq!(
        config.auth.mtls.unwrap().principal_from,
        PrincipalFrom::SubjectCn
    );
    assert_eq!(
        config.storage.url,
        format!("sqlite://{}", dir.join("data/portcullis.db").display())
    );
    assert_eq!(
        config.authz.policies,
        [
            dir.join("policies/main.cedar"),
            dir.join("policies/extra/*.cedar")
        ]
    );
    let upstream = &config.upstreams[0];
    let UpstreamTransport::Stdio { command, cwd, .. } = &upstream.transport else {
        panic!()
    };
    assert_eq!(
        command,
        &[
            dir.join("bin/server").display().to_string(),
            "data".to_owned()
        ]
    );
    assert_eq!(cwd.as_deref(), Some(dir.as_path()));
    let sandbox = upstream.sandbox.as_ref().unwrap();
    assert_eq!(sandbox.fs_read, [dir.join("data")]);
    assert_eq!(sandbox.fs_write, [tmp.path().join("etc/scratch")]);
    let within = &upstream.tools[0].args["path"].within;
    assert_eq!(within, &[dir.join("data"), PathBuf::from("/abs/elsewhere")]);
    assert!(within.iter().all(|p| p.is_absolute()));
    let Sink::Jsonl { path, .. } = &config.audit.sinks[0] else {
        panic!()
    };
    assert_eq!(path, &dir.join("audit.jsonl"));
}

#[test]
fn without_a_source_paths_resolve_against_the_current_directory() {
    let config = from_str("", None, &env(&[])).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(config.source, None);
    assert_eq!(
        config.storage.url,
        format!("sqlite://{}", cwd.join("portcullis.db").display())
    );
}

#[test]
fn missing_tls_and_policy_files_are_errors() {
    let (_tmp, dir) = config_dir();
    for file in ["certs/ca.pem", "policies/main.cedar"] {
        fs::remove_file(dir.join(file)).unwrap();
    }
    let errors = load(&dir.join("portcullis.toml")).unwrap_err();
    let f = dir.join("portcullis.toml");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}: listen.tls.client_ca: cannot read {}: no such file or directory",
                f.display(),
                dir.join("certs/ca.pem").display()
            ),
            format!(
                "{}: listen.tls.require_client_cert: requires listen.tls.client_ca",
                f.display()
            ),
            format!(
                "{}: auth.mtls: requires listen.tls.client_ca (client certificates are not verified)",
                f.display()
            ),
            format!(
                "{}: authz.policies[0]: policy file {} not found",
                f.display(),
                dir.join("policies/main.cedar").display()
            ),
        ]
    );
}

#[test]
fn a_directory_is_not_a_tls_file() {
    let (_tmp, dir) = config_dir();
    let text = "[listen.tls]\ncert = \"certs\"\nkey = \"certs/server-key.pem\"";
    let errors = from_str(text, Some(&dir.join("p.toml")), &env(&[])).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors
            .to_string()
            .ends_with(&format!("{} is not a file", dir.join("certs").display()))
    );
}

#[test]
fn unreadable_config_file_is_one_error() {
    let errors = load(Path::new("/nonexistent/portcullis.toml")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/portcullis.toml: cannot read configuration: "),
        "{errors}"
    );
}
