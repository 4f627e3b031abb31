//! `[upstream.sandbox]`: the confinement of a stdio upstream.

use std::path::PathBuf;
use std::time::Duration;

use super::HostPort;

/// Default memory limit of a sandboxed upstream: 1 GiB.
pub const DEFAULT_SANDBOX_MEMORY: u64 = 1 << 30;

/// How a stdio upstream is confined. The sandbox is on for every stdio upstream; these are the
/// operator's additions and limits on top of the runtime the sandbox crate always allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Readable paths besides the runtime (the interpreter and the command's package). Absolute.
    pub fs_read: Vec<PathBuf>,
    /// Writable paths besides the private temp dir the sandbox always provides. Absolute.
    pub fs_write: Vec<PathBuf>,
    pub network: Network,
    /// Address-space limit in bytes (default 1 GiB).
    pub memory: u64,
    /// CPU time limit. `None`: unlimited.
    pub cpu_time: Option<Duration>,
    /// Most processes/threads. `None`: the sandbox crate's default.
    pub processes: Option<u32>,
    /// Most bytes written under the writable paths. `None`: unlimited.
    pub storage_quota: Option<u64>,
    /// On a host lacking a kernel feature, start anyway with weaker confinement instead of
    /// refusing to start the upstream.
    pub dangerous_allow_weaker_sandbox: bool,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self {
            fs_read: Vec::new(),
            fs_write: Vec::new(),
            network: Network::None,
            memory: DEFAULT_SANDBOX_MEMORY,
            cpu_time: None,
            processes: None,
            storage_quota: None,
            dangerous_allow_weaker_sandbox: false,
        }
    }
}

/// Network access of a sandboxed upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// No network at all (`network = "none"`, the default; also `network = []`).
    #[default]
    None,
    /// Only connections to these `host:port` pairs.
    Allow(Vec<HostPort>),
}
