use std::os::unix::fs::symlink;

use proptest::prelude::*;

use super::*;

/// A root with files, a nested dir, and symlinks that stay inside or escape:
/// ```text
/// base/root/a.txt, base/root/dir/b.txt, base/root/in -> root/dir, base/root/out -> base/outside,
/// base/root/dangling -> base/outside/missing, base/root/loop -> base/root/loop,
/// base/outside/secret.txt, base/root2 (a sibling whose name extends root's)
/// ```
struct Tree {
    _dir: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("root");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::create_dir_all(base.join("root2")).unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    std::fs::write(root.join("dir/b.txt"), "b").unwrap();
    std::fs::write(base.join("outside/secret.txt"), "s").unwrap();
    symlink(root.join("dir"), root.join("in")).unwrap();
    symlink(base.join("outside"), root.join("out")).unwrap();
    symlink(base.join("outside/missing"), root.join("dangling")).unwrap();
    symlink(root.join("loop"), root.join("loop")).unwrap();
    Tree {
        _dir: dir,
        base,
        root,
    }
}

#[test]
fn path_rule_table() {
    let t = tree();
    let r = t.root.display().to_string();
    let b = t.base.display().to_string();
    let rule = PathRule {
        roots: vec![t.root.clone()],
    };
    let rows: Vec<(String, Result<(), PathViolation>)> = vec![
        (r.clone(), Ok(())),
        (format!("{r}/"), Ok(())),
        (format!("{r}/a.txt"), Ok(())),
        (format!("{r}/dir/b.txt"), Ok(())),
        (format!("{r}/./dir//b.txt"), Ok(())),
        (format!("{r}/new/deeper/file.txt"), Ok(())),
        (format!("{r}/in/b.txt"), Ok(())),
        (format!("{r}/in/new.txt"), Ok(())),
        (format!("{r}/with%20space.txt"), Ok(())),
        (format!("{r}/100%.txt"), Ok(())),
        (format!("{r}/naïve café.txt"), Ok(())),
        (format!("{r}/..hidden"), Ok(())),
        (format!("{r}/a..b"), Ok(())),
        // traversal
        (
            format!("{r}/../outside/secret.txt"),
            Err(PathViolation::DotDot),
        ),
        (format!("{r}/dir/../../outside"), Err(PathViolation::DotDot)),
        (format!("{r}/dir/.."), Err(PathViolation::DotDot)),
        (format!("{r}/dir/../a.txt"), Err(PathViolation::DotDot)),
        // encoded traversal
        (format!("{r}/%2e%2e/outside"), Err(PathViolation::Encoded)),
        (format!("{r}/%2E%2E%2Foutside"), Err(PathViolation::Encoded)),
        (format!("{r}/..%2foutside"), Err(PathViolation::Encoded)),
        (
            format!("{r}/%252e%252e/outside"),
            Err(PathViolation::Encoded),
        ),
        (format!("{r}/%25252e"), Err(PathViolation::Encoded)),
        (
            format!("{r}/%c0%ae%c0%ae/outside"),
            Err(PathViolation::Encoded),
        ),
        (format!("{r}/%C1%9C"), Err(PathViolation::Encoded)),
        (format!("{r}/%e0%80%ae"), Err(PathViolation::Encoded)),
        (format!("{r}/%5c..%5coutside"), Err(PathViolation::Encoded)),
        (format!("{r}/a%00.txt"), Err(PathViolation::Encoded)),
        // NUL and control characters
        (format!("{r}/a.txt\0/../../x"), Err(PathViolation::Control)),
        (format!("{r}/a\n.txt"), Err(PathViolation::Control)),
        (format!("{r}/\u{1b}[2K"), Err(PathViolation::Control)),
        // Windows forms
        (format!("{r}\\..\\outside"), Err(PathViolation::Windows)),
        (format!("{r}/dir\\b.txt"), Err(PathViolation::Windows)),
        ("C:\\Windows\\win.ini".into(), Err(PathViolation::Windows)),
        ("c:/windows".into(), Err(PathViolation::Windows)),
        ("\\\\server\\share\\x".into(), Err(PathViolation::Windows)),
        ("//server/share/x".into(), Err(PathViolation::Windows)),
        ("\\\\?\\C:\\x".into(), Err(PathViolation::Windows)),
        // look-alikes
        (
            format!("{r}/\u{FF0E}\u{FF0E}/outside"),
            Err(PathViolation::LookAlike),
        ),
        (
            format!("{r}/..\u{2215}outside"),
            Err(PathViolation::LookAlike),
        ),
        (
            format!("{r}/\u{2025}/outside"),
            Err(PathViolation::LookAlike),
        ),
        // relative and home
        ("a.txt".into(), Err(PathViolation::Relative)),
        ("./a.txt".into(), Err(PathViolation::Relative)),
        ("../etc/passwd".into(), Err(PathViolation::Relative)),
        ("".into(), Err(PathViolation::Relative)),
        ("~/.ssh/id_rsa".into(), Err(PathViolation::Home)),
        ("~root/.ssh".into(), Err(PathViolation::Home)),
        // outside, directly or through symlinks
        ("/etc/passwd".into(), Err(PathViolation::Outside)),
        ("/".into(), Err(PathViolation::Outside)),
        (
            format!("{b}/outside/secret.txt"),
            Err(PathViolation::Outside),
        ),
        (format!("{b}/root2/x"), Err(PathViolation::Outside)),
        (b.clone(), Err(PathViolation::Outside)),
        (format!("{r}/out"), Err(PathViolation::Outside)),
        (format!("{r}/out/secret.txt"), Err(PathViolation::Outside)),
        (format!("{r}/out/new-file.txt"), Err(PathViolation::Outside)),
        (
            format!("{r}/out/new/dir/file.txt"),
            Err(PathViolation::Outside),
        ),
        (format!("{r}/dangling"), Err(PathViolation::DanglingSymlink)),
        (format!("{r}/loop"), Err(PathViolation::DanglingSymlink)),
    ];
    for (path, want) in rows {
        assert_eq!(rule.check(&path, "alice"), want, "{path:?}");
    }
}

#[test]
fn a_root_that_is_itself_a_symlink_is_resolved() {
    let t = tree();
    let link = t.base.join("root-link");
    symlink(&t.root, &link).unwrap();
    let rule = PathRule {
        roots: vec![link.clone()],
    };
    assert_eq!(
        rule.check(&format!("{}/a.txt", link.display()), "p"),
        Ok(())
    );
    assert_eq!(
        rule.check(&format!("{}/a.txt", t.root.display()), "p"),
        Ok(())
    );
    assert_eq!(
        rule.check(&format!("{}/out/secret.txt", link.display()), "p"),
        Err(PathViolation::Outside)
    );
}

#[test]
fn principal_placeholder_is_one_plain_component() {
    let rows = [
        ("alice", "alice"),
        ("alice@example.com", "alice@example.com"),
        ("svc-ci_bot.1", "svc-ci_bot.1"),
        ("..", "%2E."),
        (".", "%2E"),
        ("", "%00"),
        ("../../etc", "%2E.%2F..%2Fetc"),
        ("a/b", "a%2Fb"),
        ("a%2Fb", "a%252Fb"),
        ("a\\b", "a%5Cb"),
        ("a\0b", "a%00b"),
        ("é", "%C3%A9"),
        (".hidden", "%2Ehidden"),
    ];
    for (principal, want) in rows {
        assert_eq!(principal_component(principal), want, "{principal:?}");
    }
    let t = tree();
    std::fs::create_dir_all(t.root.join("users/alice")).unwrap();
    let rule = PathRule {
        roots: vec![t.root.join("users/{principal}")],
    };
    let alice = format!("{}/users/alice/notes.txt", t.root.display());
    let bob = format!("{}/users/bob/notes.txt", t.root.display());
    assert_eq!(rule.check(&alice, "alice"), Ok(()));
    assert_eq!(rule.check(&bob, "alice"), Err(PathViolation::Outside));
    // A principal named like a traversal gets its own odd-looking directory, nothing more.
    assert_eq!(rule.check(&alice, "../alice"), Err(PathViolation::Outside));
    assert_eq!(rule.check(&alice, ".."), Err(PathViolation::Outside));
}

#[test]
fn several_roots() {
    let t = tree();
    let rule = PathRule {
        roots: vec![t.root.join("dir"), t.base.join("outside")],
    };
    assert_eq!(
        rule.check(&format!("{}/dir/b.txt", t.root.display()), "p"),
        Ok(())
    );
    assert_eq!(
        rule.check(&format!("{}/outside/secret.txt", t.base.display()), "p"),
        Ok(())
    );
    assert_eq!(
        rule.check(&format!("{}/a.txt", t.root.display()), "p"),
        Err(PathViolation::Outside)
    );
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a.txt".to_owned()),
        Just("dir".to_owned()),
        Just("new".to_owned()),
        Just("in".to_owned()),
        Just("out".to_owned()),
        Just("dangling".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%252e%252e".to_owned()),
        Just("..%2f".to_owned()),
        Just("..\\..".to_owned()),
        Just("\u{FF0E}\u{FF0E}".to_owned()),
        Just("outside".to_owned()),
        Just("root".to_owned()),
        Just("root2".to_owned()),
        Just("secret.txt".to_owned()),
        "[a-z.%]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever path is generated (starting at the base, the root, or the filesystem root),
    /// an accepted one lands inside the root once the filesystem has followed every symlink:
    /// the test creates it and asks the kernel where it ended up.
    #[test]
    fn no_accepted_path_lands_outside_the_root(
        start in 0..3_usize,
        segments in proptest::collection::vec(segment(), 0..6),
    ) {
        let t = tree();
        let rule = PathRule { roots: vec![t.root.clone()] };
        let prefix = match start {
            0 => t.base.display().to_string(),
            1 => t.root.display().to_string(),
            _ => String::new(),
        };
        let path = format!("{prefix}/{}", segments.join("/"));
        if rule.check(&path, "p").is_ok() {
            let target = Path::new(&path);
            if std::fs::symlink_metadata(target).is_err() {
                // Creating it may fail (a parent is a file): then nothing was created anywhere.
                let created = target
                    .parent()
                    .is_some_and(|parent| std::fs::create_dir_all(parent).is_ok())
                    && std::fs::write(target, "x").is_ok();
                if !created {
                    prop_assert!(std::fs::read_dir(t.base.join("outside")).unwrap().count() == 1);
                    return Ok(());
                }
            }
            let real = std::fs::canonicalize(target).unwrap();
            let root = std::fs::canonicalize(&t.root).unwrap();
            prop_assert!(real.starts_with(&root), "{path} accepted but is {}", real.display());
            prop_assert!(std::fs::read_dir(t.base.join("outside")).unwrap().count() == 1);
        }
    }
}
