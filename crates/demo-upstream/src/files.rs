//! The served directory: every path a client names is resolved here, and nothing escapes it.
//!
//! Relative paths must be plain (no `..`, no absolute, no `.`); existing targets are resolved
//! with `canonicalize` (so symlinks are followed, then checked) and must stay under the root.
//! Writes refuse to go through a symlink. Listings skip symlinks and non-UTF-8 names.

use std::path::{Component, Path, PathBuf};

/// Largest file `read_file` and `resources/read` return.
pub(crate) const MAX_READ_BYTES: u64 = 1024 * 1024;
/// Most files a listing walks (a guard against huge trees).
const MAX_LISTED: usize = 10_000;
const MAX_DEPTH: usize = 16;

/// Why a file operation was refused; the message is safe to show the client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("path must be relative to the served directory, without '..' or '.' parts")]
    NotRelative,
    #[error("path escapes the served directory")]
    Escapes,
    #[error("no such file")]
    NotFound,
    #[error("not a regular file")]
    NotAFile,
    #[error("refusing to write through a symlink")]
    Symlink,
    #[error("file is larger than {MAX_READ_BYTES} bytes")]
    TooLarge,
    #[error("file is not UTF-8 text")]
    NotText,
    #[error("I/O error: {0}")]
    Io(std::io::ErrorKind),
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound,
            kind => Self::Io(kind),
        }
    }
}

/// The canonical served directory.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    dir: PathBuf,
}

impl Root {
    pub(crate) fn new(dir: &Path) -> std::io::Result<Self> {
        let dir = std::fs::canonicalize(dir)?;
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Self { dir })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// `user` as a plain relative path, joined to the root (not yet resolved).
    fn join(&self, user: &str) -> Result<PathBuf, FileError> {
        let rel = Path::new(user);
        let plain = !user.is_empty()
            && !user.contains('\0')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if plain {
            Ok(self.dir.join(rel))
        } else {
            Err(FileError::NotRelative)
        }
    }

    /// Resolves an existing path (symlinks followed) and checks it is a regular file inside.
    async fn resolve_file(&self, path: &Path) -> Result<PathBuf, FileError> {
        let real = tokio::fs::canonicalize(path).await?;
        if !real.starts_with(&self.dir) {
            return Err(FileError::Escapes);
        }
        if !tokio::fs::metadata(&real).await?.is_file() {
            return Err(FileError::NotAFile);
        }
        Ok(real)
    }

    /// Reads a file named relative to the root, as text.
    pub(crate) async fn read_text(&self, user: &str) -> Result<String, FileError> {
        let bytes = self.read_bytes(&self.join(user)?).await?;
        String::from_utf8(bytes).map_err(|_| FileError::NotText)
    }

    /// Reads a file named by any path that resolves inside the root (used for `file://` URIs).
    pub(crate) async fn read_bytes(&self, path: &Path) -> Result<Vec<u8>, FileError> {
        if !path.is_absolute() {
            return Err(FileError::NotRelative);
        }
        let real = self.resolve_file(path).await?;
        if tokio::fs::metadata(&real).await?.len() > MAX_READ_BYTES {
            return Err(FileError::TooLarge);
        }
        Ok(tokio::fs::read(&real).await?)
    }

    /// Writes (creates or replaces) a file named relative to the root; its folder must exist.
    pub(crate) async fn write_text(&self, user: &str, content: &str) -> Result<(), FileError> {
        let target = self.join(user)?;
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(FileError::NotRelative);
        };
        let parent = tokio::fs::canonicalize(parent).await?;
        if !parent.starts_with(&self.dir) {
            return Err(FileError::Escapes);
        }
        let target = parent.join(name);
        match tokio::fs::symlink_metadata(&target).await {
            Ok(meta) if meta.file_type().is_symlink() => return Err(FileError::Symlink),
            Ok(meta) if !meta.is_file() => return Err(FileError::NotAFile),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        tokio::fs::write(&target, content).await?;
        Ok(())
    }

    /// Names of the regular files directly in the root, sorted.
    pub(crate) async fn top_level_names(&self) -> Result<Vec<String>, FileError> {
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_type().await?.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                names.push(name);
                if names.len() >= MAX_LISTED {
                    break;
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every regular file under the root (symlinks not followed), as absolute paths, sorted.
    pub(crate) async fn walk(&self) -> Result<Vec<PathBuf>, FileError> {
        let mut files = Vec::new();
        let mut dirs = vec![(self.dir.clone(), 0usize)];
        while let Some((dir, depth)) = dirs.pop() {
            let mut entries = tokio::fs::read_dir(&dir).await?;
            while let Some(entry) = entries.next_entry().await? {
                let kind = entry.file_type().await?;
                let path = entry.path();
                if path.to_str().is_none() {
                    continue;
                }
                if kind.is_file() {
                    files.push(path);
                } else if kind.is_dir() && depth < MAX_DEPTH {
                    dirs.push((path, depth + 1));
                }
                if files.len() >= MAX_LISTED {
                    dirs.clear();
                    break;
                }
            }
        }
        files.sort();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Root) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), "alpha").unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::write(tmp.path().join("sub/b.txt"), "beta").unwrap();
        let root = Root::new(tmp.path()).unwrap();
        (tmp, root)
    }

    #[tokio::test]
    async fn reads_stay_inside_the_root() {
        let (tmp, root) = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("link")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("a.txt"), tmp.path().join("inner")).unwrap();

        let rows: &[(&str, Result<&str, &str>)] = &[
            ("a.txt", Ok("alpha")),
            ("sub/b.txt", Ok("beta")),
            ("inner", Ok("alpha")),
            ("../a.txt", Err("NotRelative")),
            ("sub/../a.txt", Err("NotRelative")),
            ("./a.txt", Err("NotRelative")),
            ("/etc/passwd", Err("NotRelative")),
            ("", Err("NotRelative")),
            ("link", Err("Escapes")),
            ("missing.txt", Err("NotFound")),
            ("sub", Err("NotAFile")),
        ];
        for (path, want) in rows {
            let got = root.read_text(path).await;
            match (got, want) {
                (Ok(text), Ok(w)) => assert_eq!(text, *w, "{path}"),
                (Err(e), Err(w)) => assert!(format!("{e:?}").starts_with(w), "{path}: {e:?}"),
                (got, want) => panic!("{path}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[tokio::test]
    async fn writes_stay_inside_the_root() {
        let (tmp, root) = root();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("x"), tmp.path().join("dangling")).unwrap();

        root.write_text("new.txt", "hi").await.unwrap();
        assert_eq!(root.read_text("new.txt").await.unwrap(), "hi");
        root.write_text("sub/c.txt", "c").await.unwrap();
        assert!(matches!(
            root.write_text("../x", "x").await,
            Err(FileError::NotRelative)
        ));
        assert!(matches!(
            root.write_text("out/x", "x").await,
            Err(FileError::Escapes)
        ));
        assert!(matches!(
            root.write_text("dangling", "x").await,
            Err(FileError::Symlink)
        ));
        assert!(matches!(
            root.write_text("nodir/x", "x").await,
            Err(FileError::NotFound)
        ));
        assert!(matches!(
            root.write_text("sub", "x").await,
            Err(FileError::NotAFile)
        ));
        assert!(!outside.path().join("x").exists());
    }

    #[tokio::test]
    async fn listings_are_sorted_and_skip_symlinks() {
        let (tmp, root) = root();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("zz")).unwrap();
        assert_eq!(root.top_level_names().await.unwrap(), vec!["a.txt"]);
        let all = root.walk().await.unwrap();
        let rel: Vec<_> = all
            .iter()
            .map(|p| p.strip_prefix(root.dir()).unwrap())
            .collect();
        assert_eq!(rel, vec![Path::new("a.txt"), Path::new("sub/b.txt")]);
    }
}
