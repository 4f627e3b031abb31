//! Hot reload: edits switch decisions atomically; a bad edit keeps the previous set.

#![cfg(test)]

pub mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portcullis_authz::{Action, Authorizer, Verdict, decide};
use support::*;

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces `path` atomically (write a temporary file, rename), as editors do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn verdict(auth: &Authorizer, tool_name: &str) -> (Verdict, Vec<String>) {
    let s = user("alice", &["dev"]);
    let t = tool(tool_name, false, false, false);
    let d = decide(&auth.current(), &request(&s, Action::CallTool, &t, None));
    (d.verdict, d.policy_ids)
}

#[test]
fn edits_switch_decisions_and_bad_edits_keep_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.cedar");
    std::fs::write(&file, "// nothing yet\n").unwrap();
    let auth = Arc::new(Authorizer::load(vec![dir.path().join("*.cedar")]).unwrap());
    let _watch = auth.watch().unwrap();
    assert_eq!(auth.generation(), 1);
    assert_eq!(verdict(&auth, "fs__x").0, Verdict::Deny);

    // A permit appears.
    replace(
        &file,
        "@id(\"v1\") permit (principal in Portcullis::Role::\"dev\", action, resource);\n",
    );
    wait_for("the permit", || auth.generation() == 2);
    assert_eq!(
        verdict(&auth, "fs__x"),
        (Verdict::Allow, vec!["v1".to_owned()])
    );

    // A broken edit (syntax), then one that does not fit the schema: both are refused and
    // the permit stays in force.
    replace(&file, "@id(\"v2\") permit (principal, action, resource\n");
    wait_for("the first failure", || auth.reload_failures() == 1);
    replace(
        &file,
        "@id(\"v2\") permit (principal, action, resource) when { resource.nope };\n",
    );
    wait_for("the second failure", || auth.reload_failures() == 2);
    assert_eq!(auth.generation(), 2);
    assert_eq!(
        verdict(&auth, "fs__x"),
        (Verdict::Allow, vec!["v1".to_owned()])
    );

    // The file is put back as it was (nothing to swap), and a new file matching the glob is
    // picked up: one more generation.
    replace(
        &file,
        "@id(\"v1\") permit (principal in Portcullis::Role::\"dev\", action, resource);\n",
    );
    std::fs::write(
        dir.path().join("extra.cedar"),
        "@id(\"deny-x\") forbid (principal, action, resource == Portcullis::Tool::\"fs__x\");\n",
    )
    .unwrap();
    wait_for("the new file", || auth.generation() == 3);
    assert_eq!(
        verdict(&auth, "fs__x"),
        (Verdict::Deny, vec!["deny-x".to_owned()])
    );
    assert_eq!(
        verdict(&auth, "fs__y"),
        (Verdict::Allow, vec!["v1".to_owned()])
    );

    // Files that do not match the glob do not cause reloads.
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(auth.generation(), 3);
}

/// A policy directory that also holds a busy file (a SQLite store) is scanned instead of
/// watched: writes to the busy file reload nothing, edits to the policies still do, and other
/// directories are still watched.
#[test]
fn a_directory_beside_a_busy_file_is_scanned_and_still_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (shared, own) = (dir.path().join("shared"), dir.path().join("own"));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&own).unwrap();
    let (beside, apart) = (shared.join("a.cedar"), own.join("b.cedar"));
    let store = shared.join("portcullis.db");
    std::fs::write(&beside, "// nothing yet\n").unwrap();
    std::fs::write(&apart, "// nothing yet\n").unwrap();
    std::fs::write(&store, "").unwrap();
    let auth = Arc::new(Authorizer::load(vec![beside.clone(), own.join("*.cedar")]).unwrap());
    let watch = auth.watch_beside(&[store.as_path()]).unwrap();
    assert_eq!(watch.polled(), std::slice::from_ref(&shared));

    // The busy file is written for a while: no reload.
    for i in 0..30 {
        std::fs::write(&store, format!("write {i}")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((auth.generation(), auth.reload_failures()), (1, 0));

    // An edit beside it is found by the scan.
    replace(
        &beside,
        "@id(\"v1\") permit (principal in Portcullis::Role::\"dev\", action, resource);\n",
    );
    wait_for("the scanned edit", || auth.generation() == 2);
    assert_eq!(
        verdict(&auth, "fs__x"),
        (Verdict::Allow, vec!["v1".to_owned()])
    );
    // One in the directory of its own, by the watch.
    replace(
        &apart,
        "@id(\"v2\") forbid (principal, action, resource == Portcullis::Tool::\"fs__x\");\n",
    );
    wait_for("the watched edit", || auth.generation() == 3);
    assert_eq!(verdict(&auth, "fs__x").0, Verdict::Deny);
}

#[test]
fn decisions_use_one_consistent_snapshot_while_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.cedar");
    // Each version permits fs__a and forbids fs__b with ids of that version; a decision
    // pair taken from one snapshot must never mix versions.
    let version = |v: u32| {
        format!(
            "@id(\"v{v}-permit\") permit (principal, action, resource);\n\
             @id(\"v{v}-forbid\") forbid (principal, action, resource == Portcullis::Tool::\"fs__b\");\n"
        )
    };
    std::fs::write(&file, version(0)).unwrap();
    let auth = Arc::new(Authorizer::load(vec![file.clone()]).unwrap());
    let _watch = auth.watch().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let auth = Arc::clone(&auth);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let s = user("alice", &[]);
                let (a, b) = (
                    tool("fs__a", true, false, false),
                    tool("fs__b", true, false, false),
                );
                let mut checked = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = auth.current();
                    let da = decide(&snapshot, &request(&s, Action::CallTool, &a, None));
                    let db = decide(&snapshot, &request(&s, Action::CallTool, &b, None));
                    assert_eq!(da.verdict, Verdict::Allow, "{da:?}");
                    assert_eq!(db.verdict, Verdict::Deny, "{db:?}");
                    let va = da.policy_ids[0].split('-').next().unwrap().to_owned();
                    let vb = db.policy_ids[0].split('-').next().unwrap().to_owned();
                    assert_eq!(va, vb, "one snapshot, one version");
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    for v in 1..=5u32 {
        // Half-written states (a policy cut in the middle) must never be loaded.
        let text = version(v);
        let cut = text.len() / 3;
        std::fs::write(&file, &text[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        std::fs::write(&file, &text).unwrap();
        let want = format!("v{v}-permit");
        wait_for("the new version", || auth.current().ids().contains(&want));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn reload_without_changes_keeps_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.cedar");
    std::fs::write(&file, "permit (principal, action, resource);").unwrap();
    let auth = Authorizer::load(vec![file.clone()]).unwrap();
    assert_eq!(auth.reload(), Ok(false));
    assert_eq!(auth.generation(), 1);
    std::fs::write(&file, "forbid (principal, action, resource);").unwrap();
    assert_eq!(auth.reload(), Ok(true));
    assert_eq!(auth.generation(), 2);
    std::fs::remove_file(&file).unwrap();
    assert!(auth.reload().is_err());
    assert_eq!((auth.generation(), auth.reload_failures()), (2, 1));
}
