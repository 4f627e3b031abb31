//! Loading policy files: every error names file, line and column; ids, annotations, globs,
//! the example policy sets.

#![cfg(test)]

pub mod support;

use std::path::{Path, PathBuf};

use portcullis_authz::{PolicyError, PolicySet, check};

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let sources = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    match PolicySet::from_sources(sources) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

#[test]
fn every_problem_is_named_with_its_place() {
    let lines = errors(&[
        (
            "policies/syntax.cedar",
            "permit (principal, action, resource);\n\npermit (principal, action, resource)\n  when { context.x = };\n",
        ),
        (
            "policies/schema.cedar",
            r#"@id("typo-action")
permit (principal, action == Portcullis::Action::"cal_tool", resource);

@id("typo-attr")
permit (principal, action == Portcullis::Action::"call_tool", resource)
when { resource.readonly };

@id("wrong-type")
permit (principal, action == Portcullis::Action::"call_tool", resource)
when { context.hour == "nine" };

@id("wrong-entity")
permit (principal in Portcullis::Group::"x", action, resource);
"#,
        ),
        (
            "policies/annotations.cedar",
            r#"@approval("maybe")
permit (principal, action, resource);

@id("f") @approval("required")
forbid (principal, action, resource);

@id("")
permit (principal, action, resource);

@id("ok") @reason("")
forbid (principal, action, resource);
"#,
        ),
        (
            "policies/dup-a.cedar",
            "@id(\"same\")\npermit (principal, action, resource);\n",
        ),
        (
            "policies/dup-b.cedar",
            "// another file\n\n@id(\"same\")\nforbid (principal, action, resource);\n",
        ),
        (
            "policies/template.cedar",
            "permit (principal == ?principal, action, resource);\n",
        ),
    ]);
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn arguments_may_be_anything_but_the_rest_is_strict() {
    // context.args is open: any attribute, any nesting, bracket syntax too.
    assert_eq!(
        errors(&[(
            "a.cedar",
            r#"permit (principal, action == Portcullis::Action::"call_tool", resource)
when {
  context.args has path && context.args.path like "/srv/*" &&
  context.args.n < 5 && context.args.opts.deep.flag == true &&
  context["args"]["odd key"] == "x" && context . args . spaced == 1
};"#
        )]),
        Vec::<String>::new()
    );
    // Other context attributes are checked.
    let lines = errors(&[(
        "b.cedar",
        r#"permit (principal, action == Portcullis::Action::"call_tool", resource)
when { context.argz.path == "x" };"#,
    )]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("b.cedar:2:8: "), "{lines:?}");
}

#[test]
fn globs_expand_sorted_and_report_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("b.cedar"),
        "@id(\"b\") permit (principal, action, resource);",
    )
    .unwrap();
    std::fs::write(p.join("a.cedar"), "permit (principal, action, resource);").unwrap();
    std::fs::write(p.join("notes.txt"), "not a policy").unwrap();
    let set = PolicySet::load(&[p.join("*.cedar")]).unwrap();
    assert_eq!(set.ids(), ["a.cedar:0", "b"]);
    let files: Vec<&Path> = set.files().collect();
    assert_eq!(files, [p.join("a.cedar"), p.join("b.cedar")]);

    // The same file through a glob and by name is read once.
    let set = PolicySet::load(&[p.join("*.cedar"), p.join("a.cedar")]).unwrap();
    assert_eq!(set.len(), 2);

    let missing = p.join("missing.cedar");
    let none = p.join("*.policy");
    let err = PolicySet::load(&[missing.clone(), none.clone()]).unwrap_err();
    assert!(
        matches!(&err.0[0], PolicyError::NoMatch { pattern } if *pattern == none.display().to_string()),
        "{err}"
    );
    assert!(
        matches!(&err.0[1], PolicyError::Read { path, .. } if *path == missing),
        "{err}"
    );
    assert_eq!(check(&[missing]).len(), 1);
    assert!(check(&[p.join("*.cedar")]).is_empty());

    // No patterns: an empty set (every call denied).
    assert!(PolicySet::load(&[]).unwrap().is_empty());
}

#[test]
fn warnings_carry_locations() {
    let set = PolicySet::from_sources(vec![(
        "w.cedar".into(),
        "\npermit (principal, action == Portcullis::Action::\"call_tool\", resource)\nwhen { false };\n".into(),
    )])
    .unwrap();
    assert!(
        set.warnings()
            .iter()
            .any(|w| w.starts_with("w.cedar:2:1: ") && w.contains("impossible")),
        "{:?}",
        set.warnings()
    );
}

#[test]
fn example_policy_sets_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    for (set, count) in [("rbac", 7), ("abac", 7), ("office-hours", 6)] {
        let loaded = PolicySet::load(&[root.join(set).join("*.cedar")])
            .unwrap_or_else(|e| panic!("{set}:\n{e}"));
        assert_eq!(loaded.len(), count, "{set}: {:?}", loaded.ids());
        assert!(
            loaded.warnings().is_empty(),
            "{set}: {:?}",
            loaded.warnings()
        );
        assert!(
            loaded.ids().iter().all(|id| !id.contains(".cedar:")),
            "{set}: every example policy has an @id"
        );
    }
}
