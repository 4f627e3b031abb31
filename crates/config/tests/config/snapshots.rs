//! What `portcullis check` shows for broken files: the full error output, reviewed as snapshots
//! (`tests/snapshots/*.snap`).

use std::path::Path;

use super::support::env;

/// The whole error output for `text` as `portcullis.toml` (a relative name, as a user types it).
fn report(text: &str) -> String {
    let vars = env(&[("SEARCH_TOKEN", "t")]);
    match portcullis_config::from_str(text, Some(Path::new("portcullis.toml")), &vars) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => errors.to_string(),
    }
}

macro_rules! snapshot {
    ($name:literal, $text:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, report($text));
        })
    };
}

#[test]
fn syntax_error() {
    snapshot!(
        "syntax_error",
        "[listen]\naddr = \"127.0.0.1:8080\n[limits]\n"
    );
}

#[test]
fn unknown_nested_key() {
    snapshot!(
        "unknown_nested_key",
        "[[upstream]]\nname = \"fs\"\ncommand = [\"srv\"]\n[upstream.sandbox]\nnetwrok = \"none\"\n"
    );
}

#[test]
fn unknown_key_and_bad_value() {
    snapshot!(
        "unknown_key_and_bad_value",
        r#"
[listen]
addr = "127.0.0.1:8080"
bogus_listen_key = 1

[limits]
max_request_bytes = "lots"
"#
    );
}

#[test]
fn every_section_wrong() {
    snapshot!(
        "every_section_wrong",
        r#"
[listen]
addr = "0.0.0.0"
allowed_origins = ["http://localhost:3000/"]

[storage]
url = "mysql://db"

[limits]
max_request_bytes = "1 megabyte"
call_timeout = "30x"
max_json_depth = 0

[federation]
separator = "::"

[rate_limit]
default = "120 per minute"

[auth]
api_keys = true
[[auth.jwt]]
issuer = "https://idp.example"
jwks_url = "http://idp.example/jwks"

[guard]
redact = ["secrets", "passwords"]

[audit]
encryption_key = "env:PORTCULLIS_AUDIT_KEY"
retention = "1y"
[[audit.sink]]
kind = "jsonl"

[approval]
timeout = "soon"
"#
    );
}

#[test]
fn upstreams_wrong() {
    snapshot!(
        "upstreams_wrong",
        r#"
[[upstream]]
name = "fs"
command = ["npx", "server"]
url = "https://fs.example/mcp"

[[upstream]]
name = "search"
url = "http://search.internal/mcp"
auth = { bearer = "env:SEARCH_TOKNE" }
env = { A = "1" }

[[upstream]]
name = "search"
command = ["srv"]

[[upstream]]
name = "Files!"
command = []

[[upstream]]
name = "notes"
prefix = "search__"
command = ["notes-server"]
[upstream.sandbox]
network = ["example.com"]
memory = "1 lot"

[[upstream.tool]]
name = "find"
args.limit = { min = 10, max = 1 }
args.query = { pattern = "[a-z" }
args.path = { within = ["~/notes"] }
"#
    );
}
