//! `portcullis policy test` and the policy part of `portcullis check`, run as the real binary.

#![cfg(test)]

use std::path::Path;
use std::process::Command;

const POLICIES: &str = r#"
@id("admin-all")
permit (principal in Portcullis::Role::"admin", action, resource);

@id("viewer-ro")
permit (principal in Portcullis::Role::"viewer", action == Portcullis::Action::"call_tool", resource)
when { resource.read_only };

@id("dev-write")
@approval("required")
permit (principal in Portcullis::Role::"dev", action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"fs__write_file")
when { context.args has path && context.args.path like "/srv/data/public/*" };

@id("no-passwd")
@reason("not that file")
forbid (principal, action == Portcullis::Action::"call_tool", resource)
when { context.args has path && context.args.path == "/etc/passwd" };
"#;

fn setup(policies: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/main.cedar"), policies).unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        r#"
[auth]
dangerous_allow_anonymous = true

[authz]
policies = ["policies/*.cedar"]

[[upstream]]
name = "fs"
url = "http://127.0.0.1:9/mcp"
[[upstream.tool]]
name = "read_file"
read_only = true
"#,
    )
    .unwrap();
    dir
}

/// (exit code, stdout, stderr)
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(dir.join("portcullis.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn policy_test(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["policy", "test"];
    args.extend_from_slice(extra);
    let (code, stdout, _) = run(dir, &args);
    (code, stdout)
}

#[test]
fn prints_the_decision_and_the_deciding_policies() {
    let dir = setup(POLICIES);
    let d = dir.path();
    let rows: Vec<(&[&str], i32, &str)> = vec![
        (
            &[
                "--principal",
                "root",
                "--role",
                "admin",
                "--method",
                "tools/call",
                "--name",
                "fs__write_file",
            ],
            0,
            "decision: allow\npolicies: admin-all\nreason: permitted by policy\n",
        ),
        (
            // read_only comes from [[upstream.tool]] read_only = true, no server needed
            &[
                "--principal",
                "vera",
                "--role",
                "viewer",
                "--method",
                "tools/call",
                "--name",
                "fs__read_file",
            ],
            0,
            "decision: allow\npolicies: viewer-ro\nreason: permitted by policy\n",
        ),
        (
            &[
                "--principal",
                "vera",
                "--role",
                "viewer",
                "--method",
                "tools/call",
                "--name",
                "fs__write_file",
            ],
            1,
            "decision: deny\npolicies:\nreason: denied by default: no policy permits this request\n",
        ),
        (
            &[
                "--principal",
                "dave",
                "--role",
                "dev",
                "--method",
                "tools/call",
                "--name",
                "fs__write_file",
                "--args",
                r#"{"path":"/srv/data/public/a.txt"}"#,
            ],
            0,
            "decision: allow\napproval: required\npolicies: dev-write\nreason: permitted by policy once a person approves\n",
        ),
        (
            &[
                "--principal",
                "root",
                "--role",
                "admin",
                "--method",
                "tools/call",
                "--name",
                "fs__write_file",
                "--args",
                r#"{"path":"/etc/passwd"}"#,
            ],
            1,
            "decision: deny\npolicies: no-passwd\nreason: not that file\n",
        ),
        (
            &[
                "--principal",
                "root",
                "--role",
                "admin",
                "--method",
                "tools/list",
                "--upstream",
                "fs",
            ],
            0,
            "decision: allow\npolicies: admin-all\nreason: permitted by policy\n",
        ),
        (
            &[
                "--principal",
                "vera",
                "--role",
                "viewer",
                "--method",
                "resources/read",
                "--name",
                "fs__file:///srv/x",
            ],
            1,
            "decision: deny\npolicies:\nreason: denied by default: no policy permits this request\n",
        ),
    ];
    for (args, code, stdout) in rows {
        assert_eq!(policy_test(d, args), (code, stdout.to_owned()), "{args:?}");
    }
}

#[test]
fn bad_flags_and_unroutable_names_exit_2() {
    let dir = setup(POLICIES);
    for args in [
        &[
            "--principal",
            "a",
            "--method",
            "tools/call",
            "--name",
            "fs__x",
            "--args",
            "{not json",
        ][..],
        &["--principal", "a", "--method", "ping", "--name", "x"],
        &[
            "--principal",
            "a",
            "--method",
            "tools/call",
            "--name",
            "other__x",
        ],
        &[
            "--principal",
            "a",
            "--method",
            "tools/call",
            "--name",
            "fs__x",
            "--at",
            "yesterday",
        ],
        &["--principal", "a", "--method", "tools/list"],
    ] {
        assert_eq!(policy_test(dir.path(), args).0, 2, "{args:?}");
    }
}

#[test]
fn bad_policies_exit_2_and_name_file_and_line() {
    let dir = setup(
        "permit (principal, action, resource);\n\npermit (principal, action == Portcullis::Action::\"cal_tool\", resource);\n",
    );
    let (code, stdout, stderr) = run(
        dir.path(),
        &[
            "policy",
            "test",
            "--principal",
            "a",
            "--method",
            "tools/list",
            "--upstream",
            "fs",
        ],
    );
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("main.cedar:3:30: "), "{stderr}");
    let (code, _, stderr) = run(dir.path(), &["check"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("main.cedar:3:30: ") && stderr.contains("cal_tool"),
        "{stderr}"
    );

    let good = setup(POLICIES);
    let (code, stdout, _) = run(good.path(), &["check"]);
    assert_eq!(code, 0, "{stdout}");
}
