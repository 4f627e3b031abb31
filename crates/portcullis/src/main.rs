//! `portcullis`: command-line entry point. Parses flags and wires crates; no logic lives here.

mod audit;
mod cli;
mod demo;
mod keys;
mod logging;
mod policy;
mod run;
mod scan;
mod token;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(cli.workers, cores))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(cli::dispatch(cli))
}

/// The runtime's worker threads: as asked, else one less than `cores` (at least one). On a
/// 2-core machine shared with the load generator and the upstream, one worker served 6 % (minimal)
/// to 24 % (full pipeline) more calls than two, at a lower p50 (bench/RESULTS.md).
fn workers(asked: Option<u16>, cores: usize) -> usize {
    asked.map_or_else(|| cores.saturating_sub(1).max(1), usize::from)
}

#[cfg(test)]
mod tests {
    use super::workers;

    #[test]
    fn workers_leave_a_core_unless_asked() {
        assert_eq!(workers(None, 1), 1);
        assert_eq!(workers(None, 2), 1);
        assert_eq!(workers(None, 16), 15);
        assert_eq!(workers(Some(4), 2), 4);
    }
}
