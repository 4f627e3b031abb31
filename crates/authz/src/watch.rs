//! The live policy set: one [`PolicySet`] behind an [`ArcSwap`], replaced whole when the files
//! change. A decision takes one snapshot ([`Authorizer::current`]) and uses only it, so no call
//! is decided by a half-loaded set; a bad edit keeps the previous set and logs why.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};

use crate::error::PolicyErrors;
use crate::policies::PolicySet;

/// Quiet time after the last file event before reloading (editors write in several steps).
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// How often a directory that also holds a busy file is scanned for policy changes instead of
/// being watched (see [`Authorizer::watch_beside`]).
pub const POLL_BUSY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Authorizer {
    patterns: Vec<PathBuf>,
    current: ArcSwap<PolicySet>,
    generation: AtomicU64,
    failures: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch policy files: {0}")]
pub struct WatchError(#[from] notify::Error);

impl Authorizer {
    /// Loads the policies `patterns` name (see [`PolicySet::load`]).
    pub fn load(patterns: Vec<PathBuf>) -> Result<Authorizer, PolicyErrors> {
        let set = PolicySet::load(&patterns)?;
        Ok(Authorizer {
            patterns,
            current: ArcSwap::from_pointee(set),
            generation: AtomicU64::new(1),
            failures: AtomicU64::new(0),
        })
    }

    /// A fixed set that [`Authorizer::reload`] will not change (tests, `policy test`).
    pub fn fixed(set: PolicySet) -> Authorizer {
        Authorizer {
            patterns: Vec::new(),
            current: ArcSwap::from_pointee(set),
            generation: AtomicU64::new(1),
            failures: AtomicU64::new(0),
        }
    }

    /// The policy set to decide with. Take it once per request and use only it.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Starts at 1; +1 for every reload that changed the set (for tests and metrics).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reloads that failed and kept the previous set.
    pub fn reload_failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// Reads the files again. A valid, different set replaces the current one (`Ok(true)`); the
    /// same text changes nothing (`Ok(false)`); errors keep the current set and are logged.
    pub fn reload(&self) -> Result<bool, PolicyErrors> {
        if self.patterns.is_empty() {
            return Ok(false);
        }
        match PolicySet::load(&self.patterns) {
            Ok(set) => {
                if set.same_sources(&self.current.load()) {
                    return Ok(false);
                }
                let count = set.len();
                for w in set.warnings() {
                    tracing::warn!(warning = %w, "policy warning");
                }
                self.current.store(Arc::new(set));
                let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::info!(policies = count, generation, "policies reloaded");
                Ok(true)
            }
            Err(errors) => {
                self.failures.fetch_add(1, Ordering::AcqRel);
                for e in &errors.0 {
                    tracing::warn!(error = %e, "policy reload failed; keeping the previous policy set");
                }
                Err(errors)
            }
        }
    }

    /// Watches the policy files and reloads on change (debounced by [`DEBOUNCE`]) until the
    /// returned handle is dropped. Directories that hold the files are watched, so files
    /// created later (matching a glob) are picked up.
    pub fn watch(self: &Arc<Self>) -> Result<PolicyWatch, WatchError> {
        self.watch_beside(&[])
    }

    /// [`Authorizer::watch`], except that a directory that also holds one of `busy` (files
    /// written all the time, such as a SQLite store) is scanned every [`POLL_BUSY`] instead:
    /// watched, it would wake the watcher on every write to them.
    pub fn watch_beside(self: &Arc<Self>, busy: &[&Path]) -> Result<PolicyWatch, WatchError> {
        let (tx, rx) = mpsc::channel::<()>();
        let patterns: Vec<glob::Pattern> = self
            .patterns
            .iter()
            .filter_map(|p| glob::Pattern::new(&p.to_string_lossy()).ok())
            .collect();
        let (polled, watched): (Vec<_>, Vec<_>) = watch_roots(&self.patterns)
            .into_iter()
            .partition(|root| busy.iter().any(|file| holds(root, file)));
        let watcher = if watched.is_empty() {
            None
        } else {
            let mut watcher = notify::recommended_watcher(relay(tx.clone(), patterns.clone()))?;
            for (dir, mode) in &watched {
                watcher.watch(dir, *mode)?;
            }
            Some(watcher)
        };
        let poller = if polled.is_empty() {
            None
        } else {
            let config = notify::Config::default().with_poll_interval(POLL_BUSY);
            let mut poller = notify::PollWatcher::new(relay(tx, patterns), config)?;
            for (dir, mode) in &polled {
                poller.watch(dir, *mode)?;
            }
            Some(poller)
        };
        let me = Arc::downgrade(self);
        let thread = std::thread::Builder::new()
            .name("policy-watch".into())
            .spawn(move || watch_loop(&me, &rx))
            .map_err(|e| WatchError(notify::Error::io(e)))?;
        Ok(PolicyWatch {
            polled: polled.into_iter().map(|(dir, _)| dir).collect(),
            _watcher: watcher,
            _poller: poller,
            _thread: thread,
        })
    }
}

/// A watcher's event handler: only events on policy files reach the reload thread (a watched
/// directory may hold other files too).
fn relay(
    tx: mpsc::Sender<()>,
    patterns: Vec<glob::Pattern>,
) -> impl FnMut(notify::Result<notify::Event>) + Send + 'static {
    move |event| {
        if is_relevant(&event, &patterns) {
            let _ = tx.send(());
        }
    }
}

/// Keeps policy files watched while alive; dropping it stops the watch.
pub struct PolicyWatch {
    polled: Vec<PathBuf>,
    _watcher: Option<notify::RecommendedWatcher>,
    _poller: Option<notify::PollWatcher>,
    _thread: std::thread::JoinHandle<()>,
}

impl PolicyWatch {
    /// The directories scanned every [`POLL_BUSY`] instead of watched.
    pub fn polled(&self) -> &[PathBuf] {
        &self.polled
    }
}

/// Whether `file` lies in the watch root `(dir, mode)`: a watch there is told of every change to
/// it (the kernel reports it before it is told apart from the policy files).
fn holds((root, mode): &(PathBuf, RecursiveMode), file: &Path) -> bool {
    file.parent().is_some_and(|dir| match mode {
        RecursiveMode::NonRecursive => dir == root,
        RecursiveMode::Recursive => dir.starts_with(root),
    })
}

impl std::fmt::Debug for PolicyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyWatch")
    }
}

fn watch_loop(me: &Weak<Authorizer>, rx: &mpsc::Receiver<()>) {
    // Ends when the watcher (and so the sender) is dropped or the authorizer is gone.
    while rx.recv().is_ok() {
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let Some(authorizer) = me.upgrade() else {
            return;
        };
        // Errors are counted and logged inside.
        let _ = authorizer.reload();
    }
}

fn is_relevant(event: &notify::Result<notify::Event>, patterns: &[glob::Pattern]) -> bool {
    let Ok(event) = event else {
        // The watcher lost track (overflow): reload to be sure.
        return true;
    };
    if event.kind.is_access() {
        return false;
    }
    event.paths.is_empty()
        || event
            .paths
            .iter()
            .any(|p| patterns.iter().any(|pat| pat.matches_path(p)))
}

/// The directories to watch for `patterns`: each pattern's longest directory without glob
/// characters, recursively when the rest of the pattern spans directories.
fn watch_roots(patterns: &[PathBuf]) -> Vec<(PathBuf, RecursiveMode)> {
    let mut roots: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    for pattern in patterns {
        let mut base = PathBuf::new();
        let mut rest = 0;
        let components: Vec<_> = pattern.components().collect();
        for (i, c) in components.iter().enumerate() {
            if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
                rest = components.len() - i;
                break;
            }
            base.push(c);
        }
        let (dir, mode) = if rest == 0 {
            // A plain file: watch its directory (editors replace files by renaming).
            let dir = pattern
                .parent()
                .map_or_else(PathBuf::new, Path::to_path_buf);
            (dir, RecursiveMode::NonRecursive)
        } else if rest == 1 {
            (base, RecursiveMode::NonRecursive)
        } else {
            (base, RecursiveMode::Recursive)
        };
        if dir.as_os_str().is_empty() {
            continue;
        }
        if !roots.iter().any(|(d, m)| *d == dir && *m == mode) {
            roots.push((dir, mode));
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_of_patterns() {
        let roots = watch_roots(&[
            PathBuf::from("/etc/p/rbac.cedar"),
            PathBuf::from("/etc/p/*.cedar"),
            PathBuf::from("/srv/pol/*/x.cedar"),
        ]);
        assert_eq!(
            roots,
            vec![
                (PathBuf::from("/etc/p"), RecursiveMode::NonRecursive),
                (PathBuf::from("/srv/pol"), RecursiveMode::Recursive),
            ]
        );
        // A store beside the policies, or anywhere under a recursive root, wakes the watcher;
        // one in a subdirectory of a flat root, or elsewhere, does not.
        for (file, woken) in [
            ("/etc/p/portcullis.db", true),
            ("/srv/pol/a/b/portcullis.db", true),
            ("/etc/p/state/portcullis.db", false),
            ("/var/lib/portcullis/portcullis.db", false),
        ] {
            let in_a_root = roots.iter().any(|root| holds(root, Path::new(file)));
            assert_eq!(in_a_root, woken, "{file}");
        }
    }
}
